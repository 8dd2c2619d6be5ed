"""Shared fixtures: gpiozero's MockFactory pins, a check-in store kept in memory, the session's
mosquitto and the Hypothesis profiles."""

import os
import signal
import socket
from collections.abc import Iterator

import pytest
from broker import Broker
from fuzzing import CI_EXAMPLES, DEV_EXAMPLES
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from hypothesis import settings

from gate.checkin import CheckIn
from gate.errors import StorageFull

# Quick by default for development, the full budgets in CI (HYPOTHESIS_PROFILE=ci); both
# derandomised, so a failure is met again on the next run. See tests/fuzzing.py.
for _name, _examples in (("dev", DEV_EXAMPLES), ("ci", CI_EXAMPLES)):
    settings.register_profile(
        _name, max_examples=_examples, derandomize=True, deadline=None, database=None
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


class ListSink:
    """A check-in store for tests of the capture side: keeps check-ins in a list, or is full."""

    def __init__(self) -> None:
        self.checkins: list[CheckIn] = []
        self.full = False

    def commit(self, checkin: CheckIn) -> None:
        if self.full:
            raise StorageFull("test store is full")
        self.checkins.append(checkin)

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def os_signal_handlers() -> Iterator[None]:
    """run() installs SIGTERM/SIGINT/SIGHUP handlers in this process: put pytest's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One plain mosquitto for the session (one per xdist worker), saving a start per test.

    Only for tests that never stop, restart, freeze or reconfigure it; each module using it
    keeps its own topic root and client ids, so what one leaves retained or queued reaches
    no other. A module whose tests control the broker's process overrides this fixture
    with a broker of its own per test.
    """
    with Broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def notify_socket(tmp_path) -> Iterator[tuple[socket.socket, str]]:
    """A notify socket like systemd's: the test reads what the gate tells systemd. Reads
    time out after 0.05 s, for tests that poll; a test that waits for one message sets its
    own timeout."""
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.05)
    yield server, path
    server.close()
