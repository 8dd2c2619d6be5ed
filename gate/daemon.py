"""`gate run`: wires source, decoder, presentation, policy, store and signals, and keeps them up.

Threads, each named, with a stop event and a join timeout: `capture` (the pipeline),
`status` (the periodic log line and systemd STATUS), `watchdog` (READY, WATCHDOG pings
from the capture loop's progress, offline heartbeat), `signals-idle`, `pin-change-log`
with mock pins, `gate-publisher` (the paho client) and `gate-commands` (remote commands),
plus gpiozero's own blink and button threads. Shutdown order: commands, then capture (no
new check-ins), the camera, the relay to its safe state and the pins, then the publisher
(`stopped`) and the outbox. The main thread only waits for signals from the OS.
"""

import contextlib
import copy
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from types import FrameType

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from gate.app_config import RESTART_SECTIONS, GateConfig, load_config
from gate.camera.source import FrameSource, make_source
from gate.checkin import CheckinSink
from gate.errors import EXIT_CONFIG, CameraError, ConfigError, GateError
from gate.files import write_atomically
from gate.identity import clock_synced
from gate.judge import load_judge
from gate.notify import Notifier
from gate.outbox.service import open_outbox
from gate.passages import Passages
from gate.pipeline import Counters, Pipeline
from gate.presentation import PresentationTracker
from gate.signals import PinChangeLog, Signals, make_pin_factory

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0
MODE_FILE = "mode"
EXIT_CAMERA_WEDGED = 70


class Mode(StrEnum):
    """What the operations team set the gate to; kept across restarts."""

    NORMAL = "normal"
    LOCKED = "locked"  # every scan refused with `gate_locked`; the exit button still opens
    EMERGENCY_OPEN = "emergency_open"  # relay held open (fire): scans still recorded


class Gate:
    """The running gate. Hardware and the store come in through the constructor, so tests
    pass a replay source, gpiozero's MockFactory and a store of their choosing."""

    def __init__(
        self,
        config: GateConfig,
        *,
        sink: CheckinSink,
        source: FrameSource | None = None,
        pin_factory: Factory | None = None,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        online: Callable[[], bool] | None = None,
        health: Callable[[], str | None] | None = None,
    ) -> None:
        self.config = config
        self._sink = sink
        self._given_source = source
        self._pin_factory = pin_factory
        self._own_factory: Factory | None = None
        self._config_path = config_path
        self._notifier = notifier or Notifier({})
        self._online = online
        self._health = health
        self._ready_sent = False
        self.counters = Counters()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._capture: threading.Thread | None = None
        self._status: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._pin_log: PinChangeLog | None = None
        self.signals: Signals | None = None
        self._tracker: PresentationTracker | None = None
        self._passages = Passages(config.policy.anti_passback_minutes * 60)
        self._pipeline: Pipeline | None = None
        self.mode = Mode.NORMAL
        self._source: FrameSource | None = None

    def start(self) -> None:
        config = self.config
        if self._pin_factory is None:
            self._pin_factory = self._own_factory = make_pin_factory(config.signals.pin_factory)
        factory = self._pin_factory
        self._source = self._given_source or make_source(config.camera)
        self.signals = Signals(config.signals, factory)
        if isinstance(factory, MockFactory):
            self._pin_log = PinChangeLog(self.signals.named_devices())
            self._pin_log.start()
        if self._tracker is None or self._tracker.config != config.presentation:
            self._tracker = PresentationTracker(config.presentation)
        self._passages.window_s = config.policy.anti_passback_minutes * 60
        pipeline = Pipeline.from_config(
            config,
            self._sink,
            self.signals,
            counters=self.counters,
            tracker=self._tracker,
            passages=self._passages,
        )
        self._pipeline = pipeline
        self._apply_mode(self._stored_mode())
        self._stop.clear()
        self.finished.clear()
        self._capture = threading.Thread(
            target=self._capture_loop, args=(pipeline, self._source), name="capture", daemon=True
        )
        self._status = threading.Thread(target=self._status_loop, name="status", daemon=True)
        self._watchdog = threading.Thread(target=self._watchdog_loop, name="watchdog", daemon=True)
        self._capture.start()
        self._status.start()
        self._watchdog.start()
        log.info(
            "gate %s/%s/%s running: camera %s, decoder %s, accepting %s",
            config.site.province,
            config.site.venue_id,
            config.site.gate_id,
            self._source.name,
            pipeline.decoder_name,
            ", ".join(sorted(config.policy.accept_kinds)),
        )

    def stop(self) -> None:
        """Capture first (no new check-ins), then the pins with the relay safe."""
        self._stop.set()
        camera = self.config.camera
        capture_s = camera.frame_timeout_s + camera.close_timeout_s + JOIN_TIMEOUT_S
        for thread, timeout in (
            (self._capture, capture_s),
            (self._status, JOIN_TIMEOUT_S),
            (self._watchdog, JOIN_TIMEOUT_S),
        ):
            if thread is not None:
                thread.join(timeout)
                if thread.is_alive():
                    log.error("thread %s did not stop within %s s", thread.name, timeout)
        if self.signals is not None:
            self.signals.close()
            self.signals = None
        if self._pin_log is not None:
            self._pin_log.stop()
            self._pin_log = None

    def set_mode(self, mode: Mode) -> None:
        """Lock, hold open or return to normal, now and after a restart (synced to disk)."""
        path = self.config.site.state_dir / MODE_FILE
        try:
            write_atomically(path, json.dumps({"mode": mode}).encode("utf-8"))
        except OSError as exc:
            log.error("mode %s applied but not kept across a restart: %s", mode, exc)
        self._apply_mode(mode)

    def refresh_policy(self) -> None:
        """Rebuild the judge from the running config and the remote lists, and swap it in.

        Raises GateError (a list or key that cannot load) and keeps the old judge then.
        """
        judge = load_judge(self.config)
        if self._pipeline is not None:
            self._pipeline.use_judge(judge)

    def open_once(self) -> bool:
        """One bounded opening (remote open). False when the signals are not up."""
        if self.signals is None:
            return False
        self.signals.open_relay()
        return True

    def _apply_mode(self, mode: Mode) -> None:
        if mode is not self.mode:
            log.warning("gate mode: %s", mode)
        self.mode = mode
        if self._pipeline is not None:
            self._pipeline.locked = mode is Mode.LOCKED
        if self.signals is not None:
            self.signals.hold_relay(mode is Mode.EMERGENCY_OPEN)

    def _stored_mode(self) -> Mode:
        path = self.config.site.state_dir / MODE_FILE
        try:
            return Mode(json.loads(path.read_text(encoding="utf-8"))["mode"])
        except FileNotFoundError:
            return Mode.NORMAL
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read the stored gate mode %s (%s): normal", path, exc)
            return Mode.NORMAL

    def close(self) -> None:
        """Stop, then release the pin factory the gate made (once, at the very end)."""
        self.stop()
        if self._own_factory is not None:
            self._own_factory.close()
            self._own_factory = self._pin_factory = None

    def reload(self) -> bool:
        """Re-read the config file; an invalid file is reported and the running config kept.

        Returns True when the new file changes what the store and the publisher hold open
        (site, outbox, mqtt, privacy): the caller then restarts the whole daemon.
        """
        if self._config_path is None:
            log.warning("reload requested but the gate was started without a config file")
            return False
        try:
            new = load_config(self._config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            return False
        old = self.config
        changed = [name for name in RESTART_SECTIONS if getattr(new, name) != getattr(old, name)]
        if new.signals.pin_factory != old.signals.pin_factory:
            changed.append("signals.pin_factory")
        if changed:
            log.warning("reload changes %s: restarting the daemon to apply", ", ".join(changed))
            return True
        log.info("reloading %s", self._config_path)
        self.stop()
        self.config = new
        try:
            self.start()
        except GateError as exc:
            log.error("reloaded config cannot start (%s): back to the previous one", exc)
            self.stop()
            self.config = old
            try:
                self.start()
            except GateError as again:
                log.error("the previous config cannot start either (%s): restarting", again)
                return True
        return False

    def status_line(self, since: Counters, seconds: float) -> str:
        now = self.counters
        frames = now.frames - since.frames
        decode_ms = (now.decode_ns - since.decode_ns) / frames / 1e6 if frames else 0.0
        return (
            f"fps={frames / seconds:.1f} decode_ms={decode_ms:.2f} "
            f"max_ms={now.decode_ns_max / 1e6:.1f} scans={now.scans} accepted={now.accepted} "
            f"refused={now.refused} duplicates={now.duplicates} errors={now.errors} "
            f"storage_full={now.storage_full} camera_restarts={now.camera_restarts}"
        )

    def _capture_loop(self, pipeline: Pipeline, source: FrameSource) -> None:
        """Run frames through the pipeline; restart a failed camera, rate-limited."""
        process = pipeline.process
        last_start = float("-inf")
        while not self._stop.is_set():
            wait = last_start + self.config.camera.restart_min_interval_s - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            last_start = time.monotonic()
            try:
                source.open()
                for frame in source.frames(self._stop):
                    process(frame)
                if not self._stop.is_set():
                    log.info("frame source %s has no more frames", source.name)
                    self.finished.set()
                    return
            except CameraError as exc:
                self.counters.camera_restarts += 1
                log.error("camera failed, restarting: %s", exc)
            except Exception as exc:
                self.counters.errors += 1
                self.counters.camera_restarts += 1
                log.error(
                    "capture loop failed, restarting it: %r",
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            finally:
                self._close_source(source)

    def _close_source(self, source: FrameSource) -> None:
        """A camera wedged in the driver never returns from close: exit and let systemd restart."""
        closer = threading.Thread(target=source.close, name="camera-close", daemon=True)
        closer.start()
        closer.join(self.config.camera.close_timeout_s)
        if closer.is_alive():
            log.critical(
                "camera did not close within %s s: exiting for a clean restart",
                self.config.camera.close_timeout_s,
            )
            if self.signals is not None:
                self.signals.hold_relay(False)  # the relay safe before the hard exit
            logging.shutdown()
            os._exit(EXIT_CAMERA_WEDGED)

    def _status_loop(self) -> None:
        interval = self.config.log.status_interval_s
        since, at = copy.copy(self.counters), time.monotonic()
        synced = _log_clock(None)
        while not self._stop.wait(interval):
            now = time.monotonic()
            line = self.status_line(since, now - at)
            log.info("status: %s", line)
            self._notifier.notify(f"STATUS={line}")
            since, at = copy.copy(self.counters), now
            self.counters.decode_ns_max = 0
            synced = _log_clock(synced)

    def _watchdog_loop(self) -> None:
        """READY once frames flow; then WATCHDOG pings only while the capture loop progresses.

        The pings come from the capture loop's own progress (the time of its last frame), so
        a hung camera or a dead capture thread stops them and systemd restarts the service.
        """
        stall_s = self.config.service.stall_s
        period = min(self._notifier.watchdog_s / 2, 1.0) if self._notifier.watchdog_s else 1.0
        reported: str | None = None
        while not self._stop.wait(period if self._ready_sent else 0.1):
            last = self.counters.last_frame_at
            if not self._ready_sent:
                if last:
                    self._notifier.notify("READY=1")
                    self._ready_sent = True
                continue
            if self._online is not None and self.signals is not None:
                self.signals.set_offline(not self._online())
            problem = self._problem(time.monotonic() - last > stall_s, stall_s)
            if problem is None:
                self._notifier.notify("WATCHDOG=1")
            elif problem != reported:
                log.error("%s: withholding watchdog pings", problem)
            reported = problem

    def _problem(self, stalled: bool, stall_s: float) -> str | None:
        if stalled:
            return f"no frame processed for {stall_s:.0f} s"
        return self._health() if self._health is not None else None

    def telemetry(self) -> dict[str, object]:
        """The capture side's counters for the publisher's telemetry (read from its thread)."""
        counters = copy.copy(self.counters)
        telemetry: dict[str, object] = {
            name: getattr(counters, name) for name in Counters.__slots__ if name != "last_frame_at"
        }
        telemetry["decode_ms_avg"] = (
            round(counters.decode_ns / counters.frames / 1e6, 3) if counters.frames else None
        )
        telemetry["door_open"] = self.signals.door_open if self.signals is not None else None
        telemetry["mode"] = str(self.mode)
        return telemetry


def _log_clock(was: bool | None) -> bool:
    """Warn at start when the clock is not synchronised, and log every change after."""
    synced = clock_synced()
    if not synced and was is not False:
        log.warning(
            "clock not synchronised: check-ins carry clock_synced=false until NTP sets it "
            "(`timedatectl status`)"
        )
    elif synced and was is False:
        log.info("clock synchronised")
    return synced


EXIT_RESTART = 75
"""EX_TEMPFAIL: asks systemd (Restart=on-failure) to start the daemon again, to apply a reload."""


def run(
    config: GateConfig,
    config_path: Path | None,
    sink_factory: Callable[[GateConfig], CheckinSink] = open_outbox,
) -> int:
    """Run until SIGTERM/SIGINT (or a finite replay ends); SIGHUP reloads the config.

    The store comes first and goes last: nothing is captured before check-ins can be kept,
    and the publisher says `stopped` only after the last check-in was committed. Remote
    commands (`gate.commands`) arrive through the publisher once the gate runs; they and
    SIGHUP reloads take turns on `gate_lock`, and they stop first, before capture.
    """
    stop = threading.Event()
    terminate = threading.Event()
    reload_requested = threading.Event()
    restart_requested = threading.Event()
    gate_lock = threading.Lock()

    def request_restart() -> None:
        """A remote reload that needs a restart: exit as SIGHUP's would."""
        restart_requested.set()
        stop.set()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        terminate.set()
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        reload_requested.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    notifier = Notifier()
    try:
        sink = sink_factory(config)
    except GateError as exc:
        log.error("cannot open the check-in store: %s", exc)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1
    publisher = getattr(sink, "publisher", None)
    gate = Gate(
        config,
        sink=sink,
        config_path=config_path,
        notifier=notifier,
        online=(lambda: publisher.connected) if publisher is not None else None,
        health=getattr(sink, "problem", None),
    )
    if publisher is not None:
        publisher.telemetry = gate.telemetry
    try:
        gate.start()
    except GateError as exc:
        log.error("cannot start: %s", exc)
        gate.close()
        sink.close()
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1
    status = 0
    commands = None
    try:
        if publisher is not None:
            from gate.commands.service import CommandService  # late: it imports this module

            commands = CommandService(
                gate,
                publisher,
                lock=gate_lock,
                restart=request_restart,
                outbox=getattr(sink, "outbox", None),
            )
            commands.start()
        while True:
            while not stop.wait(0.2):
                if gate.finished.is_set():
                    stop.set()
            if restart_requested.is_set():
                status = EXIT_RESTART
                break
            if reload_requested.is_set() and not (gate.finished.is_set() or terminate.is_set()):
                reload_requested.clear()
                stop.clear()
                with gate_lock:
                    restart = gate.reload()
                if restart:
                    status = EXIT_RESTART
                    break
                continue
            break
    finally:
        notifier.notify("STOPPING=1")
        if commands is not None:
            commands.stop()
        with _held(gate_lock, JOIN_TIMEOUT_S * 2):  # a command's reload finishes first
            gate.close()
        sink.close()
        notifier.close()
    log.info("stopped")
    return status


@contextlib.contextmanager
def _held(lock: threading.Lock, timeout: float) -> Iterator[None]:
    """Hold `lock` if it comes within `timeout`; shut down regardless when it does not."""
    acquired = lock.acquire(timeout=timeout)
    if not acquired:
        log.error("a command still holds the gate after %.0f s: stopping anyway", timeout)
    try:
        yield
    finally:
        if acquired:
            lock.release()
