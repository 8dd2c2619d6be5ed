"""Signals: what the LEDs, buzzer and relay do, read from gpiozero's own MockFactory pins.

Pin records are (seconds since the previous change, level), checked with gpiozero's
tolerance through tests.pins.assert_pattern. Default pins: relay 23, green 17, red 27,
buzzer 22, exit button 24.
"""

import logging
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
from gpiozero import LED, Button, Buzzer, DigitalOutputDevice
from gpiozero.pins.mock import MockFactory
from pins import assert_pattern, join_blinks, levels

from gate.config.base import ValidationError
from gate.errors import SignalError
from gate.signals import (
    Blink,
    Outcome,
    Patterns,
    PinChangeLog,
    Signals,
    SignalsConfig,
    make_pin_factory,
)

RELAY, GREEN, RED, BUZZER, EXIT, DOOR = 23, 17, 27, 22, 24, 25
OFF = [(0.0, False)]


def config(**overrides: object) -> SignalsConfig:
    return SignalsConfig.model_validate({"pin_factory": "mock", **overrides})


@pytest.fixture
def make_signals(mock_factory) -> Iterator:
    """Builds Signals on the test's MockFactory and always closes them."""
    made: list[Signals] = []

    def make(cfg: SignalsConfig | None = None) -> Signals:
        signals = Signals(cfg or config(), mock_factory)
        made.append(signals)
        return signals

    yield make
    for signals in made:
        if signals._devices:
            signals.close()


def pause(seconds: float) -> None:
    time.sleep(seconds)


def clear(factory: MockFactory, *pins: int) -> None:
    for pin in pins:
        factory.pin(pin).clear_states()


def blinks(on: float, off: float, times: int) -> list[tuple[float, bool]]:
    """A pin's record for a blink started now on an off pin: on at once, then the cycles."""
    record = [(0.0, False)]
    for i in range(times):
        record += [(0.0 if i == 0 else off, True), (on, False)]
    return record


# What each outcome shows with the default patterns, pin by pin.
DEFAULT_PATTERNS = {
    Outcome.ACCEPTED: {GREEN: blinks(1.5, 0, 1), RED: OFF, BUZZER: blinks(0.1, 0, 1)},
    Outcome.REFUSED: {GREEN: OFF, RED: blinks(0.2, 0.2, 3), BUZZER: blinks(0.2, 0.2, 3)},
    Outcome.DUPLICATE: {GREEN: blinks(0.1, 0.1, 2), RED: OFF, BUZZER: blinks(0.05, 0.1, 2)},
    Outcome.ERROR: {GREEN: OFF, RED: blinks(2.0, 0, 1), BUZZER: blinks(1.0, 0, 1)},
    Outcome.STORAGE_FULL: {
        GREEN: blinks(0.1, 0.1, 6),
        RED: blinks(0.1, 0.1, 6),
        BUZZER: blinks(1.0, 0, 1),
    },
}


@pytest.mark.parametrize("outcome", list(Outcome))
def test_each_outcome_shows_its_default_pattern_and_leaves_the_relay_alone(
    outcome, make_signals, mock_factory
):
    signals = make_signals()
    clear(mock_factory, RELAY, GREEN, RED, BUZZER)

    signals.show(outcome)
    join_blinks(signals.green, signals.red, signals.buzzer)

    for pin, expected in DEFAULT_PATTERNS[outcome].items():
        assert_pattern(mock_factory.pin(pin), expected)
    assert_pattern(mock_factory.pin(RELAY), OFF)


def test_default_pattern_durations_are_what_the_table_says():
    patterns = Patterns()
    assert {o: patterns.for_outcome(o).duration_s for o in Outcome} == pytest.approx(
        {
            Outcome.ACCEPTED: 1.5,
            Outcome.REFUSED: 1.2,
            Outcome.DUPLICATE: 0.4,
            Outcome.ERROR: 2.0,
            Outcome.STORAGE_FULL: 1.2,
        }
    )


def test_a_new_outcome_replaces_the_pattern_showing(make_signals, mock_factory):
    signals = make_signals()
    clear(mock_factory, GREEN, RED)

    signals.show(Outcome.REFUSED)
    pause(0.1)
    signals.show(Outcome.DUPLICATE)
    join_blinks(signals.green, signals.red, signals.buzzer)

    # Red cut short by the duplicate (which has no red), green flashing from then on.
    assert_pattern(mock_factory.pin(RED), [(0.0, False), (0.0, True), (0.1, False)])
    assert_pattern(
        mock_factory.pin(GREEN),
        [(0.0, False), (0.1, True), (0.1, False), (0.1, True), (0.1, False)],
    )


def test_outputs_are_off_when_built(make_signals, mock_factory):
    make_signals()

    for pin in (RELAY, GREEN, RED, BUZZER):
        assert levels(mock_factory.pin(pin)) == [False]


def test_active_low_relay_is_driven_high_at_once_when_built(make_signals, mock_factory):
    make_signals(config(relay={"pin": RELAY, "active_high": False}))

    # A mock pin starts low; the de-energised active-low relay is high.
    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True)])


def test_relay_pulse_lasts_relay_pulse_s(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=0.3))
    clear(mock_factory, RELAY)

    signals.open_relay()
    join_blinks(signals.relay)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.3, False)])


def test_active_low_relay_pulses_low(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=0.3, relay={"pin": RELAY, "active_high": False}))
    clear(mock_factory, RELAY)

    signals.open_relay()
    join_blinks(signals.relay)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, True), (0.0, False), (0.3, True)])


def test_a_longer_pulse_than_relay_max_s_is_cut_to_relay_max_s(make_signals, mock_factory):
    signals = make_signals(config(relay_max_s=0.3, relay_pulse_s=0.2, exit_pulse_s=0.2))
    clear(mock_factory, RELAY)

    signals.open_relay(5.0)
    join_blinks(signals.relay)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.3, False)])


def test_a_shorter_explicit_pulse_is_honoured(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=1.0))
    clear(mock_factory, RELAY)

    signals.open_relay(0.2)
    join_blinks(signals.relay)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.2, False)])


def test_a_second_pulse_extends_an_open_relay_without_closing_it(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=0.3))
    clear(mock_factory, RELAY)

    signals.open_relay()
    pause(0.2)
    signals.open_relay()
    join_blinks(signals.relay)

    # Open for 0.2 + 0.3 s in one piece: no close-and-reopen click in between.
    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.5, False)])


def test_hold_relay_keeps_it_open_beyond_relay_max_s_until_released(make_signals, mock_factory):
    signals = make_signals(config(relay_max_s=0.2, relay_pulse_s=0.1, exit_pulse_s=0.1))
    clear(mock_factory, RELAY)

    signals.hold_relay(True)
    pause(0.4)
    assert mock_factory.pin(RELAY).state is True
    signals.hold_relay(False)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.4, False)])


def test_releasing_the_hold_closes_a_pulse_in_progress(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=1.0))
    clear(mock_factory, RELAY)

    signals.open_relay()
    pause(0.1)
    signals.hold_relay(False)
    pause(1.1)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.1, False)])


def test_a_pulse_during_a_hold_does_not_end_the_hold(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=0.1, exit_pulse_s=0.1))

    signals.hold_relay(True)
    signals.open_relay()
    pause(0.3)

    assert mock_factory.pin(RELAY).state is True


def test_exit_button_opens_the_relay_for_exit_pulse_s(make_signals, mock_factory, caplog):
    caplog.set_level(logging.INFO, logger="gate.signals")
    make_signals(config(exit_pulse_s=0.3, relay_pulse_s=0.1))
    clear(mock_factory, RELAY)

    button = mock_factory.pin(EXIT)
    button.drive_low()  # pressed: wired to ground, pulled up
    button.drive_high()
    pause(0.5)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (0.0, True), (0.3, False)])
    assert "exit button pressed: opening" in caplog.messages


def test_no_exit_button_when_configured_null(make_signals, mock_factory):
    signals = make_signals(config(exit_button=None))

    assert signals.exit_button is None
    assert "exit_button" not in signals.named_devices()
    # The pin is free for something else.
    DigitalOutputDevice(EXIT, pin_factory=mock_factory).close()


def test_door_contact_reports_the_door_open_or_shut(make_signals, mock_factory, caplog):
    caplog.set_level(logging.INFO, logger="gate.signals")
    signals = make_signals(config(door_contact={"pin": DOOR}))
    contact = mock_factory.pin(DOOR)

    assert signals.door_open is True  # pulled up, nothing closing the contact
    contact.drive_low()
    assert signals.door_open is False
    contact.drive_high()
    assert signals.door_open is True
    assert caplog.messages == ["door closed", "door opened"]


def test_door_contact_wired_to_3v3_is_shut_when_high(make_signals, mock_factory):
    signals = make_signals(config(door_contact={"pin": DOOR, "pull_up": False}))

    assert signals.door_open is True
    mock_factory.pin(DOOR).drive_high()
    assert signals.door_open is False
    mock_factory.pin(DOOR).drive_low()
    assert signals.door_open is True


def test_door_state_is_unknown_without_a_door_contact(make_signals):
    assert make_signals().door_open is None


FAST_HEARTBEAT = {"offline": {"on_s": 0.05, "off_s": 0.15}}


def test_offline_heartbeat_blinks_the_red_led_while_idle(make_signals, mock_factory):
    signals = make_signals(config(patterns=FAST_HEARTBEAT))
    clear(mock_factory, RED)

    signals.set_offline(True)
    pause(0.32)

    assert_pattern(
        mock_factory.pin(RED),
        [(0.0, False), (0.0, True), (0.05, False), (0.15, True), (0.05, False)],
    )


OUT_OF_SERVICE = FAST_HEARTBEAT | {"out_of_service": {"on_s": 0.1, "off_s": 0.1}}


def test_out_of_service_blinks_the_red_led_until_cleared(make_signals, mock_factory):
    signals = make_signals(config(patterns=OUT_OF_SERVICE))
    clear(mock_factory, RED)

    signals.set_out_of_service(True)
    pause(0.25)
    signals.set_out_of_service(False)
    pause(0.1)

    assert_pattern(
        mock_factory.pin(RED),
        [(0.0, False), (0.0, True), (0.1, False), (0.1, True), (0.05, False)],
    )


def test_out_of_service_wins_over_the_offline_heartbeat(make_signals, mock_factory):
    signals = make_signals(config(patterns=OUT_OF_SERVICE))
    clear(mock_factory, RED)

    signals.set_out_of_service(True)
    signals.set_offline(True)
    pause(0.45)

    states = mock_factory.pin(RED).states
    on_periods = [after.timestamp for before, after in pairwise(states) if before.state]
    assert len(on_periods) >= 2
    assert all(took > 0.08 for took in on_periods), on_periods  # 0.1 s, never the 0.05 s one


def test_the_devices_are_gpiozeros_own_classes(make_signals):
    signals = make_signals(config())

    assert type(signals.green) is LED and type(signals.red) is LED
    assert type(signals.buzzer) is Buzzer
    assert type(signals.relay) is DigitalOutputDevice
    assert type(signals.exit_button) is Button


def test_pin_factories_are_found_by_gpiozeros_entry_point_names():
    with pytest.raises(SignalError, match="gpiozero has no such pin factory"):
        make_pin_factory("nosuch")


def test_offline_heartbeat_stops_when_back_online(make_signals, mock_factory):
    signals = make_signals(config(patterns=FAST_HEARTBEAT))
    signals.set_offline(True)
    pause(0.1)

    signals.set_offline(False)
    pause(0.1)
    red = mock_factory.pin(RED)
    changes = len(red.states)
    pause(0.5)

    assert red.state is False
    assert len(red.states) == changes


def test_offline_heartbeat_pauses_for_an_outcome_and_resumes_after_it(make_signals, mock_factory):
    cfg = config(patterns={**FAST_HEARTBEAT, "accepted": {"green": {"on_s": 0.3}}})
    signals = make_signals(cfg)
    signals.set_offline(True)
    pause(0.1)  # heartbeat off phase
    clear(mock_factory, RED, GREEN)

    signals.show(Outcome.ACCEPTED)
    pause(0.42)

    assert_pattern(mock_factory.pin(GREEN), [(0.0, False), (0.0, True), (0.3, False)])
    # Dark while the outcome shows, then the heartbeat again.
    assert_pattern(mock_factory.pin(RED), [(0.0, False), (0.3, True), (0.05, False)])


def test_online_gate_keeps_the_red_led_dark_when_idle(make_signals, mock_factory):
    make_signals(config(patterns=FAST_HEARTBEAT))
    pause(0.3)

    assert levels(mock_factory.pin(RED)) == [False]


def test_close_leaves_the_relay_de_energised_even_mid_pulse(make_signals, mock_factory):
    signals = make_signals(config(relay_pulse_s=5.0, relay={"pin": RELAY, "active_high": False}))
    signals.open_relay()
    pause(0.1)

    signals.close()

    relay = mock_factory.pin(RELAY)
    assert levels(relay) == [False, True, False, True]
    assert relay.state is True


def test_close_ends_an_emergency_hold(make_signals, mock_factory):
    signals = make_signals()
    signals.hold_relay(True)

    signals.close()

    assert mock_factory.pin(RELAY).state is False


def test_close_releases_every_pin_for_a_new_signals_on_the_same_factory(make_signals, mock_factory):
    cfg = config(door_contact={"pin": DOOR})
    first = make_signals(cfg)
    first.close()

    second = make_signals(cfg)  # would raise GPIOPinInUse if any pin were still claimed
    second.open_relay(0.1)
    join_blinks(second.relay)

    assert_pattern(mock_factory.pin(RELAY), [(0.0, False), (None, True), (0.1, False)])


def test_close_stops_the_idle_thread(make_signals):
    signals = make_signals()

    signals.close()

    assert not signals._idle_thread.is_alive()


def test_a_pin_already_in_use_is_a_signal_error_and_nothing_stays_claimed(mock_factory):
    taken = DigitalOutputDevice(RED, pin_factory=mock_factory)
    try:
        with pytest.raises(SignalError, match="cannot set up the signal pins"):
            Signals(config(), mock_factory)
    finally:
        taken.close()

    # The relay and green pins it claimed before failing were released.
    Signals(config(), mock_factory).close()


def test_the_same_pin_for_two_devices_is_refused_by_the_config():
    with pytest.raises(ValidationError, match="red_led and green_led are both on pin GPIO17"):
        config(red_led={"pin": f"GPIO{GREEN}"})


def test_an_invalid_pin_is_a_signal_error(mock_factory):
    with pytest.raises(SignalError, match="cannot set up the signal pins"):
        Signals(config(red_led={"pin": "BOARD99"}), mock_factory)


def test_named_devices_are_the_config_names(make_signals):
    signals = make_signals(config(door_contact={"pin": DOOR}))

    assert set(signals.named_devices()) == {
        "relay",
        "green",
        "red",
        "buzzer",
        "exit_button",
        "door_contact",
    }


def normalised(messages: list[str]) -> list[str]:
    return [" ".join(m.split()) for m in messages if m.startswith("pin ")]


def test_pin_change_log_writes_one_readable_line_per_change(make_signals, mock_factory, caplog):
    caplog.set_level(logging.INFO, logger="gate.signals")
    signals = make_signals(
        config(
            relay_pulse_s=0.1,
            relay={"pin": RELAY, "active_high": False},
            door_contact={"pin": DOOR},
        )
    )
    pin_log = PinChangeLog(signals.named_devices())

    signals.open_relay()
    pause(0.2)
    pin_log.flush()
    mock_factory.pin(DOOR).drive_low()  # contact closed: the input is active
    mock_factory.pin(DOOR).drive_high()
    signals.relay.off()  # already off: no change, no line
    pin_log.flush()

    assert normalised(caplog.messages) == [
        "pin relay ON (GPIO23 low)",
        "pin relay off (GPIO23 high)",
        "pin door_contact ON (GPIO25 low)",
        "pin door_contact off (GPIO25 high)",
    ]


def test_pin_change_log_ignores_changes_before_it_was_made(make_signals, caplog):
    caplog.set_level(logging.INFO, logger="gate.signals")
    signals = make_signals()
    signals.green.on()

    PinChangeLog(signals.named_devices()).flush()

    assert normalised(caplog.messages) == []


def test_pin_change_log_thread_logs_while_running_and_flushes_at_stop(make_signals, caplog):
    caplog.set_level(logging.INFO, logger="gate.signals")
    signals = make_signals()
    pin_log = PinChangeLog(signals.named_devices(), interval_s=0.02)
    pin_log.start()

    signals.green.on()
    deadline = time.monotonic() + 2.0
    while not normalised(caplog.messages) and time.monotonic() < deadline:
        pause(0.01)
    assert normalised(caplog.messages) == ["pin green ON (GPIO17 high)"]

    signals.green.off()
    pin_log.stop()
    assert normalised(caplog.messages)[-1] == "pin green off (GPIO17 low)"


def test_mock_pin_factory_is_gpiozeros_mock_factory():
    factory = make_pin_factory("mock")
    try:
        assert isinstance(factory, MockFactory)
    finally:
        factory.close()


def test_default_pin_factory_leaves_the_choice_to_gpiozero():
    assert make_pin_factory("default") is None


def test_an_unavailable_pin_factory_is_a_signal_error_naming_it():
    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("lgpio is installed here")

    with pytest.raises(SignalError, match=r"signals.pin_factory 'lgpio' is unavailable here"):
        make_pin_factory("lgpio")


def test_relay_pulses_above_relay_max_s_are_refused_in_config():
    with pytest.raises(ValueError, match="must not exceed relay_max_s"):
        SignalsConfig(relay_max_s=2.0, relay_pulse_s=3.0)
    with pytest.raises(ValueError, match="must not exceed relay_max_s"):
        SignalsConfig(relay_max_s=2.0, relay_pulse_s=1.0, exit_pulse_s=3.0)


def test_blink_duration_is_on_plus_off_times_cycles():
    assert Blink(on_s=0.2, off_s=0.3, times=4).duration_s == pytest.approx(2.0)
