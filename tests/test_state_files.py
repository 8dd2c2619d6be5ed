"""State on the device is private whatever the umask, and secrets readable by others are named.

Outside systemd (a technician's shell, umask 022) the files the gate creates must still be
0600 and its folders 0700; a key or password file that other users can read is warned about
where it is read.
"""

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from outbox_driver import KEY, make_checkin, make_site

from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig, SubjectMode
from gate.outbox.publisher import Publisher
from gate.outbox.store import Outbox
from gate.privacy import load_key


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_outbox_and_its_wal_are_private_under_an_open_umask(tmp_path, open_umask):
    state = tmp_path / "state"
    outbox = Outbox(OutboxConfig(), make_site(state), PrivacyConfig(), privacy_key=KEY)
    try:
        outbox.commit(make_checkin(1))
        files = sorted(state.glob("outbox.sqlite3*"))
        assert [f.name for f in files] == [
            "outbox.sqlite3",
            "outbox.sqlite3-shm",
            "outbox.sqlite3-wal",
        ]
        assert {f.name: mode_of(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode_of(state) == 0o700
    finally:
        outbox.close()


def test_an_existing_outbox_file_keeps_its_mode(tmp_path, open_umask):
    """The gate makes new files private; it does not change what a person set."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite3").touch(mode=0o640)
    os.chmod(state / "outbox.sqlite3", 0o640)
    outbox = Outbox(OutboxConfig(), make_site(state), PrivacyConfig(), privacy_key=KEY)
    outbox.close()
    assert mode_of(state / "outbox.sqlite3") == 0o640


def test_a_privacy_key_readable_by_others_is_named_in_a_warning(tmp_path, caplog):
    key = tmp_path / "privacy.key"
    key.write_text("k" * 32 + "\n")
    os.chmod(key, 0o644)
    privacy = PrivacyConfig(subject=SubjectMode.HMAC, secret_file=key)
    with caplog.at_level(logging.WARNING):
        assert load_key(privacy, make_site(tmp_path / "state")) == b"k" * 32
    assert f"{key} is readable by other users (mode 0644)" in caplog.text


def test_a_private_privacy_key_is_read_without_a_warning(tmp_path, caplog):
    key = tmp_path / "privacy.key"
    key.write_text("k" * 32 + "\n")
    os.chmod(key, 0o600)
    privacy = PrivacyConfig(subject=SubjectMode.HMAC, secret_file=key)
    with caplog.at_level(logging.WARNING):
        load_key(privacy, make_site(tmp_path / "state"))
    assert "readable by other users" not in caplog.text


def test_a_broker_password_file_readable_by_others_is_named_when_the_publisher_is_made(
    tmp_path, caplog
):
    password = tmp_path / "mqtt.password"
    password.write_text("secret\n")
    os.chmod(password, 0o604)
    site = make_site(tmp_path / "state")
    outbox = Outbox(OutboxConfig(), site, PrivacyConfig(), privacy_key=KEY)
    try:
        config = MqttConfig(transport="plain", username="gate", password_file=password)
        with caplog.at_level(logging.WARNING):
            Publisher(config, site, outbox, dict, client_id="gate-dev1", boot_id="boot-1")
        assert f"{password} is readable by other users (mode 0604)" in caplog.text
    finally:
        outbox.close()
