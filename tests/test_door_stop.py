"""Stopping the door: the relay is safe before anything the stop waits for, and a camera
that opens but never gives a frame is a fault, not an endless silent restart."""

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from imagegen import empty_frame

from gate.app_config import GateConfig
from gate.control import Mode
from gate.door import Gate

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
            "camera": {"source": "replay"},
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
