"""`gate selftest` on real parts: gpiozero's MockFactory pins, a replay camera playing real QR
images (PNG files), a real mosquitto on loopback and a real outbox file. Only the clock and
the service state are injected, since they belong to the machine."""

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from broker import Broker, free_port, make_pki
from imagegen import empty_frame, qr_frame, save_png
from outbox_driver import KEY, make_checkin

from gate.app_config import GateConfig, load_config
from gate.camera.replay import ReplaySource
from gate.cli import main
from gate.door import Gate
from gate.outbox.store import Outbox
from gate.selftest import STOP_SERVICE, Options, selftest

CCCD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021"
DEVICE = "selftest-dev"
ROWS = [
    "config",
    "platform",
    "service",
    "green_led",
    "red_led",
    "buzzer",
    "relay",
    "camera",
    "exposure",
    "code",
    "broker",
    "clock",
    "disk",
    "outbox",
]
PINS = {"green_led": 17, "red_led": 27, "buzzer": 22, "relay": 23}


def frames_dir(tmp_path: Path, *frames: object, name: str = "frames") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for i, frame in enumerate(frames):
        save_png(frame, folder / f"{i:02d}.png")
    return folder


def write_config(tmp_path: Path, port: int, frames: Path, **sections: dict) -> Path:
    """A config as a technician's file would be: replay camera, plain broker on loopback."""
    config: dict = {
        "site": {"device_id": DEVICE, "state_dir": str(tmp_path / "state")},
        "camera": {"source": "replay", "frame_timeout_s": 0.5, "replay": {"paths": [str(frames)]}},
        "mqtt": {"host": "127.0.0.1", "port": port, "transport": "plain", "connect_timeout_s": 2},
    }
    merge(config, sections)
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def merge(into: dict, changes: dict) -> None:
    """Nested keys of `changes` replace only themselves, as editing a YAML file would."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def fast(factory: object = None, **overrides: object) -> Options:
    """Short pauses and a synchronised clock; the rest as the technician gets it."""
    values: dict = {
        "pin_on_s": 0.05,
        "camera_window_s": 0.3,
        "code_timeout_s": 2.0,
        "clock_synced": lambda: True,
        "service_state": lambda: None,
        "pin_factory": factory,
        "say": lambda _text: None,
    }
    values.update(overrides)
    return Options(**values)


def report(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    rows = json.loads(capsys.readouterr().out)
    return {row["name"]: row for row in rows}


@pytest.fixture
def code_frames(tmp_path: Path) -> Path:
    return frames_dir(tmp_path, qr_frame(CCCD, seed=1))


def test_all_rows_pass_with_a_replayed_code_mock_pins_and_a_running_broker(
    tmp_path, broker, code_frames, mock_factory, capsys
):
    said: list[str] = []
    path = write_config(tmp_path, broker.port, code_frames)

    assert selftest(path, as_json=True, options=fast(mock_factory, say=said.append)) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ROWS
    assert {r["status"] for r in rows} == {"pass"}, rows
    assert all(set(r) == {"name", "status", "value", "detail", "action"} for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["code"]["value"] == "cccd (valid)"
    assert by_name["camera"]["value"].endswith("640x480 (replay)")
    assert by_name["exposure"]["value"] == "n/a"
    assert by_name["broker"]["value"].startswith("round trip ")
    assert by_name["outbox"]["value"].startswith("none yet")
    assert any("show a QR code to the camera" in line for line in said)
    for name, pin in PINS.items():  # each driven on, then off again, and nothing else
        assert [s.state for s in mock_factory.pin(pin).states] == [False, True, False], name
    # its own MQTT client id: the running daemon's session (gate-<device>) is never taken over
    assert f"gate-{DEVICE}-selftest" in broker.log()
    assert not (tmp_path / "state").exists()  # nothing created where the daemon keeps state


def test_the_table_shows_every_row_with_what_to_do(tmp_path, code_frames, mock_factory, capsys):
    path = write_config(tmp_path, free_port(), code_frames)

    assert selftest(path, options=fast(mock_factory)) == 1

    out = capsys.readouterr().out
    header, *lines = out.splitlines()
    assert header.split() == ["row", "result", "value", "what", "to", "do"]
    starts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert starts[: len(ROWS)] == ROWS
    broker_line = next(line for line in lines if line.startswith("broker"))
    assert "FAIL" in broker_line and "mqtt.host" in broker_line
    assert lines[-1] == "13 pass, 1 fail"


def test_the_relay_pulse_is_bounded_by_relay_max_s(tmp_path, code_frames, mock_factory, capsys):
    bounded = {"relay_max_s": 0.05, "relay_pulse_s": 0.05, "exit_pulse_s": 0.05}
    path = write_config(tmp_path, free_port(), code_frames, signals=bounded)

    options = fast(mock_factory, pin_on_s=0.3, only=frozenset({"signals"}))
    assert selftest(path, as_json=True, options=options) == 0

    rows = report(capsys)
    assert rows["relay"]["status"] == "pass"
    assert rows["relay"]["value"].startswith("on 0.05 s")
    _, opened, closed = mock_factory.pin(PINS["relay"]).states
    assert (opened.state, closed.state) == (True, False)
    assert closed.timestamp < 0.2  # seconds it stayed open, where the others stayed 0.3


def test_broker_down_fails_the_broker_row_with_its_action(tmp_path, code_frames, capsys):
    path = write_config(tmp_path, free_port(), code_frames)

    assert selftest(path, as_json=True, options=fast(only=frozenset({"broker"}))) == 1

    rows = report(capsys)
    assert list(rows) == ["config", "broker"]
    broker = rows["broker"]
    assert (broker["status"], broker["value"]) == ("fail", "no connection")
    assert "ConnectionRefusedError" in broker["detail"]
    assert "check mqtt.host and port (install.sh --broker" in broker["action"]


def test_a_broker_that_refuses_the_selftest_topic_fails_with_the_acl_to_ask_for(
    tmp_path, code_frames, capsys
):
    acl = "user gate\ntopic readwrite checkin/+/+/+/event\n"
    password = tmp_path / "password"
    password.write_text("secret\n")
    with Broker(tmp_path / "broker", users={"gate": "secret"}, acl=acl) as broker:
        auth = {"username": "gate", "password_file": str(password)}
        path = write_config(tmp_path, broker.port, code_frames, mqtt=auth)
        assert selftest(path, as_json=True, options=fast(only=frozenset({"broker"}))) == 1

    broker_row = report(capsys)["broker"]
    assert (broker_row["status"], broker_row["value"]) == ("fail", "no round trip")
    assert broker_row["detail"] == "PUBACK: Not authorized"  # MQTT v5 says so at once
    assert "checkin/dev/demo-venue/gate-1/selftest/#" in broker_row["action"]


def test_tls_with_a_client_certificate_passes_and_a_wrong_ca_fails_with_what_to_check(
    tmp_path, code_frames, capsys
):
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other")
    tls = {"transport": "tls", "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    only = fast(only=frozenset({"broker"}))
    with Broker(tmp_path / "broker", pki=pki) as broker:
        good = write_config(
            tmp_path, broker.port, code_frames, mqtt={**tls, "ca_file": str(pki.ca)}
        )
        assert selftest(good, as_json=True, options=only) == 0
        assert report(capsys)["broker"]["detail"].startswith(f"127.0.0.1:{broker.port} (tls)")

        wrong = write_config(
            tmp_path, broker.port, code_frames, mqtt={**tls, "ca_file": str(other.ca)}
        )
        assert selftest(wrong, as_json=True, options=only) == 1

    row = report(capsys)["broker"]
    assert (row["status"], row["value"]) == ("fail", "no connection")
    assert "SSLCertVerificationError" in row["detail"]
    assert "check mqtt.ca_file (install.sh --ca)" in row["action"]


def test_a_wrong_password_is_a_refused_login(tmp_path, code_frames, capsys):
    password = tmp_path / "password"
    password.write_text("wrong\n")
    with Broker(tmp_path / "broker", users={"gate": "secret"}) as broker:
        auth = {"username": "gate", "password_file": str(password)}
        path = write_config(tmp_path, broker.port, code_frames, mqtt=auth)
        assert selftest(path, as_json=True, options=fast(only=frozenset({"broker"}))) == 1

    broker_row = report(capsys)["broker"]
    assert (broker_row["status"], broker_row["value"]) == ("fail", "login refused")
    assert "mqtt.username and password_file" in broker_row["action"]


@pytest.mark.parametrize(
    ("camera", "frames", "value"),
    [
        pytest.param({"replay": {"fps": 0.01}}, True, "no frame for 0.5 s", id="stalled"),
        pytest.param({"replay": {"loop": False}}, True, "stopped after 1 frames", id="stops"),
        pytest.param({}, False, "does not open", id="no-images"),
    ],
)
def test_a_camera_that_gives_no_frames_fails_its_rows(
    tmp_path, mock_factory, capsys, camera, frames, value
):
    folder = frames_dir(tmp_path, *([qr_frame(CCCD)] if frames else []))
    path = write_config(tmp_path, free_port(), folder, camera=camera)

    started = time.monotonic()
    options = fast(mock_factory, only=frozenset({"camera", "clock"}))
    assert selftest(path, as_json=True, options=options) == 1

    assert time.monotonic() - started < 3  # a stalled camera does not hang the self-test
    rows = report(capsys)
    assert list(rows) == ["config", "service", "camera", "exposure", "code", "clock"]
    assert (rows["camera"]["status"], rows["camera"]["value"]) == ("fail", value)
    assert "camera.replay" in rows["camera"]["action"]
    assert [rows[n]["status"] for n in ("exposure", "code")] == ["skip", "skip"]
    assert rows["clock"]["status"] == "pass"


def test_no_code_in_view_fails_the_code_row_and_says_how_to_show_one(
    tmp_path, mock_factory, capsys
):
    folder = frames_dir(tmp_path, empty_frame(seed=3))
    path = write_config(tmp_path, free_port(), folder)

    options = fast(mock_factory, code_timeout_s=0.4, only=frozenset({"camera"}))
    assert selftest(path, as_json=True, options=options) == 1

    rows = report(capsys)
    assert rows["camera"]["status"] == "pass"
    assert (rows["code"]["status"], rows["code"]["value"]) == ("fail", "no QR code in 0.4 s")
    assert "hold a QR code" in rows["code"]["action"]


def test_a_code_that_is_not_a_credential_still_passes_and_says_what_it_is(
    tmp_path, mock_factory, capsys
):
    folder = frames_dir(tmp_path, qr_frame("https://example.org/menu", seed=4))
    path = write_config(tmp_path, free_port(), folder)

    assert selftest(path, as_json=True, options=fast(only=frozenset({"camera"}))) == 0

    assert report(capsys)["code"]["value"] == "url (refused: url)"


def test_an_unsynchronised_clock_warns_and_exits_0(tmp_path, code_frames, capsys):
    path = write_config(tmp_path, free_port(), code_frames)

    options = fast(clock_synced=lambda: False, only=frozenset({"clock", "disk", "outbox"}))
    assert selftest(path, as_json=True, options=options) == 0

    clock = report(capsys)["clock"]
    assert (clock["status"], clock["value"]) == ("warn", "not synchronised")
    assert "timedatectl" in clock["action"]


def test_a_running_service_fails_and_the_pins_and_camera_are_left_alone(
    tmp_path, code_frames, mock_factory, capsys
):
    path = write_config(tmp_path, free_port(), code_frames)

    options = fast(mock_factory, service_state=lambda: "active", only=frozenset({"signals"}))
    assert selftest(path, as_json=True, options=options) == 1

    rows = report(capsys)
    assert (rows["service"]["status"], rows["service"]["action"]) == ("fail", STOP_SERVICE)
    assert {rows[n]["status"] for n in PINS} == {"skip"}
    assert all(len(mock_factory.pin(pin).states) == 1 for pin in PINS.values())  # never driven


def test_outbox_depth_and_set_aside_files_warn(tmp_path, code_frames, capsys):
    path = write_config(tmp_path, free_port(), code_frames)
    config = load_config(path)
    with Outbox(config.outbox, config.site, config.privacy, privacy_key=KEY) as outbox:
        for i in range(3):
            outbox.commit(make_checkin(i))
    state = config.site.state_dir
    (state / "outbox.sqlite3.corrupt-20260101T000000Z").write_bytes(b"not a database")

    assert selftest(path, as_json=True, options=fast(only=frozenset({"outbox"}))) == 0

    row = report(capsys)["outbox"]
    assert row["status"] == "warn"
    assert row["value"].startswith("3 unsent, oldest ") and row["value"].endswith("1 set aside")
    assert "gate queue --db" in row["action"]


def test_little_disk_space_for_the_outbox_cap_warns(tmp_path, code_frames, capsys):
    path = write_config(tmp_path, free_port(), code_frames, outbox={"max_bytes": 2**50})

    assert selftest(path, as_json=True, options=fast(only=frozenset({"disk"}))) == 0

    disk = report(capsys)["disk"]
    assert disk["status"] == "warn" and "outbox.max_bytes" in disk["action"]


def test_the_command_line_runs_it_and_an_invalid_config_exits_78(tmp_path, code_frames, capsys):
    good = write_config(tmp_path, free_port(), code_frames)
    assert main(["selftest", "--config", str(good), "--json", "--only", "disk", "outbox"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["config", "disk", "outbox"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  fps: fast\n")
    assert main(["selftest", "--config", str(bad), "--json"]) == 78
    [row] = json.loads(capsys.readouterr().out)
    assert (row["name"], row["status"]) == ("config", "fail")
    assert "camera.fps" in row["detail"]
    assert main(["selftest", "--config", str(bad)]) == 78
    assert "camera.fps" in capsys.readouterr().out


# -- the daemon's side of issue 5 item 6: it warns while the clock is not synchronised


def test_the_daemon_warns_at_start_and_logs_when_the_clock_becomes_synchronised(
    tmp_path, sink, mock_factory, monkeypatch, caplog
):
    synced = threading.Event()
    monkeypatch.setattr("gate.door.clock_synced", synced.is_set)
    config = GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path / "state")},
            "camera": {"source": "replay"},
            "log": {"status_interval_s": 1},
        }
    )
    source = ReplaySource([empty_frame(seed=1)], fps=20, loop=True)
    gate = Gate(config, sink=sink, source=source, pin_factory=mock_factory)
    with caplog.at_level(logging.INFO, logger="gate.door"):
        gate.start()
        try:
            time.sleep(0.2)
            synced.set()
            deadline = time.monotonic() + 3
            while "clock synchronised" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            gate.stop()

    messages = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert messages[0].startswith("clock not synchronised")
    assert messages[1:] == ["clock synchronised"]
