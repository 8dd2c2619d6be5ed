"""The camera rows: frames per second and frame size, exposure where the source reports it,
and a QR code shown to the camera, read and classified as the gate would."""

import datetime
import threading
import time
from collections.abc import Callable

import numpy as np

from gate.app_config import GateConfig
from gate.camera.source import FrameSource, make_source
from gate.credentials import parse
from gate.decode import Code, Decoder, make_decoder
from gate.errors import CameraError, DecoderError, TrustError
from gate.selftest.report import Row, Status, skipped
from gate.trust.store import load_trust

MAX_EXPOSURE_US = 10_000
"""Longer exposures blur a code moved by hand (docs/raspberry-pi.md, Camera: 2-6 ms freezes one)."""

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


def camera_rows(
    config: GateConfig, *, window_s: float, code_timeout_s: float, say: Callable[[str], None]
) -> list[Row]:
    """The camera's rate and frame size over `window_s`, its exposure, then a code shown to it
    within `code_timeout_s` (after `say` asked the technician for one)."""
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
    say(f"camera: opening ({camera.source})")
    try:
        source = make_source(camera)
        source.open()
    except CameraError as exc:
        return [
            Row("camera", Status.FAIL, "does not open", str(exc), fix),
            *skipped(CAMERA_ROWS[1:], "not run: the camera gave no frames"),
        ]
    run = _CameraRun(source, decoder, window_s)
    try:
        gap = camera.frame_timeout_s
        why = run.wait(lambda: run.rate is not None, gap, float("inf"))
        if why is not None:
            return [
                _camera_failure(run, why, gap, fix),
                *skipped(CAMERA_ROWS[1:], "not run: the camera gave no frames"),
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
        say(f"code: show a QR code to the camera (within {code_timeout_s:g} s)")
        run.decoding = True
        why = run.wait(lambda: bool(run.codes), gap, time.monotonic() + code_timeout_s)
        rows.append(_code_row(run, why, config, code_timeout_s, fix))
        return rows
    finally:
        run.finish(camera.frame_timeout_s + 1)
        _close(source, camera.close_timeout_s)


def _close(source: FrameSource, timeout: float) -> None:
    """A camera wedged in the driver never returns from close (docs/raspberry-pi.md, Camera):
    do not wait forever."""
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
    run: _CameraRun, why: str | None, config: GateConfig, timeout_s: float, fix: str
) -> Row:
    if why is None:
        return _kind_row(run.codes[0], config)
    if isinstance(run.error, DecoderError):
        return Row("code", Status.FAIL, "decoder failed", str(run.error), "report this error")
    if run.error is not None or why in ("ended", "stalled"):
        detail = str(run.error) if run.error is not None else f"the camera {why} while reading"
        return Row("code", Status.FAIL, "camera stopped", detail, fix)
    return Row(
        "code",
        Status.FAIL,
        f"no QR code in {timeout_s:g} s",
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
        trust = None
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
