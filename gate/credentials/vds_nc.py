"""ICAO VDS-NC, the visible digital seal for non-constrained environments (docs/formats.md
"VDS-NC").

    {"data": {"hdr": {"t": "icao.vacc", "v": 1, "is": "AUS"}, "msg": {...}},
     "sig": {"alg": "ES256", "cer": "<base64url DER>", "sigvl": "<base64url>"}}

The signature is ES256 over the canonical JSON of `data`; the signer certificate travels
in the seal and must chain to a provisioned country signing CA (the trust store's CA
certificates, found by the issuer name). Decisions where the references are silent:
- Canonical JSON is RFC 8785 (JCS), as ICAO's guidelines prescribe: object members
  sorted by their UTF-16 code units, no whitespace, strings as UTF-8 with only `"`, `\\`
  and control characters escaped, integral numbers without a fraction. Non-integral
  numbers are written the Python way, which matches JCS for every value a seal carries
  (it has none: dates, codes and counters only). JCS needs I-JSON: a seal whose `data`
  holds a lone surrogate (`"\\ud800"`, in a value or a key) or a non-finite number is
  malformed, and so is one nested deeper than `MAX_DEPTH` (a real seal nests about six
  deep). Canonicalisation is iterative, so nesting never costs stack.
- `sigvl` is taken as the raw r||s (64 bytes) or, failing that length, as DER.
- A JSON object with a repeated member is malformed: the signer and the gate might
  read different values.
- The data signature is checked with the seal's own certificate first, so a tampered seal
  is `bad_signature` whether or not its CA is known; then the chain; then the validity
  windows of the signer certificate and of its CA at the scan time.
- Types: `icao.vacc` (proof of vaccination) and `icao.test` (proof of testing). subject_id
  is the certificate's identifier (`uvci` or `utci`).
"""

import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from gate.b64 import unbase64
from gate.credentials.fields import iso_date, iso_instant, small_int, text_value
from gate.credentials.model import (
    Context,
    Credential,
    Health,
    HealthType,
    Kind,
    Refusal,
    judged,
)
from gate.errors import TrustError
from gate.reasons import Reason
from gate.trust.keys import Algorithm, raw_ecdsa_to_der, verify
from gate.trust.store import Signer, strict_signer_from_der

_COUNTRY = re.compile(r"[A-Z]{3}|[A-Z]<<|[A-Z]{2}<")
_TYPES = {"icao.vacc": HealthType.VACCINATION, "icao.test": HealthType.TEST}
_NEGATIVE = frozenset({"negative", "normal"})
_POSITIVE = frozenset({"positive", "abnormal"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Raw(str):
    """Canonical text already written (punctuation), as opposed to a JSON string value."""


#: Deepest nesting canonical JSON is written for: a seal nests about six deep, a command
#: envelope four; deeper input is an attack on time, not a document.
MAX_DEPTH = 64


def canonical(value: object) -> str:
    """RFC 8785 canonical JSON of a parsed JSON value (see the module docstring).

    Iterative, so depth costs no stack. Raises ValueError, with a message that names the
    problem and never the value, for what canonical JSON cannot carry: a lone surrogate
    in a string or a key, a number that is not finite, a value that is not JSON, and
    nesting deeper than MAX_DEPTH.
    """
    written: list[str] = []
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, _Raw):
            written.append(item)
            continue
        if isinstance(item, dict | list) and depth >= MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        if isinstance(item, dict):
            members = sorted(item.items(), key=lambda member: _utf16(member[0]))
            parts: list[object] = [_Raw("{")]
            for key, member in members:
                parts += [_Raw("," if len(parts) > 1 else ""), _Raw(_string(key) + ":"), member]
            parts.append(_Raw("}"))
        elif isinstance(item, list):
            parts = [_Raw("[")]
            for member in item:
                parts += [_Raw("," if len(parts) > 1 else ""), member]
            parts.append(_Raw("]"))
        else:
            written.append(_scalar(item))
            continue
        pending += ((part, depth + 1) for part in reversed(parts))
    return "".join(written)


def _utf16(key: object) -> bytes:
    if not isinstance(key, str):
        raise ValueError("object key is not a string")
    return key.encode("utf-16-be", "surrogatepass")


def _string(text: str) -> str:
    if _LONE_SURROGATE.search(text):
        raise ValueError("lone surrogate")
    return json.dumps(text, ensure_ascii=False)


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite number")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def parse(text: str, context: Context) -> Credential | Reason | Refusal:
    seal = _load(text)
    if not isinstance(seal, dict):
        return Reason.MALFORMED
    data, sig = seal.get("data"), seal.get("sig")
    if not (isinstance(data, dict) and isinstance(sig, dict)):
        return Reason.MALFORMED
    try:
        message = canonical(data).encode("utf-8")
    except ValueError as error:  # the message names the problem, never the value
        return Refusal(Reason.MALFORMED, "data", str(error))
    hdr, msg = data.get("hdr"), data.get("msg")
    if not (isinstance(hdr, dict) and isinstance(msg, dict)):
        return Reason.SCHEMA_INVALID
    kind, version, country = hdr.get("t"), hdr.get("v"), hdr.get("is")
    if not (
        isinstance(kind, str)
        and kind in _TYPES
        and isinstance(version, int)
        and not isinstance(version, bool)
        and isinstance(country, str)
        and _COUNTRY.fullmatch(country)
    ):
        return Reason.SCHEMA_INVALID
    if sig.get("alg") != "ES256":
        return Reason.UNSUPPORTED_ALGORITHM
    certificate_bytes, signature = _unbase64url(sig.get("cer")), _unbase64url(sig.get("sigvl"))
    if certificate_bytes is None or signature is None:
        return Reason.BAD_ENCODING
    seal_signer = _certificate(certificate_bytes)
    if seal_signer is None:
        return Reason.MALFORMED
    statement = _statement(_TYPES[kind], msg)
    if statement is None:
        return Reason.SCHEMA_INVALID
    der_signature = raw_ecdsa_to_der(signature) or signature
    problems: list[Reason] = []
    if not verify(seal_signer.public_key, Algorithm.ES256, der_signature, message):
        problems.append(Reason.BAD_SIGNATURE)
    else:
        problems += _chain_problems(seal_signer, context)
    identifier, name, birth, health, details = statement
    return judged(
        Kind.VDS_NC,
        problems,
        verified=not problems,
        subject_id=identifier,
        name=name,
        birth_date=birth,
        details={"issuing_country": country, "type": kind} | details,
        health=health,
    )


def _chain_problems(signer: Signer, context: Context) -> list[Reason]:
    """Whether the seal's certificate chains to a pinned CA, and both are valid now."""
    authorities = context.trust.authorities.get(signer.certificate.issuer, ())
    if not authorities:
        return [Reason.SIGNER_UNKNOWN]
    issuer = next((ca for ca in authorities if _issued_by(signer, ca)), None)
    if issuer is None:
        return [Reason.BAD_SIGNER_CERTIFICATE]
    window = signer.window_problem(context.at) or issuer.window_problem(context.at)
    return [window] if window else []


def _issued_by(signer: Signer, authority: Signer) -> bool:
    try:
        signer.certificate.verify_directly_issued_by(authority.certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _statement(
    kind: HealthType, msg: Mapping[str, Any]
) -> tuple[str, str, str | None, Health, dict[str, str]] | None:
    """(identifier, name, birth date, health, details) of a well-formed message."""
    pid = msg.get("pid")
    identifier = msg.get("uvci" if kind is HealthType.VACCINATION else "utci")
    if not (isinstance(pid, dict) and text_value(identifier) and text_value(pid.get("n"))):
        return None
    birth = pid.get("dob")
    if birth is not None and iso_date(birth) is None:
        return None
    document = pid.get("i") or pid.get("dn") or ""
    details = {
        "certificate_id": identifier,
        "document_no": document if text_value(document) else "",
    }
    if kind is HealthType.VACCINATION:
        outcome = _vaccination(msg.get("ve"))
    else:
        outcome = _test(msg.get("dat"), msg.get("tr"))
    if outcome is None:
        return None
    health, more = outcome
    return identifier, pid["n"].strip(), birth, health, details | more


def _vaccination(events: object) -> tuple[Health, dict[str, str]] | None:
    """The latest dose of every vaccination event: its number, date and whether another is due."""
    if not (isinstance(events, list) and events):
        return None
    doses: list[tuple[datetime.date, int, bool]] = []
    for event in events:
        details = event.get("vd") if isinstance(event, dict) else None
        if not (
            isinstance(event, dict) and text_value(event.get("des")) and isinstance(details, list)
        ):
            return None
        for dose in details:
            if not isinstance(dose, dict):
                return None
            day, number = iso_date(dose.get("dvc")), dose.get("seq")
            if day is None or not small_int(number, 1, 99):
                return None
            doses.append((day, number, dose.get("dvn") is not None))
    if not doses:
        return None
    day, number, next_due = max(doses)
    health = Health(HealthType.VACCINATION, dose=number, vaccinated_on=day, next_dose_due=next_due)
    details = {"certificate_type": "vaccination", "dose": str(number), "vaccinated_on": str(day)}
    return health, details


def _test(dat: object, result: object) -> tuple[Health, dict[str, str]] | None:
    if not (isinstance(dat, dict) and isinstance(result, dict)):
        return None
    sampled, outcome = iso_instant(dat.get("sc")), result.get("r")
    if sampled is None or not isinstance(outcome, str):
        return None
    outcome = outcome.strip().lower()
    if outcome not in _NEGATIVE | _POSITIVE:
        return None
    health = Health(HealthType.TEST, sampled_at=sampled, positive=outcome in _POSITIVE)
    return health, {
        "certificate_type": "test",
        "sampled_at": sampled.isoformat(),
        "test_result": "detected" if health.positive else "not_detected",
    }


def _load(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_repeats)
    except (ValueError, RecursionError):
        return None


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("repeated member")
    return members


def _unbase64url(text: object) -> bytes | None:
    """base64url, padding optional; any character outside the alphabet is an error."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return unbase64(text)
    except ValueError:
        return None


def _certificate(der: bytes) -> Signer | None:
    """The seal's certificate, or None when it is not one the gate can use."""
    try:
        return strict_signer_from_der(der, "seal")
    except TrustError:
        return None
