"""The site's own gate passes: keys, issuing, the QR code, and what a gate makes of a pass."""

import datetime
import json
import stat
from pathlib import Path

import pytest
import segno
from credentialgen import ed_key

from gate.cli import main
from gate.credentials import Credential, Kind, base45, cbor, parse
from gate.credentials.gate_pass import PassBody, read_token, signed_message, token
from gate.decode import DecoderConfig, load_grey, make_decoder
from gate.errors import PassError
from gate.reasons import Reason
from gate.trust import passes
from gate.trust.keys import ed25519_kid
from gate.trust.store import TrustStore, pass_key_from_public_key

UTC = datetime.UTC
KEY = ed_key(1)
TRUST = TrustStore.of(pass_keys=[pass_key_from_public_key(KEY.public_key(), "test")])
START = datetime.datetime(2025, 6, 1, tzinfo=UTC)
END = datetime.datetime(2025, 7, 1, tzinfo=UTC)
AT = datetime.datetime(2025, 6, 15, 9, tzinfo=UTC)


def issue(key=KEY, **changes) -> str:
    fields = {
        "pass_id": "staff-001",
        "holder": "Trần Thị Bình (nhân viên)",
        "not_before": START,
        "not_after": END,
        "venue": "demo-venue",
        "gates": ["gate-1", "gate-2"],
    } | changes
    return passes.issue(key, **fields)


def check(text: str, at: datetime.datetime = AT, trust: TrustStore = TRUST) -> Credential:
    return parse(text.encode(), today=at.date(), at=at, trust=trust)


def test_issued_pass_verifies_with_the_public_key_only() -> None:
    text = issue()
    assert text.startswith("GP1:")
    assert all(char in base45.ALPHABET for char in text)  # QR alphanumeric mode
    credential = check(text)
    assert (credential.kind, credential.valid, credential.verified) == (Kind.GATE_PASS, True, True)
    assert credential.subject_id == "staff-001"
    assert credential.name == "Trần Thị Bình (nhân viên)"
    assert credential.details["venue"] == "demo-venue"
    assert credential.details["gates"] == "gate-1,gate-2"
    assert credential.details["kid"] == ed25519_kid(KEY.public_key()).hex()


@pytest.mark.parametrize(
    ("at", "problems"),
    [
        pytest.param(START, (), id="from-its-first-second"),
        pytest.param(START - datetime.timedelta(seconds=1), (Reason.NOT_YET_VALID,), id="early"),
        pytest.param(END - datetime.timedelta(seconds=1), (), id="last-second"),
        pytest.param(END, (Reason.EXPIRED,), id="ended"),
    ],
)
def test_validity_window(at: datetime.datetime, problems: tuple) -> None:
    assert check(issue(), at=at).problems == problems


def tampered(text: str) -> str:
    signed = read_token(text)
    assert not isinstance(signed, Reason)
    body, signature = signed
    item = cbor.load(body)
    item[3] = "Someone Else"
    return token(cbor.dump(item), signature)


@pytest.mark.parametrize(
    ("text", "problems", "valid"),
    [
        pytest.param(issue(key=ed_key(2)), (Reason.SIGNER_UNKNOWN,), True, id="key-not-pinned"),
        pytest.param(tampered(issue()), (Reason.BAD_SIGNATURE,), False, id="tampered-holder"),
    ],
)
def test_signer_problems(text: str, problems: tuple, valid: bool) -> None:
    credential = check(text)
    assert credential.problems == problems
    assert credential.valid is valid and not credential.verified


def forged_kid() -> str:
    """Someone else's key, claiming the pinned key's id."""
    body = PassBody(ed25519_kid(KEY.public_key()), "x", "Mallory", START, END, "demo-venue")
    encoded = body.encode()
    return token(encoded, ed_key(3).sign(signed_message(encoded)))


def body_token(item: list) -> str:
    return token(cbor.dump(item), b"\0" * 64)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(forged_kid(), Reason.BAD_SIGNATURE, id="foreign-key-claims-pinned-kid"),
        pytest.param("GP1:", Reason.MALFORMED, id="prefix-only"),
        pytest.param("GP1:abc", Reason.BAD_ENCODING, id="not-base45"),
        pytest.param(
            "GP1:" + base45.encode(cbor.dump([b"x", b"short"])),
            Reason.MALFORMED,
            id="short-signature",
        ),
        pytest.param(
            body_token([2, b"\0" * 8, "x", "h", 1, 2, "v", []]), Reason.MALFORMED, id="version-2"
        ),
        pytest.param(
            body_token([1, b"\0" * 8, "x", "h", 2, 1, "v", []]),
            Reason.SCHEMA_INVALID,
            id="ends-before-it-starts",
        ),
        pytest.param(
            body_token([1, b"\0" * 8, "x y", "h", 1, 2, "v", []]),
            Reason.SCHEMA_INVALID,
            id="space-in-pass-id",
        ),
        pytest.param(
            body_token([1, b"\0" * 8, "x", "h", 1, 2**62, "v", []]),
            Reason.SCHEMA_INVALID,
            id="year-out-of-range",
        ),
        pytest.param(
            body_token([1, b"\0" * 4, "x", "h", 1, 2, "v", []]),
            Reason.SCHEMA_INVALID,
            id="short-kid",
        ),
    ],
)
def test_broken_passes(text: str, reason: Reason) -> None:
    assert check(text).problems == (reason,)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"pass_id": ""}, "pass id", id="empty-id"),
        pytest.param({"holder": " "}, "holder", id="blank-holder"),
        pytest.param({"holder": "x" * 65}, "holder", id="long-holder"),
        pytest.param({"venue": "demo venue"}, "venue", id="venue-with-space"),
        pytest.param({"gates": ["gate/1"]}, "gates", id="bad-gate"),
        pytest.param({"not_after": START}, "end after", id="empty-window"),
        pytest.param({"not_before": START.replace(tzinfo=None)}, "timezone", id="naive-time"),
    ],
)
def test_issue_refuses_what_the_gate_would_refuse(changes: dict, message: str) -> None:
    with pytest.raises(PassError, match=message):
        issue(**changes)


def test_keygen_writes_an_owner_only_private_key_and_never_overwrites(tmp_path: Path) -> None:
    private = tmp_path / "site.key"
    kid, public = passes.keygen(private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public == tmp_path / "site.key.pub"
    key = passes.load_private_key(private)
    assert ed25519_kid(key.public_key()) == kid
    with pytest.raises(PassError, match="never overwritten"):
        passes.keygen(private)
    private.chmod(0o640)
    with pytest.raises(PassError, match="readable by others"):
        passes.load_private_key(private)


def test_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    from credentialgen import ec_key
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "ec.key"
    path.write_bytes(
        ec_key(1).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    with pytest.raises(PassError, match="not an Ed25519 key"):
        passes.load_private_key(path)


def test_rendered_pass_is_an_alphanumeric_qr_the_gate_reads_back(tmp_path: Path) -> None:
    text = issue()
    version = passes.render(text, png=tmp_path / "pass.png", svg=tmp_path / "pass.svg")
    assert version <= 10
    assert segno.make(text, mode="alphanumeric").mode == "alphanumeric"
    assert (tmp_path / "pass.svg").read_text().startswith("<?xml")
    codes = make_decoder(DecoderConfig()).decode(load_grey(tmp_path / "pass.png"))
    assert [code.data for code in codes] == [text.encode()]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_line_keygen_issue_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "site.key"
    code, out, _ = run(capsys, "pass", "keygen", str(key))
    assert code == 0 and json.loads(out)["public_key"] == str(key) + ".pub"
    code, out, _ = run(
        capsys,
        "pass",
        "issue",
        "--key",
        str(key),
        "--id",
        "v-42",
        "--holder",
        "Khách 42",
        "--venue",
        "demo-venue",
        "--gate",
        "gate-1",
        "--from",
        "2025-06-01T00:00:00+07:00",
        "--until",
        "2025-06-02T00:00:00+07:00",
        "--png",
        str(tmp_path / "v.png"),
    )
    assert code == 0
    text = out.strip()
    trust = str(tmp_path / "site.key.pub")
    for source in ([text], ["--png", str(tmp_path / "v.png")]):
        code, out, _ = run(
            capsys, "pass", "show", *source, "--trust", trust, "--at", "2025-06-01T12:00:00+07:00"
        )
        shown = json.loads(out)
        assert code == 0
        assert (shown["kind"], shown["verified"], shown["reason"]) == ("gate_pass", True, "ok")
        assert shown["name"] == "Khách 42"
        assert shown["decision_reason"] == "kind_not_accepted"  # default policy: no passes
    code, _, err = run(capsys, "pass", "show", "001090123456|x", "--trust", trust)
    assert code == 1 and "not a gate pass" in err
    code, _, err = run(capsys, "pass", "show", "GP1:\udcff", "--trust", trust)  # shell's \xff
    assert code == 1 and "not a gate pass" in err
