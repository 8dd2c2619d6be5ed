"""EU Digital COVID Certificate (`HC1:`), Vietnam's vaccination certificate.

    HC1: → Base45 → zlib → COSE_Sign1 (tag 18) → CWT claims (1 iss, 4 exp, 6 iat, -260 → 1)

Each layer is a function of its own, so that `gate.trust.dgc_testdata` can hold every
layer of an EU test case against what the gate computes. Decisions where the references
are silent or lenient:
- zlib is optional: data without a valid zlib header is taken as the
  COSE itself; inflating stops at 64 KiB (a zip bomb is `oversized`).
- ES256 is ECDSA with SHA-256 on P-256 and PS256 needs an RSA signer, as the hcert
  specification defines them; a signer whose key does not suit the message's algorithm (an
  ES256 message signed with a P-384 key) is `unsupported_algorithm`, not a forgery.
- COSE_Sign1 may come tagged 18, inside the CWT tag 61, or untagged. `alg` and `kid` are
  read from the protected header, the unprotected one only where the protected lacks them
  (EU test cases CO18-CO23: a wrong protected kid is not rescued by a right unprotected one).
- `exp` and `iat` are required, as CWT NumericDates: integers or floats (RFC 8392 allows
  non-integer values, and Spanish and Hungarian issuers send floats). `iat` may be up to 5
  minutes ahead of the gate's clock.
- The payload must carry `ver`, `nam` with `fnt`, `dob`, and exactly one of `v`/`t`/`r`
  holding exactly one entry (EU DGC2: several certificates in one are invalid); a group
  given as null counts as absent. `dob` may be partial as the schema allows (`1963`,
  `1963-00`, `1963-00-00`, empty).
- `verified`: the COSE signature verifies with the key of the pinned document signer its kid
  names, and that signer has not expired. The EU test data's EXPECTEDVERIFY is that,
  cryptographically: key usage and the payload's schema are judged apart from it. The
  signature is checked before the schema (the hcert specification asks it), so an authentic
  certificate the gate cannot use says so (`schema_invalid` alone, verified, never valid,
  and with no personal data, like any refusal) rather than looking forged; and one signed by
  a signer not allowed its type is `wrong_key_usage`, verified, never valid.
- The signer's validity, as the hcert specification puts it: `exp` must not exceed the DSC's
  validity and the verifier SHOULD check this, so a certificate checked after its signer's
  end is `signer_expired` (it cannot outlive its signer). `iat` must not predate the DSC's
  validity, but the verifier only MAY check that, the EU reference verifiers do not, and the
  EU test data holds certificates issued before their signer's start that must verify: the
  gate does not check the signer's start for HC1 (the trust list is what vouches for a
  signer).
- Key usage as the EU reference verifiers read it: a signer whose extended key usage has
  none of the DCC OIDs (either family, with or without the extra `0` arc) may sign any type;
  otherwise only the types it lists.
- The Vietnamese 12-month rule applies to certificates whose CWT issuer is `VN`.
- subject_id is the certificate identifier `ci` (UVCI): the only identifier the format has.
  The name is printed family name first (`fn gn`), the Vietnamese order.
- Problems are gathered in this order: signer unknown or unsupported algorithm; bad
  signature (then nothing else is believed); signer expired; key usage; not yet valid,
  expired, older than 12 months. `reason` is the first, so a Vietnamese certificate signed
  by the expired production key says `signer_expired` even when it is also old.
"""

import base64
import calendar
import datetime
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gate.credentials import base45, cbor
from gate.credentials.fields import iso_date, iso_instant, small_int, text_value
from gate.credentials.model import Context, Credential, Health, HealthType, Kind, judged
from gate.credentials.signed import HC1_PREFIX as PREFIX
from gate.reasons import Reason
from gate.trust.keys import Algorithm, raw_ecdsa_to_der, suits, verify
from gate.trust.store import DocumentSigner

MAX_INFLATED = 64 * 1024
IAT_SKEW = datetime.timedelta(minutes=5)
VN_VALIDITY_MONTHS = 12
_COSE_SIGN1_TAG = 18
_CWT_TAG = 61
_ALGORITHMS = {-7: Algorithm.ES256, -37: Algorithm.PS256}
_HEADER_ALG = 1
_HEADER_KID = 4
_CLAIM_ISS, _CLAIM_EXP, _CLAIM_IAT, _CLAIM_HCERT = 1, 4, 6, -260
_ZLIB_DEFLATE = 8
_ZLIB_MAX_WINDOW = 7
#: Extended key usages of a Document Signer Certificate, per certificate type; each has an
#: alternative form with an extra `0` arc, which the EU's own test certificates use.
_USAGES = {
    HealthType.TEST: {"1.3.6.1.4.1.1847.2021.1.1", "1.3.6.1.4.1.0.1847.2021.1.1"},
    HealthType.VACCINATION: {"1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.2"},
    HealthType.RECOVERY: {"1.3.6.1.4.1.1847.2021.1.3", "1.3.6.1.4.1.0.1847.2021.1.3"},
}
_DCC_USAGES = frozenset().union(*_USAGES.values())
_GROUPS = {"v": HealthType.VACCINATION, "t": HealthType.TEST, "r": HealthType.RECOVERY}
_GROUP_KEYS = {kind: key for key, kind in _GROUPS.items()}
_DOB = re.compile(r"(?:[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?)?(?:T.*)?")
_TRANSLITERATED = re.compile(r"[A-Z<]{0,80}")
_NOT_DETECTED = "260415000"
_DETECTED = "260373001"
_MAX_DOSES = 99
_MAX_TIME = 2**40  # Unix seconds: far beyond any real date, within datetime's range


@dataclass(frozen=True, slots=True)
class Sign1:
    """A COSE_Sign1 as received: the signed bytes as they are, and the headers read."""

    protected: bytes
    algorithm: int | None
    kid: bytes | None
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        """The COSE Sig_structure: ["Signature1", protected, external_aad = b"", payload]."""
        return cbor.dump(["Signature1", self.protected, b"", self.payload])


@dataclass(frozen=True, slots=True)
class Claims:
    issuer: str | None
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    hcert: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Certificate:
    """The payload after schema checks: who, and what it states."""

    name: str
    birth_date: str
    certificate_id: str
    country: str
    health: Health
    details: dict[str, str]


def inflate(data: bytes) -> bytes | Reason:
    """zlib-inflated data, or the data itself when it has no zlib header (uncompressed)."""
    zlib_header = (
        len(data) >= 2
        and data[0] & 0x0F == _ZLIB_DEFLATE
        and data[0] >> 4 <= _ZLIB_MAX_WINDOW
        and (data[0] << 8 | data[1]) % 31 == 0
    )
    if not zlib_header:
        return data
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error:
        return Reason.BAD_ENCODING
    if inflater.unconsumed_tail:
        return Reason.OVERSIZED
    return out if inflater.eof else Reason.BAD_ENCODING


def read_sign1(data: bytes) -> Sign1 | Reason:
    """The COSE_Sign1 structure, tagged (18, inside 61 or not) or untagged."""
    item = cbor.load(data)
    if isinstance(item, cbor.CBORTag) and item.tag == _CWT_TAG:
        item = item.value
    if isinstance(item, cbor.CBORTag) and item.tag == _COSE_SIGN1_TAG:
        item = item.value
    if not (isinstance(item, list | tuple) and len(item) == 4):
        return Reason.MALFORMED
    protected, unprotected, payload, signature = item
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, Mapping)
        and isinstance(payload, bytes)
        and isinstance(signature, bytes)
    ):
        return Reason.MALFORMED
    headers = cbor.load(protected) if protected else {}
    if not isinstance(headers, Mapping):
        return Reason.MALFORMED
    algorithm = headers.get(_HEADER_ALG, unprotected.get(_HEADER_ALG))
    kid = headers[_HEADER_KID] if _HEADER_KID in headers else unprotected.get(_HEADER_KID)
    if not (isinstance(algorithm, int | None) and isinstance(kid, bytes | None)):
        return Reason.MALFORMED
    return Sign1(protected, algorithm, kid, payload, signature)


def read_claims(sign1: Sign1) -> Claims | Reason:
    """The CWT claims the gate needs: issuer, issued-at, expiry and the certificate."""
    claims = cbor.load(sign1.payload)
    if not isinstance(claims, Mapping):
        return Reason.MALFORMED
    issuer = claims.get(_CLAIM_ISS)
    issued_at, expires_at = (
        _numeric_date(claims.get(_CLAIM_IAT)),
        _numeric_date(claims.get(_CLAIM_EXP)),
    )
    wrapper = claims.get(_CLAIM_HCERT)
    hcert = wrapper.get(1) if isinstance(wrapper, Mapping) else None
    if not (
        isinstance(issuer, str | None)
        and issued_at is not None
        and expires_at is not None
        and isinstance(hcert, Mapping)
    ):
        return Reason.MALFORMED
    return Claims(issuer, issued_at, expires_at, hcert)


def _numeric_date(value: object) -> datetime.datetime | None:
    """A CWT NumericDate (integer or finite float seconds since 1970) in a sane range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (0 <= value <= _MAX_TIME):  # NaN fails too
        return None
    try:
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    except (OverflowError, OSError, ValueError):  # past the calendar's year 9999
        return None


def read_certificate(claims: Claims) -> Certificate | Reason:
    """Schema checks of the payload (hcert 1.x) and what the policy needs of it."""
    hcert = claims.hcert
    nam, dob = hcert.get("nam"), hcert.get("dob")
    kind = certificate_type(hcert)
    if not (
        text_value(hcert.get("ver"))
        and isinstance(nam, Mapping)
        and isinstance(nam.get("fnt"), str)
        and _TRANSLITERATED.fullmatch(nam["fnt"])
        and all(isinstance(nam.get(key), str | None) for key in ("fn", "gn", "gnt"))
        and isinstance(dob, str)
        and _DOB.fullmatch(dob)
        and kind is not None
    ):
        return Reason.SCHEMA_INVALID
    entries = hcert[_GROUP_KEYS[kind]]
    if not (isinstance(entries, list | tuple) and len(entries) == 1):
        return Reason.SCHEMA_INVALID
    entry = entries[0]
    if not (isinstance(entry, Mapping) and text_value(entry.get("ci")) and _strings(entry, "co")):
        return Reason.SCHEMA_INVALID
    statement = _STATEMENTS[kind](entry, claims.issued_at)
    if statement is None:
        return Reason.SCHEMA_INVALID
    health, details = statement
    family = nam.get("fn") or nam["fnt"].replace("<", " ")
    given = nam.get("gn") or (nam.get("gnt") or "").replace("<", " ")
    name = " ".join(part.strip() for part in (family, given) if part and part.strip())
    if not name:
        return Reason.SCHEMA_INVALID
    return Certificate(name, dob, entry["ci"], entry["co"], health, details)


def certificate_type(hcert: Mapping[str, Any]) -> HealthType | None:
    """The type its one group (`v`, `t`, `r`) gives, whatever the schema checks say of its
    content (key usage is judged on it); None without exactly one group."""
    groups = [_GROUPS[key] for key in _GROUPS if hcert.get(key) is not None]
    return groups[0] if len(groups) == 1 else None


def signature_valid(sign1: Sign1, signer: DocumentSigner) -> bool:
    """The COSE signature verifies with the signer's key (ES256 raw r||s, or PS256)."""
    algorithm = _ALGORITHMS.get(sign1.algorithm) if sign1.algorithm is not None else None
    if algorithm is None:
        return False
    signature = (
        raw_ecdsa_to_der(sign1.signature) if algorithm is Algorithm.ES256 else sign1.signature
    )
    return signature is not None and verify(
        signer.public_key, algorithm, signature, sign1.to_be_signed()
    )


def key_usage_allows(signer: DocumentSigner, kind: HealthType) -> bool:
    """A signer with no DCC extended key usage may sign any type; otherwise only its own."""
    dcc_usages = signer.usages & _DCC_USAGES
    return not dcc_usages or bool(dcc_usages & _USAGES[kind])


def validity_problems(claims: Claims, at: datetime.datetime) -> list[Reason]:
    """The certificate's own time limits at `at`: issue time, expiry, Vietnam's 12 months."""
    problems = []
    if claims.issued_at - IAT_SKEW > at:
        problems.append(Reason.NOT_YET_VALID)
    if at > claims.expires_at:
        problems.append(Reason.EXPIRED)
    if claims.issuer == "VN" and at > _months_later(claims.issued_at, VN_VALIDITY_MONTHS):
        problems.append(Reason.OLDER_THAN_12_MONTHS)
    return problems


def unwrap(text: str) -> bytes | Reason:
    """From the QR text to the COSE bytes: prefix, Base45, zlib."""
    compressed = base45.decode(text.removeprefix(PREFIX))
    if compressed is None:
        return Reason.BAD_ENCODING
    return inflate(compressed)


def parse(text: str, context: Context) -> Credential | Reason:
    """Decode every layer, then gather the problems in the order the module docstring gives."""
    cose = unwrap(text)
    if isinstance(cose, Reason):
        return cose
    sign1 = read_sign1(cose)
    if isinstance(sign1, Reason):
        return sign1
    claims = read_claims(sign1)
    if isinstance(claims, Reason):
        return claims
    certificate = read_certificate(claims)
    problems, verified = _signature_problems(sign1, certificate_type(claims.hcert), context)
    if isinstance(certificate, Reason):  # identifies nobody: refused, but never as forged
        return Credential(
            Kind.EU_DCC, valid=False, verified=verified, reason=certificate, problems=(certificate,)
        )
    if Reason.BAD_SIGNATURE not in problems:
        problems += validity_problems(claims, context.at)
    details = {
        "issuer_country": claims.issuer or "",
        "issued_at": claims.issued_at.isoformat(),
        "expires_at": claims.expires_at.isoformat(),
        "kid": base64.b64encode(sign1.kid).decode() if sign1.kid is not None else "",
        "algorithm": _algorithm_name(sign1.algorithm),
    }
    return judged(
        Kind.EU_DCC,
        problems,
        verified=verified,
        subject_id=certificate.certificate_id,
        name=certificate.name,
        birth_date=certificate.birth_date,
        details={
            "certificate_id": certificate.certificate_id,
            "country": certificate.country,
            **details,
            **certificate.details,
        },
        health=certificate.health,
    )


def _signature_problems(
    sign1: Sign1, health_type: HealthType | None, context: Context
) -> tuple[list[Reason], bool]:
    """Problems of the signature and its signer, and whether it is verified: the signature
    verifies with a pinned signer's key, and that signer has not expired (a signer problem
    leaves a credential valid but unverified: model.SIGNER_PROBLEMS). Key usage is judged
    only when the certificate has one type; signing a type it may not makes the
    credential invalid, however authentic."""
    if sign1.algorithm not in _ALGORITHMS:
        return [Reason.UNSUPPORTED_ALGORITHM], False
    signer = context.trust.signers.get(sign1.kid) if sign1.kid is not None else None
    if signer is None:
        return [Reason.SIGNER_UNKNOWN], False
    if not suits(signer.public_key, _ALGORITHMS[sign1.algorithm]):
        return [Reason.UNSUPPORTED_ALGORITHM], False
    if not signature_valid(sign1, signer):
        return [Reason.BAD_SIGNATURE], False
    expired = context.at > signer.not_after
    problems = [Reason.SIGNER_EXPIRED] if expired else []
    if health_type is not None and not key_usage_allows(signer, health_type):
        problems.append(Reason.WRONG_KEY_USAGE)
    return problems, not expired


def _vaccination(
    entry: Mapping[str, Any], issued_at: datetime.datetime
) -> tuple[Health, dict[str, str]] | None:
    dose, doses, day = entry.get("dn"), entry.get("sd"), iso_date(entry.get("dt"))
    counts = small_int(dose, 1, _MAX_DOSES) and small_int(doses, 1, _MAX_DOSES)
    if not (counts and day and _strings(entry, "tg", "vp", "mp", "ma")):
        return None
    details = {
        "certificate_type": "vaccination",
        "dose": f"{dose}/{doses}",
        "vaccinated_on": str(day),
    }
    return Health(
        HealthType.VACCINATION, issued_at, dose=dose, doses=doses, vaccinated_on=day
    ), details


def _test(
    entry: Mapping[str, Any], issued_at: datetime.datetime
) -> tuple[Health, dict[str, str]] | None:
    sampled, result = _instant(entry.get("sc")), entry.get("tr")
    if not (sampled and result in (_NOT_DETECTED, _DETECTED) and _strings(entry, "tg", "tt")):
        return None
    details = {
        "certificate_type": "test",
        "sampled_at": sampled.isoformat(),
        "test_result": "detected" if result == _DETECTED else "not_detected",
    }
    return Health(
        HealthType.TEST, issued_at, sampled_at=sampled, positive=result == _DETECTED
    ), details


def _recovery(
    entry: Mapping[str, Any], issued_at: datetime.datetime
) -> tuple[Health, dict[str, str]] | None:
    first, start, end = (iso_date(entry.get(key)) for key in ("fr", "df", "du"))
    if not (first and start and end and _strings(entry, "tg")):
        return None
    details = {
        "certificate_type": "recovery",
        "first_positive_on": str(first),
        "valid_from": str(start),
        "valid_until": str(end),
    }
    return Health(
        HealthType.RECOVERY,
        issued_at,
        first_positive_on=first,
        valid_from=start,
        valid_until=end,
    ), details


_STATEMENTS = {
    HealthType.VACCINATION: _vaccination,
    HealthType.TEST: _test,
    HealthType.RECOVERY: _recovery,
}


def _instant(value: object) -> datetime.datetime | None:
    """A date-time as text, or as CBOR tag 0 (which some issuers use for `sc`)."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return iso_instant(value)


def _algorithm_name(algorithm: int | None) -> str:
    known = _ALGORITHMS.get(algorithm) if algorithm is not None else None
    return str(known) if known is not None else f"cose:{algorithm}"


def _months_later(moment: datetime.datetime, months: int) -> datetime.datetime:
    """The same day and time `months` calendar months later, or that month's last day;
    the end of time when that is past the calendar's last year."""
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    if year > datetime.MAXYEAR:
        return datetime.datetime.max.replace(tzinfo=moment.tzinfo)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _strings(entry: Mapping[str, Any], *keys: str) -> bool:
    """The schema's required value-set codes are present as strings; no decision rests on
    them, so an empty or unlisted code is the issuer's business, not a refusal."""
    return all(isinstance(entry.get(key), str) for key in keys)
