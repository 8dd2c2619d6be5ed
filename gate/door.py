"""The door side of the running gate: camera, decoder, judge, signals and mode, and the
threads that run them (`capture`, `status`, `watchdog`).

A part that is missing does not stop the gate: no pins, no decoder or no camera each raise
a fault (`gate.faults`) and the rest runs. READY goes to systemd once frames flow or a
fault says why they cannot; watchdog pings follow the capture loop's progress while it is
meant to make some. `gate.app` builds this with the store and the publisher.
"""

import copy
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from gate.app_config import RESTART_SECTIONS, GateConfig, load_config
from gate.camera.source import FrameSource, make_source
from gate.checkin import CheckinSink
from gate.control import JOIN_TIMEOUT_S, Mode
from gate.decode import Decoder, make_decoder
from gate.errors import (
    EXIT_CAMERA_WEDGED,
    CameraError,
    CameraMissing,
    ConfigError,
    DecoderError,
    GateError,
    SignalError,
)
from gate.faults import Fault, Faults
from gate.files import write_atomically
from gate.identity import clock_synced
from gate.judge import load_judge
from gate.notify import Notifier
from gate.passages import Passages
from gate.pipeline import Counters, Pipeline
from gate.presentation import PresentationTracker
from gate.signals import PinChangeLog, Signals, make_pin_factory

log = logging.getLogger(__name__)

MODE_FILE = "mode"
READY_POLL_S = 0.1
"""How often, before READY, the watchdog looks at the faults (a start with no camera is READY
with its fault); the first frame wakes it at once."""
NO_FRAME_TRIES = 3
"""Capture failures in a row, with no frame between them, that make a camera which opens
`camera_missing`: one timeout is a glitch a reopen cures; three (each at least
`restart_min_interval_s` apart, about 12 s by default) are a camera that cannot deliver, and
READY must come well within systemd's TimeoutStartSec (60 s)."""


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
        faults: Faults | None = None,
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
        self.faults = faults or Faults()
        self._ready_lock = threading.Lock()  # READY, and what may be sent only before it
        self._first_frame = threading.Event()
        self.serving = threading.Event()
        """Set once READY is sent (frames flow, or a fault says why they cannot)."""
        self.counters = Counters()
        self.finished = threading.Event()
        self._stop = threading.Event()
        """The running threads' stop; each start makes a new one, so a thread that outlived
        its join (a read stuck in the driver) stays stopped and never reads beside its
        successor."""
        self._threads: list[threading.Thread] = []
        self._pin_log: PinChangeLog | None = None
        self.signals: Signals | None = None
        self._tracker: PresentationTracker | None = None
        self._passages = Passages(config.policy.anti_passback_minutes * 60)
        self._pipeline: Pipeline | None = None
        self.mode = Mode.NORMAL
        self._mode_known = False
        """The mode is read from its file at the first start only: a reload keeps the running
        one, which may not have been kept on disk (a full or read-only card)."""
        self._source: FrameSource | None = None

    def start(self) -> None:
        """Build what can be built and start the threads; a missing part raises its fault.

        Raises ConfigError (TrustError) when the judge cannot load: that needs a person.
        """
        config = self.config
        judge = load_judge(config, every_kind=False)
        self.signals = self._start_signals()
        source = self._open_source()
        decoder = self._make_decoder()
        if self._tracker is None or self._tracker.config != config.presentation:
            self._tracker = PresentationTracker(config.presentation)
        self._passages.window_s = config.policy.anti_passback_minutes * 60
        self._pipeline = None
        if self.signals is not None and decoder is not None:
            self._pipeline = Pipeline.from_config(
                config,
                self._sink,
                self.signals,
                decoder=decoder,
                judge=judge,
                counters=self.counters,
                tracker=self._tracker,
                passages=self._passages,
            )
        self._apply_mode(self.mode if self._mode_known else self._stored_mode())
        self._mode_known = True
        stop = self._stop = threading.Event()
        self.finished.clear()
        self._threads = [
            threading.Thread(target=self._status_loop, args=(stop,), name="status", daemon=True),
            threading.Thread(
                target=self._watchdog_loop, args=(stop,), name="watchdog", daemon=True
            ),
        ]
        if self._pipeline is not None and source is not None:
            self._threads.insert(
                0,
                threading.Thread(
                    target=self._capture_loop,
                    args=(self._pipeline, source, stop),
                    name="capture",
                    daemon=True,
                ),
            )
        for thread in self._threads:
            thread.start()
        log.info(
            "gate %s/%s/%s running: camera %s, decoder %s, accepting %s",
            config.site.province,
            config.site.venue_id,
            config.site.gate_id,
            source.name if source is not None else "none",
            decoder.name if decoder is not None else "none",
            ", ".join(sorted(config.policy.accept_kinds)),
        )

    def _start_signals(self) -> Signals | None:
        """The pins, or the `gpio_unavailable` fault (then nothing can open or signal)."""
        try:
            if self._pin_factory is None:
                self._pin_factory = self._own_factory = make_pin_factory(
                    self.config.signals.pin_factory
                )
            signals = Signals(self.config.signals, self._pin_factory)
        except SignalError as exc:
            self.faults.report(Fault.GPIO_UNAVAILABLE, str(exc))
            log.error("no pins, out of service (nothing can open or signal): %s", exc)
            return None
        self.faults.clear(Fault.GPIO_UNAVAILABLE)
        if isinstance(self._pin_factory, MockFactory):
            self._pin_log = PinChangeLog(signals.named_devices())
            self._pin_log.start()
        return signals

    def _open_source(self) -> FrameSource | None:
        """The frame source, or `camera_missing`; the capture loop clears it once frames flow."""
        try:
            self._source = self._given_source or make_source(self.config.camera)
        except CameraError as exc:
            self.faults.report(Fault.CAMERA_MISSING, str(exc))
            log.error("no frame source, out of service: %s", exc)
            return None
        return self._source

    def _make_decoder(self) -> Decoder | None:
        try:
            decoder = make_decoder(self.config.decoder)
        except DecoderError as exc:
            self.faults.report(Fault.NO_DECODER, str(exc))
            log.error("no QR decoder, out of service: %s", exc)
            return None
        self.faults.clear(Fault.NO_DECODER)
        return decoder

    def stop(self) -> None:
        """The relay safe first (systemd may kill a stop that waits), then capture (no new
        check-ins), then the pins."""
        self.make_safe()
        self._stop.set()
        camera = self.config.camera
        capture_s = camera.frame_timeout_s + camera.close_timeout_s + JOIN_TIMEOUT_S
        for thread in self._threads:
            timeout = capture_s if thread.name == "capture" else JOIN_TIMEOUT_S
            thread.join(timeout)
            if thread.is_alive():
                log.error("thread %s did not stop within %s s", thread.name, timeout)
        self._threads = []
        if self.signals is not None:
            self.signals.close()
            self.signals = None
        if self._pin_log is not None:
            self._pin_log.stop()
            self._pin_log = None

    def make_safe(self) -> None:
        """Relay off and no new opening until the next start (the first step of a stop)."""
        if self.signals is not None:
            self.signals.make_safe()

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
        judge = load_judge(self.config, every_kind=False)
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
        was_in_service = not self.faults.out_of_service
        self.stop()
        self.config = new
        problem = self._start_or_problem()
        if problem is None and was_in_service and self.faults.out_of_service:
            problem = self.faults.summary()
        if problem is None:
            return False
        log.error("reloaded config cannot start (%s): back to the previous one", problem)
        self.stop()
        self.config = old
        again = self._start_or_problem()
        if again is not None:
            log.error("the previous config cannot start either (%s): restarting", again)
            return True
        return False

    def _start_or_problem(self) -> str | None:
        try:
            self.start()
        except GateError as exc:
            return str(exc)
        return None

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

    def _capture_loop(self, pipeline: Pipeline, source: FrameSource, stop: threading.Event) -> None:
        """Run frames through the pipeline; restart a failed camera, rate-limited."""
        process = pipeline.process
        last_start = float("-inf")
        failures = 0  # capture failures since the last frame (a failed open has its own fault)
        while not stop.is_set():
            wait = last_start + self.config.camera.restart_min_interval_s - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            last_start = time.monotonic()
            try:
                self._open_camera(source)
                frames = iter(source.frames(stop))
                for frame in frames:  # the first frame: the camera delivers
                    failures = 0
                    self.faults.clear(Fault.CAMERA_MISSING)
                    process(frame)
                    self._first_frame.set()
                    break
                for frame in frames:
                    process(frame)
                if not stop.is_set():
                    log.info("frame source %s has no more frames", source.name)
                    self.finished.set()
                    return
            except CameraMissing:
                self.counters.camera_restarts += 1
            except CameraError as exc:
                self.counters.camera_restarts += 1
                log.error("camera failed, restarting: %s", exc)
                failures = self._capture_failed(source, failures + 1, exc)
            except Exception as exc:
                self.counters.errors += 1
                self.counters.camera_restarts += 1
                log.error(
                    "capture loop failed, restarting it: %r",
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                failures = self._capture_failed(source, failures + 1, exc)
            finally:
                self._close_source(source)

    def _capture_failed(self, source: FrameSource, failures: int, exc: Exception) -> int:
        """Raise `camera_missing` once `failures` in a row have brought no frame; returns it."""
        if failures >= NO_FRAME_TRIES and self.faults.report(
            Fault.CAMERA_MISSING, f"{source.name} opens but gives no frames: {exc}"
        ):
            log.error(
                "camera %s opened but gave no frame in %s tries: out of service",
                source.name,
                failures,
            )
        return failures

    def _open_camera(self, source: FrameSource) -> None:
        """Open, or raise `camera_missing` (logged once per cause) and CameraMissing. The
        fault clears at the first frame, not here: a camera may open and give none."""
        try:
            source.open()
        except CameraError as exc:
            if self.faults.report(Fault.CAMERA_MISSING, str(exc)):
                log.error(
                    "camera unavailable, trying again every %s s: %s",
                    self.config.camera.restart_min_interval_s,
                    exc,
                )
            raise CameraMissing(str(exc)) from exc

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

    def _status_loop(self, stop: threading.Event) -> None:
        interval = self.config.log.status_interval_s
        since, at = copy.copy(self.counters), time.monotonic()
        synced = _log_clock(None)
        while not stop.wait(interval):
            now = time.monotonic()
            line = self.status_line(since, now - at)
            summary = self.faults.summary()
            log.info("status: %s", line if summary is None else f"{line} {summary}")
            self._notifier.notify(f"STATUS={summary or line}")
            since, at = copy.copy(self.counters), now
            self.counters.decode_ns_max = 0
            synced = _log_clock(synced)

    def _watchdog_loop(self, stop: threading.Event) -> None:
        """READY once frames flow or a fault says why they cannot (STATUS says which); then
        WATCHDOG pings while the capture loop progresses, or while it is not meant to.

        The pings come from the capture loop's own progress (the time of its last frame), so
        a hung camera or a dead capture thread stops them and systemd restarts the service.
        A camera that is missing (its open fails at once) is a fault, not a hang: pings go on.
        """
        stall_s = self.config.service.stall_s
        period = min(self._notifier.watchdog_s / 2, 1.0) if self._notifier.watchdog_s else 1.0
        reported: str | None = None
        shown = self.faults.summary()
        while not stop.is_set():
            if self.serving.is_set():
                if stop.wait(period):
                    break
            else:
                self._first_frame.wait(READY_POLL_S)  # returns at once at the first frame
                if stop.is_set():
                    break
            if self.signals is not None:
                self.signals.set_out_of_service(self.faults.out_of_service)
            summary = self.faults.summary()
            if not self.serving.is_set():
                if self._first_frame.is_set() or summary is not None:
                    with self._ready_lock:
                        self._notifier.notify(f"READY=1\nSTATUS={summary or 'running'}")
                        self.serving.set()
                    shown = summary
                continue
            if summary != shown:
                self._notifier.notify(f"STATUS={summary or 'running'}")
                shown = summary
            if self._online is not None and self.signals is not None:
                self.signals.set_offline(not self._online())
            problem = self._problem(stall_s)
            if problem is None:
                self._notifier.notify("WATCHDOG=1")
            elif problem != reported:
                log.error("%s: withholding watchdog pings", problem)
            reported = problem

    def notify_before_ready(self, message: str) -> bool:
        """Send `message` to systemd if READY has not been sent; False once it has (a
        starting STATUS after READY would stay until the next status line)."""
        with self._ready_lock:
            if self.serving.is_set():
                return False
            self._notifier.notify(message)
            return True

    def _problem(self, stall_s: float) -> str | None:
        capturing = any(thread.name == "capture" for thread in self._threads)
        waiting = time.monotonic() - self.counters.last_frame_at
        if capturing and Fault.CAMERA_MISSING not in self.faults and waiting > stall_s:
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
        telemetry["faults"] = self.faults.listing()
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
