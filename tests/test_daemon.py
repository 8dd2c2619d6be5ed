"""Gate (the daemon): camera restarts with a rate limit, config reload, the status line.

Hardware comes in through the constructor: a scripted frame source written against our own
FrameSource interface (the camera failing on cue), real frames from tests/imagegen.py, the
real decoder, and gpiozero's MockFactory pins.
"""

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import yaml
from broker import wait_until
from conftest import ListSink
from imagegen import empty_frame, qr_frame, save_png
from pins import assert_pattern, join_blinks

from gate.app_config import GateConfig, load_config
from gate.camera.replay import ReplaySource
from gate.daemon import run
from gate.door import Gate
from gate.errors import CameraError, StorageError, StorageFull
from gate.pipeline import Counters, Pipeline
from gate.reasons import Reason
from gate.signals import Signals

CCCD = (
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
    "|15042021"
)
RELAY, EXIT, RED = 23, 24, 27
EPSILON_S = 0.01
"""Slack for clock reads either side of a wait; never a speed bound."""


class ScriptedCamera:
    """A FrameSource whose camera fails on cue.

    The first `open_failures` opens raise CameraError (no camera, cable out); after that each
    open plays `frames` and then either ends (a finite source) or, with `fail_after_frames`,
    raises CameraError as a camera that stops mid-stream does.
    """

    name = "scripted"

    def __init__(
        self,
        frames: Sequence[np.ndarray] = (),
        *,
        open_failures: float = 0,
        fail_after_frames: bool = False,
    ) -> None:
        self._frames = list(frames)
        self._open_failures = open_failures
        self._fail_after_frames = fail_after_frames
        self.opens: list[float] = []
        self.closes = 0

    def open(self) -> None:
        self.opens.append(time.monotonic())
        if len(self.opens) <= self._open_failures:
            raise CameraError("no camera found (scripted)")

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        for frame in self._frames:
            if stop.is_set():
                return
            yield frame
        if self._fail_after_frames:
            raise CameraError("no frame within the timeout (scripted)")

    def close(self) -> None:
        self.closes += 1


def gate_config(**sections: object) -> dict:
    """A test gate's config as data: replay camera, mock pins, fast pulses, quiet status."""
    config: dict = {
        "camera": {"source": "replay", "restart_min_interval_s": 0.25},
        "presentation": {"confirm_frames": 2, "cooldown_s": 30, "leave_after_s": 0.3},
        "signals": {"pin_factory": "mock", "relay_pulse_s": 0.3, "exit_pulse_s": 0.3},
        "log": {"status_interval_s": 60},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}  # type: ignore[dict-item]
    return config


def make_gate(source, sink, factory, **sections: object) -> Gate:
    return Gate(
        GateConfig.model_validate(gate_config(**sections)),
        sink=sink,
        source=source,
        pin_factory=factory,
    )


def press_exit_button(factory) -> None:
    button = factory.pin(EXIT)
    button.drive_low()
    button.drive_high()


@pytest.fixture
def running() -> Iterator[list[Gate]]:
    """Gates a test started; stopped at the end whatever happened."""
    gates: list[Gate] = []
    yield gates
    for gate in gates:
        gate.stop()


# --- camera restarts --------------------------------------------------------------------


def test_a_camera_that_fails_to_open_is_retried_no_more_often_than_the_minimum_interval(
    sink, mock_factory, running
):
    camera = ScriptedCamera(open_failures=math.inf)
    gate = make_gate(camera, sink, mock_factory, camera={"restart_min_interval_s": 0.25})
    running.append(gate)
    gate.start()

    time.sleep(1.0)
    gate.stop()

    assert len(camera.opens) >= 2
    assert all(b - a >= 0.25 - EPSILON_S for a, b in pairwise(camera.opens)), camera.opens
    assert gate.counters.camera_restarts == len(camera.opens)
    assert camera.closes == len(camera.opens)  # closed after every failure


def test_a_camera_that_fails_mid_stream_is_restarted_and_its_frames_counted(
    sink, mock_factory, running
):
    camera = ScriptedCamera([empty_frame(seed=1)] * 3, fail_after_frames=True)
    gate = make_gate(camera, sink, mock_factory, camera={"restart_min_interval_s": 0.25})
    running.append(gate)
    gate.start()

    assert wait_until(lambda: gate.counters.camera_restarts >= 3)
    gate.stop()

    assert all(b - a >= 0.25 - EPSILON_S for a, b in pairwise(camera.opens)), camera.opens
    assert gate.counters.frames == 3 * len(camera.opens)
    assert gate.counters.camera_restarts == len(camera.opens)


def test_camera_failures_are_logged_with_their_reason(sink, mock_factory, running, caplog):
    caplog.set_level(logging.ERROR, logger="gate.door")
    camera = ScriptedCamera(open_failures=1, frames=[empty_frame(seed=1)])
    gate = make_gate(camera, sink, mock_factory, camera={"restart_min_interval_s": 0.05})
    running.append(gate)
    gate.start()

    assert gate.finished.wait(5)

    assert caplog.messages == [
        "camera unavailable, trying again every 0.05 s: no camera found (scripted)"
    ]


def test_a_camera_that_comes_back_carries_on_checking_people_in(sink, mock_factory, running):
    code, empty = qr_frame(CCCD, seed=1), empty_frame(seed=2)
    camera = ScriptedCamera([code] * 4 + [empty] * 4, open_failures=2)
    gate = make_gate(camera, sink, mock_factory, camera={"restart_min_interval_s": 0.2})
    running.append(gate)
    gate.start()

    assert gate.finished.wait(5), "the recovered camera's frames did not play"

    assert gate.counters.camera_restarts == 2
    assert len(camera.opens) == 3
    assert all(b - a >= 0.2 - EPSILON_S for a, b in pairwise(camera.opens)), camera.opens
    assert [c.decision.accepted for c in sink.checkins] == [True]
    assert gate.counters.accepted == 1


def test_stop_does_not_wait_out_the_restart_interval(sink, mock_factory, caplog):
    caplog.set_level(logging.ERROR, logger="gate.door")
    camera = ScriptedCamera(open_failures=math.inf)
    gate = make_gate(camera, sink, mock_factory, camera={"restart_min_interval_s": 600})
    gate.start()
    assert wait_until(lambda: gate.counters.camera_restarts == 1)

    stopped = time.monotonic()
    gate.stop()

    assert time.monotonic() - stopped < 3.0  # far from the 600 s interval (or the 5 s join)
    assert not any("did not stop" in m for m in caplog.messages)
    assert len(camera.opens) == 1


def test_a_finite_source_ends_the_run_once_and_is_closed(sink, mock_factory, running):
    camera = ScriptedCamera([empty_frame(seed=1)] * 5)
    gate = make_gate(camera, sink, mock_factory)
    running.append(gate)
    gate.start()

    assert gate.finished.wait(5)
    assert wait_until(lambda: camera.closes == 1)

    assert len(camera.opens) == 1
    assert gate.counters.frames == 5
    assert gate.counters.camera_restarts == 0


def test_start_logs_who_the_gate_is_and_what_it_runs(sink, mock_factory, running, caplog):
    caplog.set_level(logging.INFO, logger="gate.door")
    gate = make_gate(
        ScriptedCamera([empty_frame(seed=1)]),
        sink,
        mock_factory,
        site={"province": "hn", "venue_id": "hall-a", "gate_id": "north"},
    )
    running.append(gate)
    gate.start()

    (line,) = [m for m in caplog.messages if " running: " in m]
    assert line.startswith("gate hn/hall-a/north running: camera scripted, decoder ")
    assert line.endswith("accepting cccd, national_qr")


# --- reload -----------------------------------------------------------------------------


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def reloadable_gate(tmp_path, sink, factory, config: dict) -> Gate:
    path = write_config(tmp_path / "gate.yaml", config)
    return Gate(
        load_config(path),
        sink=sink,
        source=ReplaySource([empty_frame(seed=4)], fps=20, loop=True),
        pin_factory=factory,
        config_path=path,
    )


def test_reload_with_a_valid_file_applies_the_new_config(tmp_path, sink, mock_factory, running):
    gate = reloadable_gate(tmp_path, sink, mock_factory, gate_config())
    running.append(gate)
    gate.start()

    write_config(tmp_path / "gate.yaml", gate_config(signals={"exit_pulse_s": 0.6}))
    gate.reload()
    mock_factory.pin(RELAY).clear_states()
    press_exit_button(mock_factory)
    join_blinks(gate.signals.relay)

    assert gate.config.signals.exit_pulse_s == 0.6
    # The rebuilt signals claimed the same pins again and pulse for the new time.
    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.6, False)])
    assert wait_until(lambda: gate.counters.frames > 0)  # frames flow again after the reload


def test_reload_with_an_invalid_file_keeps_the_running_config(
    tmp_path, sink, mock_factory, running, caplog
):
    caplog.set_level(logging.ERROR, logger="gate.door")
    gate = reloadable_gate(tmp_path, sink, mock_factory, gate_config())
    running.append(gate)
    gate.start()
    before = gate.config
    signals = gate.signals

    (tmp_path / "gate.yaml").write_text("signals:\n  exit_pulse_s: 0.6\n  relay_max_s: 0.5\n")
    gate.reload()

    assert gate.config is before
    assert gate.signals is signals  # not even restarted
    (message,) = [m for m in caplog.messages if m.startswith("reload refused")]
    assert "gate.yaml:2: signals.exit_pulse_s" in message
    mock_factory.pin(RELAY).clear_states()
    press_exit_button(mock_factory)
    join_blinks(gate.signals.relay)
    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.3, False)])


def test_reload_of_a_config_that_cannot_start_goes_back_to_the_previous_one(
    tmp_path, sink, mock_factory, running, caplog
):
    caplog.set_level(logging.ERROR, logger="gate.door")
    gate = reloadable_gate(tmp_path, sink, mock_factory, gate_config())
    running.append(gate)
    gate.start()
    before = gate.config

    # Valid as a file, but no such pin on this board: the signals cannot be set up.
    write_config(tmp_path / "gate.yaml", gate_config(signals={"red_led": {"pin": "BOARD99"}}))
    gate.reload()

    assert gate.config is before
    assert any(m.startswith("reloaded config cannot start") for m in caplog.messages)
    assert gate.signals is not None
    frames = gate.counters.frames
    assert wait_until(lambda: gate.counters.frames > frames)  # capturing again
    mock_factory.pin(RELAY).clear_states()
    press_exit_button(mock_factory)
    join_blinks(gate.signals.relay)
    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.3, False)])


def test_reload_without_a_config_file_changes_nothing(sink, mock_factory, running, caplog):
    caplog.set_level(logging.WARNING, logger="gate.door")
    gate = make_gate(ReplaySource([empty_frame(seed=4)], fps=20, loop=True), sink, mock_factory)
    running.append(gate)
    gate.start()
    before, signals = gate.config, gate.signals

    gate.reload()

    assert gate.config is before and gate.signals is signals
    assert "reload requested but the gate was started without a config file" in caplog.messages


def test_a_reload_keeps_the_counters(tmp_path, sink, mock_factory, running):
    gate = reloadable_gate(tmp_path, sink, mock_factory, gate_config())
    running.append(gate)
    gate.start()
    assert wait_until(lambda: gate.counters.frames >= 3)

    gate.reload()

    assert gate.counters.frames >= 3


# --- status -----------------------------------------------------------------------------


def test_status_line_reports_rates_since_the_last_one_and_totals(sink):
    gate = Gate(GateConfig.model_validate(gate_config()), sink=sink)
    since = Counters(frames=100, decode_ns=1_000_000_000)
    gate.counters = Counters(
        frames=300,
        decode_ns=1_500_000_000,  # 0.5 s of decoding over the last 200 frames
        decode_ns_max=7_300_000,
        scans=5,
        accepted=3,
        refused=1,
        duplicates=1,
        errors=0,
        storage_full=0,
        camera_restarts=2,
    )

    assert gate.status_line(since, 10.0) == (
        "fps=20.0 decode_ms=2.50 max_ms=7.3 scans=5 accepted=3 refused=1 duplicates=1 "
        "errors=0 storage_full=0 camera_restarts=2"
    )


def test_status_line_without_frames_shows_zero_rates(sink):
    gate = Gate(GateConfig.model_validate(gate_config()), sink=sink)

    assert gate.status_line(Counters(), 60.0).startswith("fps=0.0 decode_ms=0.00 max_ms=0.0 ")


def test_status_is_logged_every_interval_while_running(sink, mock_factory, running, caplog):
    caplog.set_level(logging.INFO, logger="gate.door")
    gate = make_gate(
        ReplaySource([empty_frame(seed=4)], fps=20, loop=True),
        sink,
        mock_factory,
        log={"status_interval_s": 1},
    )
    running.append(gate)
    gate.start()

    assert wait_until(lambda: any(m.startswith("status: ") for m in caplog.messages), 3.0)
    (line,) = [m for m in caplog.messages if m.startswith("status: ")]
    assert line.startswith("status: fps=")
    assert line.endswith("camera_restarts=0")


def test_a_frame_the_decoder_rejects_does_not_stop_capture(sink, mock_factory, running):
    malformed = np.zeros((48, 64, 3), np.uint8)  # colour, not the grey plane
    camera = ScriptedCamera([empty_frame(seed=1), malformed, *[empty_frame(seed=1)] * 3])
    gate = make_gate(camera, sink, mock_factory)
    running.append(gate)
    gate.start()

    assert gate.finished.wait(1.5)
    assert gate.counters.frames == 4
    assert (gate.counters.bad_frames, gate.counters.camera_restarts) == (1, 0)


# --- run(): the process around the gate --------------------------------------------------


class ClosableSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def replay_config_file(tmp_path: Path, *, loop: bool) -> Path:
    frames = tmp_path / "frames"
    frames.mkdir()
    save_png(empty_frame(size=(320, 240), seed=1), frames / "0-empty.png")
    save_png(qr_frame(CCCD, size=(320, 240), module_px=3), frames / "1-cccd.png")
    save_png(empty_frame(size=(320, 240), seed=2), frames / "2-empty.png")
    replay = {"paths": ["frames"], "fps": 20, "repeat_each": 4, "loop": loop}
    return write_config(tmp_path / "gate.yaml", gate_config(camera={"replay": replay}))


def test_run_returns_0_when_a_finite_replay_ends_and_closes_the_sink(
    tmp_path, os_signal_handlers, caplog
):
    caplog.set_level(logging.INFO)
    path = replay_config_file(tmp_path, loop=False)
    sinks: list[ClosableSink] = []

    def open_sink(_config: GateConfig) -> ClosableSink:
        sinks.append(ClosableSink())
        return sinks[-1]

    assert run(load_config(path), path, open_sink) == 0

    [sink] = sinks
    assert [c.decision.accepted for c in sink.checkins] == [True]
    assert sink.closed
    assert caplog.messages[-1] == "stopped"


def test_sighup_reloads_the_config_and_sigterm_stops_cleanly(tmp_path, os_signal_handlers, caplog):
    caplog.set_level(logging.INFO)
    path = replay_config_file(tmp_path, loop=True)
    sink = ClosableSink()
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGHUP)).start()
    threading.Timer(1.2, os.kill, (os.getpid(), signal.SIGTERM)).start()

    assert run(load_config(path), path, lambda _config: sink) == 0

    assert f"reloading {path}" in caplog.messages
    assert "received SIGTERM: stopping" in caplog.messages
    assert sum(" running: " in m for m in caplog.messages) == 2  # started, then again
    assert sink.closed


class FailingSink(ListSink):
    """A store that fails the next `failures` commits with `error`, then works."""

    def __init__(self, error: Exception, failures: int = 1) -> None:
        super().__init__()
        self._error = error
        self._failures = failures

    def commit(self, checkin) -> None:
        if self._failures:
            self._failures -= 1
            raise self._error
        super().commit(checkin)


@pytest.fixture
def frames() -> dict[str, np.ndarray]:
    return {"code": qr_frame(CCCD, size=(320, 240), module_px=3), "empty": empty_frame(seed=6)}


class SteppedClock:
    """Monotonic seconds that move only when the test moves them: no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_pipeline(
    sink, factory, leave_after_s: float = 0.1, anti_passback_minutes: float = 0, clock=None
) -> tuple[Pipeline, Signals]:
    config = GateConfig.model_validate(
        gate_config(
            presentation={"confirm_frames": 1, "cooldown_s": 30, "leave_after_s": leave_after_s},
            signals={"patterns": {"error": {"red": {"on_s": 0.1}}}},
            policy={"anti_passback_minutes": anti_passback_minutes},
        )
    )
    signals = Signals(config.signals, factory)
    pipeline = Pipeline.from_config(config, sink, signals, clock=clock or SteppedClock())
    return pipeline, signals


def present_again(pipeline: Pipeline, frames: dict[str, np.ndarray], clock: SteppedClock) -> None:
    """Take the code away for longer than leave_after_s, then show it again."""
    pipeline.process(frames["empty"])
    clock.now += 0.15
    pipeline.process(frames["empty"])
    pipeline.process(frames["code"])


def test_a_frame_without_a_code_is_counted_and_nothing_else(sink, mock_factory, frames):
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, clock=clock)
    try:
        pipeline.process(frames["empty"])
    finally:
        signals.close()

    counters = pipeline.counters
    assert counters.frames == 1
    assert counters.decode_ns > 0 and counters.decode_ns_max == counters.decode_ns
    assert counters.last_frame_at > 0
    assert counters.scans == 0 and sink.checkins == []


def test_a_store_failure_signals_an_error_and_the_next_presentation_is_retried(
    mock_factory, frames, caplog
):
    sink = FailingSink(StorageError("disk I/O error"))
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, clock=clock)
    try:
        pipeline.process(frames["code"])
        assert wait_until(lambda: mock_factory.pin(RED).state is True)  # the error pattern
        assert mock_factory.pin(RELAY).state is False  # not stored: not opened (P1)
        present_again(pipeline, frames, clock)
    finally:
        signals.close()

    counters = pipeline.counters
    assert (counters.scans, counters.errors, counters.accepted, counters.duplicates) == (2, 1, 1, 0)
    assert [c.decision.accepted for c in sink.checkins] == [True]
    assert "check-in not stored: disk I/O error" in caplog.messages


def test_a_full_store_is_retried_as_a_new_presentation_not_a_duplicate(mock_factory, frames):
    sink = FailingSink(StorageFull("cap reached"))
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, clock=clock)
    try:
        pipeline.process(frames["code"])
        present_again(pipeline, frames, clock)
    finally:
        signals.close()

    counters = pipeline.counters
    assert (counters.storage_full, counters.accepted, counters.duplicates) == (1, 1, 0)
    assert len(sink.checkins) == 1


def test_a_check_in_that_was_not_stored_does_not_count_for_anti_passback(mock_factory, frames):
    sink = FailingSink(StorageFull("cap reached"))
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, anti_passback_minutes=30, clock=clock)
    try:
        pipeline.process(frames["code"])
        present_again(pipeline, frames, clock)
    finally:
        signals.close()

    assert [c.decision.reason for c in sink.checkins] == [Reason.OK]


def test_an_unexpected_failure_after_a_scan_is_an_error_not_a_crash(mock_factory, frames, caplog):
    sink = FailingSink(KeyError("bug"))
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, clock=clock)
    try:
        pipeline.process(frames["code"])
        pipeline.process(frames["empty"])  # the loop carries on
    finally:
        signals.close()

    assert pipeline.counters.errors == 1 and pipeline.counters.frames == 2
    assert "check-in not stored: 'bug'" in caplog.messages


def test_a_duplicate_is_signalled_but_never_stored(sink, mock_factory, frames):
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, clock=clock)
    try:
        pipeline.process(frames["code"])
        present_again(pipeline, frames, clock)
    finally:
        signals.close()

    counters = pipeline.counters
    assert (counters.scans, counters.accepted, counters.duplicates) == (2, 1, 1)
    assert len(sink.checkins) == 1


def test_anti_passback_runs_on_the_pipelines_clock(sink, mock_factory, frames):
    clock = SteppedClock()
    pipeline, signals = make_pipeline(sink, mock_factory, anti_passback_minutes=1, clock=clock)
    try:
        pipeline.process(frames["code"])
        clock.now += 31  # past the 30 s cooldown: a new check-in, within the minute
        present_again(pipeline, frames, clock)
        clock.now += 30  # the minute since the passage is over
        present_again(pipeline, frames, clock)
    finally:
        signals.close()

    reasons = [c.decision.reason for c in sink.checkins]
    assert reasons == [Reason.OK, Reason.ANTI_PASSBACK, Reason.OK]
