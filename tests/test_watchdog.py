"""The systemd watchdog means something: pings follow the capture loop's own progress."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from broker import free_port
from conftest import ListSink
from gpiozero.pins.mock import MockFactory
from imagegen import empty_frame

import gate.app as app_module
from gate.app import GateApp
from gate.app_config import GateConfig
from gate.door import Gate
from gate.notify import Notifier
from gate.outbox.service import open_outbox


class StallingSource:
    """Frames at 20 fps for `flowing_s`, then nothing: a camera that hangs without an error."""

    name = "stalling"

    def __init__(self, flowing_s: float) -> None:
        self._flowing_s = flowing_s
        self._frame = empty_frame(seed=5)

    def open(self) -> None:
        """Nothing to open."""

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        until = time.monotonic() + self._flowing_s
        while time.monotonic() < until and not stop.wait(0.05):
            yield self._frame
        stop.wait()

    def close(self) -> None:
        """Nothing to close."""


def messages_until(server: socket.socket, seconds: float) -> list[tuple[float, str]]:
    started, received = time.monotonic(), []
    while time.monotonic() - started < seconds:
        try:
            received.append((time.monotonic() - started, server.recv(4096).decode()))
        except TimeoutError:
            continue
    return received


@pytest.mark.slow
def test_ready_then_pings_while_frames_flow_and_none_after_a_stall(
    notify_socket, sink, mock_factory
):
    server, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    config = GateConfig.model_validate(
        {
            "camera": {"source": "replay"},
            "signals": {"pin_factory": "mock"},
            "service": {"stall_s": 0.5},
        }
    )
    gate = Gate(
        config,
        sink=sink,
        source=StallingSource(flowing_s=1.5),
        pin_factory=mock_factory,
        notifier=notifier,
    )
    gate.start()
    try:
        received = messages_until(server, 3.5)
    finally:
        gate.stop()

    kinds = [text for _, text in received]
    assert kinds[0] == "READY=1\nSTATUS=running"
    pings = [at for at, text in received if text == "WATCHDOG=1"]
    assert len(pings) >= 5, received  # every 0.2 s (half of WatchdogSec) while frames flow
    assert max(pings) < 1.5 + 0.5 + 0.3, received  # none once stall_s has passed without a frame
    assert all(b - a < 0.35 for a, b in pairwise(pings)), pings


def test_no_ready_before_the_first_frame(notify_socket, sink, mock_factory):
    server, path = notify_socket
    config = GateConfig.model_validate(
        {"camera": {"source": "replay"}, "signals": {"pin_factory": "mock"}}
    )
    gate = Gate(
        config,
        sink=sink,
        source=StallingSource(flowing_s=0.0),
        pin_factory=mock_factory,
        notifier=Notifier({"NOTIFY_SOCKET": path}),
    )
    gate.start()
    try:
        received = messages_until(server, 1.0)
    finally:
        gate.stop()

    assert received == []


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier({})

    notifier.notify("READY=1")

    assert not notifier.enabled
    assert notifier.watchdog_s is None


def test_watchdog_for_another_pid_is_ignored():
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "1000000"}).watchdog_s == 1.0


def test_an_unhealthy_store_withholds_pings_while_frames_flow(notify_socket, sink, mock_factory):
    server, path = notify_socket
    config = GateConfig.model_validate(
        {"camera": {"source": "replay"}, "signals": {"pin_factory": "mock"}}
    )
    gate = Gate(
        config,
        sink=sink,
        source=StallingSource(flowing_s=10),
        pin_factory=mock_factory,
        notifier=Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}),
        health=lambda: "the publisher thread is dead",
    )
    gate.start()
    try:
        received = messages_until(server, 1.5)
    finally:
        gate.stop()

    assert [text for _, text in received] == ["READY=1\nSTATUS=running"]


def test_a_stopped_publisher_is_a_problem_for_the_watchdog(tmp_path):
    config = GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path), "device_id": "watchdog-test"},
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "transport": "plain"},
        }
    )
    service = open_outbox(config)
    try:
        assert service.problem() is None  # not started yet: nothing to watch
        service.start_uplink()
        assert service.problem() is None
        assert service.publisher is not None
        service.publisher.stop()
        assert service.problem() == "the publisher thread is dead"
    finally:
        service.close()


class SlowStore(ListSink):
    """A store that takes `open_s` to open, as an outbox of a few GB does on an SD card."""

    def __init__(self, open_s: float) -> None:
        super().__init__()
        time.sleep(open_s)


def messages_until_ready(server: socket.socket, limit_s: float) -> list[str]:
    """What the gate tells systemd until READY=1 and for 0.3 s after it."""
    received: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            received.append(server.recv(4096).decode())
        except TimeoutError:
            continue
        if received[-1].startswith("READY=1"):
            deadline = min(deadline, time.monotonic() + 0.3)
    return received


class LateSource(StallingSource):
    """Its first frame comes `late_s` after it opens, as a camera slow to settle."""

    def __init__(self, late_s: float) -> None:
        super().__init__(flowing_s=30)
        self._late_s = late_s

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        if not stop.wait(self._late_s):
            yield from super().frames(stop)


@contextlib.contextmanager
def starting_slowly(
    open_s: float, path: str, mock_factory: MockFactory, first_frame_s: float = 0.0
) -> Iterator[GateApp]:
    """A gate starting in another thread, its store taking `open_s` to open and its camera
    `first_frame_s` to give a frame; stopped after."""
    config = GateConfig.model_validate(
        {"camera": {"source": "replay"}, "signals": {"pin_factory": "mock"}}
    )
    app = GateApp(
        config,
        open_store=lambda _: SlowStore(open_s),
        source=LateSource(first_frame_s),
        pin_factory=mock_factory,
        notifier=Notifier({"NOTIFY_SOCKET": path}),
    )
    starting = threading.Thread(target=app.start, name="test-start")
    starting.start()
    try:
        yield app
    finally:
        starting.join(5)
        app.stop()


EXTEND_20_S = "EXTEND_TIMEOUT_USEC=20000000\nSTATUS=starting: "


def test_a_long_start_asks_systemd_to_wait_and_says_which_step_until_ready(
    notify_socket, mock_factory, monkeypatch, caplog
):
    server, path = notify_socket
    monkeypatch.setattr(app_module, "START_EXTEND_EVERY_S", 0.1)
    with starting_slowly(0.55, path, mock_factory):
        received = messages_until_ready(server, 10)

    ready = next(i for i, text in enumerate(received) if text.startswith("READY=1"))
    extensions = [text for text in received if text.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(extensions) >= 3
    assert all(text.startswith(f"{EXTEND_20_S}outbox (") for text in extensions[:3])
    assert all(re.fullmatch(rf"{EXTEND_20_S}[a-z]+ \(\d+ s\)", text) for text in extensions)
    assert not any(text.startswith("EXTEND") for text in received[ready:])  # READY ends them
    assert caplog.text.count("starting outbox takes long") == 1  # said once, counted in STATUS


def test_systemd_is_asked_to_wait_until_ready_even_after_the_start_steps_are_done(
    notify_socket, mock_factory, monkeypatch
):
    server, path = notify_socket
    monkeypatch.setattr(app_module, "START_EXTEND_EVERY_S", 0.1)
    with starting_slowly(0.0, path, mock_factory, first_frame_s=1.0):
        received = messages_until_ready(server, 10)

    ready = next(i for i, text in enumerate(received) if text.startswith("READY=1"))
    waiting_for_the_door = [text for text in received if text.startswith(f"{EXTEND_20_S}door (")]
    assert len(waiting_for_the_door) >= 3
    assert not any(text.startswith("EXTEND") for text in received[ready:])


STUCK_IN_SQLITE = """
import sqlite3, sys
sys.path.insert(0, {tests!r})
import gate.app as app_module
from conftest import ListSink
from gate.app_config import GateConfig
from gate.daemon import run

app_module.START_EXTEND_EVERY_S = 0.1

def open_store(_config):  # one long C call, as the first read of a large outbox: Python's
    count = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})"
    sqlite3.connect(":memory:").execute(count + " SELECT count(*) FROM c").fetchone()
    return ListSink()  # signal handlers wait for its end

config = {{"camera": {{"source": "replay"}}, "signals": {{"pin_factory": "mock"}}}}
sys.exit(run(GateConfig.model_validate(config), None, open_store=open_store))
"""


@pytest.mark.slow
def test_a_sigterm_during_a_long_start_ends_the_waiting_at_once(notify_socket):
    server, path = notify_socket
    program = STUCK_IN_SQLITE.format(tests=str(Path(__file__).parent), rows=20_000_000)
    gate = subprocess.Popen(
        [sys.executable, "-c", program],
        env={**os.environ, "NOTIFY_SOCKET": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.settimeout(20)  # a gate that never asks fails the test
        before: list[str] = []  # three requests to wait: the gate is inside the long open
        while sum(text.startswith("EXTEND_TIMEOUT_USEC=") for text in before) < 3:
            before.append(server.recv(4096).decode())
        server.settimeout(0.05)
        gate.send_signal(signal.SIGTERM)
        after = messages_until(server, 0.8)
        assert gate.wait(30) == 0
    finally:
        gate.kill()

    late = [text for at, text in after if at > 0.3 and text.startswith("EXTEND")]
    assert late == []  # and no more: the stop has TimeoutStopSec, not 20 s more each time


def test_a_start_longer_than_the_limit_is_left_to_the_units_timeout(
    notify_socket, mock_factory, monkeypatch, caplog
):
    server, path = notify_socket
    monkeypatch.setattr(app_module, "START_EXTEND_EVERY_S", 0.1)
    monkeypatch.setattr(app_module, "START_EXTEND_BY_S", 0.2)
    monkeypatch.setattr(app_module, "START_EXTEND_MAX_S", 0.45)
    with starting_slowly(1.2, path, mock_factory):
        received = messages_until(server, 1.0)

    extensions = [at for at, text in received if text.startswith("EXTEND_TIMEOUT_USEC=200000\n")]
    assert 1 <= len(extensions) <= 2  # ticks at 0.1 and 0.2 s; 0.3 + 0.2 would pass 0.45 s
    assert max(extensions) < 0.4  # none once another 0.2 s would pass 0.45 s in all
    assert re.search(r"starting outbox for \d+ s: systemd is not asked to wait longer", caplog.text)
