"""Degrade, do not die: a part missing at start, and what the gate does then.

Each case says the exit status (or that the gate keeps running), what the province sees on
a real mosquitto (the retained status and telemetry carry the fault's reason code), what
systemd hears (READY with a STATUS naming what is degraded), and what gpiozero's
MockFactory pins do (the red LED's out-of-service blink; the exit button still opens).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from broker import Broker, Watcher, retained, wait_until
from conftest import ListSink
from gpiozero.pins.mock import MockFactory
from imagegen import empty_frame, qr_frame, save_png
from test_events import check

from gate.app import GateApp, Request
from gate.app_config import GateConfig
from gate.checkin import CheckIn
from gate.daemon import run
from gate.errors import EXIT_CONFIG, EXIT_START_FAILED
from gate.faults import Fault, Faults
from gate.judge import load_judge
from gate.notify import Notifier
from gate.outbox.store import Outbox, outbox_path
from gate.reasons import Reason

pytestmark = [pytest.mark.broker]

ROOT = "checkin/hn/market/gate-3"
RELAY, EXIT, RED = 23, 24, 27
CCCD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021"
GATE = str(Path(sys.executable).with_name("gate"))
FAULTS_SCHEMA = Path(__file__).resolve().parents[1] / "schema" / "faults.v1.json"


def raw_config(tmp_path: Path, broker: Broker, **sections: Any) -> dict[str, Any]:
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    save_png(empty_frame(size=(320, 240), seed=1), frames / "0-empty.png")
    save_png(qr_frame(CCCD, size=(320, 240), module_px=3), frames / "1-code.png")
    raw: dict[str, Any] = {
        "site": {"province": "hn", "venue_id": "market", "gate_id": "gate-3"}
        | {"device_id": "degraded", "state_dir": str(tmp_path / "state")},
        "camera": {"source": "replay", "replay": {"paths": [str(frames)], "fps": 10}},
        "presentation": {"leave_after_s": 0.1, "cooldown_s": 0, "confirm_frames": 1},
        "signals": {
            "pin_factory": "mock",
            "exit_pulse_s": 0.3,
            "patterns": {"out_of_service": {"on_s": 0.1, "off_s": 0.1}},
        },
        "mqtt": {"host": broker.host, "port": broker.port, "transport": "plain"}
        | {"reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "telemetry_interval_s": 1},
    }
    return raw | sections


def ready_message(server: socket.socket, timeout: float = 10.0) -> str:
    """The first READY datagram the gate sent systemd."""
    found: list[str] = []

    def ready() -> bool:
        try:
            message = server.recv(4096).decode()
        except TimeoutError:
            return False
        if message.startswith("READY=1"):
            found.append(message)
        return bool(found)

    assert wait_until(ready, timeout), "no READY"
    return found[0]


def published_faults(broker: Broker, suffix: str) -> list[str] | None:
    payload = retained(broker, f"{ROOT}/{suffix}", timeout=1.0)
    if payload is None:
        return None
    return [fault["code"] for fault in json.loads(payload).get("faults", [])]


def telemetry_faults(watcher: Watcher) -> list[list[str]]:
    return [
        [fault["code"] for fault in json.loads(r.payload)["faults"]]
        for r in watcher.received("/telemetry")
    ]


def red_blinks(factory: MockFactory) -> int:
    return sum(state.state for state in factory.pin(RED).states)


def press_exit(factory: MockFactory) -> None:
    factory.pin(EXIT).drive_low()
    factory.pin(EXIT).drive_high()


@pytest.fixture
def apps() -> Iterator[list[GateApp]]:
    started: list[GateApp] = []
    yield started
    for app in started:
        app.stop()


def start_app(apps: list[GateApp], config: GateConfig, factory: MockFactory, path: str) -> GateApp:
    app = GateApp(config, pin_factory=factory, notifier=Notifier({"NOTIFY_SOCKET": path}))
    apps.append(app)
    app.start()
    return app


def test_without_a_camera_the_gate_comes_up_out_of_service_and_lets_people_out(
    tmp_path, broker, notify_socket, mock_factory, apps
):
    server, path = notify_socket
    raw = raw_config(tmp_path, broker)
    raw["camera"]["replay"]["paths"] = [str(tmp_path / "no-camera")]
    watcher = Watcher(broker, f"{ROOT}/telemetry", client_id="camera-watcher")
    try:
        app = start_app(apps, GateConfig.model_validate(raw), mock_factory, path)

        message = ready_message(server)
        assert message.startswith("READY=1\nSTATUS=degraded: camera_missing (replay: ")
        assert wait_until(lambda: published_faults(broker, "status") == ["camera_missing"], 10)
        assert wait_until(lambda: ["camera_missing"] in telemetry_faults(watcher), 10)
        assert wait_until(lambda: red_blinks(mock_factory) >= 3, 5)  # out of service
        press_exit(mock_factory)
        assert wait_until(lambda: mock_factory.pin(RELAY).state, 2)  # the exit still opens
        app.stop()
    finally:
        watcher.close()

    assert json.loads(retained(broker, f"{ROOT}/status") or b"{}")["state"] == "stopped"
    assert mock_factory.pin(RELAY).state is False


@pytest.mark.parametrize(
    ("pin_factory", "environment"),
    [
        pytest.param("lgpio", {}, id="configured"),
        pytest.param("default", {"GPIOZERO_PIN_FACTORY": "lgpio"}, id="as-the-unit-sets-it"),
    ],
)
def test_without_pins_the_gate_comes_up_and_says_gpio_unavailable(
    tmp_path, broker, notify_socket, apps, monkeypatch, pin_factory, environment
):
    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("lgpio is installed here: its factory would not fail")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    server, path = notify_socket
    raw = raw_config(tmp_path, broker)
    raw["signals"]["pin_factory"] = pin_factory
    app = GateApp(GateConfig.model_validate(raw), notifier=Notifier({"NOTIFY_SOCKET": path}))
    apps.append(app)
    app.start()

    assert "STATUS=degraded: gpio_unavailable (" in ready_message(server)
    assert wait_until(lambda: published_faults(broker, "status") == ["gpio_unavailable"], 10)
    assert app.door is not None and app.door.signals is None


def test_an_outbox_that_cannot_open_refuses_scans_storage_full_and_the_rest_runs(
    tmp_path, broker, notify_socket, mock_factory, apps
):
    server, path = notify_socket
    config = GateConfig.model_validate(raw_config(tmp_path, broker))
    outbox_path(config.outbox, config.site).mkdir(parents=True)  # not a file: cannot open
    app = start_app(apps, config, mock_factory, path)

    assert "STATUS=degraded: storage_full (outbox unavailable: " in ready_message(server)
    assert app.door is not None
    assert wait_until(lambda: app.door.counters.storage_full >= 1, 10)  # the code, refused
    assert app.door.counters.accepted == 0
    assert mock_factory.pin(RELAY).state is False
    press_exit(mock_factory)
    assert wait_until(lambda: mock_factory.pin(RELAY).state, 2)


def test_a_gate_restarted_on_a_full_outbox_refuses_scans_and_says_storage_full(
    tmp_path, broker, notify_socket, mock_factory, apps
):
    server, path = notify_socket
    raw = raw_config(tmp_path, broker, outbox={"max_rows": 2})
    raw["mqtt"]["host"], raw["mqtt"]["port"] = "127.0.0.1", 9  # offline: nothing drains
    config = GateConfig.model_validate(raw)
    config.site.state_dir.mkdir(parents=True)
    with Outbox(config.outbox, config.site, config.privacy) as outbox:
        for _ in range(2):
            outbox.commit(unknown_code(config))
    app = start_app(apps, config, mock_factory, path)

    assert "STATUS=degraded: storage_full (outbox full (cap, 2 events stored)" in ready_message(
        server
    )
    assert app.door is not None
    assert wait_until(lambda: app.door.counters.storage_full >= 1, 10)
    assert app.door.counters.accepted == 0


def test_a_gate_restarted_on_a_full_outbox_drains_it_and_opens_again(
    tmp_path, broker, notify_socket, mock_factory, apps
):
    raw = raw_config(tmp_path, broker, outbox={"max_rows": 2})
    config = GateConfig.model_validate(raw)
    config.site.state_dir.mkdir(parents=True)
    with Outbox(config.outbox, config.site, config.privacy) as outbox:
        for _ in range(2):
            outbox.commit(unknown_code(config))
    app = start_app(apps, config, mock_factory, notify_socket[1])
    serving = threading.Thread(target=app.serve, name="serve", daemon=True)
    serving.start()  # the main thread's loop: it checks the outbox every second

    assert app.door is not None
    assert wait_until(lambda: app.door.counters.accepted >= 1, 15)  # drained, room again
    assert wait_until(lambda: published_faults(broker, "status") == [], 10)
    app.request(Request.STOP)
    serving.join(5)


def unknown_code(config: GateConfig) -> CheckIn:
    """A check-in as the pipeline makes them (a refused unknown code will do)."""
    at = datetime.now(UTC)
    credential, decision = load_judge(config).judge(b"hello", at)
    assert decision.reason is Reason.UNKNOWN_FORMAT
    return CheckIn(at, credential, decision)


def test_a_trust_store_that_cannot_load_exits_78(tmp_path, broker, os_signal_handlers):
    bad = tmp_path / "trust.json"
    bad.write_text("{not json")
    raw = raw_config(tmp_path, broker, trust={"paths": [str(bad)]})

    assert run(GateConfig.model_validate(raw), None, lambda _config: ListSink()) == EXIT_CONFIG


def test_an_unexpected_failure_at_start_exits_71_once_with_the_relay_safe(
    tmp_path, broker, os_signal_handlers, caplog
):
    def broken_store(_config: GateConfig) -> ListSink:
        raise RuntimeError("a bug")

    raw = raw_config(tmp_path, broker)

    assert run(GateConfig.model_validate(raw), None, broken_store) == EXIT_START_FAILED
    assert "cannot start" in caplog.messages


def test_gate_run_without_any_decoder_backend_is_ready_degraded_and_stops_with_0(
    tmp_path, broker, notify_socket
):
    """The real process, with the decoder modules made unimportable (as on a Pi without
    zxing-cpp and libzbar): it comes up, says `no_decoder`, and a SIGTERM stops it."""
    server, path = notify_socket
    hidden = tmp_path / "hidden"
    (hidden / "pyzbar").mkdir(parents=True)
    for module in (hidden / "zxingcpp.py", hidden / "pyzbar" / "__init__.py"):
        module.write_text("raise ImportError('not installed on this device')\n")
    config = tmp_path / "gate.yaml"
    config.write_text(yaml.safe_dump(raw_config(tmp_path, broker)))
    env = os.environ | {"NOTIFY_SOCKET": path, "PYTHONPATH": str(hidden)}
    gate = subprocess.Popen(
        [GATE, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        message = ready_message(server, 20)
        assert message.startswith("READY=1\nSTATUS=degraded: no_decoder (no QR decoder backend")
        assert wait_until(lambda: published_faults(broker, "status") == ["no_decoder"], 10)
        threading.Event().wait(0.5)  # a few out-of-service blinks in the pin log
        gate.send_signal(signal.SIGTERM)
        assert gate.wait(20) == 0
    finally:
        if gate.poll() is None:
            gate.kill()
    log = gate.stderr.read() if gate.stderr else ""
    assert "no QR decoder, out of service" in log
    assert "pin red          ON" in log
    assert json.loads(retained(broker, f"{ROOT}/status") or b"{}")["state"] == "stopped"


def test_gate_run_with_an_invalid_config_exits_78_without_a_traceback(tmp_path):
    config = tmp_path / "gate.yaml"
    config.write_text("signals: {relay_max_s: -1}\n")

    done = subprocess.run(
        [GATE, "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == EXIT_CONFIG
    assert "Traceback" not in done.stderr and "signals.relay_max_s" in done.stderr


def test_published_faults_follow_their_schema(tmp_path, broker, notify_socket, mock_factory, apps):
    schema = json.loads(
        (Path(__file__).resolve().parents[1] / "schema" / "faults.v1.json").read_text()
    )
    raw = raw_config(tmp_path, broker)
    raw["camera"]["replay"]["paths"] = [str(tmp_path / "no-camera")]
    start_app(apps, GateConfig.model_validate(raw), mock_factory, notify_socket[1])

    assert wait_until(lambda: published_faults(broker, "status") == ["camera_missing"], 10)
    faults = json.loads(retained(broker, f"{ROOT}/status") or b"{}")["faults"]
    assert check(faults, schema) == []
    assert all(check(fault, schema["items"]) == [] for fault in faults)


def test_a_fault_detail_cannot_add_a_field_to_systemds_notify_message() -> None:
    faults = Faults()
    faults.report(Fault.CAMERA_MISSING, "replay: /srv/frames\nWATCHDOG=1\x1b[2J")
    summary = faults.summary()
    assert summary == "degraded: camera_missing (replay: /srv/frames\\x0aWATCHDOG=1\\x1b[2J)"
