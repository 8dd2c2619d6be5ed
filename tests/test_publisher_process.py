"""A real process running Outbox + Publisher (tests/outbox_driver.py), killed and restarted.

SIGKILL between commit and acknowledgement, the last will, a 10,000-event
backlog drained with memory flat, and a 10 MB command that never reaches the gate.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import Broker, Watcher, delivery_problems, retained, wait_until
from paho.mqtt.enums import CallbackAPIVersion

pytestmark = [
    pytest.mark.broker,
]

DRIVER = Path(__file__).with_name("outbox_driver.py")
REPO = DRIVER.parents[1]
STATUS = "checkin/hn/stadium/gate-1/status"


class Driver:
    """The driver process and the JSON lines it printed (read by a thread)."""

    def __init__(self, state: Path, broker: Broker, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "--state", str(state), "--port", str(broker.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, name="driver-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(json.loads(raw))

    def committed(self) -> dict[str, int]:
        """event_id -> seq of every commit the driver saw return."""
        return {
            str(line["event_id"]): int(str(line["committed"]))
            for line in list(self.lines)
            if "committed" in line
        }

    def line(self, key: str) -> dict[str, object] | None:
        return next((line for line in list(self.lines) if key in line), None)

    def finish(self, sig: int | None = None, timeout: float = 30) -> int:
        if sig is not None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.stderr = self.proc.stderr.read().decode(errors="replace")
            self.proc.stderr.close()
        return code


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as running:
        yield running


def state_of(broker: Broker) -> dict[str, object] | None:
    payload = retained(broker, STATUS)
    return None if payload is None else json.loads(payload)


@pytest.mark.slow
def test_sigkill_between_commit_and_ack_then_restart(tmp_path: Path, broker: Broker) -> None:
    watcher = Watcher(broker)
    state = tmp_path / "state"
    first = Driver(state, broker, "--commit", "400", "--interval", "0.002")
    assert wait_until(lambda: len(watcher.events()) >= 50, 30)
    broker.freeze()  # from here on nothing is acknowledged
    try:
        seen = len(first.committed())
        assert wait_until(lambda: len(first.committed()) >= seen + 30, 30)
        assert first.finish(signal.SIGKILL) == -signal.SIGKILL
    finally:
        broker.thaw()
    committed = first.committed()
    assert len(committed) < 400  # killed mid-way
    second = Driver(state, broker, "--commit", "20", "--exit-when-drained")
    assert second.finish(timeout=60) == 0, second.stderr
    assert min(second.committed().values()) > max(committed.values())  # seq went on
    committed |= second.committed()
    ids = set(committed)
    assert wait_until(lambda: ids <= {e["event_id"] for e in watcher.events()}, 30)
    assert delivery_problems(watcher.events(), ids) == []
    replayed = [e for e in watcher.events() if e["replayed"]]
    assert replayed  # the unacknowledged ones came back from the outbox
    watcher.close()


@pytest.mark.slow
def test_last_will_offline_then_online_then_stopped(tmp_path: Path, broker: Broker) -> None:
    state = tmp_path / "state"
    first = Driver(state, broker)
    assert wait_until(lambda: (state_of(broker) or {}).get("state") == "online", 20)
    session = (state_of(broker) or {})["session"]
    first.finish(signal.SIGKILL)
    assert wait_until(lambda: (state_of(broker) or {}).get("state") == "offline", 20)
    offline = state_of(broker) or {}
    assert (offline["session"], offline["boot_id"]) == (session, "boot-test")
    second = Driver(state, broker)
    assert wait_until(lambda: (state_of(broker) or {}).get("state") == "online", 20)
    assert (state_of(broker) or {})["session"] == session + 1  # counted across restarts
    assert second.finish(signal.SIGTERM) == 0, second.stderr
    stopped = state_of(broker) or {}
    assert stopped.get("state") == "stopped" and stopped["session"] == session + 1


@pytest.mark.slow
def test_backlog_of_10000_drains_in_order_with_flat_memory(tmp_path: Path, broker: Broker) -> None:
    watcher = Watcher(broker)
    driver = Driver(
        tmp_path / "state",
        broker,
        "--backlog",
        "10000",
        "--exit-when-drained",
        "--trace-memory",
    )
    assert driver.finish(timeout=180) == 0, driver.stderr
    assert wait_until(lambda: len(watcher.events()) >= 10000, 60)
    events = watcher.events()
    first: dict[object, int] = {}
    for event in events:
        first.setdefault(event["event_id"], int(str(event["seq"])))
    assert list(first.values()) == list(range(1, 10001))  # all, once each first, in order
    assert all(e["replayed"] for e in events)
    drained = driver.line("drained")
    assert drained is not None
    traced_growth = int(str(drained["traced_peak"])) - int(str(drained["traced_before"]))
    rss_growth_kb = int(str(drained["rss_after_kb"])) - int(str(drained["rss_before_kb"]))
    # the backlog is ~4 MB of payloads; holding it (in paho or here) would show many MB
    assert traced_growth < 1_500_000, drained
    assert rss_growth_kb < 16_000, drained
    watcher.close()


@pytest.mark.slow
def test_a_10_mb_command_leaves_memory_flat_and_delivery_going(
    tmp_path: Path, broker: Broker
) -> None:
    """Issue 9 item 1: v5 Maximum Packet Size; the broker drops what the gate refused."""
    watcher = Watcher(broker)
    driver = Driver(
        tmp_path / "state",
        broker,
        "--commit",
        "150",
        "--interval",
        "0.05",
        "--commands",
        "--exit-when-drained",
    )
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    cmd = "checkin/hn/stadium/gate-1/cmd"

    def pings() -> int:
        return sum(1 for line in list(driver.lines) if line.get("command") == "ping")

    def ping_until(count: int) -> bool:
        sender.publish(f"{cmd}/ping", b"{}", qos=1)
        return wait_until(lambda: pings() >= count, 0.5)

    assert wait_until(lambda: ping_until(1), 20)  # subscribed
    big = sender.publish(f"{cmd}/open", b"x" * (10 * 1024 * 1024), qos=1)
    big.wait_for_publish(30)
    assert wait_until(lambda: ping_until(pings() + 1), 20)  # commands still flow after it
    assert driver.finish(timeout=120) == 0, driver.stderr
    sender.disconnect()
    sender.loop_stop()
    assert {line["command"] for line in driver.lines if "command" in line} == {"ping"}
    committed = driver.committed()
    assert len(committed) == 150
    assert wait_until(lambda: set(committed) <= {e["event_id"] for e in watcher.events()}, 30)
    assert delivery_problems(watcher.events(), set(committed)) == []
    drained = driver.line("drained")
    assert drained is not None
    peak_growth_kb = int(str(drained["hwm_after_kb"])) - int(str(drained["rss_before_kb"]))
    assert peak_growth_kb < 5_000, drained  # the 10 MB message would show at least 10,240
    watcher.close()
