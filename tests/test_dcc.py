"""EU Digital COVID Certificates (HC1): every layer, every signer problem, every time limit.

Signers are made here (tests/credentialgen.py): ES256 and PS256 document signers, with and
without extended key usage, inside and outside their validity windows.
"""

import datetime
import math
import zlib
from pathlib import Path

import cbor2
import pytest
from credentialgen import (
    EDDSA,
    ES256,
    OID_RECOVERY,
    OID_TEST,
    OID_VACCINATION,
    OID_VACCINATION_ALT,
    PS256,
    VN_DSC_FROM,
    VN_DSC_UNTIL,
    certificate,
    cose,
    ec_key,
    hc1,
    kid_of,
    lab_test,
    recovery,
    rsa_key,
    sign_cose,
    vaccination,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gate.credentials import Credential, Kind, base45, parse
from gate.credentials.model import HealthType
from gate.reasons import Reason
from gate.trust.store import TrustStore, signer_from_certificate

UTC = datetime.UTC
#: The extended key usages' second family (an extra `0` arc), which EU signers use too.
OID_TEST_ALT = "1.3.6.1.4.1.0.1847.2021.1.1"
OID_RECOVERY_ALT = "1.3.6.1.4.1.0.1847.2021.1.3"
#: The EU quality-assurance set's Vietnamese sample (signed with a test key).
SAMPLE_TEXT = (Path(__file__).parent / "data" / "dcc-vn-test-sample.txt").read_text().strip()
AT = datetime.datetime(2025, 6, 1, 10, tzinfo=UTC)
EC_CERT = certificate(ec_key(1), subject="DSC ES256")
RSA_CERT = certificate(rsa_key(1), subject="DSC PS256")
TRUST = TrustStore.of(signer_from_certificate(c, "test") for c in (EC_CERT, RSA_CERT))


def check(text: str, at: datetime.datetime = AT, trust: TrustStore = TRUST) -> Credential:
    return parse(text.encode(), today=at.date(), at=at, trust=trust)


def signed(hcert: dict | None = None, *, key=None, cert=None, **options) -> str:
    """A HC1 string signed by the ES256 test signer unless told otherwise."""
    cert = cert if cert is not None else EC_CERT
    key = key if key is not None else ec_key(1)
    options.setdefault("kid", kid_of(cert))
    return hc1(cose(hcert or vaccination(), key, **options))


# --- The public Vietnamese sample -----------------------------------------------------------


def test_vietnamese_sample_decodes_but_its_signer_is_unknown() -> None:
    credential = check(SAMPLE_TEXT, at=datetime.datetime(2022, 6, 1, tzinfo=UTC))
    assert credential.kind is Kind.EU_DCC
    assert (credential.valid, credential.verified) == (True, False)
    assert credential.reason is Reason.SIGNER_UNKNOWN
    assert credential.name == "Nguyễn Bảo Duy"
    assert credential.birth_date == "1983-10-10"
    assert credential.subject_id == "URN:UVCI:01:VN:FFFE3D31FABD035899134A9D3BAE9BCF"
    assert credential.details["algorithm"] == "PS256"
    assert credential.details["kid"] == "8w2kZxb3iC0="  # f30da46716f7882d
    assert credential.details["dose"] == "2/2"
    assert credential.health is not None and credential.health.type is HealthType.VACCINATION


def test_vietnamese_sample_today_still_says_signer_unknown_first() -> None:
    credential = check(SAMPLE_TEXT, at=datetime.datetime(2026, 8, 1, tzinfo=UTC))
    assert credential.reason is Reason.SIGNER_UNKNOWN
    assert not credential.valid and not credential.verified
    assert credential.problems == (
        Reason.SIGNER_UNKNOWN,
        Reason.EXPIRED,
        Reason.OLDER_THAN_12_MONTHS,
    )


# --- Signatures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "key", "cert"),
    [
        pytest.param(ES256, ec_key(1), EC_CERT, id="ES256"),
        pytest.param(PS256, rsa_key(1), RSA_CERT, id="PS256"),
    ],
)
def test_good_signature_verifies(algorithm, key, cert) -> None:
    credential = check(signed(key=key, cert=cert, algorithm=algorithm))
    assert (credential.valid, credential.verified, credential.reason) == (True, True, Reason.OK)
    assert credential.problems == ()
    assert credential.details["algorithm"] == ("ES256" if algorithm == ES256 else "PS256")


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        pytest.param({"tamper": True}, Reason.BAD_SIGNATURE, id="tampered-payload"),
        pytest.param({"key": ec_key(2)}, Reason.BAD_SIGNATURE, id="wrong-key-same-kid"),
        pytest.param(
            {"key": rsa_key(1), "algorithm": PS256},
            Reason.UNSUPPORTED_ALGORITHM,
            id="ps256-for-ec-signer",
        ),
        pytest.param({"kid": b"\x01" * 8}, Reason.SIGNER_UNKNOWN, id="unknown-kid"),
        pytest.param({"kid": None}, Reason.SIGNER_UNKNOWN, id="no-kid-at-all"),
        pytest.param({"algorithm": EDDSA}, Reason.UNSUPPORTED_ALGORITHM, id="eddsa"),
    ],
)
def test_signature_problems(options: dict, reason: Reason) -> None:
    credential = check(signed(**options))
    assert credential.reason is reason
    assert not credential.verified
    assert credential.valid is (reason is Reason.SIGNER_UNKNOWN)
    assert credential.problems == (reason,)


def test_bad_signature_hides_every_later_problem() -> None:
    """Nothing in a forged certificate is believed, dates included."""
    old = signed(tamper=True, expires_at=datetime.datetime(2020, 1, 1, tzinfo=UTC))
    assert check(old).problems == (Reason.BAD_SIGNATURE,)


def test_kid_from_unprotected_header_when_protected_has_none() -> None:
    text = signed(kid=None, unprotected_kid=kid_of(EC_CERT))
    assert check(text).verified


def test_protected_kid_wins_over_unprotected() -> None:
    """EU CO21/CO22: a wrong protected kid is not rescued by a right unprotected one."""
    assert check(signed(kid=b"\x02" * 8, unprotected_kid=kid_of(EC_CERT))).reason is (
        Reason.SIGNER_UNKNOWN
    )
    assert check(signed(unprotected_kid=b"\x02" * 8)).verified


# --- Signer certificate ---------------------------------------------------------------------


def vn_signer_trust() -> tuple[TrustStore, datetime.datetime]:
    """A stand-in for Vietnam's production signer: PS256, valid 2021-07-15 to 2026-07-14."""
    cert = certificate(rsa_key(2), subject="VN DSC", not_before=VN_DSC_FROM, not_after=VN_DSC_UNTIL)
    return TrustStore.of([signer_from_certificate(cert, "vn")]), cert


def test_expired_signer_says_exactly_that() -> None:
    trust, cert = vn_signer_trust()
    text = signed(
        key=rsa_key(2),
        cert=cert,
        algorithm=PS256,
        issued_at=datetime.datetime(2026, 1, 10, tzinfo=UTC),
        expires_at=datetime.datetime(2027, 1, 10, tzinfo=UTC),
    )
    credential = check(text, at=datetime.datetime(2026, 8, 1, tzinfo=UTC), trust=trust)
    assert credential.reason is Reason.SIGNER_EXPIRED
    assert credential.problems == (Reason.SIGNER_EXPIRED,)
    assert credential.valid and not credential.verified
    assert check(text, at=datetime.datetime(2026, 7, 1, tzinfo=UTC), trust=trust).verified


def test_real_vietnamese_certificate_now_leads_with_the_expired_signer() -> None:
    trust, cert = vn_signer_trust()
    text = signed(key=rsa_key(2), cert=cert, algorithm=PS256)  # issued 2025-01-10, exp 2026-01-10
    credential = check(text, at=datetime.datetime(2026, 8, 1, tzinfo=UTC), trust=trust)
    assert credential.problems == (
        Reason.SIGNER_EXPIRED,
        Reason.EXPIRED,
        Reason.OLDER_THAN_12_MONTHS,
    )


def test_a_signer_whose_validity_has_not_begun_still_verifies() -> None:
    """The hcert spec lets a verifier check that `iat` does not predate its signer (MAY);
    the EU reference verifiers do not, and the EU test data (PL 10, BG 4) has certificates
    issued before their signer's start that must verify. The trust list vouches."""
    cert = certificate(ec_key(3), not_before=datetime.datetime(2030, 1, 1, tzinfo=UTC))
    trust = TrustStore.of([signer_from_certificate(cert, "future")])
    credential = check(signed(key=ec_key(3), cert=cert), trust=trust)
    assert credential.reason is Reason.OK and credential.verified


@pytest.mark.parametrize(
    ("usages", "hcert", "allowed"),
    [
        pytest.param([OID_TEST], vaccination(), False, id="test-signer-signs-vaccination"),
        pytest.param([OID_VACCINATION], vaccination(), True, id="vaccination-signer"),
        pytest.param([OID_VACCINATION_ALT], vaccination(), True, id="alternative-oid-form"),
        pytest.param([OID_VACCINATION], lab_test(), False, id="vaccination-signer-signs-test"),
        pytest.param([OID_TEST, OID_VACCINATION], lab_test(), True, id="two-usages"),
        pytest.param([OID_RECOVERY], recovery(), True, id="recovery-signer"),
        pytest.param([OID_TEST_ALT], lab_test(), True, id="alternative-test-oid"),
        pytest.param([OID_RECOVERY_ALT], recovery(), True, id="alternative-recovery-oid"),
        pytest.param([OID_TEST_ALT], vaccination(), False, id="alternative-test-oid-only-tests"),
        pytest.param([OID_TEST, OID_VACCINATION_ALT], vaccination(), True, id="families-mixed"),
        pytest.param(["1.3.6.1.5.5.7.3.2"], recovery(), True, id="no-dcc-usage-signs-anything"),
    ],
)
def test_extended_key_usage_limits_certificate_types(usages, hcert, allowed: bool) -> None:
    cert = certificate(ec_key(4), usages=usages)
    trust = TrustStore.of([signer_from_certificate(cert, "eku")])
    credential = check(signed(hcert, key=ec_key(4), cert=cert), trust=trust)
    if allowed:
        assert credential.verified and credential.problems == ()
    else:  # authentic (the EU's EXPECTEDVERIFY), but not a type its signer may sign
        assert credential.problems == (Reason.WRONG_KEY_USAGE,)
        assert not credential.valid and credential.verified


# --- Time limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "issuer", "problems"),
    [
        pytest.param("2025-01-10T00:00:00+00:00", "VN", (), id="at-issue"),
        pytest.param("2025-01-09T23:56:00+00:00", "VN", (), id="iat-4-minutes-ahead-tolerated"),
        pytest.param(
            "2025-01-09T23:54:00+00:00", "VN", (Reason.NOT_YET_VALID,), id="iat-6-minutes-ahead"
        ),
        pytest.param("2026-01-10T00:00:00+00:00", "VN", (), id="at-exp"),
        pytest.param("2026-01-10T00:00:01+00:00", "DE", (Reason.EXPIRED,), id="after-exp"),
        pytest.param(
            "2026-01-10T00:00:01+00:00",
            "VN",
            (Reason.EXPIRED, Reason.OLDER_THAN_12_MONTHS),
            id="after-exp-and-12-months",
        ),
    ],
)
def test_issue_and_expiry(at: str, issuer: str, problems: tuple) -> None:
    credential = check(signed(issuer=issuer), at=datetime.datetime.fromisoformat(at))
    assert credential.problems == problems
    assert credential.verified


@pytest.mark.parametrize(
    ("issuer", "problems"),
    [
        pytest.param("VN", (Reason.OLDER_THAN_12_MONTHS,), id="vietnam-12-months"),
        pytest.param("DE", (), id="other-issuers-keep-their-exp"),
    ],
)
def test_vietnamese_twelve_month_rule(issuer: str, problems: tuple) -> None:
    text = signed(
        issuer=issuer,
        issued_at=datetime.datetime(2024, 3, 31, tzinfo=UTC),
        expires_at=datetime.datetime(2026, 3, 31, tzinfo=UTC),
    )
    assert check(text, at=datetime.datetime(2025, 3, 31, tzinfo=UTC)).problems == ()
    late = datetime.datetime(2025, 3, 31, 0, 0, 1, tzinfo=UTC)
    assert check(text, at=late).problems == problems


# --- Layers and schema ----------------------------------------------------------------------


def test_uncompressed_untagged_and_cwt_tagged_forms_are_accepted() -> None:
    body = cose(vaccination(), ec_key(1), kid=kid_of(EC_CERT))
    assert check(hc1(body, compress=False)).verified
    assert check(hc1(cose(vaccination(), ec_key(1), kid=kid_of(EC_CERT), tag=None))).verified
    cwt = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(body)))
    assert check(hc1(cwt)).verified


def zlib_bomb() -> str:
    return "HC1:" + base45.encode(zlib.compress(b"\0" * 200_000, 9))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("HC1:", Reason.MALFORMED, id="prefix-only"),
        pytest.param("HC1:abc", Reason.BAD_ENCODING, id="lower-case-not-base45"),
        pytest.param("HC1:A", Reason.BAD_ENCODING, id="dangling-base45-character"),
        pytest.param(
            "HC1:" + base45.encode(b"\x78\x9c\x01\x02"), Reason.BAD_ENCODING, id="bad-zlib"
        ),
        pytest.param(zlib_bomb(), Reason.OVERSIZED, id="zlib-bomb"),
        pytest.param(hc1(cbor2.dumps({"not": "cose"})), Reason.MALFORMED, id="cbor-map"),
        pytest.param(
            hc1(cbor2.dumps([b"", {}, b"", b""]) + b"\0"), Reason.MALFORMED, id="trailing"
        ),
        pytest.param(
            hc1(cbor2.dumps([b"", {}, b"\xa0", b""])), Reason.MALFORMED, id="claims-empty"
        ),
    ],
)
def test_broken_layers(text: str, reason: Reason) -> None:
    assert check(text) == Credential(
        Kind.EU_DCC, valid=False, verified=False, reason=reason, problems=(reason,)
    )


def without(hcert: dict, key: str) -> dict:
    return {k: v for k, v in hcert.items() if k != key}


def with_entry(hcert: dict, group: str, **changes) -> dict:
    return {**hcert, group: [{**hcert[group][0], **changes}]}


@pytest.mark.parametrize(
    "hcert",
    [
        pytest.param(without(vaccination(), "nam"), id="no-name"),
        pytest.param({**vaccination(), "nam": {"fn": "Nguyễn"}}, id="no-transliterated-name"),
        pytest.param({**vaccination(), "nam": {"fnt": "nguyen"}}, id="lower-case-fnt"),
        pytest.param({**vaccination(), "dob": "10/10/1983"}, id="dob-not-iso"),
        pytest.param(without(vaccination(), "ver"), id="no-version"),
        pytest.param({**vaccination(), "t": lab_test()["t"]}, id="two-groups"),
        pytest.param({**vaccination(), "v": vaccination()["v"] * 2}, id="two-entries"),
        pytest.param({**vaccination(), "v": []}, id="no-entry"),
        pytest.param(without(vaccination(), "v"), id="no-group"),
        pytest.param(with_entry(vaccination(), "v", dn=0), id="dose-zero"),
        pytest.param(with_entry(vaccination(), "v", dn=True), id="dose-bool"),
        pytest.param(with_entry(vaccination(), "v", dt="2021-02-30"), id="no-such-day"),
        pytest.param(with_entry(vaccination(), "v", ci=""), id="empty-certificate-id"),
        pytest.param(with_entry(lab_test(), "t", tr="positive"), id="test-result-not-a-code"),
        pytest.param(with_entry(lab_test(), "t", tr=""), id="test-result-empty"),
        pytest.param(with_entry(vaccination(), "v", sd=0), id="series-of-zero-doses"),
        pytest.param(with_entry(lab_test(), "t", sc=1614169200000), id="sample-time-number"),
        pytest.param(with_entry(recovery(), "r", du=None), id="recovery-without-end"),
    ],
)
def test_schema_violations(hcert: dict) -> None:
    assert check(signed(hcert)).problems == (Reason.SCHEMA_INVALID,)


def test_what_each_certificate_type_states() -> None:
    vaccinated = check(signed(vaccination(dose=1, doses=2)))
    assert vaccinated.health is not None
    assert (vaccinated.health.dose, vaccinated.health.doses) == (1, 2)
    assert vaccinated.health.vaccinated_on == datetime.date(2021, 3, 18)
    tested = check(signed(lab_test(detected=True)))
    assert tested.health is not None and tested.health.positive is True
    assert tested.details["test_result"] == "detected"
    assert tested.health.sampled_at == datetime.datetime(2025, 5, 31, 8, tzinfo=UTC)
    recovered = check(signed(recovery()))
    assert recovered.health is not None and recovered.health.type is HealthType.RECOVERY
    assert recovered.health.valid_until == datetime.date(2025, 8, 28)
    assert recovered.subject_id == "URN:UVCI:01:VN:TEST0000000000000000000000000003"


def test_name_falls_back_to_the_transliteration() -> None:
    hcert = {**vaccination(), "nam": {"fnt": "NGUYEN", "gnt": "BAO<DUY"}}
    assert check(signed(hcert)).name == "NGUYEN BAO DUY"


# --- What the EU test data showed -----------------------------------------------------------

ISSUED, EXPIRES = 1736467200, 1767999600  # 2025-01-10, 2026-01-09 23:00 UTC
#: The last second of year 9999, the calendar's last day.
END_OF_TIME = 253402300799


def claims_signed(claims: dict, key=None, kid: bytes | None = None) -> str:
    """A HC1 whose CWT claims are exactly `claims` (encodings `cose()` does not make), signed
    ES256 by the test signer unless told otherwise."""
    protected = cbor2.dumps({1: ES256, 4: kid or kid_of(EC_CERT)})
    payload = cbor2.dumps(claims)
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = sign_cose(key or ec_key(1), ES256, to_be_signed)
    return hc1(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature])))


@pytest.mark.parametrize(
    ("iat", "exp", "reason"),
    [
        pytest.param(ISSUED + 0.028, EXPIRES + 0.023, Reason.OK, id="floats-as-es-and-hu-send"),
        pytest.param(float(ISSUED), EXPIRES, Reason.OK, id="integral-float"),
        pytest.param(math.nan, EXPIRES, Reason.MALFORMED, id="nan"),
        pytest.param(ISSUED, math.inf, Reason.MALFORMED, id="infinity"),
        pytest.param(-1.5, EXPIRES, Reason.MALFORMED, id="before-1970"),
        pytest.param(True, EXPIRES, Reason.MALFORMED, id="bool"),
        pytest.param(str(ISSUED), EXPIRES, Reason.MALFORMED, id="text"),
        pytest.param(ISSUED, 2**40, Reason.MALFORMED, id="exp-past-year-9999"),
    ],
)
def test_cwt_times_are_numeric_dates_integer_or_float(iat, exp, reason: Reason) -> None:
    credential = check(claims_signed({1: "DE", 4: exp, 6: iat, -260: {1: vaccination()}}))
    assert credential.reason is reason
    assert credential.verified is (reason is Reason.OK)


def test_a_vietnamese_certificate_issued_in_year_9999_is_refused_not_a_crash() -> None:
    """Its 12-month limit would fall in year 10000, which no datetime holds."""
    claims = {1: "VN", 4: END_OF_TIME, 6: END_OF_TIME - 86400, -260: {1: vaccination()}}
    credential = check(claims_signed(claims))
    assert credential.problems == (Reason.NOT_YET_VALID,)
    late = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert check(claims_signed(claims), at=late).problems == (Reason.SIGNER_EXPIRED,)


@pytest.mark.parametrize("dob", ["1963", "1963-00", "1963-00-00", "", "1978-01-26T00:00:00"])
def test_partial_birth_dates_the_schema_allows(dob: str) -> None:
    credential = check(signed({**vaccination(), "dob": dob}))
    assert credential.reason is Reason.OK and credential.verified
    assert credential.birth_date == dob


@pytest.mark.parametrize(
    "hcert",
    [
        pytest.param({**vaccination(), "t": None, "r": None}, id="other-groups-null"),
        pytest.param(
            with_entry(vaccination(), "v", ma="", mp="", vp="", co=""), id="empty-value-set-codes"
        ),
        pytest.param(
            with_entry(lab_test(), "t", sc=datetime.datetime(2025, 5, 31, 8, tzinfo=UTC)),
            id="sample-time-as-cbor-date-time",
        ),
    ],
)
def test_encodings_real_issuers_use(hcert: dict) -> None:
    credential = check(signed(hcert))
    assert credential.reason is Reason.OK and credential.verified


def test_an_authentic_certificate_outside_the_schema_is_verified_but_never_valid() -> None:
    """The signature is checked before the content (hcert spec), as EXPECTEDVERIFY reads it."""
    bad = {**vaccination(), "dob": "10/10/1983"}
    credential = check(signed(bad))
    assert credential.problems == (Reason.SCHEMA_INVALID,)
    assert credential.verified and not credential.valid
    assert credential.name is None and credential.birth_date is None
    assert not credential.details and credential.health is None
    forged = check(signed(bad, key=ec_key(2)))
    assert forged.problems == (Reason.SCHEMA_INVALID,) and not forged.verified


def test_es256_with_a_p384_signer_is_an_unsupported_algorithm() -> None:
    """ES256 is ECDSA on P-256 (hcert spec); Spain's test signer uses P-384 under it."""
    key = ec.derive_private_key(0x5EED, ec.SECP384R1())
    cert = certificate(key, subject="P-384 signer")
    trust = TrustStore.of([signer_from_certificate(cert, "p384")])
    protected = cbor2.dumps({1: ES256, 4: kid_of(cert)})
    payload = cbor2.dumps({1: "ES", 4: EXPIRES, 6: ISSUED, -260: {1: vaccination()}})
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    text = hc1(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature])))
    credential = check(text, trust=trust)
    assert credential.problems == (Reason.UNSUPPORTED_ALGORITHM,)
    assert not credential.verified
