"""The real `gate run` process against a real mosquitto: what the province receives when
the gate is killed between commit and acknowledgement, and what its presence says."""

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker, Watcher, delivery_problems, retained, wait_until
from imagegen import empty_frame, qr_frame, save_png

ROOT_TOPIC = "checkin/hn/market/gate-2"
GATE = str(Path(sys.executable).with_name("gate"))
PEOPLE = 6


def cccd(i: int) -> str:
    return f"0010901{i:05d}|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def gate_config(tmp_path: Path, broker: Broker) -> Path:
    """Six people show their card once each, then the camera sees their codes again and again
    (a long cooldown makes every later showing a duplicate: exactly six check-ins)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(10):  # two seconds of nobody: the gate is connected before anyone shows up
        save_png(empty_frame(seed=i), frames / f"0{i}-empty.png")
    for i in range(PEOPLE):
        save_png(qr_frame(cccd(i), module_px=4, seed=i), frames / f"{i + 1}0-code.png")
        save_png(empty_frame(seed=i), frames / f"{i + 1}1-empty.png")
    path = tmp_path / "gate.yaml"
    path.write_text(
        "site: {province: hn, venue_id: market, gate_id: gate-2, device_id: test-device,"
        " state_dir: state}\n"
        "camera: {source: replay, replay: {paths: [frames], fps: 20, repeat_each: 4}}\n"
        "presentation: {cooldown_s: 3600, leave_after_s: 0.1}\n"
        "signals: {pin_factory: mock}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, transport: plain,"
        " reconnect_min_s: 0.1, reconnect_max_s: 0.5, connect_timeout_s: 2, ack_timeout_s: 30}\n"
        "log: {level: info}\n",
        encoding="utf-8",
    )
    return path


def start_gate(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [GATE, "run", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def queue(config: Path) -> dict[str, object]:
    done = subprocess.run(
        [GATE, "queue", "--config", str(config), "--json"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def status(broker: Broker) -> str | None:
    payload = retained(broker, f"{ROOT_TOPIC}/status")
    return None if payload is None else json.loads(payload)["state"]


@pytest.mark.slow
def test_sigkill_between_commit_and_ack_loses_nothing_and_presence_tells_the_truth(
    broker, gate_config
):
    watcher = Watcher(broker, f"{ROOT_TOPIC}/#")
    gate = start_gate(gate_config)
    try:
        assert wait_until(lambda: status(broker) == "online", 20)
        broker.freeze()  # the broker stops answering: events are sent, never acknowledged
        assert wait_until(lambda: queue(gate_config)["last_seq"] == PEOPLE, 30)
        gate.send_signal(signal.SIGKILL)
        gate.wait(10)
        unsent = queue(gate_config)
        assert unsent["depth"] == PEOPLE and unsent["last_acked_seq"] is None
        broker.thaw()
        assert wait_until(lambda: status(broker) == "offline", 20)  # the last will

        for shown in gate_config.parent.glob("frames/*-code.png"):
            shown.unlink()  # after the restart the camera sees nobody: no new check-ins
        gate = start_gate(gate_config)
        assert wait_until(lambda: status(broker) == "online", 20)
        assert wait_until(lambda: queue(gate_config)["depth"] == 0, 30)
        assert wait_until(lambda: len({e["seq"] for e in watcher.events()}) == PEOPLE, 10)
        gate.send_signal(signal.SIGTERM)
        assert gate.wait(20) == 0
        assert wait_until(lambda: status(broker) == "stopped", 20)
    finally:
        if gate.poll() is None:
            gate.kill()
        watcher.close()

    events = watcher.events()
    committed = {e["event_id"] for e in events}
    assert len(committed) == PEOPLE
    assert delivery_problems(events, committed) == []
    assert sorted({e["seq"] for e in events}) == list(range(1, PEOPLE + 1))
    assert all(e["kind"] == "cccd" and e["decision"] == "accepted" for e in events)
    assert all(e["replayed"] for e in events[-PEOPLE:])  # resent from the backlog after restart
