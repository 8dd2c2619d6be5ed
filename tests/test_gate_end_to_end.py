"""The whole gate on real images: replayed frames through the real decoder, parser, policy
and gpiozero MockFactory pins. Pin timings are asserted exactly (gpiozero's tolerance)."""

import numpy as np
import pytest
from imagegen import empty_frame, qr_frame
from pins import assert_pattern, join_blinks

from gate.app_config import GateConfig
from gate.camera.replay import ReplaySource
from gate.credentials.model import Kind
from gate.door import Gate
from gate.outbox.store import Outbox
from gate.reasons import Reason

CCCD = (
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
    "|15042021"
)
PAYMENT = (
    "00020101021238570010A00000072701270006970403011300669911220208QRIBFTTA53037045802VN6304ABCD"
)
FPS = 20.0
IDLE_ACTIVE_LOW = [(0.0, False), (0.0, True)]
"""A mock pin starts low; the active-low relay drives it high (de-energised) at once."""


def make_config(**overrides: object) -> GateConfig:
    base = {
        "camera": {"source": "replay"},
        "presentation": {"confirm_frames": 2, "cooldown_s": 30, "leave_after_s": 0.3},
        "signals": {
            "pin_factory": "mock",
            "relay_pulse_s": 0.5,
            "exit_pulse_s": 0.6,
            "relay": {"pin": 23, "active_high": False},
            "patterns": {
                "accepted": {"green": {"on_s": 0.3}, "buzzer": {"on_s": 0.1}},
                "refused": {"red": {"on_s": 0.1, "off_s": 0.1, "times": 3}},
                "duplicate": {"green": {"on_s": 0.1, "off_s": 0.1, "times": 2}},
                "storage_full": {"red": {"on_s": 0.4}},
            },
        },
        "log": {"status_interval_s": 60},
    }
    base.update(overrides)
    return GateConfig.model_validate(base)


def scene(*steps: tuple[np.ndarray, int]) -> list[np.ndarray]:
    """Frames as a camera would see them: each image held for a number of frames."""
    return [frame for frame, count in steps for _ in range(count)]


def run_gate(frames: list[np.ndarray], sink, factory, config: GateConfig | None = None) -> Gate:
    gate = Gate(
        config or make_config(),
        sink=sink,
        source=ReplaySource(frames, fps=FPS),
        pin_factory=factory,
    )
    gate.start()
    assert gate.finished.wait(len(frames) / FPS + 10), "replay did not finish"
    signals = gate.signals
    assert signals is not None
    join_blinks(signals.relay, signals.green, signals.red, signals.buzzer)
    gate.stop()
    return gate


@pytest.fixture
def frames() -> dict[str, np.ndarray]:
    return {
        "empty": empty_frame(seed=3),
        "cccd": qr_frame(CCCD, module_px=4, seed=1),
        "payment": qr_frame(PAYMENT, module_px=4, seed=2),
        "garbage": qr_frame(b"hello gate", module_px=5, seed=4),
    }


def test_code_held_for_many_frames_is_one_checkin_that_opens_once(frames, sink, mock_factory):
    gate = run_gate(
        scene((frames["empty"], 4), (frames["cccd"], 12), (frames["empty"], 4)), sink, mock_factory
    )

    assert len(sink.checkins) == 1
    checkin = sink.checkins[0]
    assert checkin.credential.kind is Kind.CCCD
    assert checkin.credential.name == "Nguyễn Văn An"
    assert checkin.decision.accepted and checkin.decision.reason is Reason.OK
    assert checkin.captured_at.tzinfo is not None
    relay, green, buzzer, red = (mock_factory.pin(n) for n in (23, 17, 22, 27))
    # Active-low relay: idle high, one bounded pulse low, high again; then closed at stop.
    assert_pattern(relay, [*IDLE_ACTIVE_LOW, (None, False), (0.5, True)])
    assert_pattern(green, [(0.0, False), (None, True), (0.3, False)])
    assert_pattern(buzzer, [(0.0, False), (None, True), (0.1, False)])
    assert_pattern(red, [(0.0, False)])
    assert gate.counters.scans == 1 and gate.counters.accepted == 1
    assert gate.counters.frames == 20


def test_same_code_again_within_cooldown_is_a_duplicate_not_reopened(frames, sink, mock_factory):
    gate = run_gate(
        scene(
            (frames["cccd"], 6), (frames["empty"], 10), (frames["cccd"], 6), (frames["empty"], 4)
        ),
        sink,
        mock_factory,
    )

    assert len(sink.checkins) == 1
    assert gate.counters.duplicates == 1
    relay, green = mock_factory.pin(23), mock_factory.pin(17)
    assert_pattern(relay, [*IDLE_ACTIVE_LOW, (None, False), (0.5, True)])
    assert_pattern(
        green,
        [
            (0.0, False),
            (None, True),
            (0.3, False),
            (None, True),
            (0.1, False),
            (0.1, True),
            (0.1, False),
        ],
    )


def test_refused_codes_show_red_and_never_move_the_relay(frames, sink, mock_factory):
    config = make_config(policy={"accept_kinds": ["national_qr"]})
    gate = run_gate(
        scene(
            (frames["payment"], 6),
            (frames["empty"], 12),
            (frames["garbage"], 6),
            (frames["empty"], 12),
            (frames["cccd"], 6),
            (frames["empty"], 4),
        ),
        sink,
        mock_factory,
        config,
    )

    reasons = [c.decision.reason for c in sink.checkins]
    assert reasons == [Reason.PAYMENT_CODE, Reason.UNKNOWN_FORMAT, Reason.KIND_NOT_ACCEPTED]
    assert [c.credential.kind for c in sink.checkins][-1] is Kind.CCCD
    assert not any(c.decision.accepted for c in sink.checkins)
    assert_pattern(mock_factory.pin(23), [*IDLE_ACTIVE_LOW])
    red_pattern = [(None, True), (0.1, False), (0.1, True), (0.1, False), (0.1, True), (0.1, False)]
    assert_pattern(mock_factory.pin(27), [(0.0, False), *red_pattern * 3])
    assert gate.counters.refused == 3


def test_code_shown_for_a_single_frame_is_not_confirmed(frames, sink, mock_factory):
    run_gate(
        scene((frames["empty"], 4), (frames["cccd"], 1), (frames["empty"], 8)), sink, mock_factory
    )

    assert sink.checkins == []
    assert_pattern(mock_factory.pin(23), [*IDLE_ACTIVE_LOW])


def test_full_store_refuses_with_its_own_signal_and_keeps_the_door_shut(frames, sink, mock_factory):
    sink.full = True
    gate = run_gate(scene((frames["cccd"], 6), (frames["empty"], 4)), sink, mock_factory)

    assert sink.checkins == []
    assert gate.counters.storage_full == 1
    assert_pattern(mock_factory.pin(23), [*IDLE_ACTIVE_LOW])
    assert_pattern(mock_factory.pin(27), [(0.0, False), (None, True), (0.4, False)])


def test_exit_button_opens_for_the_exit_pulse(sink, mock_factory):
    config = make_config()
    gate = Gate(
        config,
        sink=sink,
        source=ReplaySource([empty_frame()], fps=FPS, loop=True),
        pin_factory=mock_factory,
    )
    gate.start()
    try:
        button = mock_factory.pin(24)
        button.drive_low()
        button.drive_high()
        assert gate.signals is not None
        join_blinks(gate.signals.relay)
    finally:
        gate.stop()
    assert_pattern(mock_factory.pin(23), [*IDLE_ACTIVE_LOW, (None, False), (0.6, True)])
    assert sink.checkins == []


def test_relay_is_safe_after_stop_even_mid_pulse(frames, sink, mock_factory):
    gate = Gate(
        make_config(
            signals={
                "pin_factory": "mock",
                "relay_pulse_s": 8.0,
                "relay": {"pin": 23, "active_high": False},
            }
        ),
        sink=sink,
        source=ReplaySource(scene((frames["cccd"], 4)), fps=FPS),
        pin_factory=mock_factory,
    )
    gate.start()
    assert gate.finished.wait(5)
    gate.stop()
    relay = mock_factory.pin(23)
    assert relay.state is True  # active-low: high is de-energised
    assert [bool(s.state) for s in relay.states] == [False, True, False, True]


class RelayWatchingOutbox(Outbox):
    """The real outbox, noting whether the relay was still shut when each commit began (P1)."""

    relay_pin: object
    relay_at_commit: list[bool]

    def commit(self, checkin) -> None:
        self.relay_at_commit.append(self.relay_pin.state)
        super().commit(checkin)


def test_check_in_is_durable_in_the_outbox_before_the_relay_moves(frames, mock_factory, tmp_path):
    config = make_config(site={"state_dir": str(tmp_path)})
    outbox = RelayWatchingOutbox(config.outbox, config.site, config.privacy)
    outbox.relay_pin, outbox.relay_at_commit = mock_factory.pin(23), []
    try:
        run_gate(scene((frames["cccd"], 6), (frames["empty"], 4)), outbox, mock_factory, config)
        stats = outbox.stats()
    finally:
        outbox.close()

    assert outbox.relay_at_commit == [True]  # active-low relay: high is shut
    assert stats.depth == 1
    assert_pattern(mock_factory.pin(23), [*IDLE_ACTIVE_LOW, (None, False), (0.5, True)])


def test_a_payload_the_judge_fails_on_is_stored_as_an_internal_error(
    frames, sink, mock_factory, monkeypatch
):
    def broken_parser(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("a parser bug")

    monkeypatch.setattr("gate.credentials.Parser.parse", broken_parser)
    gate = run_gate(scene((frames["cccd"], 6), (frames["empty"], 4)), sink, mock_factory)

    assert [(c.credential.kind, c.decision.reason) for c in sink.checkins] == [
        (Kind.UNKNOWN, Reason.INTERNAL_ERROR)
    ]
    assert gate.counters.errors == 1
    assert_pattern(mock_factory.pin(23), IDLE_ACTIVE_LOW)
