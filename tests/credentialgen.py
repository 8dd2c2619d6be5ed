"""Signed credentials made in the tests: keys, certificates, HC1, VDS-NC seals, EU test cases.

Everything is generated with `cryptography` (no test data is downloaded). EC and Ed25519 keys
derive from their seed, certificate serials from their content, and ECDSA signs
deterministically (RFC 6979), so the same call gives the same bytes in every run and the
derandomised fuzzing stays reproducible. RSA keys are random (made once per process, slow);
PS256 salts are random by design. Shared by the tests and `bench/verify_credentials.py`.
"""

import base64
import datetime
import functools
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gate.credentials import base45
from gate.credentials.vds_nc import canonical
from gate.trust.keys import key_id

UTC = datetime.UTC
DETERMINISTIC_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
ES256, PS256, EDDSA = -7, -37, -8
OID_TEST = "1.3.6.1.4.1.1847.2021.1.1"
OID_VACCINATION = "1.3.6.1.4.1.1847.2021.1.2"
OID_RECOVERY = "1.3.6.1.4.1.1847.2021.1.3"
OID_VACCINATION_ALT = "1.3.6.1.4.1.0.1847.2021.1.2"
#: Vietnam's production signer window (QR-FORMATS.md): 2021-07-15 to 2026-07-14.
VN_DSC_FROM = datetime.datetime(2021, 7, 15, tzinfo=UTC)
VN_DSC_UNTIL = datetime.datetime(2026, 7, 14, 23, 59, 59, tzinfo=UTC)


def _seed_bytes(label: str, seed: int) -> bytes:
    return hashlib.sha256(f"gate-test-{label}-{seed}".encode()).digest()


@functools.cache
def ec_key(seed: int = 0) -> ec.EllipticCurvePrivateKey:
    """The P-256 key of this seed, the same in every run."""
    return ec.derive_private_key(int.from_bytes(_seed_bytes("ec", seed), "big"), ec.SECP256R1())


@functools.cache
def rsa_key(seed: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ed_key(seed: int = 0) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_seed_bytes("ed25519", seed))


def name(common_name: str, country: str = "VN") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def certificate(
    key: PrivateKey,
    *,
    subject: str = "DSC test",
    issuer: tuple[x509.Name, PrivateKey] | None = None,
    not_before: datetime.datetime = datetime.datetime(2021, 1, 1, tzinfo=UTC),
    not_after: datetime.datetime = datetime.datetime(2031, 1, 1, tzinfo=UTC),
    ca: bool | None = None,
    usages: Sequence[str] = (),
) -> x509.Certificate:
    """A certificate for `key`, self-signed unless `issuer` (name, key) signs it."""
    subject_name = name(subject)
    issuer_name, signing_key = issuer if issuer else (subject_name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(_serial(subject, key, not_before, not_after, usages))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=None), critical=True
        )
    if usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in usages]), critical=False
        )
    deterministic = isinstance(signing_key, ec.EllipticCurvePrivateKey) or None
    return builder.sign(signing_key, hashes.SHA256(), ecdsa_deterministic=deterministic)


def _serial(subject: str, key: PrivateKey, *parts: object) -> int:
    """A serial number from the certificate's content: distinct, and the same every run."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.sha256(public + repr((subject, *parts)).encode()).digest()
    return int.from_bytes(digest[:19], "big") | 1


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def kid_of(cert: x509.Certificate) -> bytes:
    return key_id(der(cert))


# --- HC1 ------------------------------------------------------------------------------------

NAM = {"fn": "Nguyễn", "fnt": "NGUYEN", "gn": "Bảo Duy", "gnt": "BAO<DUY"}


def vaccination(dose: int = 2, doses: int = 2, day: str = "2021-03-18") -> dict[str, Any]:
    return {
        "ver": "1.3.0",
        "nam": NAM,
        "dob": "1983-10-10",
        "v": [
            {
                "tg": "840539006",
                "vp": "J07BX03",
                "mp": "EU/1/21/1529",
                "ma": "ORG-100030215",
                "dn": dose,
                "sd": doses,
                "dt": day,
                "co": "VN",
                "is": "Ministry of Health",
                "ci": "URN:UVCI:01:VN:TEST0000000000000000000000000001",
            }
        ],
    }


def lab_test(sampled: str = "2025-05-31T08:00:00Z", detected: bool = False) -> dict[str, Any]:
    return {
        "ver": "1.3.0",
        "nam": NAM,
        "dob": "1983-10-10",
        "t": [
            {
                "tg": "840539006",
                "tt": "LP6464-4",
                "sc": sampled,
                "tr": "260373001" if detected else "260415000",
                "tc": "Bệnh viện Bạch Mai",
                "co": "VN",
                "is": "Ministry of Health",
                "ci": "URN:UVCI:01:VN:TEST0000000000000000000000000002",
            }
        ],
    }


def recovery(
    first: str = "2025-03-01", start: str = "2025-03-12", end: str = "2025-08-28"
) -> dict[str, Any]:
    return {
        "ver": "1.3.0",
        "nam": NAM,
        "dob": "1983-10-10",
        "r": [
            {
                "tg": "840539006",
                "fr": first,
                "df": start,
                "du": end,
                "co": "VN",
                "is": "Ministry of Health",
                "ci": "URN:UVCI:01:VN:TEST0000000000000000000000000003",
            }
        ],
    }


def sign_cose(key: PrivateKey, algorithm: int, to_be_signed: bytes) -> bytes:
    """COSE signature bytes: ES256 as raw r||s, PS256 with a digest-length salt."""
    if algorithm == ES256:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(to_be_signed, DETERMINISTIC_ECDSA))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return key.sign(to_be_signed, pss, hashes.SHA256())


def cose(
    hcert: Mapping[str, Any],
    key: PrivateKey,
    *,
    kid: bytes | None,
    algorithm: int = ES256,
    issuer: str = "VN",
    issued_at: datetime.datetime = datetime.datetime(2025, 1, 10, tzinfo=UTC),
    expires_at: datetime.datetime = datetime.datetime(2026, 1, 10, tzinfo=UTC),
    unprotected_kid: bytes | None = None,
    tag: int | None = 18,
    tamper: bool = False,
) -> bytes:
    """A COSE_Sign1 with CWT claims; `tamper` changes the payload after signing."""
    protected_map: dict[int, Any] = {1: algorithm}
    if kid is not None:
        protected_map[4] = kid
    protected = cbor2.dumps(protected_map)
    claims = {
        1: issuer,
        4: int(expires_at.timestamp()),
        6: int(issued_at.timestamp()),
        -260: {1: dict(hcert)},
    }
    payload = cbor2.dumps(claims)
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = (
        sign_cose(key, algorithm, to_be_signed) if algorithm in (ES256, PS256) else b"\0" * 64
    )
    if tamper:
        claims[-260][1] = {**claims[-260][1], "dob": "1984-10-10"}
        payload = cbor2.dumps(claims)
    unprotected = {4: unprotected_kid} if unprotected_kid is not None else {}
    message = [protected, unprotected, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(tag, message) if tag is not None else message)


def hc1(cose_bytes: bytes, *, compress: bool = True) -> str:
    return "HC1:" + base45.encode(zlib.compress(cose_bytes, 9) if compress else cose_bytes)


def dgc_case(
    prefixed: str,
    cert: x509.Certificate,
    clock: datetime.datetime,
    expected: Mapping[str, bool],
    *,
    hcert: Mapping[str, Any] | None = None,
    description: str = "generated",
) -> dict[str, Any]:
    """An EU dgc-testdata test case (JSON object) for a HC1 string made here."""
    compressed = base45.decode(prefixed.removeprefix("HC1:")) or b""
    cose_bytes = zlib.decompress(compressed) if compressed[:1] == b"\x78" else compressed
    sign1 = cbor2.loads(cose_bytes)
    payload = (sign1.value if isinstance(sign1, cbor2.CBORTag) else sign1)[2]
    return {
        "JSON": dict(hcert) if hcert is not None else None,
        "CBOR": payload.hex(),
        "COSE": cose_bytes.hex(),
        "COMPRESSED": compressed.hex(),
        "BASE45": prefixed.removeprefix("HC1:"),
        "PREFIX": prefixed,
        "TESTCTX": {
            "VERSION": 1,
            "SCHEMA": "1.3.0",
            "CERTIFICATE": base64.b64encode(der(cert)).decode(),
            "VALIDATIONCLOCK": clock.isoformat(),
            "DESCRIPTION": description,
        },
        "EXPECTEDRESULTS": dict(expected),
    }


# --- VDS-NC ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vds_vaccination(dvn: str | None = None) -> dict[str, Any]:
    dose: dict[str, Any] = {
        "dvc": "2021-08-01",
        "seq": 2,
        "ctr": "AUS",
        "adm": "Clinic",
        "lot": "A1",
    }
    if dvn:
        dose["dvn"] = dvn
    return {
        "hdr": {"t": "icao.vacc", "v": 1, "is": "AUS"},
        "msg": {
            "uvci": "U32870",
            "pid": {"n": "Smith Bill", "dob": "1990-01-02", "sex": "M", "i": "PA0941262"},
            "ve": [{"des": "XM68M6", "nam": "Comirnaty", "dis": "RA01.0", "vd": [dose]}],
        },
    }


def vds_test(result: str = "negative", sampled: str = "2025-05-31T08:00:00Z") -> dict[str, Any]:
    return {
        "hdr": {"t": "icao.test", "v": 1, "is": "SGP"},
        "msg": {
            "utci": "T12345",
            "pid": {"n": "Tan Ah Kow", "dob": "1985-05-05", "dt": "P", "dn": "E7831177G"},
            "sp": {"spn": "Lab", "ctr": "SGP", "cd": {"p": "+65 0000"}},
            "dat": {"sc": sampled, "ri": "2025-05-31T12:00:00Z"},
            "tr": {"tc": "molecular(PCR)", "r": result},
        },
    }


def vds_seal(
    data: Mapping[str, Any],
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    *,
    tamper: bool = False,
    der_signature: bool = False,
) -> str:
    """A VDS-NC seal: ES256 over the canonical JSON of `data`, the certificate inside."""
    der_sig = key.sign(canonical(data).encode("utf-8"), DETERMINISTIC_ECDSA)
    r, s = decode_dss_signature(der_sig)
    signature = der_sig if der_signature else r.to_bytes(32, "big") + s.to_bytes(32, "big")
    signed = json.loads(json.dumps(data))
    if tamper:
        signed["msg"]["pid"]["n"] = "Someone Else"
    seal = {
        "data": signed,
        "sig": {"alg": "ES256", "cer": b64url(der(cert)), "sigvl": b64url(signature)},
    }
    return json.dumps(seal, ensure_ascii=False)


# --- BHYT -----------------------------------------------------------------------------------


def hexed(text: str) -> str:
    return text.encode("utf-8").hex()


def bhyt(
    card: str = "HS4010120878837",
    holder: str = "Nguyễn Văn An",
    birth: str = "07/09/2008",
    sex: str = "1",
    valid_from: str = "24/01/2019",
    valid_to: str = "-",
    issued: str = "24/01/2019",
    extra: Sequence[str] = (),
) -> str:
    fields = [
        card,
        hexed(holder),
        birth,
        sex,
        hexed("Hà Nội"),
        "01 - 028",
        valid_from,
        valid_to,
        issued,
    ]
    return "|".join([*fields, *extra, "$"])
