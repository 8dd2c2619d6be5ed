"""ICAO VDS-NC seals: canonical JSON, the ES256 signature, and the chain to a pinned CSCA."""

import datetime
import json

import pytest
from credentialgen import (
    certificate,
    ec_key,
    name,
    rsa_key,
    vds_seal,
    vds_test,
    vds_vaccination,
)

from gate.credentials import Credential, Kind, parse
from gate.credentials.model import HealthType
from gate.credentials.vds_nc import canonical
from gate.reasons import Reason
from gate.trust.store import TrustStore, signer_from_certificate

UTC = datetime.UTC
AT = datetime.datetime(2025, 6, 1, 10, tzinfo=UTC)
CSCA_KEY = ec_key(10)
CSCA = certificate(CSCA_KEY, subject="CSCA test", ca=True)
SIGNER = certificate(ec_key(11), subject="VDS signer", issuer=(CSCA.subject, CSCA_KEY), ca=False)
TRUST = TrustStore.of([signer_from_certificate(CSCA, "csca")])


def check(text: str, at: datetime.datetime = AT, trust: TrustStore = TRUST) -> Credential:
    return parse(text.encode(), today=at.date(), at=at, trust=trust)


# --- Canonical JSON (RFC 8785) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}', id="sorted-no-whitespace"),
        pytest.param({"n": "Nguyễn"}, '{"n":"Nguyễn"}', id="utf8-not-escaped"),
        pytest.param({"q": 'a"b\\c\n'}, '{"q":"a\\"b\\\\c\\n"}', id="minimal-escapes"),
        pytest.param({"c": "\x1f"}, '{"c":"\\u001f"}', id="control-as-u-escape"),
        pytest.param({"v": 1.0, "w": 2.5}, '{"v":1,"w":2.5}', id="integral-float"),
        pytest.param({"t": True, "f": None}, '{"f":null,"t":true}', id="literals"),
        pytest.param(
            {"\U0001f600": 1, "\uffff": 2}, '{"\U0001f600":1,"\uffff":2}', id="utf16-order"
        ),
    ],
)
def test_canonical_json(value: object, expected: str) -> None:
    assert canonical(value) == expected


# --- Seals ----------------------------------------------------------------------------------


def test_signed_vaccination_seal_verifies_through_the_csca() -> None:
    credential = check(vds_seal(vds_vaccination(), ec_key(11), SIGNER))
    assert (credential.kind, credential.valid, credential.verified) == (Kind.VDS_NC, True, True)
    assert credential.reason is Reason.OK
    assert credential.subject_id == "U32870"
    assert credential.name == "Smith Bill"
    assert credential.birth_date == "1990-01-02"
    assert credential.details["document_no"] == "PA0941262"
    assert credential.details["issuing_country"] == "AUS"
    health = credential.health
    assert health is not None and health.type is HealthType.VACCINATION
    assert (health.dose, health.doses, health.next_dose_due) == (2, None, False)


def test_whitespace_and_member_order_of_the_seal_do_not_matter() -> None:
    seal = json.loads(vds_seal(vds_vaccination(), ec_key(11), SIGNER))
    reordered = {
        "sig": seal["sig"],
        "data": {"msg": seal["data"]["msg"], "hdr": seal["data"]["hdr"]},
    }
    assert check(json.dumps(reordered, indent=2)).verified


def test_der_signature_is_accepted_too() -> None:
    assert check(vds_seal(vds_vaccination(), ec_key(11), SIGNER, der_signature=True)).verified


def test_test_seal_states_the_result() -> None:
    credential = check(vds_seal(vds_test("positive"), ec_key(11), SIGNER))
    assert credential.verified and credential.subject_id == "T12345"
    assert credential.health is not None and credential.health.positive is True
    assert credential.details["document_no"] == "E7831177G"


def test_next_dose_due_is_kept_for_the_policy() -> None:
    credential = check(vds_seal(vds_vaccination(dvn="2021-09-01"), ec_key(11), SIGNER))
    assert credential.health is not None and credential.health.next_dose_due


def forged_signer() -> str:
    """A certificate that names the CSCA as issuer but was signed by someone else."""
    fake = certificate(ec_key(12), subject="VDS signer", issuer=(CSCA.subject, ec_key(13)))
    return vds_seal(vds_vaccination(), ec_key(12), fake)


def stranger() -> str:
    other_ca = name("Other CSCA")
    cert = certificate(ec_key(14), subject="Stranger", issuer=(other_ca, ec_key(15)))
    return vds_seal(vds_vaccination(), ec_key(14), cert)


def expired_signer() -> str:
    cert = certificate(
        ec_key(16),
        issuer=(CSCA.subject, CSCA_KEY),
        not_after=datetime.datetime(2024, 1, 1, tzinfo=UTC),
    )
    return vds_seal(vds_vaccination(), ec_key(16), cert)


@pytest.mark.parametrize(
    ("seal", "problems", "valid"),
    [
        pytest.param(
            vds_seal(vds_vaccination(), ec_key(11), SIGNER, tamper=True),
            (Reason.BAD_SIGNATURE,),
            False,
            id="tampered-data",
        ),
        pytest.param(
            vds_seal(vds_vaccination(), ec_key(12), SIGNER),
            (Reason.BAD_SIGNATURE,),
            False,
            id="wrong-key",
        ),
        pytest.param(forged_signer(), (Reason.BAD_SIGNER_CERTIFICATE,), False, id="forged-cer"),
        pytest.param(stranger(), (Reason.SIGNER_UNKNOWN,), True, id="csca-not-pinned"),
        pytest.param(expired_signer(), (Reason.SIGNER_EXPIRED,), True, id="expired-signer"),
    ],
)
def test_signature_and_chain_problems(seal: str, problems: tuple, valid: bool) -> None:
    credential = check(seal)
    assert credential.problems == problems
    assert credential.valid is valid and not credential.verified


def test_expired_csca_expires_its_signers() -> None:
    old_ca = certificate(
        CSCA_KEY, subject="CSCA test", ca=True, not_after=datetime.datetime(2024, 1, 1, tzinfo=UTC)
    )
    trust = TrustStore.of([signer_from_certificate(old_ca, "old-csca")])
    credential = check(vds_seal(vds_vaccination(), ec_key(11), SIGNER), trust=trust)
    assert credential.problems == (Reason.SIGNER_EXPIRED,)


def test_a_non_ca_certificate_is_no_csca() -> None:
    leaf = certificate(CSCA_KEY, subject="CSCA test", ca=False)
    trust = TrustStore.of([signer_from_certificate(leaf, "leaf")])
    assert check(vds_seal(vds_vaccination(), ec_key(11), SIGNER), trust=trust).problems == (
        Reason.SIGNER_UNKNOWN,
    )


def seal_with(change) -> str:
    seal = json.loads(vds_seal(vds_vaccination(), ec_key(11), SIGNER))
    change(seal)
    return json.dumps(seal)


def rsa_signer_seal() -> str:
    cert = certificate(rsa_key(1), issuer=(CSCA.subject, CSCA_KEY))
    return seal_with(lambda s: s["sig"].update(cer=vds_seal_cer(cert)))


def vds_seal_cer(cert) -> str:
    return json.loads(vds_seal(vds_vaccination(), ec_key(11), cert))["sig"]["cer"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param('{"data": {', Reason.MALFORMED, id="broken-json"),
        pytest.param('{"data": 1, "sig": {}}', Reason.MALFORMED, id="data-not-object"),
        pytest.param('{"data": {}, "data": {}, "sig": {}}', Reason.MALFORMED, id="repeated-member"),
        pytest.param(
            seal_with(lambda s: s["data"]["hdr"].update(t="icao.visa")),
            Reason.SCHEMA_INVALID,
            id="unknown-type",
        ),
        pytest.param(
            seal_with(lambda s: s["data"]["hdr"].update(**{"is": "Australia"})),
            Reason.SCHEMA_INVALID,
            id="bad-country",
        ),
        pytest.param(
            seal_with(lambda s: s["data"]["msg"].pop("uvci")),
            Reason.SCHEMA_INVALID,
            id="no-identifier",
        ),
        pytest.param(
            seal_with(lambda s: s["data"]["msg"]["ve"][0]["vd"][0].update(seq=0)),
            Reason.SCHEMA_INVALID,
            id="dose-zero",
        ),
        pytest.param(
            seal_with(lambda s: s["sig"].update(alg="RS256")),
            Reason.UNSUPPORTED_ALGORITHM,
            id="rs256",
        ),
        pytest.param(
            seal_with(lambda s: s["sig"].update(cer="!!")),
            Reason.BAD_ENCODING,
            id="cer-not-base64url",
        ),
        pytest.param(
            seal_with(lambda s: s["sig"].update(cer="AAAA")),
            Reason.MALFORMED,
            id="cer-not-a-certificate",
        ),
        pytest.param(rsa_signer_seal(), Reason.BAD_SIGNATURE, id="rsa-key-cannot-es256"),
    ],
)
def test_broken_seals(text: str, reason: Reason) -> None:
    assert check(text).problems == (reason,)


def test_json_that_is_not_a_seal_is_not_recognised() -> None:
    assert check('{"name": "x"}').kind is Kind.UNKNOWN
