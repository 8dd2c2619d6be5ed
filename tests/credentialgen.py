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
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
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
#: Vietnam's production signer window (docs/formats.md "HC1"): 2021-07-15 to 2026-07-14.
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
    raw_claims: Mapping[int, Any] | None = None,
) -> bytes:
    """A COSE_Sign1 with CWT claims; `tamper` changes the payload after signing.

    `raw_claims` replace claims as given (any CBOR value: floats, far years, text)."""
    protected_map: dict[int, Any] = {1: algorithm}
    if kid is not None:
        protected_map[4] = kid
    protected = cbor2.dumps(protected_map)
    claims = {
        1: issuer,
        4: int(expires_at.timestamp()),
        6: int(issued_at.timestamp()),
        -260: {1: dict(hcert)},
    } | dict(raw_claims or {})
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


# --- Hostile payloads: the adversarial suite and bench/fuzz_parse.py --------------------------
#
# Each generator takes a `random.Random` and returns one payload (bytes) of a kind an
# attacker could print in a QR code. Driven by Hypothesis's derandomised `randoms()` in the
# tests and by seeded generators in the bench, so both meet the same inputs.

FUZZ_AT = datetime.datetime(2025, 6, 1, 10, tzinfo=UTC)
#: Larger than the daemon's default, so that deep nesting and bombs reach the parsers.
FUZZ_MAX_BYTES = 8192
_FUZZ_KEY_SEED = 70


@functools.cache
def fuzz_signers() -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    """(HC1 signer, VDS-NC country CA, VDS-NC seal signer issued by that CA)."""
    csca = certificate(ec_key(_FUZZ_KEY_SEED + 1), subject="Fuzz CSCA", ca=True)
    return (
        certificate(ec_key(_FUZZ_KEY_SEED), subject="Fuzz DSC"),
        csca,
        certificate(
            ec_key(_FUZZ_KEY_SEED + 2),
            subject="Fuzz VDS",
            issuer=(csca.subject, ec_key(_FUZZ_KEY_SEED + 1)),
        ),
    )


def _fuzz_pass() -> str:
    from gate.trust import passes  # the pass codec lives beside the issuing tool

    return passes.issue(
        ed_key(_FUZZ_KEY_SEED),
        pass_id="fuzz-1",
        holder="Khách mời",
        not_before=datetime.datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime.datetime(2026, 1, 1, tzinfo=UTC),
        venue="demo-venue",
        gates=["gate-1"],
    )


@functools.cache
def fuzz_samples() -> dict[str, tuple[str, ...]]:
    """Valid payloads of every kind the gate parses, by kind, signed by `fuzz_signers`."""
    dsc, _csca, seal_signer = fuzz_signers()
    hc1_key, seal_key = ec_key(_FUZZ_KEY_SEED), ec_key(_FUZZ_KEY_SEED + 2)
    return {
        "cccd": (
            "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1|15042021",
            "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Thái Bình|14082021|21032043||Trần Văn Bố",
        ),
        "national_qr": (
            "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|1<GD4877*******<0943*",
            "******029317|NGUYEN LE KHA HAN|1987-**-**|1|162979388586171100|",
        ),
        "bhyt": (
            bhyt(),
            bhyt(valid_to="31/12/2025", extra=["79", hexed("Nguyễn Văn Bố"), "4", "01/01/2024"]),
        ),
        "eu_dcc": (
            hc1(cose(vaccination(), hc1_key, kid=kid_of(dsc))),
            hc1(cose(lab_test(), hc1_key, kid=kid_of(dsc))),
            hc1(cose(recovery(), hc1_key, kid=None, unprotected_kid=kid_of(dsc), tag=None)),
        ),
        "vds_nc": (
            vds_seal(vds_vaccination(), seal_key, seal_signer),
            vds_seal(vds_test(), seal_key, seal_signer),
        ),
        "gate_pass": (_fuzz_pass(),),
        "refused": ("000201010211", "https://tokhaiyte.vn/?venue=1", "shc:/5676290952432060"),
    }


def fuzz_trust() -> Any:
    """The trust store that pins `fuzz_signers` and the pass key, as a gate would load it."""
    from gate.trust.store import TrustStore, pass_key_from_public_key, signer_from_certificate

    dsc, csca, _seal_signer = fuzz_signers()
    return TrustStore.of(
        [signer_from_certificate(cert, "fuzz") for cert in (dsc, csca)],
        [pass_key_from_public_key(ed_key(_FUZZ_KEY_SEED).public_key(), "fuzz")],
    )


def _any_sample(rng: random.Random) -> str:
    return rng.choice(rng.choice(list(fuzz_samples().values())))


_HOSTILE_CHARS = (
    "|$*<-/.:0123456789abcdefABCDEFNamNữ "
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # invisible: zero-width, word joiner, BOM, soft hyphen
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"  # bidi controls
    "\u2028\u2029\u0085\t\n\r\x00\x1b\x7f"  # separators and controls
    "\ud800\udfff\U0001f600\uffff\u0301"  # lone surrogates, astral, non-character, combining
)


def _hostile_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(_HOSTILE_CHARS) for _ in range(size))


def _encode(text: str) -> bytes:
    """UTF-8, with lone surrogates written as the invalid bytes a hostile encoder would emit."""
    return text.encode("utf-8", "surrogatepass")


def mutated_bytes(rng: random.Random, data: bytes) -> bytes:
    """One to four byte-level mutations: flips, cuts, duplicated or inserted runs."""
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(data))
        end = min(len(data), at + rng.randint(0, 16))
        choice = rng.randrange(5)
        if choice == 0 and at < len(data):
            data = data[:at] + bytes([data[at] ^ rng.randint(1, 255)]) + data[at + 1 :]
        elif choice == 1:
            data = data[:at]
        elif choice == 2:
            data = data[:end] + data[at:end] + data[end:]
        elif choice == 3:
            data = data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
        else:
            data = data[:at] + data[end:]
    return data


def hostile_mutant(rng: random.Random) -> bytes:
    """A valid payload of any kind, mutated byte by byte."""
    return mutated_bytes(rng, _any_sample(rng).encode())


def hostile_field_mutant(rng: random.Random) -> bytes:
    """A plain-text card with fields swapped, dropped, duplicated or replaced by hostile text."""
    kind = rng.choice(["cccd", "national_qr", "bhyt"])
    fields = rng.choice(fuzz_samples()[kind]).split("|")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(fields))
        choice = rng.randrange(4)
        if choice == 0:
            other = rng.randrange(len(fields))
            fields[at], fields[other] = fields[other], fields[at]
        elif choice == 1 and len(fields) > 1:
            del fields[at]
        elif choice == 2:
            fields.insert(at, fields[at])
        else:
            fields[at] = _hostile_text(rng, rng.randint(0, 12))
    return _encode("|".join(fields))


def hostile_overlong(rng: random.Random) -> bytes:
    """A plain-text card with one field hundreds of characters long, or hundreds of fields."""
    kind = rng.choice(["cccd", "national_qr", "bhyt"])
    fields = rng.choice(fuzz_samples()[kind]).split("|")
    if rng.random() < 0.5:
        at = rng.randrange(len(fields))
        unit = rng.choice(["A", "Ữ", "\u200b", "4e", "9", " "])
        fields[at] = unit * rng.randint(100, 3000)
        if kind == "bhyt" and at in (1, 4):
            fields[at] = hexed(fields[at])[: FUZZ_MAX_BYTES // 2]
    else:
        extra = ["", "x", "$", "01011990", fields[-1]]
        tail = fields.pop() if kind == "bhyt" else None
        fields += [rng.choice(extra) for _ in range(rng.randint(10, 2000))]
        fields += [tail] if tail else []
    return "|".join(fields).encode()


def hostile_text(rng: random.Random) -> bytes:
    """Pipe-separated text of controls, bidi, invisible characters and lone surrogates."""
    fields = [_hostile_text(rng, rng.randint(0, 10)) for _ in range(rng.randint(1, 16))]
    return _encode("|".join(fields))


def hostile_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 600))


def _seal_node(rng: random.Random, seal: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A random object inside a seal's `data` (or `sig`) and one of its keys."""
    node: Any = seal
    while True:
        key = rng.choice(sorted(node))
        if isinstance(node[key], dict) and node[key] and rng.random() < 0.7:
            node = node[key]
        else:
            return node, key


def hostile_surrogate_seal(rng: random.Random) -> bytes:
    """A VDS-NC seal with a lone surrogate (a JSON escape) in a string value or an object key."""
    seal = json.loads(rng.choice(fuzz_samples()["vds_nc"]))
    node, key = _seal_node(rng, seal)
    surrogate = rng.choice(["\ud800", "\udfff", "\udbff", "\udc00"])
    if rng.random() < 0.5:
        node[key + surrogate] = node.pop(key)
    else:
        value = node[key] if isinstance(node[key], str) else ""
        cut = rng.randint(0, len(value))
        node[key] = value[:cut] + surrogate + value[cut:]
    return json.dumps(seal, ensure_ascii=True).encode()


def hostile_deep_seal(rng: random.Random) -> bytes:
    """A VDS-NC seal with arrays or objects nested tens to thousands deep inside `data`."""
    seal = json.loads(rng.choice(fuzz_samples()["vds_nc"]))
    depth = rng.choice([10, 100, 400, 900, 1500, 3000])
    opening, closing = ('{"a":', "}") if rng.random() < 0.5 else ("[", "]")
    deep = opening * depth + "0" + closing * depth
    node, key = _seal_node(rng, seal)
    node[key] = "\0deep\0"
    return json.dumps(seal).replace('"\\u0000deep\\u0000"', deep).encode()


def odd_certificate(rng: random.Random) -> bytes:
    """A seal signer's certificate in DER with one field encoded as no issuer writes it:
    an X.509 version other than 1-3, a common name as BIT STRING or another string type,
    a length or tag changed, or the DER cut short."""
    data = bytearray(der(fuzz_signers()[2]))
    choice = rng.randrange(4)
    if choice == 0:
        at = data.index(bytes.fromhex("a003020102")) + 4
        data[at] = rng.choice([3, 4, 5, 0x7F, 0x80, 0xFF])
    elif choice == 1:
        common_names = [i for i in range(len(data)) if data[i : i + 5] == b"\x06\x03\x55\x04\x03"]
        data[rng.choice(common_names) + 5] = rng.choice([0x03, 0x04, 0x05, 0x1E, 0x1C, 0x14, 0x02])
    elif choice == 2:
        at = rng.randrange(len(data))
        data[at] = rng.randrange(256)
    else:
        del data[rng.randrange(len(data)) :]
    return bytes(data)


def hostile_certificate_seal(rng: random.Random) -> bytes:
    """A VDS-NC seal signed by the key of its oddly encoded certificate, so that every check
    up to the chain (issuer lookup, signature by the CA) meets the odd encoding."""
    data = json.loads(rng.choice(fuzz_samples()["vds_nc"]))["data"]
    key = ec_key(_FUZZ_KEY_SEED + 2)
    r, s = decode_dss_signature(key.sign(canonical(data).encode(), DETERMINISTIC_ECDSA))
    seal = {
        "data": data,
        "sig": {
            "alg": "ES256",
            "cer": b64url(odd_certificate(rng)),
            "sigvl": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        },
    }
    return json.dumps(seal).encode()


def _cbor_bomb(rng: random.Random) -> bytes:
    """CBOR that claims more than it holds, nests deeper than any decoder's stack, or loops
    through tags: huge declared lengths, indefinite arrays never closed, tag chains."""
    choice = rng.randrange(6)
    if choice == 0:
        head = rng.choice(
            [b"\x9b", b"\xbb", b"\x5b", b"\x7b"]
        )  # array, map, bytes, text: 8-byte len
        return head + rng.randbytes(8) + rng.randbytes(rng.randint(0, 16))
    if choice == 1:
        return rng.choice([b"\x81", b"\x9f", b"\xa1\x00", b"\xbf\x00"]) * rng.randint(100, 5000)
    if choice == 2:
        return rng.choice([b"\xd8\x12", b"\xc1", b"\xd9\xd9\xf7", b"\xc4"]) * rng.randint(10, 2000)
    if choice == 3:
        return b"\xd2\x84" + rng.choice([b"\x5b", b"\x9b"]) + b"\xff" * 8
    if choice == 4:  # a decimal fraction or big float whose exponent overflows, or junk parts
        return rng.choice([b"\xc5\x82\x1a\x3b\x9a\xca\x00\x01", b"\xc4\x82\x61a\x61b"])
    return b"\xfb" + rng.randbytes(8)  # a bare float64, NaN and infinities included


def hostile_cbor(rng: random.Random) -> bytes:
    """CBOR bombs behind valid transport layers: HC1 (with or without zlib) and a gate pass."""
    bomb = _cbor_bomb(rng)
    prefix = rng.choice(["HC1:", "GP1:"])
    if prefix == "HC1:" and rng.random() < 0.5:
        bomb = zlib.compress(bomb, 9)
    return (prefix + base45.encode(bomb)).encode()


@functools.cache
def _zlib_bomb(fill: bytes, size: int) -> bytes:
    return ("HC1:" + base45.encode(zlib.compress(fill * size, 9))).encode()


def hostile_zlib(rng: random.Random) -> bytes:
    """A zlib bomb in an HC1: a few kilobytes that inflate to megabytes."""
    size = rng.choice([1 << 16, 1 << 20, 1 << 22, 1 << 24])
    return _zlib_bomb(rng.choice([b"\0", b"\xd2", b"\x81", b"\x9f"]), size)


def hostile_claims(rng: random.Random) -> bytes:
    """A correctly signed HC1 whose CWT claims hold values no issuer would write: years before
    1 or after 9999, floats, negative and huge integers, text for numbers."""
    far = [0, -1, -(2**63), 2**64 - 1, 253402300799, 253402300800, -62135596800, 1e300]
    odd = [float("nan"), float("inf"), -0.0, 1.7e9, "2025-01-01", b"\0", None, [], True]
    claims = {
        1: rng.choice(["VN", "DE", "", "V" * 40, 7]),
        4: rng.choice(far + odd + [1_800_000_000]),
        6: rng.choice(far + odd + [1_700_000_000]),
    }
    hcert = rng.choice([vaccination(), lab_test(), recovery()])
    signed = cose(hcert, ec_key(_FUZZ_KEY_SEED), kid=kid_of(fuzz_signers()[0]), raw_claims=claims)
    return hc1(signed).encode()


def hostile_layered_mutant(rng: random.Random) -> bytes:
    """A signed sample mutated under its transport encoding (COSE bytes, pass CBOR, seal
    JSON values), so that mutations reach the deep parsers and the signature checks."""
    kind = rng.choice(["eu_dcc", "gate_pass", "vds_nc"])
    text = rng.choice(fuzz_samples()[kind])
    if kind == "vds_nc":
        seal = json.loads(text)
        node, key = _seal_node(rng, seal)
        node[key] = rng.choice([None, -1, 2**70, 1.5, "", "x" * 300, [], {}, [[[]]], True])
        return json.dumps(seal).encode()
    raw = base45.decode(text[4:]) or b""
    if kind == "eu_dcc":
        inner = mutated_bytes(rng, zlib.decompress(raw))
        raw = zlib.compress(inner) if rng.random() < 0.5 else inner
    else:
        raw = mutated_bytes(rng, raw)
    return (text[:4] + base45.encode(raw)).encode()


#: Every hostile generator by name: the adversarial suite runs each, the bench all of them.
HOSTILE: dict[str, Callable[[random.Random], bytes]] = {
    "mutant": hostile_mutant,
    "layered_mutant": hostile_layered_mutant,
    "field_mutant": hostile_field_mutant,
    "overlong": hostile_overlong,
    "text": hostile_text,
    "bytes": hostile_bytes,
    "surrogate_seal": hostile_surrogate_seal,
    "deep_seal": hostile_deep_seal,
    "certificate_seal": hostile_certificate_seal,
    "cbor_bomb": hostile_cbor,
    "zlib_bomb": hostile_zlib,
    "claims": hostile_claims,
}
