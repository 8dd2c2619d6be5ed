"""State files are private whatever the umask, never written through a planted link, and
text from outside reaches a log line escaped and bounded."""

import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate import remote_lists
from gate.errors import ConfigError
from gate.files import (
    link_atomically,
    read_bounded,
    warn_if_readable_by_others,
    write_atomically,
)
from gate.logtext import printable


@pytest.fixture
def open_umask() -> Iterator[None]:
    """As outside systemd: files and directories would be world-readable by default."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_link_planted_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    """Someone who can write the state folder plants a link where the temporary will be
    made (here they guess its name right): the write must not go through the link."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    state = tmp_path / "state"
    state.mkdir()
    (state / ".mode.guessed.tmp").symlink_to(victim)
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)

    write_atomically(state / "mode", b'{"mode": "normal"}')

    assert victim.read_bytes() == b"precious"
    assert (state / "mode").read_bytes() == b'{"mode": "normal"}'
    assert sorted(p.name for p in state.iterdir()) == [".mode.guessed.tmp", "mode"]


def test_a_link_planted_at_the_file_itself_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "deny.json").symlink_to(victim)

    write_atomically(tmp_path / "deny.json", b"{}")

    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "deny.json").is_symlink()
    assert (tmp_path / "deny.json").read_bytes() == b"{}"


def test_state_files_and_the_directories_made_for_them_are_private_whatever_the_umask(
    tmp_path, open_umask
):
    existing = tmp_path / "var"
    existing.mkdir(0o755)
    path = existing / "state" / "commands" / "nonces.json"

    write_atomically(path, b"{}")
    write_atomically(path, b'{"v": 1}')  # replaced: still private

    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert mode_of(existing / "state") == 0o700
    assert mode_of(existing) == 0o755  # what existed is left alone


def test_a_file_mode_is_given_exactly_and_a_failed_write_leaves_no_temporary(tmp_path):
    write_atomically(tmp_path / "public", b"x", mode=0o644)
    assert mode_of(tmp_path / "public") == 0o644

    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside").write_bytes(b"")
    with pytest.raises(OSError):
        write_atomically(tmp_path / "folder", b"x")  # cannot replace a non-empty directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "public"]


def test_a_secret_readable_by_others_is_warned_about_once_per_read(tmp_path, caplog):
    secret = tmp_path / "device.key"
    secret.write_bytes(b"k")
    secret.chmod(0o640)
    with caplog.at_level(logging.WARNING):
        assert warn_if_readable_by_others(secret) is False
        assert warn_if_readable_by_others(tmp_path / "missing") is False
        secret.chmod(0o644)
        assert warn_if_readable_by_others(secret) is True
    assert caplog.messages == [
        f"{secret} is readable by other users (mode 0644): a secret should be 0600 "
        f"(chmod 600 {secret})"
    ]


def test_printable_escapes_line_breaks_terminal_escapes_and_bidi_controls():
    topic = "open\n2026-12-01 gate: command open done\x1b[2J\u202etxt.exe\u200b"

    shown = printable(topic)

    assert shown == ("open\\x0a2026-12-01 gate: command open done\\x1b[2J\\u202etxt.exe\\u200b")
    assert shown.isprintable()
    assert printable("C:\\x0a") == "C:\\\\x0a"  # a literal backslash cannot fake an escape
    assert printable("Nguyễn Văn An") == "Nguyễn Văn An"


def test_printable_bounds_the_length_and_says_how_much_was_cut():
    assert printable("a" * 1000, limit=10) == "aaaaaaaaaa...(+990 characters)"
    assert printable("x\ud800\U000e0001") == "x\\ud800\\U000e0001"


def test_a_link_is_replaced_in_one_step_and_leaves_nothing_beside_it(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    link = tmp_path / "current"
    link_atomically(link, "old")
    link_atomically(link, "new")
    assert os.readlink(link) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "new", "old"]


def test_a_bounded_read_reads_up_to_its_limit_and_refuses_beyond(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100) == b"x" * 100
    assert read_bounded(path, 99) is None


def test_a_remote_deny_list_larger_than_any_command_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(remote_lists, "MAX_LIST_BYTES", 64)
    path = tmp_path / remote_lists.REMOTE / remote_lists.DENY_FILE
    path.parent.mkdir()
    path.write_text('{"v": 1, "subject_ids": [' + '"x", ' * 20 + '"y"]}')
    with pytest.raises(ConfigError, match="larger than 64 bytes"):
        remote_lists.read_deny(tmp_path)
