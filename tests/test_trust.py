"""The trust store (files, directories, kid maps), `gate trust list`, and `gate parse --trust`."""

import base64
import datetime
import json
from pathlib import Path

import pytest
from credentialgen import certificate, cose, der, ec_key, ed_key, hc1, kid_of, pem, vaccination
from cryptography.hazmat.primitives import serialization

from gate.app_config import GateConfig, load_config
from gate.cli import main
from gate.errors import TrustError
from gate.judge import load_judge
from gate.reasons import Reason
from gate.trust.keys import ed25519_kid
from gate.trust.store import load_trust

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
    assert set(store.signers) == {kid_of(DSC), kid_of(DSC2), kid_of(CSCA), bytes(range(8))}
    assert store.signers[bytes(range(8))].certificate == DSC  # the map's own kid
    assert [s.certificate for s in store.authorities[CSCA.subject]] == [CSCA]
    assert set(store.pass_keys) == {ed25519_kid(ed_key(1).public_key())}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "invalid PEM certificate",
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
