"""The EU's own yardstick for HC1: test cases in the dgc-testdata format, held against the gate.

A case (one JSON file) gives the layers of one certificate (`JSON`, `CBOR`, `COSE`,
`COMPRESSED`, `BASE45`, `PREFIX`, `2DCODE`), a context (`TESTCTX`: the signer's DER
`CERTIFICATE`, base64, and a `VALIDATIONCLOCK`) and the expected outcome of each check
(`EXPECTEDRESULTS`). Each check is computed here with the gate's own HC1 functions, with a
trust store holding just the case's certificate, as a document signer (the case says it is
the signer's), under its EU kid (SHA-256 of the DER, first 8 bytes), so that a case whose
message names another kid fails to verify as it should. The certificate is read as
`trust.paths` reads it: strictly, or leniently when only its DER's strictness is wrong.

Checks and what decides them (the dgc-testdata README's definitions):
- UNPREFIX: `PREFIX` starts `HC1:` and the rest is `BASE45` (or decodes, without BASE45).
- B45DECODE: Base45 of `BASE45` is `COMPRESSED`.
- COMPRESSION: zlib of `COMPRESSED` is `COSE`.
- VERIFY: the COSE signature verifies with the key found by kid (crypto only: no clock).
- EXPIRATIONCHECK: at the clock, `iat` has passed and `exp` has not (EU rules only, not
  Vietnam's 12 months).
- KEYUSAGE: it verifies, and the certificate's extended key usage allows its type.
- DECODE: the COSE payload equals `CBOR` (compared decoded: map order is free); issuers
  give either the whole CWT claims map or just its health certificate (claim -260, 1).
- VALIDJSON: the whole chain from `PREFIX` yields `JSON` (date-times compared as instants).
- SCHEMAVALIDATION: the payload passes the gate's schema checks.
- PICTUREDECODE: the `2DCODE` PNG decodes to `PREFIX` (only when a decoder is given).
VALIDOBJECT and ENCODE test an issuer's encoder, not a verifier: reported as skipped.
The COSE under test is `COSE` when given, else the one the `PREFIX` chain yields.

Beside the checks, the gate's own verdict on `PREFIX` (what `gate parse` says) is held
against the case: `verdict_disagreements`, summed up by `Tally` (docs/conformance.md).
"""

import datetime
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.b64 import unbase64
from gate.credentials import base45, cbor, dcc, parse, signed
from gate.credentials.fields import iso_instant
from gate.credentials.model import Credential
from gate.errors import DccTestDataError, TrustError
from gate.reasons import Reason
from gate.trust.store import DocumentSigner, TrustStore, signer_from_der

#: A function from a PNG file's bytes to the texts of the QR codes in it.
PictureDecoder = Callable[[bytes], list[str]]


@dataclass(frozen=True, slots=True)
class TestCase:
    """One dgc-testdata file, its layers decoded from hex/base64; absent ones are None."""

    __test__ = False  # not a pytest class

    name: str
    description: str
    expected: Mapping[str, bool]
    prefixed: str | None = None
    base45_text: str | None = None
    compressed: bytes | None = None
    cose: bytes | None = None
    cbor_payload: bytes | None = None
    json_payload: Any = None
    picture: bytes | None = None
    signer: DocumentSigner | None = None
    clock: datetime.datetime | None = None
    trust: TrustStore = field(default_factory=TrustStore)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the gate computed for a case: each check (None: skipped) and its full verdict."""

    case: TestCase
    checks: Mapping[str, bool | None]
    credential: Credential | None

    @property
    def mismatches(self) -> dict[str, tuple[bool, bool]]:
        """Checks whose outcome differs from the expected one: name -> (expected, got)."""
        return {
            name: (expected, got)
            for name, expected in self.case.expected.items()
            if (got := self.checks.get(name)) is not None and got != expected
        }


#: The checks the gate's verdict is held against (docs/conformance.md): `verified` must equal
#: EXPECTEDVERIFY, and a case expected to fail decoding or the expiry check must not be valid.
VERDICT_CHECKS = ("EXPECTEDVERIFY", "EXPECTEDDECODE", "EXPECTEDEXPIRATIONCHECK")


def verdict_disagreements(outcome: Outcome) -> list[str]:
    """The VERDICT_CHECKS on which the gate's verdict disagrees with the case; empty when it
    agrees. A case the gate could not parse at all disagrees on each check it names."""
    expected, credential = outcome.case.expected, outcome.credential
    if credential is None:
        return [name for name in VERDICT_CHECKS if name in expected]
    wrong = []
    if "EXPECTEDVERIFY" in expected and credential.verified != expected["EXPECTEDVERIFY"]:
        wrong.append("EXPECTEDVERIFY")
    wrong += [
        name for name in VERDICT_CHECKS[1:] if expected.get(name) is False and credential.valid
    ]
    return wrong


@dataclass(slots=True)
class Tally:
    """A run over many cases: how many agree with the expected verdict, and which checks
    differ how often. A case file that cannot be read counts as a case that fails."""

    cases: int = 0
    agreeing: int = 0
    unreadable: int = 0
    disagreeing: Counter[str] = field(default_factory=Counter)  # verdict checks, per case
    differing: Counter[str] = field(default_factory=Counter)  # every expected result

    def add(self, outcome: Outcome) -> list[str]:
        """Count one case; its verdict disagreements (empty when it agrees)."""
        self.cases += 1
        wrong = verdict_disagreements(outcome)
        self.agreeing += not wrong
        self.disagreeing.update(wrong)
        self.differing.update(list(outcome.mismatches))
        return wrong

    def add_unreadable(self) -> None:
        self.cases += 1
        self.unreadable += 1

    @property
    def all_met(self) -> bool:
        """Every case read, and every expected result met."""
        return not (self.unreadable or self.differing)

    def line(self) -> str:
        """One line: cases, agreeing, disagreeing by check, differing results, unreadable."""
        share = f" ({100 * self.agreeing / self.cases:.1f}%)" if self.cases else ""
        disagreeing = self.cases - self.agreeing - self.unreadable
        return (
            f"{self.cases} cases: {self.agreeing} agree with the expected verdict{share}, "
            f"{disagreeing} disagree (by check: {_by_check(self.disagreeing)}); "
            f"expected results differing by check: {_by_check(self.differing)}; "
            f"{self.unreadable} unreadable"
        )


def _by_check(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def load_case(text: str, name: str = "case") -> TestCase:
    """A test case from the JSON text of one file."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise DccTestDataError(f"{name}: not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise DccTestDataError(f"{name}: expected a JSON object")
    context = raw.get("TESTCTX") or {}
    expected = raw.get("EXPECTEDRESULTS") or {}
    if not isinstance(context, dict) or not isinstance(expected, dict):
        raise DccTestDataError(f"{name}: TESTCTX and EXPECTEDRESULTS must be objects")
    signer = _signer(context.get("CERTIFICATE"), name)
    return TestCase(
        name=name,
        description=str(context.get("DESCRIPTION", "")),
        expected={k: bool(v) for k, v in expected.items() if isinstance(v, bool)},
        prefixed=_string(raw, "PREFIX", name),
        base45_text=_string(raw, "BASE45", name),
        compressed=_hex(raw, "COMPRESSED", name),
        cose=_hex(raw, "COSE", name),
        cbor_payload=_hex(raw, "CBOR", name),
        json_payload=raw.get("JSON"),
        picture=_base64(raw.get("2DCODE"), f"{name}: 2DCODE"),
        signer=signer,
        clock=_clock(context.get("VALIDATIONCLOCK"), name),
        trust=TrustStore.of(listed=[signer] if signer else []),
    )


def load_file(path: Path) -> TestCase:
    try:
        return load_case(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise DccTestDataError(f"{path}: cannot read ({exc})") from exc


def evaluate(case: TestCase, pictures: PictureDecoder | None = None) -> Outcome:
    """Every check the case's data allows, and the gate's verdict on its `PREFIX`."""
    cose = case.cose if case.cose is not None else _chain(case.prefixed)
    sign1 = dcc.read_sign1(cose) if cose is not None else None
    sign1 = sign1 if isinstance(sign1, dcc.Sign1) else None
    claims = dcc.read_claims(sign1) if sign1 else None
    claims = claims if isinstance(claims, dcc.Claims) else None
    certificate = dcc.read_certificate(claims) if claims else None
    certificate = certificate if isinstance(certificate, dcc.Certificate) else None
    health_type = dcc.certificate_type(claims.hcert) if claims else None
    signer = case.trust.signers.get(sign1.kid) if sign1 and sign1.kid is not None else None
    verified = bool(sign1 and signer and dcc.signature_valid(sign1, signer))
    checks: dict[str, bool | None] = {
        "EXPECTEDUNPREFIX": _unprefix(case),
        "EXPECTEDB45DECODE": _same(case.base45_text, case.compressed, base45.decode),
        "EXPECTEDCOMPRESSION": _same(case.compressed, case.cose, _inflated),
        "EXPECTEDVERIFY": verified if cose is not None else None,
        "EXPECTEDEXPIRATIONCHECK": (
            _unexpired(claims, case.clock) if cose is not None and case.clock else None
        ),
        "EXPECTEDKEYUSAGE": (
            verified
            and signer is not None
            and health_type is not None
            and dcc.key_usage_allows(signer, health_type)
            if cose is not None
            else None
        ),
        "EXPECTEDDECODE": (
            sign1 is not None and _same_cbor(sign1.payload, case.cbor_payload)
            if cose is not None and case.cbor_payload is not None
            else None
        ),
        "EXPECTEDVALIDJSON": _valid_json(case),
        "EXPECTEDSCHEMAVALIDATION": certificate is not None if cose is not None else None,
        "EXPECTEDPICTUREDECODE": (
            case.prefixed in pictures(case.picture)
            if pictures is not None and case.picture is not None and case.prefixed
            else None
        ),
    }
    credential = None
    if case.prefixed is not None and case.clock is not None:
        credential = parse(
            case.prefixed.encode(),
            today=case.clock.date(),
            at=case.clock,
            trust=case.trust,
            max_bytes=8192,
        )
    return Outcome(case, checks, credential)


def _chain(prefixed: str | None) -> bytes | None:
    if prefixed is None or not signed.is_hc1(prefixed):
        return None
    cose = dcc.unwrap(prefixed)
    return None if isinstance(cose, Reason) else cose


def _unprefix(case: TestCase) -> bool | None:
    if case.prefixed is None:
        return None
    if not signed.is_hc1(case.prefixed):
        return False
    rest = case.prefixed.removeprefix(dcc.PREFIX)
    if case.base45_text is not None:
        return rest == case.base45_text
    return base45.decode(rest) is not None


def _inflated(compressed: bytes) -> bytes | None:
    """zlib proper: data without a zlib header does not count as compressed here."""
    out = dcc.inflate(compressed)
    return None if isinstance(out, Reason) or out is compressed else out


def _same(source: Any, target: bytes | None, step: Callable[[Any], bytes | None]) -> bool | None:
    if source is None or target is None:
        return None
    return step(source) == target


def _unexpired(claims: dcc.Claims | None, clock: datetime.datetime) -> bool:
    if claims is None:
        return False
    problems = dcc.validity_problems(claims, clock)
    return not ({Reason.NOT_YET_VALID, Reason.EXPIRED} & set(problems))


def _valid_json(case: TestCase) -> bool | None:
    if case.prefixed is None or case.json_payload is None:
        return None
    cose = _chain(case.prefixed)
    sign1 = dcc.read_sign1(cose) if cose is not None else None
    claims = dcc.read_claims(sign1) if isinstance(sign1, dcc.Sign1) else None
    if not isinstance(claims, dcc.Claims):
        return False
    return _plain(claims.hcert) == _plain(case.json_payload)


def _same_cbor(payload: bytes, expected: bytes) -> bool:
    claims, target = _plain(cbor.load(payload)), _plain(cbor.load(expected))
    wrapper = claims.get("-260") if isinstance(claims, dict) else None
    hcert = wrapper.get("1") if isinstance(wrapper, dict) else None
    return target is not None and target in (claims, hcert)


def _plain(value: Any) -> Any:
    """Maps as dicts with text keys, sequences as lists, integral floats as ints, date-times
    (text or CBOR tag 0) as the instant they name: a JSON document and its CBOR encoding
    compare equal when their contents do."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    moment = value if isinstance(value, datetime.datetime) else None
    if isinstance(value, str) and "T" in value:
        moment = iso_instant(value)
    if moment is not None:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
        return aware.astimezone(datetime.UTC).isoformat()
    return value


def _string(raw: Mapping[str, Any], key: str, name: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise DccTestDataError(f"{name}: {key} must be a string")
    return value


def _hex(raw: Mapping[str, Any], key: str, name: str) -> bytes | None:
    value = _string(raw, key, name)
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise DccTestDataError(f"{name}: {key} is not hex") from exc


def _base64(value: object, where: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DccTestDataError(f"{where}: must be a base64 string")
    try:
        return unbase64("".join(value.split()))
    except ValueError as exc:
        raise DccTestDataError(f"{where}: invalid base64") from exc


def _signer(value: object, name: str) -> DocumentSigner | None:
    der = _base64(value, f"{name}: TESTCTX.CERTIFICATE")
    if der is None:
        return None
    try:
        return signer_from_der(der, name)
    except TrustError as exc:
        raise DccTestDataError(f"{name}: TESTCTX.CERTIFICATE is not a DER certificate") from exc


def _clock(value: object, name: str) -> datetime.datetime | None:
    moment = iso_instant(value)
    if value is not None and moment is None:
        raise DccTestDataError(f"{name}: TESTCTX.VALIDATIONCLOCK {value!r} is not ISO 8601")
    return moment
