"""The composition root: `GateApp` builds every part of `gate run`, starts them in named
steps and stops them in the reverse order.

Start: `outbox` (the store: nothing is captured before check-ins can be kept), `door`
(pins, camera, decoder, judge and the capture, status and watchdog threads: `gate.door`),
`uplink` (the publisher, after the door: loading paho is not on the way to a working door),
`commands` (remote commands, once the gate they act on runs and the channel is up). Stop,
in reverse: commands, door (capture first, then the relay to its safe state and the pins),
outbox (the publisher says `stopped` after the last commit, then the file closes).

A part that is missing raises a fault (`gate.faults`) and the rest starts: an outbox that
cannot open leaves a sink that refuses every scan with `storage_full` (no publisher then);
no pins, no decoder or no camera are handled by the door. Only a config or trust store
that cannot work stops the start (ConfigError: exit 78, not restarted).
"""

import contextlib
import logging
import queue
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from gpiozero import Factory

from gate.app_config import GateConfig
from gate.camera.source import FrameSource
from gate.checkin import CheckIn, CheckinSink
from gate.control import JOIN_TIMEOUT_S
from gate.door import Gate
from gate.errors import EXIT_RESTART, StorageError, StorageFull
from gate.faults import Fault, Faults
from gate.notify import Notifier
from gate.outbox.channel import ANY_COMMAND
from gate.outbox.service import OutboxService, open_outbox

if TYPE_CHECKING:  # loaded by _load_commands (cryptography), see _start_commands
    from gate.commands.service import CommandService

log = logging.getLogger(__name__)

POLL_S = 0.2
UPLINK_WAIT_S = 2.0
STORAGE_CHECK_S = 1.0
START_EXTEND_EVERY_S = 5.0  # while a start takes long, systemd is told this often...
START_EXTEND_BY_S = 20.0  # ...to wait this much longer for READY...
START_EXTEND_MAX_S = 600.0  # ...up to this long in all: a start that never ends is restarted
_LEAVE = b"\0"
_LEAVING = frozenset({_LEAVE[0], signal.SIGTERM, signal.SIGINT})
"""What the wake socket carries when a stop is asked: our byte, or a signal's number."""


class Request(StrEnum):
    """What the main thread is asked to do, by a signal handler or a remote command."""

    STOP = "stop"
    RELOAD = "reload"
    RESTART = "restart"


class UnavailableStore:
    """The sink when the outbox cannot open: every scan is refused with `storage_full`."""

    def __init__(self, why: str) -> None:
        self._why = why

    def commit(self, checkin: CheckIn) -> None:
        raise StorageFull(f"outbox unavailable ({self._why}): scan refused")

    def close(self) -> None:
        """Nothing was opened."""


class GateApp:
    """`gate run` as one object. Tests inject the store opener, a frame source and pins."""

    def __init__(
        self,
        config: GateConfig,
        config_path: Path | None = None,
        *,
        open_store: Callable[[GateConfig], CheckinSink] = open_outbox,
        source: FrameSource | None = None,
        pin_factory: Factory | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self._config_path = config_path
        self._open_store = open_store
        self._source = source
        self._pin_factory = pin_factory
        self.notifier = notifier or Notifier()
        self.faults = Faults()
        self.lock = threading.Lock()
        """Remote commands and SIGHUP reloads take turns on it."""
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.sink: CheckinSink | None = None
        self.outbox: OutboxService | None = None
        self.door: Gate | None = None
        self.commands: CommandService | None = None
        self._commands_lock = threading.Lock()
        self._commands_closed = False
        self._starting = ""
        self._waiting: threading.Thread | None = None
        self._leaving = False  # a stop or restart was asked: no further step starts
        self._wake_r, self._wake_w = socket.socketpair()  # ends the waiting: a stop, asked
        self._wake_r.setblocking(False)  # by `request`, `stop` or a signal (`wakeup_fd`)
        self._wake_w.setblocking(False)

    # -- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        """Each step registers its stop before it can fail, so `stop` undoes a partial start.
        Until READY, a thread asks systemd to wait (`_keep_systemd_waiting`)."""
        if self.notifier.enabled:
            self._waiting = threading.Thread(
                target=self._keep_systemd_waiting, name="gate-start", daemon=True
            )
            self._waiting.start()
        for name, step in (
            ("outbox", self._start_outbox),
            ("door", self._start_door),
            ("door", self._await_door),
            ("uplink", self._start_uplink),
            ("commands", self._start_commands),
        ):
            if self._leaving:  # a stop or restart asked meanwhile: nothing more starts
                log.info("asked to stop while starting: %s and what follows do not start", name)
                return
            self._starting = name
            log.debug("starting %s", name)
            step()
        self._starting = "door"  # READY waits for its first frame, or a fault saying why none

    def _keep_systemd_waiting(self) -> None:
        """Every few seconds until READY: EXTEND_TIMEOUT_USEC, and a STATUS naming the slow
        step. Opening an outbox of a few GB on an SD card takes minutes, and the unit's
        TimeoutStartSec would otherwise kill every start in turn (the door would never open).
        """
        started, said = time.monotonic(), ""
        while True:
            woken, _, _ = select.select([self._wake_r], [], [], START_EXTEND_EVERY_S)
            if woken and _LEAVING.intersection(self._read_wake()):
                return  # a stop asked now has TimeoutStopSec, not minutes more
            waited = time.monotonic() - started
            if waited + START_EXTEND_BY_S > START_EXTEND_MAX_S:
                log.error(
                    "starting %s for %.0f s: systemd is not asked to wait longer",
                    self._starting,
                    waited,
                )
                return
            message = (
                f"EXTEND_TIMEOUT_USEC={round(START_EXTEND_BY_S * 1e6)}\n"
                f"STATUS=starting: {self._starting} ({waited:.0f} s)"
            )
            if self.door is None:
                self.notifier.notify(message)
            elif not self.door.notify_before_ready(message):
                return  # READY was sent
            if said != self._starting:  # once a step: the STATUS line counts the seconds
                said = self._starting
                log.warning("starting %s takes long (%.0f s so far)", said, waited)

    def stop(self) -> None:
        """The started steps' stops, in reverse order; one failing does not skip the rest."""
        self._wake()
        if self._waiting is not None:
            self._waiting.join(JOIN_TIMEOUT_S)
        self.notifier.notify("STOPPING=1")
        if self.door is not None:
            self.door.make_safe()  # before waiting for commands, the lock and the threads
        while self._stops:
            name, stop = self._stops.pop()
            log.debug("stopping %s", name)
            try:
                stop()
            except Exception:  # the next steps (relay safe, store closed) must still run
                log.exception("stopping %s failed", name)
        self.notifier.close()
        self._wake_r.close()
        self._wake_w.close()

    def _start_outbox(self) -> None:
        try:
            sink = self._open_store(self.config)
        except StorageError as exc:
            self.faults.report(Fault.STORAGE_FULL, f"outbox unavailable: {exc}")
            log.error("outbox unavailable, every scan is refused storage_full: %s", exc)
            sink = UnavailableStore(str(exc))
        self.sink = sink
        self._stops.append(("outbox", sink.close))
        if isinstance(sink, OutboxService):
            self.outbox = sink
            self.faults.on_change = sink.status_changed
            sink.report(self.telemetry, self.faults.listing)
            self._check_storage()

    def _start_door(self) -> None:
        assert self.sink is not None
        outbox = self.outbox
        self.door = Gate(
            self.config,
            sink=self.sink,
            source=self._source,
            pin_factory=self._pin_factory,
            config_path=self._config_path,
            notifier=self.notifier,
            online=(lambda: outbox.connected) if outbox is not None else None,
            health=outbox.problem if outbox is not None else None,
            faults=self.faults,
        )
        self._stops.append(("door", self._close_door))
        self.door.start()

    def _close_door(self) -> None:
        assert self.door is not None
        with _held(self.lock, JOIN_TIMEOUT_S * 2):  # a command's reload finishes first
            self.door.close()

    def _await_door(self) -> None:
        """Until the door serves (READY sent), for at most `UPLINK_WAIT_S`, or a request:
        loading paho for the uplink beside the first frame would delay READY."""
        assert self.door is not None
        deadline = time.monotonic() + UPLINK_WAIT_S
        while self._requests.empty() and time.monotonic() < deadline:
            if self.door.serving.wait(POLL_S / 4):
                return

    def _start_uplink(self) -> None:
        """The publisher; it stops with the outbox (after the door's last commit)."""
        if self.outbox is not None:
            self.outbox.start_uplink()

    def _start_commands(self) -> None:
        """Remote commands load now when an operations key is configured. Without one they
        load when the first command arrives (to answer it `commands_disabled`, or run it if
        a reload has brought a key since): until then cryptography is not loaded."""
        if self.outbox is None:
            return
        self._stops.append(("commands", self._stop_commands))
        if self.config.commands.public_keys:
            self._load_commands()
        else:
            self.outbox.on_command(ANY_COMMAND, self._first_command)

    def _first_command(self, name: str, payload: bytes) -> None:
        """In the publisher's thread: load the command service, then hand it this command."""
        service = self._load_commands()
        if service is not None:
            service.received(name, payload)

    def _load_commands(self) -> "CommandService | None":
        """The command service, built and started once (None once stopping)."""
        with self._commands_lock:
            if self.commands is None and not self._commands_closed:
                assert self.outbox is not None and self.door is not None
                log.debug("loading remote commands")
                from gate.commands.service import CommandService

                self.commands = CommandService(
                    self.door,
                    self.outbox,
                    lock=self.lock,
                    restart=lambda: self.request(Request.RESTART),
                    outbox=self.outbox,
                )
                self.commands.start()
            return self.commands

    def _stop_commands(self) -> None:
        with self._commands_lock:
            self._commands_closed = True
        if self.commands is not None:
            self.commands.stop()

    # -- running -----------------------------------------------------------------------------

    def request(self, request: Request) -> None:
        """Ask the main thread for a stop, reload or restart; safe in a signal handler."""
        if request is not Request.RELOAD:
            self._leaving = True
            self._wake()
        self._requests.put(request)

    @property
    def wakeup_fd(self) -> int:
        """For `signal.set_wakeup_fd`: a SIGTERM or SIGINT ends the start's waiting at once,
        even while the main thread, which runs Python's handlers, is inside a long C call
        (the first read of a large outbox)."""
        return self._wake_w.fileno()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: woken anyway; closed: stopped
            self._wake_w.send(_LEAVE)

    def _read_wake(self) -> bytes:
        try:
            return self._wake_r.recv(256)
        except BlockingIOError:  # nothing after all
            return b""
        except OSError:  # closed: stopped
            return _LEAVE

    def serve(self) -> int:
        """Run until asked to stop (0), to restart (EXIT_RESTART), or a finite replay ends.
        Without a door (a stop asked before it started) that request is already queued."""
        door = self.door
        checked = time.monotonic()
        while True:
            try:
                request = self._requests.get(timeout=POLL_S)
            except queue.Empty:
                if door is None or door.finished.is_set():
                    return 0
                if time.monotonic() - checked >= STORAGE_CHECK_S:
                    checked = time.monotonic()
                    self._check_storage()
                continue
            if request is Request.STOP:
                return 0
            if request is Request.RESTART:
                return EXIT_RESTART
            if door is not None and not door.finished.is_set():
                with self.lock:
                    restart = door.reload()
                if restart:
                    return EXIT_RESTART

    def _check_storage(self) -> None:
        """Raise or clear `storage_full` as the outbox fills and drains."""
        if self.outbox is None:
            return
        full = self.outbox.full()
        if full is None:
            self.faults.clear(Fault.STORAGE_FULL)
        else:
            self.faults.report(Fault.STORAGE_FULL, full)

    def telemetry(self) -> dict[str, object]:
        """The door's counters, the faults and the sd_notify messages dropped (a service
        manager that stopped reading), for the publisher (read from its thread)."""
        door = self.door.telemetry() if self.door is not None else {"faults": self.faults.listing()}
        return door | {"notify_dropped": self.notifier.dropped}


@contextlib.contextmanager
def _held(lock: threading.Lock, timeout: float) -> Iterator[None]:
    """Hold `lock` if it comes within `timeout`; go on regardless when it does not."""
    acquired = lock.acquire(timeout=timeout)
    if not acquired:
        log.error("a command still holds the gate after %.0f s: stopping anyway", timeout)
    try:
        yield
    finally:
        if acquired:
            lock.release()
