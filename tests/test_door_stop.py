"""Stopping the door: the relay is safe before anything the stop waits for, and a camera
that opens but never gives a frame is a fault, not an endless silent restart."""

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from broker import wait_until
from gpiozero.pins.mock import MockFactory
from imagegen import empty_frame

from gate.app import GateApp
from gate.app_config import GateConfig
from gate.control import Mode
from gate.door import NO_FRAME_TRIES, Gate
from gate.errors import FrameTimeout
from gate.notify import Notifier

RELAY = 23


class BlockingSource:
    """One frame, then a capture that ignores the stop until the test releases it (a driver
    stuck in a read). It notes the relay's level at the moment it sees the stop."""

    name = "blocking"

    def __init__(self, relay: MockFactory) -> None:
        self._factory = relay
        self.relay_at_stop: bool | None = None
        self.saw_stop = threading.Event()
        self.release = threading.Event()

    def open(self) -> None:
        """Nothing to open."""

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        yield empty_frame(seed=3)
        stop.wait()
        self.relay_at_stop = self._factory.pin(RELAY).state
        self.saw_stop.set()
        self.release.wait()

    def close(self) -> None:
        """Nothing to close."""


@pytest.fixture
def config(tmp_path) -> GateConfig:
    return GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path / "state")},
            "camera": {"source": "replay", "restart_min_interval_s": 0},
            "signals": {"pin_factory": "mock", "relay_max_s": 60, "relay_pulse_s": 30},
        }
    )


@pytest.mark.parametrize("opened_by", ["emergency_hold", "pulse"])
def test_stop_makes_the_relay_safe_before_it_waits_for_a_blocked_capture(
    opened_by, config, sink, mock_factory
):
    source = BlockingSource(mock_factory)
    gate = Gate(config, sink=sink, source=source, pin_factory=mock_factory)
    gate.start()
    if opened_by == "emergency_hold":
        gate.set_mode(Mode.EMERGENCY_OPEN)
    else:
        assert gate.open_once()
    assert mock_factory.pin(RELAY).state is True
    stopping = threading.Thread(target=gate.stop, name="test-stop")
    stopping.start()
    try:
        assert source.saw_stop.wait(10)
        assert stopping.is_alive()  # still joining the blocked capture thread
        assert source.relay_at_stop is False
        gate.open_once()  # the exit button or a remote open while stopping
        assert mock_factory.pin(RELAY).state is False
    finally:
        source.release.set()
        stopping.join(30)
    assert not stopping.is_alive()
    assert mock_factory.pin(RELAY).state is False


class SilentCamera:
    """Opens every time, then times out on its reads `timeouts` times (None: for ever),
    then gives frames until the stop."""

    name = "silent"

    def __init__(self, timeouts: int | None) -> None:
        self._timeouts = timeouts

    def open(self) -> None:
        """Opening works: the camera is there."""

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        if self._timeouts is None or self._timeouts > 0:
            self._timeouts = None if self._timeouts is None else self._timeouts - 1
            raise FrameTimeout("no frame from the camera within 2.0 s")
        frame = empty_frame(seed=4)
        while not stop.wait(0.02):
            yield frame

    def close(self) -> None:
        """Nothing to close."""


def silent_gate(config, sink, factory, path: str, timeouts: int | None) -> tuple[Gate, list]:
    """The gate on a SilentCamera, and the fault codes after each change of the faults."""
    gate = Gate(
        config,
        sink=sink,
        source=SilentCamera(timeouts),
        pin_factory=factory,
        notifier=Notifier({"NOTIFY_SOCKET": path}),
    )
    changes: list[list[str]] = []
    gate.faults.on_change = lambda: changes.append([f["code"] for f in gate.faults.listing()])
    return gate, changes


def test_a_camera_that_opens_but_never_gives_a_frame_is_camera_missing_and_ready_says_so(
    config, sink, mock_factory, notify_socket
):
    server, path = notify_socket
    server.settimeout(10)
    gate, changes = silent_gate(config, sink, mock_factory, path, timeouts=None)
    gate.start()
    try:
        ready = server.recv(4096).decode()
    finally:
        gate.stop()

    assert ready == (
        "READY=1\nSTATUS=degraded: camera_missing (silent opens but gives no frames: "
        "no frame from the camera within 2.0 s)"
    )
    assert changes == [["camera_missing"]]  # raised once, not again at every retry
    assert gate.counters.camera_restarts >= NO_FRAME_TRIES


def test_a_camera_that_gives_frames_after_failing_clears_camera_missing(
    config, sink, mock_factory, notify_socket
):
    _server, path = notify_socket
    gate, changes = silent_gate(config, sink, mock_factory, path, timeouts=NO_FRAME_TRIES)
    gate.start()
    try:
        assert wait_until(lambda: gate.counters.frames > 0, 10)
    finally:
        gate.stop()

    assert changes == [["camera_missing"], []]
    assert gate.faults.summary() is None


def test_fewer_failures_in_a_row_than_the_bound_raise_no_fault(
    config, sink, mock_factory, notify_socket
):
    server, path = notify_socket
    server.settimeout(10)
    gate, changes = silent_gate(config, sink, mock_factory, path, timeouts=NO_FRAME_TRIES - 1)
    gate.start()
    try:
        assert server.recv(4096).decode() == "READY=1\nSTATUS=running"
    finally:
        gate.stop()

    assert changes == []


class SharedSource:
    """One source for every capture thread. The first read sticks after the stop (a driver
    that does not return) until the test releases it, then goes on while its stop is not
    set; every read counts itself while it runs."""

    name = "shared"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self.readers = 0
        self.release = threading.Event()

    def open(self) -> None:
        """Nothing to open."""

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        with self._lock:
            first = self._calls == 0
            self._calls += 1
            self.readers += 1
        frame = empty_frame(seed=6)
        try:
            if first:
                yield frame
                stop.wait()
                self.release.wait()
            while not stop.wait(0.02):
                yield frame
        finally:
            with self._lock:
                self.readers -= 1

    def close(self) -> None:
        """Nothing to close."""


def test_a_capture_thread_that_outlived_its_stop_does_not_come_back_on_the_next_start(
    config, sink, mock_factory, monkeypatch
):
    monkeypatch.setattr("gate.door.JOIN_TIMEOUT_S", 0)  # stop gives up on the stuck read at once
    quick = {"frame_timeout_s": 0.01, "close_timeout_s": 0.01}
    config = config.model_copy(update={"camera": config.camera.model_copy(update=quick)})
    source = SharedSource()
    gate = Gate(config, sink=sink, source=source, pin_factory=mock_factory)
    gate.start()
    try:
        assert wait_until(lambda: gate.counters.frames > 0, 10)
        gate.stop()  # the first capture thread is still stuck in its read
        gate.start()
        assert wait_until(lambda: source.readers == 2, 10)
        source.release.set()

        assert wait_until(lambda: source.readers == 1, 10)  # only the new thread reads
    finally:
        source.release.set()
        gate.stop()


def test_the_app_makes_the_relay_safe_before_it_waits_for_a_running_command(
    config, sink, mock_factory, monkeypatch
):
    """A command (a reload) holds the app's lock when the stop comes: the relay goes off
    before the stop waits for it, not when the wait ends."""
    monkeypatch.setattr("gate.app.JOIN_TIMEOUT_S", 60)  # the wait for the lock: 120 s
    source = SharedSource()
    app = GateApp(config, open_store=lambda _: sink, source=source, pin_factory=mock_factory)
    app.start()
    assert app.door is not None
    app.door.set_mode(Mode.EMERGENCY_OPEN)
    assert mock_factory.pin(RELAY).state is True
    stopping = threading.Thread(target=app.stop, name="test-stop")
    with app.lock:
        stopping.start()
        assert wait_until(lambda: mock_factory.pin(RELAY).state is False, 30)
        assert stopping.is_alive()
    source.release.set()
    stopping.join(30)
    assert not stopping.is_alive()
