"""Modes the operations team sets: locked refuses everyone but never locks anyone in;
emergency open holds the relay; both survive a restart."""

import datetime
import errno
import threading
from pathlib import Path

import pytest
from imagegen import empty_frame, qr_frame

from gate.app_config import GateConfig
from gate.camera.replay import ReplaySource
from gate.commands.lists import replace_deny
from gate.control import Mode
from gate.door import Gate
from gate.judge import load_judge
from gate.reasons import Reason

CCCD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021"
RELAY, EXIT = 23, 24


@pytest.fixture
def config(tmp_path) -> GateConfig:
    return GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path / "state")},
            "camera": {"source": "replay"},
            "presentation": {"confirm_frames": 1, "leave_after_s": 0.2},
            "signals": {"pin_factory": "mock", "relay_pulse_s": 0.3, "exit_pulse_s": 0.3},
        }
    )


def gate_with_a_code_later(config, sink, factory) -> Gate:
    """Half a second of nobody, then someone shows a valid card: time to set a mode first."""
    frames = [empty_frame(seed=1)] * 10 + [qr_frame(CCCD, seed=2)] * 4 + [empty_frame(seed=1)] * 4
    return Gate(config, sink=sink, source=ReplaySource(frames, fps=20), pin_factory=factory)


def wait(seconds: float) -> None:
    threading.Event().wait(seconds)


def test_locked_gate_refuses_a_valid_card_and_the_relay_stays_shut(config, sink, mock_factory):
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.set_mode(Mode.LOCKED)  # before the first frame, however slow the machine
    gate.start()
    assert gate.finished.wait(5)
    gate.stop()

    assert [c.decision.reason for c in sink.checkins] == [Reason.GATE_LOCKED]
    assert sink.checkins[0].credential.valid
    assert [s.state for s in mock_factory.pin(RELAY).states] == [False]


def test_locked_gate_still_lets_people_out(config, sink, mock_factory):
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.set_mode(Mode.LOCKED)  # before the code is shown, however slow the machine
    gate.start()
    mock_factory.pin(EXIT).drive_low()
    mock_factory.pin(EXIT).drive_high()
    wait(0.5)
    gate.stop()

    assert [s.state for s in mock_factory.pin(RELAY).states] == [False, True, False]


def test_emergency_open_holds_the_relay_through_scans_until_normal(config, sink, mock_factory):
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.set_mode(Mode.EMERGENCY_OPEN)  # before the code is shown, however slow the machine
    gate.start()
    assert gate.finished.wait(5)
    wait(0.5)  # longer than a pulse: an accepted scan must not end the hold
    assert mock_factory.pin(RELAY).state is True
    gate.set_mode(Mode.NORMAL)
    gate.stop()

    assert [c.decision.accepted for c in sink.checkins] == [True]
    assert [s.state for s in mock_factory.pin(RELAY).states] == [False, True, False]


def test_mode_survives_a_restart(config, sink, mock_factory):
    first = gate_with_a_code_later(config, sink, mock_factory)
    first.start()
    first.set_mode(Mode.EMERGENCY_OPEN)
    first.stop()
    mock_factory.reset()

    again = gate_with_a_code_later(config, sink, mock_factory)
    again.start()
    try:
        assert again.mode is Mode.EMERGENCY_OPEN
        assert mock_factory.pin(RELAY).state is True
    finally:
        again.set_mode(Mode.NORMAL)
        again.stop()
    assert (config.site.state_dir / "mode").read_text() == '{"mode": "normal"}'


def test_an_unreadable_stored_mode_is_normal(config, sink, mock_factory, caplog):
    config.site.state_dir.mkdir(parents=True)
    (config.site.state_dir / "mode").write_text("{garbage")
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.start()
    gate.stop()

    assert gate.mode is Mode.NORMAL
    assert "cannot read the stored gate mode" in caplog.text


def test_a_restart_of_the_door_keeps_the_running_mode_even_when_it_could_not_be_kept_on_disk(
    config, sink, mock_factory, caplog, monkeypatch
):
    """An operator's `normal` after an emergency open must hold through a reload, also when
    the card refused to store it: the file still says emergency_open."""
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.start()
    gate.set_mode(Mode.EMERGENCY_OPEN)

    def card_full(path: Path, data: bytes, mode: int = 0o600) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("gate.door.write_atomically", card_full)
    gate.set_mode(Mode.NORMAL)
    assert "applied but not kept" in caplog.text
    gate.stop()
    gate.start()  # what a reload does with a config that needs no daemon restart
    try:
        assert gate.mode is Mode.NORMAL
        assert mock_factory.pin(RELAY).state is False
    finally:
        gate.stop()


def test_a_damaged_remote_deny_list_refuses_everyone_but_never_locks_anyone_in(
    config, sink, mock_factory, caplog
):
    """A deny list the card cannot give back must not stop the gate (it would take the exit
    button with it) nor be ignored (those it names would get in): every scan is refused
    `policy_unavailable` until the operations team sends a new list."""
    remote = config.site.state_dir / "remote"
    remote.mkdir(parents=True)
    (remote / "deny.json").write_bytes(b"\x00garbage{")
    gate = gate_with_a_code_later(config, sink, mock_factory)
    gate.start()
    try:
        mock_factory.pin(EXIT).drive_low()
        mock_factory.pin(EXIT).drive_high()
        assert gate.finished.wait(5)
    finally:
        gate.stop()

    assert [c.decision.reason for c in sink.checkins] == [Reason.POLICY_UNAVAILABLE]
    assert sink.checkins[0].credential.valid
    assert [s.state for s in mock_factory.pin(RELAY).states] == [False, True, False]  # the exit
    assert "remote deny list unreadable" in caplog.text


def test_a_new_deny_list_brings_a_gate_with_a_damaged_one_back(config):
    remote = config.site.state_dir / "remote"
    remote.mkdir(parents=True)
    (remote / "deny.json").write_text("{not json")
    at = datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.UTC)
    assert load_judge(config).judge(CCCD.encode(), at)[1].reason is Reason.POLICY_UNAVAILABLE

    replace_deny(config.site.state_dir, {})
    assert load_judge(config).judge(CCCD.encode(), at)[1].accepted
