"""The trust store (files, directories, kid maps), `gate trust list`, and `gate parse --trust`."""

import base64
import datetime
import json
import re
from pathlib import Path

import pytest
from conftest import ListSink
from credentialgen import (
    b64url,
    certificate,
    cose,
    der,
    ec_key,
    ed_key,
    hc1,
    kid_of,
    pem,
    vaccination,
    vds_seal,
    vds_vaccination,
)
from cryptography.hazmat.primitives import serialization
from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st
from imagegen import empty_frame, save_png

from gate.app_config import GateConfig, load_config
from gate.cli import main
from gate.credentials import Kind, parse
from gate.daemon import run as run_daemon
from gate.errors import EXIT_CONFIG, ConfigError, TrustError
from gate.judge import load_judge
from gate.reasons import Reason
from gate.trust.keys import ed25519_kid
from gate.trust.store import TrustStore, load_trust

UTC = datetime.UTC
DSC = certificate(ec_key(20), subject="DSC one")
DSC2 = certificate(
    ec_key(21), subject="DSC two", not_after=datetime.datetime(2024, 1, 1, tzinfo=UTC)
)
CSCA = certificate(ec_key(22), subject="CSCA", ca=True)


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trust_dir(tmp_path: Path) -> Path:
    """One of each: PEM bundle, DER, Ed25519 key, kid map, and files that are not trust."""
    root = tmp_path / "trust"
    (root / "nested").mkdir(parents=True)
    (root / "bundle.pem").write_bytes(pem(DSC) + b"\n" + pem(CSCA))
    (root / "nested" / "two.der").write_bytes(der(DSC2))
    (root / "passes.pub").write_bytes(public_pem(ed_key(1)))
    (root / "map.json").write_text(
        json.dumps({"AAECAwQFBgc=": base64.b64encode(der(DSC)).decode()})
    )
    (root / "README.md").write_text("not a certificate")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "junk.pem").write_text("junk")
    return root


def test_directory_loads_every_kind_of_trust_file(tmp_path: Path) -> None:
    store = load_trust([trust_dir(tmp_path)])
    assert set(store.signers) == {kid_of(DSC), kid_of(DSC2), bytes(range(8))}  # no CA
    assert store.signers[bytes(range(8))].der == der(DSC)  # the map's own kid
    assert [s.certificate for s in store.authorities[CSCA.subject]] == [CSCA]
    assert set(store.pass_keys) == {ed25519_kid(ed_key(1).public_key())}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a PEM or DER certificate",
            id="bad-pem",
        ),
        pytest.param(
            "bad.der", b"\x30\x03\x02\x01\x01", "not a PEM or DER certificate", id="bad-der"
        ),
        pytest.param(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n",
            "private key",
            id="private-key",
        ),
        pytest.param("ec.pub", None, "must be Ed25519", id="ec-public-key"),
        pytest.param("map.json", b"[1, 2]", "expected", id="map-not-object"),
        pytest.param("map.json", b'{"@@": "AAAA"}', "invalid base64", id="map-bad-kid"),
        pytest.param("map.json", b"{", "invalid JSON", id="map-broken"),
    ],
)
def test_bad_trust_files_name_the_file(tmp_path: Path, name: str, content, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content if content is not None else public_pem(ec_key(1)))
    with pytest.raises(TrustError, match=message) as caught:
        load_trust([path])
    assert str(path) in str(caught.value)


def test_missing_path_and_kid_conflict(tmp_path: Path) -> None:
    with pytest.raises(TrustError, match="no such trust file"):
        load_trust([tmp_path / "absent"])
    conflict = tmp_path / "map.json"
    kid = base64.b64encode(kid_of(DSC)).decode()
    conflict.write_text(json.dumps({kid: base64.b64encode(der(DSC2)).decode()}))
    (tmp_path / "dsc.pem").write_bytes(pem(DSC))
    with pytest.raises(TrustError, match="names two certificates"):
        load_trust([tmp_path])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_trust_list_shows_roles_and_until_when(tmp_path: Path, capsys) -> None:
    code, rows = run(
        capsys, "trust", "list", "--trust", str(trust_dir(tmp_path)), "--at", "2025-06-01T00:00:00Z"
    )
    assert code == 0
    by_subject = {row.get("subject"): row for row in rows}
    assert by_subject["CN=DSC one,C=VN"]["role"] == "document_signer"
    assert {row["kid"] for row in rows if row.get("subject") == "CN=DSC one,C=VN"} == {
        base64.b64encode(kid_of(DSC)).decode(),
        "AAECAwQFBgc=",  # the same certificate under the kid map's own kid
    }
    assert by_subject["CN=DSC one,C=VN"]["algorithm"] == "EC secp256r1"
    assert by_subject["CN=DSC two,C=VN"]["valid"] is False
    assert by_subject["CN=DSC two,C=VN"]["problem"] == "signer_expired"
    assert by_subject["CN=DSC two,C=VN"]["not_after"] == "2024-01-01T00:00:00+00:00"
    assert by_subject["CN=CSCA,C=VN"]["role"] == "country_signing_ca"
    assert [row["role"] for row in rows if "subject" not in row] == ["pass_key"]


def test_judge_loads_the_configured_trust_once(tmp_path: Path) -> None:
    (tmp_path / "dsc.pem").write_bytes(pem(DSC))
    config_file = tmp_path / "gate.yaml"
    config_file.write_text("policy:\n  accept_kinds: [eu_dcc]\ntrust:\n  paths: [dsc.pem]\n")
    config = load_config(config_file)
    assert config.trust.paths == [tmp_path / "dsc.pem"]
    judge = load_judge(config)
    text = hc1(cose(vaccination(), ec_key(20), kid=kid_of(DSC)))
    at = datetime.datetime(2025, 6, 1, tzinfo=UTC)
    (tmp_path / "dsc.pem").unlink()  # never read again at scan time
    credential, decision = judge.judge(text.encode(), at)
    assert credential.verified and decision.accepted
    assert load_judge(GateConfig()).judge(text.encode(), at)[1].reason is (Reason.SIGNER_UNKNOWN)


def test_gate_parse_with_trust_and_at(tmp_path: Path, capsys) -> None:
    (tmp_path / "dsc.pem").write_bytes(pem(DSC))
    text = hc1(cose(vaccination(), ec_key(20), kid=kid_of(DSC)))
    code, rows = run(
        capsys,
        "parse",
        text,
        "--trust",
        str(tmp_path / "dsc.pem"),
        "--at",
        "2026-02-01T00:00:00+07:00",
    )
    assert code == 0
    row = rows[0]
    assert (row["kind"], row["valid"], row["verified"], row["reason"]) == (
        "eu_dcc",
        False,
        True,
        "expired",
    )
    assert row["problems"] == ["expired", "older_than_12_months"]
    assert (row["decision"], row["decision_reason"]) == ("refused", "expired")
    code, rows = run(capsys, "parse", text, "--at", "2025-06-01T00:00:00Z")
    assert rows[0]["reason"] == "signer_unknown" and rows[0]["valid"] is True


# --- Roles, odd encodings and hostile certificates ------------------------------------------

AT = datetime.datetime(2025, 6, 1, tzinfo=UTC)
TESTDATA = Path(__file__).parent / "data" / "dgc-testdata"


def mutated(cert, old: bytes, new: bytes) -> bytes:
    """The certificate's DER with its first `old` replaced (same length, so it still frames)."""
    data = der(cert)
    assert old in data and len(old) == len(new)
    return data.replace(old, new, 1)


#: X.509 knows versions 1 to 3 (encoded 0 to 2); this one says 5.
VERSION_5 = mutated(
    certificate(ec_key(23), subject="Version five"),
    b"\xa0\x03\x02\x01\x02",
    b"\xa0\x03\x02\x01\x04",
)
#: The issuer's common name (UTF8String "XXXX", issuer first in the DER) as a BIT STRING.
BIT_STRING_ISSUER = mutated(
    certificate(ec_key(24), subject="XXXX"), b"\x0c\x04XXXX", b"\x03\x04\x00XXX"
)
#: What a certificate that neither reader accepts is called, whichever layer refused it.
NEITHER_READS = "not a (PEM or DER|usable) certificate"
HOSTILE = [
    pytest.param(VERSION_5, id="x509-version-5"),
    pytest.param(BIT_STRING_ISSUER, id="issuer-cn-bit-string"),
]


@pytest.mark.parametrize("data", HOSTILE)
def test_a_hostile_certificate_in_trust_paths_fails_at_load_as_a_config_error(
    tmp_path: Path, data: bytes
) -> None:
    """TrustError is a ConfigError: the daemon exits 78 on it, never with a traceback."""
    path = tmp_path / "hostile.der"
    path.write_bytes(data)
    with pytest.raises(TrustError, match=NEITHER_READS) as caught:
        load_trust([path])
    assert isinstance(caught.value, ConfigError) and str(path) in str(caught.value)
    config = tmp_path / "gate.yaml"
    config.write_text(f"trust:\n  paths: [{path}]\n")
    with pytest.raises(TrustError):
        load_judge(load_config(config))


@pytest.mark.parametrize("data", HOSTILE)
def test_a_hostile_certificate_in_a_seal_is_a_refusal_not_a_crash(data: bytes) -> None:
    seal = json.loads(vds_seal(vds_vaccination(), ec_key(24), CSCA))
    seal["sig"]["cer"] = b64url(data)
    credential = parse(json.dumps(seal).encode(), today=AT.date(), at=AT, trust=TrustStore())
    assert credential.kind is Kind.VDS_NC and not credential.valid and not credential.verified


def test_a_ca_pinned_for_seals_never_verifies_an_hc1(tmp_path: Path) -> None:
    """Roles apart: a CSCA's key signs seal certificates, not health certificates."""
    (tmp_path / "csca.pem").write_bytes(pem(CSCA))
    store = load_trust([tmp_path])
    assert [s.certificate for s in store.authorities[CSCA.subject]] == [CSCA]
    text = hc1(cose(vaccination(), ec_key(22), kid=kid_of(CSCA)))
    credential = parse(text.encode(), today=AT.date(), at=AT, trust=store)
    assert credential.reason is Reason.SIGNER_UNKNOWN and not credential.verified


def test_a_kid_map_pins_its_certificates_as_document_signers_even_self_signed_cas(
    tmp_path: Path,
) -> None:
    """The hcert spec lets a country's CSCA be its DSC; a kid map says which role it has."""
    (tmp_path / "map.json").write_text(
        json.dumps({base64.b64encode(kid_of(CSCA)).decode(): base64.b64encode(der(CSCA)).decode()})
    )
    store = load_trust([tmp_path])
    text = hc1(cose(vaccination(), ec_key(22), kid=kid_of(CSCA)))
    assert parse(text.encode(), today=AT.date(), at=AT, trust=store).verified
    assert not store.authorities


def test_a_ca_pinned_as_a_file_and_listed_in_a_kid_map_has_both_roles(tmp_path: Path) -> None:
    (tmp_path / "csca.pem").write_bytes(pem(CSCA))
    (tmp_path / "map.json").write_text(
        json.dumps({base64.b64encode(kid_of(CSCA)).decode(): base64.b64encode(der(CSCA)).decode()})
    )
    store = load_trust([tmp_path])
    text = hc1(cose(vaccination(), ec_key(22), kid=kid_of(CSCA)))
    assert parse(text.encode(), today=AT.date(), at=AT, trust=store).verified
    assert [s.certificate for s in store.authorities[CSCA.subject]] == [CSCA]


def test_signers_strict_parsing_refuses_are_read_leniently(tmp_path: Path, capsys) -> None:
    """Finland's test signers encode BasicConstraints' default (ca FALSE) explicitly, which
    DER forbids and cryptography refuses; every verifier reads them, and so does the gate."""
    case = json.loads((TESTDATA / "FI" / "2DCode" / "raw" / "1.json").read_text())
    (tmp_path / "fi.der").write_bytes(base64.b64decode(case["TESTCTX"]["CERTIFICATE"]))
    store = load_trust([tmp_path / "fi.der"])
    [signer] = store.signers.values()
    assert signer.usages == {
        "1.3.6.1.4.1.0.1847.2021.1.1",
        "1.3.6.1.4.1.0.1847.2021.1.2",
        "1.3.6.1.4.1.0.1847.2021.1.3",
    }
    assert signer.not_after == datetime.datetime(2023, 6, 11, 20, 59, 59, tzinfo=UTC)
    code, rows = run(
        capsys,
        "parse",
        case["PREFIX"],
        "--trust",
        str(tmp_path / "fi.der"),
        "--at",
        case["TESTCTX"]["VALIDATIONCLOCK"],
    )
    assert code == 0
    assert (rows[0]["kind"], rows[0]["verified"], rows[0]["reason"]) == ("eu_dcc", True, "ok")


def test_an_empty_extended_key_usage_is_read_as_none(tmp_path: Path) -> None:
    """EU case CO15: an ExtendedKeyUsage with no OID (DER wants at least one)."""
    case = json.loads((TESTDATA / "common" / "2DCode" / "raw" / "CO15.json").read_text())
    (tmp_path / "co15.der").write_bytes(base64.b64decode(case["TESTCTX"]["CERTIFICATE"]))
    [signer] = load_trust([tmp_path / "co15.der"]).signers.values()
    assert signer.usages == frozenset()


@pytest.mark.parametrize("data", HOSTILE)
def test_the_daemon_exits_78_on_a_hostile_certificate_in_trust_paths(
    tmp_path: Path, data: bytes, os_signal_handlers, caplog
) -> None:
    """Under systemd 78 means "fix the config", not a reboot loop; and no traceback."""
    (tmp_path / "hostile.der").write_bytes(data)
    (tmp_path / "frames").mkdir()
    save_png(empty_frame(size=(160, 120), seed=1), tmp_path / "frames" / "0.png")
    config = GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path / "state")},
            "camera": {"source": "replay", "replay": {"paths": [str(tmp_path / "frames")]}},
            "signals": {"pin_factory": "mock"},
            "trust": {"paths": [str(tmp_path / "hostile.der")]},
        }
    )
    assert run_daemon(config, None, lambda _config: ListSink()) == EXIT_CONFIG
    assert any(re.search(NEITHER_READS, message) for message in caplog.messages)
    assert not any(record.exc_info for record in caplog.records)


def eu_signer(case: str) -> bytes:
    data = json.loads((TESTDATA / case).read_text())
    return base64.b64decode(data["TESTCTX"]["CERTIFICATE"])


SEED_CERTIFICATES = [
    der(DSC),
    der(CSCA),
    eu_signer("FI/2DCode/raw/1.json"),
    eu_signer("common/2DCode/raw/CO15.json"),
]


@fuzz(300)
@given(
    seed=st.sampled_from(SEED_CERTIFICATES),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_a_damaged_certificate_is_read_or_refused_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, seed: bytes, edits: list[tuple[int, int]]
) -> None:
    """Strict, then lenient reading: whatever the bytes, a signer or a TrustError."""
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("damaged") / "signer.der"
    path.write_bytes(bytes(data))
    try:
        store = load_trust([path])
    except TrustError:
        return
    assert len(store.signers) + sum(map(len, store.authorities.values())) == 1
