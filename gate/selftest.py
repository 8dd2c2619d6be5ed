"""`gate selftest`: the technician's check at the door, one row per part, each with what to do.

Rows, in order: config, service, green_led, red_led, buzzer, relay, camera, exposure, code,
broker, clock, disk, outbox. Each is pass, warn or fail with a measured value; a failure or
a warning says what to do. A row that depends on one that failed is `skip` (one cause, one
failure): exposure and code when the camera gave no frames.

While gate.service runs it holds the camera and the pins, and two programs driving one relay
is unsafe: the `service` row then fails ("stop the service") and the pin and camera rows are
skipped, not attempted. The self-test never creates anything under `site.state_dir` (it
often runs as root): the outbox is read read-only, and the broker round trip uses its own
client id (`gate-<device>-selftest`) so the running daemon's session is never taken over.
"""

import argparse
import datetime
import json
import secrets
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from enum import StrEnum
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from gpiozero import DigitalOutputDevice, Factory
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gate.camera.source import FrameSource, make_source
from gate.config.model import DEFAULT_PATH, GateConfig, load_config
from gate.credentials import NO_TRUST, parse
from gate.decode import Code, Decoder, make_decoder
from gate.errors import CameraError, ConfigError, DecoderError, SignalError, TrustError
from gate.outbox.identity import client_id, clock_synced, device_id, topic_root
from gate.outbox.publisher import connect, new_client
from gate.outbox.queue_command import summary
from gate.outbox.store import outbox_path
from gate.signals import Signals, make_pin_factory
from gate.trust.store import load_trust

SERVICE = "gate.service"
CHECKS = ("signals", "camera", "broker", "clock", "disk", "outbox")
"""What `--only` selects; the config row always runs, the service row with signals or camera."""

BUSY_STATES = frozenset({"active", "activating", "reloading", "deactivating", "refreshing"})
"""systemd states in which the daemon may hold the camera and the pins."""

MAX_EXPOSURE_US = 10_000
"""Longer exposures blur a code moved by hand (PI-NOTES: 2-6 ms freezes one)."""

STALE_OUTBOX_S = 3600.0
"""An unsent check-in older than this means events are not leaving the gate."""

STOP_SERVICE = (
    "stop the service: sudo systemctl stop gate; run the self-test again, "
    "then sudo systemctl start gate"
)


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: `action` is what to do, set on warnings and failures."""

    name: str
    status: Status
    value: str
    detail: str = ""
    action: str = ""


def service_state() -> str | None:
    """`systemctl is-active gate.service` ('active', 'inactive', 'failed'...); None without
    systemd (no systemctl, or systemd is not the init here)."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return None
    try:
        done = subprocess.run(
            [systemctl, "is-active", SERVICE], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Options:
    """What to check and how long; the machine probes are injectable for tests."""

    only: frozenset[str] = frozenset(CHECKS)
    code_timeout_s: float = 15.0
    pin_on_s: float = 1.0
    """How long each LED, the buzzer and the relay stay on: long enough to see and hear."""
    camera_window_s: float = 2.0
    clock_synced: Callable[[], bool] = clock_synced
    service_state: Callable[[], str | None] = service_state
    pin_factory: Factory | None = None
    """None: the config's `signals.pin_factory`."""
    say: Callable[[str], None] = _say
    """Progress and prompts for the technician (standard error by default)."""


def run_checks(config: GateConfig, config_path: Path, options: Options) -> list[Row]:
    """Every selected row, in the report's order."""
    site = config.site
    rows = [
        Row(
            "config",
            Status.PASS,
            str(config_path),
            f"gate {site.province}/{site.venue_id}/{site.gate_id}, camera {config.camera.source}",
        )
    ]
    hardware = options.only & {"signals", "camera"}
    busy = False
    if hardware:
        service = _service_row(options.service_state())
        busy = service.status is Status.FAIL
        rows.append(service)
    if "signals" in options.only:
        if busy:
            rows += _skipped(SIGNAL_ROWS, "not run: gate.service holds the pins")
        else:
            options.say("signals: watch the LEDs and listen to the buzzer and the relay")
            rows += _signal_rows(config, options)
    if "camera" in options.only:
        if busy:
            rows += _skipped(CAMERA_ROWS, "not run: gate.service holds the camera")
        else:
            rows += _camera_rows(config, options)
    if "broker" in options.only:
        options.say(f"broker: connecting to {config.mqtt.host}")
        rows.append(_broker_row(config))
    if "clock" in options.only:
        rows.append(_clock_row(options.clock_synced()))
    if "disk" in options.only:
        rows.append(_disk_row(config))
    if "outbox" in options.only:
        rows.append(_outbox_row(config))
    return rows


def _skipped(names: Sequence[str], why: str) -> list[Row]:
    return [Row(name, Status.SKIP, "not run", why) for name in names]


def _service_row(state: str | None) -> Row:
    if state is None:
        return Row("service", Status.PASS, "no systemd", "gate.service cannot be running here")
    if state in BUSY_STATES:
        return Row(
            "service",
            Status.FAIL,
            state,
            "gate.service holds the camera and the pins",
            STOP_SERVICE,
        )
    if state == "failed":
        return Row(
            "service",
            Status.WARN,
            state,
            "gate.service stopped on an error",
            "see why: journalctl -u gate -b -n 50; after fixing: sudo systemctl restart gate",
        )
    return Row("service", Status.PASS, state)


# -- signals -------------------------------------------------------------------------------

SIGNAL_ROWS = ("green_led", "red_led", "buzzer", "relay")
_SEEN = {
    "green_led": "the green LED should have lit",
    "red_led": "the red LED should have lit",
    "buzzer": "the buzzer should have sounded",
    "relay": "the relay should have clicked and the door released",
}


def _signal_rows(config: GateConfig, options: Options) -> list[Row]:
    """Each output on, read back, off, read back, in turn; the relay as a bounded pulse."""
    pins = config.signals
    try:
        factory = options.pin_factory or make_pin_factory(pins.pin_factory)
        signals = Signals(pins, factory)
    except SignalError as exc:
        action = (
            "check signals.pin_factory and the pin numbers; this user must be in the gpio "
            "group (`groups`), or run with sudo"
        )
        return [Row(name, Status.FAIL, "not set up", str(exc), action) for name in SIGNAL_ROWS]
    pause = options.pin_on_s / 3
    try:
        rows = []
        for name, device in (
            ("green_led", signals.green),
            ("red_led", signals.red),
            ("buzzer", signals.buzzer),
        ):
            device.on()
            lit = device.is_active
            time.sleep(options.pin_on_s)
            device.off()
            rows.append(_signal_row(name, device, lit, device.is_active, options.pin_on_s))
            time.sleep(pause)
        pulse = min(options.pin_on_s, pins.relay_max_s)
        signals.open_relay(pulse)
        opened = _becomes(signals.relay, True, within=0.5)
        shut = _becomes(signals.relay, False, within=pulse + 1.0)
        rows.append(_signal_row("relay", signals.relay, opened, not shut, pulse))
    finally:
        signals.close()
    return rows


def _becomes(device: DigitalOutputDevice, active: bool, within: float) -> bool:
    """Wait for gpiozero's blink thread to switch the relay; True when it did in time."""
    deadline = time.monotonic() + within
    while device.is_active != active:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _signal_row(
    name: str, device: DigitalOutputDevice, on: bool, still_on: bool, seconds: float
) -> Row:
    pin = device.pin.info.name if device.pin is not None else "?"
    level = "active high" if device.active_high else "active low"
    value = f"on {seconds:g} s, off ({pin}, {level})"
    config_key = f"signals.{name}"
    if not on or still_on:
        read = "did not read back on" if not on else "still reads on after off"
        return Row(
            name,
            Status.FAIL,
            f"{pin} {read}",
            "the pin did not take the level it was driven to",
            f"check {config_key}.pin; stop any other program using {pin}",
        )
    return Row(
        name,
        Status.PASS,
        value,
        f"{_SEEN[name]} for {seconds:g} s; if not, check the wiring and {config_key}",
    )


# -- camera and code -----------------------------------------------------------------------

CAMERA_ROWS = ("camera", "exposure", "code")


class _CameraRun:
    """Pulls frames in its own thread so that a stalled camera cannot hang the self-test:
    counts them for `window_s` (the rate), then decodes them once asked to."""

    def __init__(self, source: FrameSource, decoder: Decoder | None, window_s: float) -> None:
        self._source = source
        self._decoder = decoder
        self._window_s = window_s
        self.stop = threading.Event()
        self.ended = threading.Event()
        self.started_at = time.monotonic()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.rate: float | None = None
        self.sensor: dict[str, float] | None = None
        self.sensor_error: str | None = None
        self.decoding = False
        self.codes: list[Code] = []
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="selftest-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._source.frames(self.stop):
                self._on_frame(frame)
        except (CameraError, DecoderError) as exc:
            self.error = exc
        finally:
            self.ended.set()

    def _on_frame(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            self.size = (frame.shape[1], frame.shape[0])
        self.last_at = now
        if self.rate is None:
            self.frames += 1
            if now - self.first_at >= self._window_s:
                self.rate = (self.frames - 1) / (now - self.first_at)
                self._describe()
        elif self.decoding and not self.codes and self._decoder is not None:
            self.codes = self._decoder.decode(frame)

    def _describe(self) -> None:
        """Between two frames, in this thread: where a camera can answer it safely."""
        describe = getattr(self._source, "describe", None)
        if describe is None:
            return
        try:
            self.sensor = describe()
        except CameraError as exc:
            self.sensor_error = str(exc)

    def wait(self, done: Callable[[], bool], gap_s: float, deadline: float) -> str | None:
        """None once `done()`; else why not: 'ended', 'stalled' (no frame for `gap_s`) or
        'timeout' (`deadline` passed)."""
        while not done():
            if self.ended.is_set():
                return "ended"
            now = time.monotonic()
            if now - (self.last_at or self.started_at) > gap_s:
                return "stalled"
            if now > deadline:
                return "timeout"
            self.ended.wait(0.02)
        return None

    def finish(self, timeout: float) -> None:
        self.stop.set()
        self._thread.join(timeout)


def _camera_rows(config: GateConfig, options: Options) -> list[Row]:
    camera = config.camera
    replay = camera.source == "replay"
    fix = (
        "check camera.replay (paths, fps)"
        if replay
        else "check the ribbon cable (both ends seated, latches closed) and run "
        "`rpicam-hello --list-cameras`; if it lists the camera, reboot"
    )
    decoder: Decoder | None = None
    decoder_error = ""
    try:
        decoder = make_decoder(config.decoder)
    except DecoderError as exc:
        decoder_error = str(exc)
    options.say(f"camera: opening ({camera.source})")
    try:
        source = make_source(camera)
        source.open()
    except CameraError as exc:
        return [
            Row("camera", Status.FAIL, "does not open", str(exc), fix),
            *_skipped(CAMERA_ROWS[1:], "not run: the camera gave no frames"),
        ]
    run = _CameraRun(source, decoder, options.camera_window_s)
    try:
        gap = camera.frame_timeout_s
        why = run.wait(lambda: run.rate is not None, gap, float("inf"))
        if why is not None:
            return [
                _camera_failure(run, why, gap, fix),
                *_skipped(CAMERA_ROWS[1:], "not run: the camera gave no frames"),
            ]
        rows = [_rate_row(run, config), _exposure_row(run)]
        if decoder is None:
            rows.append(
                Row(
                    "code",
                    Status.FAIL,
                    "no decoder",
                    decoder_error,
                    "reinstall: sudo scripts/install.sh (it installs libzbar0 and zxing-cpp)",
                )
            )
            return rows
        options.say(f"code: show a QR code to the camera (within {options.code_timeout_s:g} s)")
        run.decoding = True
        why = run.wait(lambda: bool(run.codes), gap, time.monotonic() + options.code_timeout_s)
        rows.append(_code_row(run, why, config, options, fix))
        return rows
    finally:
        run.finish(camera.frame_timeout_s + 1)
        _close(source, camera.close_timeout_s)


def _close(source: FrameSource, timeout: float) -> None:
    """A camera wedged in the driver never returns from close (PI-NOTES): do not wait forever."""
    closer = threading.Thread(target=source.close, name="selftest-camera-close", daemon=True)
    closer.start()
    closer.join(timeout)


def _camera_failure(run: _CameraRun, why: str, gap: float, fix: str) -> Row:
    if run.error is not None:
        value, detail = f"failed after {run.frames} frames", str(run.error)
    elif why == "ended":
        value, detail = f"stopped after {run.frames} frames", "the source gave no more frames"
    else:
        value, detail = f"no frame for {gap:g} s", f"stalled after {run.frames} frames"
    return Row("camera", Status.FAIL, value, detail, fix)


def _rate_row(run: _CameraRun, config: GateConfig) -> Row:
    camera = config.camera
    width, height = run.size or (0, 0)
    rate = run.rate or 0.0
    value = f"{rate:.1f} fps, {width}x{height} ({camera.source})"
    expected = camera.replay.fps if camera.source == "replay" else camera.fps
    if expected is not None and rate < expected / 2:
        return Row(
            "camera",
            Status.WARN,
            value,
            f"less than half the {expected:g} fps configured",
            "a dark scene lengthens automatic exposure: add light or set camera.exposure_us; "
            "a busy CPU drops frames: check `top` for other programs",
        )
    return Row("camera", Status.PASS, value)


def _exposure_row(run: _CameraRun) -> Row:
    if run.sensor_error is not None:
        return Row(
            "exposure",
            Status.WARN,
            "unknown",
            run.sensor_error,
            "run the self-test again; if it persists, reboot",
        )
    if not run.sensor:
        return Row("exposure", Status.PASS, "n/a", "this frame source reports no exposure")
    exposure = run.sensor.get("exposure_us")
    gain = run.sensor.get("analogue_gain")
    parts = []
    if exposure is not None:
        parts.append(f"{exposure / 1000:.1f} ms")
    if gain is not None:
        parts.append(f"gain {gain:.1f}")
    value = ", ".join(parts) or "n/a"
    if exposure is not None and exposure > MAX_EXPOSURE_US:
        return Row(
            "exposure",
            Status.WARN,
            value,
            f"longer than {MAX_EXPOSURE_US / 1000:g} ms: a code moved by hand blurs",
            "add light at the door, or set camera.exposure_us to 2000-6000 and raise "
            "camera.analogue_gain",
        )
    return Row("exposure", Status.PASS, value)


def _code_row(
    run: _CameraRun, why: str | None, config: GateConfig, options: Options, fix: str
) -> Row:
    if why is None:
        return _kind_row(run.codes[0], config)
    if run.error is not None or why in ("ended", "stalled"):
        detail = str(run.error) if run.error is not None else f"the camera {why} while reading"
        return Row("code", Status.FAIL, "camera stopped", detail, fix)
    return Row(
        "code",
        Status.FAIL,
        f"no QR code in {options.code_timeout_s:g} s",
        "nothing was decoded",
        "hold a QR code still, 15-30 cm from the camera, in good light; if codes stay "
        "unread, check the focus (camera.lens_position) and the exposure row",
    )


def _kind_row(code: Code, config: GateConfig) -> Row:
    """A QR was read: pass, saying what the gate makes of it (with the configured signers)."""
    detail = f"{len(code.data)} bytes, read by {code.backend}"
    status, action = Status.PASS, ""
    try:
        trust = load_trust(config.trust.paths)
    except TrustError as exc:
        trust = NO_TRUST
        detail += f"; trust store: {exc}"
        status = Status.WARN
        action = "fix trust.paths (`gate trust list` shows the problem): gate run will not start"
    now = datetime.datetime.now(datetime.UTC)
    credential = parse(
        code.data, today=now.astimezone(config.site.zone).date(), at=now, trust=trust
    )
    verdict = "valid" if credential.valid else f"refused: {credential.reason}"
    if credential.verified:
        verdict += ", verified"
    return Row("code", status, f"{credential.kind} ({verdict})", detail, action)


# -- broker --------------------------------------------------------------------------------


@dataclass
class _RoundTrip:
    """What the paho callbacks saw, for the loop in `_broker_row`."""

    topic: str
    payload: bytes
    connack: ReasonCode | None = None
    suback: list[ReasonCode] | None = None
    puback: ReasonCode | None = None
    received_at: float | None = None
    lost: bool = False

    @property
    def refused(self) -> bool:
        """The broker answered the publish with a failure (MQTT v5: an ACL deny)."""
        return self.puback is not None and self.puback.is_failure

    def on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, *_: object
    ) -> None:
        self.connack = reason

    def on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], *_: object
    ) -> None:
        self.suback = reasons

    def on_publish(
        self, _c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode, *_: object
    ) -> None:
        self.puback = reason

    def on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topic and message.payload == self.payload:
            self.received_at = time.monotonic()

    def on_disconnect(self, *_: object) -> None:
        self.lost = True


def _loop_until(
    client: mqtt.Client, done: Callable[[], object], trip: _RoundTrip, s: float
) -> bool:
    deadline = time.monotonic() + s
    while not done():
        if trip.lost or time.monotonic() > deadline:
            return False
        if client.loop(0.02) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return bool(done())
    return True


def _broker_row(config: GateConfig) -> Row:
    """Connect as the daemon does (TLS, credentials), then publish to a topic of our own
    below the root and wait for the message to come back: login, ACL and latency."""
    cfg = config.mqtt
    where = f"{cfg.host}:{cfg.effective_port} ({cfg.transport})"
    try:
        device = device_id(config.site)
    except RuntimeError as exc:
        return Row("broker", Status.FAIL, "no device id", str(exc), "set site.device_id")
    root = topic_root(cfg.topic_root, config.site, device)
    topic = f"{root}/selftest/{secrets.token_hex(6)}"
    acl = f"ask the operations team to let this device publish and subscribe to {root}/selftest/#"
    trip = _RoundTrip(topic, secrets.token_bytes(16))
    try:
        client = new_client(cfg, f"{client_id(device)}-selftest")
    except OSError as exc:
        return Row(
            "broker",
            Status.FAIL,
            "cannot set up",
            str(exc),
            "check mqtt.ca_file, cert_file, key_file and password_file exist and are readable "
            "(install.sh --ca/--cert/--key/--password-file)",
        )
    client.on_connect = trip.on_connect
    client.on_subscribe = trip.on_subscribe
    client.on_publish = trip.on_publish
    client.on_message = trip.on_message
    client.on_disconnect = trip.on_disconnect
    timeout = cfg.connect_timeout_s
    started = time.monotonic()
    try:
        connect(client, cfg)
    except OSError as exc:
        return Row("broker", Status.FAIL, "no connection", f"{where}: {_why(exc)}", _reach(exc))
    try:
        if not _loop_until(client, lambda: trip.connack is not None, trip, timeout):
            return Row(
                "broker",
                Status.FAIL,
                "no MQTT answer",
                f"{where} accepted the connection but sent no CONNACK in {timeout:g} s",
                "check mqtt.port and mqtt.transport (TLS on a plain port, or the reverse)",
            )
        if trip.connack is not None and trip.connack.is_failure:
            return Row(
                "broker",
                Status.FAIL,
                "login refused",
                f"CONNACK: {trip.connack}",
                "check mqtt.username and password_file, or the client certificate "
                "(install.sh --username/--password-file, --cert/--key)",
            )
        connected_ms = (time.monotonic() - started) * 1000
        client.subscribe(topic, qos=1)
        if not _loop_until(client, lambda: trip.suback is not None, trip, timeout) or any(
            r.is_failure for r in trip.suback or []
        ):
            refused = ", ".join(str(r) for r in trip.suback or []) or "no SUBACK"
            return Row("broker", Status.FAIL, "subscribe refused", refused, acl)
        sent = time.monotonic()
        client.publish(topic, trip.payload, qos=1)
        back = _loop_until(client, lambda: trip.received_at or trip.refused, trip, timeout)
        if not back or trip.refused:
            return Row(
                "broker",
                Status.FAIL,
                "no round trip",
                f"PUBACK: {trip.puback}"
                if trip.refused
                else f"the message did not come back within {timeout:g} s",
                acl,
            )
        latency_ms = ((trip.received_at or sent) - sent) * 1000
        return Row(
            "broker",
            Status.PASS,
            f"round trip {latency_ms:.0f} ms",
            f"{where}, connected in {connected_ms:.0f} ms",
        )
    finally:
        client.disconnect()
        client.loop(0.05)
        sock = client.socket()
        if sock is not None:
            sock.close()


def _why(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc}"


def _reach(exc: OSError) -> str:
    """What to do about a failed connect, by its cause."""
    if isinstance(exc, socket.gaierror):
        return "mqtt.host does not resolve: check the name (install.sh --broker) and DNS"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "the broker's certificate does not verify: check mqtt.ca_file (install.sh --ca) "
            "and the clock row (a wrong date fails TLS)"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            "TLS failed: check mqtt.transport and port (TLS on a plain port?) and the client "
            "certificate (install.sh --cert/--key)"
        )
    return (
        "check mqtt.host and port (install.sh --broker HOST:PORT), the network "
        "(`ip route`, cable or Wi-Fi) and any firewall between the gate and the broker"
    )


# -- clock, disk, outbox -------------------------------------------------------------------


def _clock_row(synced: bool) -> Row:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    if synced:
        return Row("clock", Status.PASS, "synchronised", f"UTC now {now}")
    return Row(
        "clock",
        Status.WARN,
        "not synchronised",
        f"UTC now {now}; check-ins carry clock_synced=false until NTP sets the clock",
        "`timedatectl status` must say 'System clock synchronized: yes': "
        "sudo timedatectl set-ntp true, and let the gate reach an NTP server (UDP 123)",
    )


def _disk_row(config: GateConfig) -> Row:
    """Free space where the outbox lives; below twice its cap the disk may fill first."""
    state = config.site.state_dir
    path = next((p for p in (state, *state.parents) if p.exists()), Path("/"))
    need = 2 * config.outbox.max_bytes  # payload cap plus SQLite's overhead and WAL
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        return Row("disk", Status.FAIL, "unknown", f"{path}: {exc.strerror}", "check the SD card")
    value = f"{free / 2**20:,.0f} MiB free in {path}"
    if free < need:
        return Row(
            "disk",
            Status.WARN,
            value,
            f"less than {need / 2**20:,.0f} MiB (twice outbox.max_bytes): the disk could fill "
            "before the outbox reaches its cap",
            "free space (`sudo journalctl --vacuum-size=100M`, old files) "
            "or lower outbox.max_bytes",
        )
    return Row("disk", Status.PASS, value)


def _outbox_row(config: GateConfig) -> Row:
    """Read-only, beside a running gate or a stopped one: depth, age, set-aside files."""
    path = outbox_path(config.outbox, config.site)
    set_aside = sorted(
        p
        for p in path.parent.glob(f"{path.name}.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    )
    depth, size, age = 0, 0, None
    value = "none yet (created at the first start)"
    if path.is_file():
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                info = summary(conn, path)
        except sqlite3.Error as exc:
            return Row(
                "outbox",
                Status.WARN,
                "unreadable",
                f"{path}: {exc}",
                "gate run sets a corrupt outbox aside and starts a fresh one; "
                f"save what it holds first: gate queue --db {path} --export FILE",
            )
        depth, size = int(str(info["depth"])), int(str(info["bytes"]))
        age = info["oldest_unsent_age_s"]
        value = (
            f"{depth} unsent, oldest {_duration(age)} old" if isinstance(age, float) else "empty"
        )
    if set_aside:
        return Row(
            "outbox",
            Status.WARN,
            f"{value}; {len(set_aside)} set aside",
            ", ".join(p.name for p in set_aside),
            f"export their check-ins (gate queue --db {set_aside[0]} --export FILE) for the "
            "operations team, then delete the set-aside files",
        )
    limits = config.outbox
    full = max(depth / limits.max_rows, size / limits.max_bytes) >= limits.high_water
    if full or (isinstance(age, float) and age > STALE_OUTBOX_S):
        return Row(
            "outbox",
            Status.WARN,
            value,
            f"{path}: check-ins are not leaving the gate",
            "fix the broker row; gate run sends the backlog once connected (gate queue shows it)",
        )
    return Row("outbox", Status.PASS, value, str(path))


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


# -- report and command --------------------------------------------------------------------


def exit_status(rows: Sequence[Row]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return 1 if any(r.status is Status.FAIL for r in rows) else 0


def table(rows: Sequence[Row], width: int = 110) -> str:
    """Row, result, value, what to do (long cells wrap); a detail goes below its row."""
    name_w = max(len(r.name) for r in rows)
    value_w = min(34, max(len(r.value) for r in rows))
    indent = name_w + 2 + 6 + 2
    action_w = max(30, width - indent - value_w - 2)
    lines = [f"{'row':<{name_w}}  result  {'value':<{value_w}}  what to do"]
    for row in rows:
        result = row.status.upper() if row.status in (Status.FAIL, Status.WARN) else row.status
        cells = zip_longest(
            textwrap.wrap(row.value, value_w) or [""],
            textwrap.wrap(row.action, action_w) or [""],
            fillvalue="",
        )
        for i, (value, action) in enumerate(cells):
            head = f"{row.name:<{name_w}}  {result:<6}" if i == 0 else " " * (indent - 2)
            lines.append(f"{head}  {value:<{value_w}}  {action}")
        for paragraph in row.detail.splitlines():
            lines += [" " * indent + part for part in textwrap.wrap(paragraph, width - indent)]
    counts = {s: sum(r.status is s for r in rows) for s in Status}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(line.rstrip() for line in lines)


def render(rows: Sequence[Row], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=1)
    return table(rows, max(80, shutil.get_terminal_size((110, 24)).columns))


def add_selftest_command(commands: Any) -> None:
    """`gate selftest` on the `gate` command's subparsers."""
    parser = commands.add_parser(
        "selftest",
        help="check the gate at the door: pins, camera, a code, broker, clock, disk, outbox",
        description="Switch each LED, the buzzer and the relay in turn, measure the camera, read "
        "a QR code shown to it, make a publish round trip to the broker, and check the clock, "
        "the disk and the outbox. Prints one row per check with what to do about each "
        "problem. Exit status: 0 nothing failed (warnings allowed), 1 a check failed, "
        "78 the config is invalid. Stop gate.service first: it holds the camera and pins.",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CHECKS,
        metavar="NAME",
        help=f"run only these checks ({', '.join(CHECKS)}); the config always, the service "
        "check with signals or camera",
    )
    parser.add_argument(
        "--code-timeout",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds to wait for a QR code shown to the camera (default 15)",
    )
    parser.set_defaults(handler=run_selftest)


def run_selftest(args: argparse.Namespace) -> int:
    return selftest(
        args.config,
        as_json=args.json,
        options=Options(only=frozenset(args.only or CHECKS), code_timeout_s=args.code_timeout),
    )


def selftest(config_path: Path, *, as_json: bool = False, options: Options = Options()) -> int:
    """Load the config (exit 78 at once when invalid), run the checks, print the report."""
    from gate.cli import EXIT_CONFIG  # the CLI imports this module: no import at load time

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        action = f"fix the file: `gate config check {config_path}` lists every problem"
        print(render([Row("config", Status.FAIL, "invalid", str(exc), action)], as_json))
        return EXIT_CONFIG
    rows = run_checks(config, config_path, options)
    print(render(rows, as_json))
    return exit_status(rows)
