"""The pins row by row: each LED, the buzzer and the relay switched on and off in turn, while
the technician watches and listens; each pin is read back after it is driven."""

import time

from gpiozero import DigitalOutputDevice, Factory

from gate.errors import SignalError
from gate.selftest.report import Row, Status
from gate.signals import Signals, SignalsConfig, make_pin_factory

SIGNAL_ROWS = ("green_led", "red_led", "buzzer", "relay")
_SEEN = {
    "green_led": "the green LED should have lit",
    "red_led": "the red LED should have lit",
    "buzzer": "the buzzer should have sounded",
    "relay": "the relay should have clicked and the door released",
}


def signal_rows(config: SignalsConfig, on_s: float, factory: Factory | None = None) -> list[Row]:
    """Each output on, read back, off, read back, in turn; the relay as a bounded pulse.

    `factory` None: the one `config.pin_factory` names.
    """
    try:
        signals = Signals(config, factory or make_pin_factory(config.pin_factory))
    except SignalError as exc:
        action = (
            "check signals.pin_factory and the pin numbers; this user must be in the gpio "
            "group (`groups`), or run with sudo"
        )
        return [Row(name, Status.FAIL, "not set up", str(exc), action) for name in SIGNAL_ROWS]
    pause = on_s / 3
    try:
        rows = []
        for name, device in (
            ("green_led", signals.green),
            ("red_led", signals.red),
            ("buzzer", signals.buzzer),
        ):
            device.on()
            lit = device.is_active
            time.sleep(on_s)
            device.off()
            rows.append(_signal_row(name, device, lit, device.is_active, on_s))
            time.sleep(pause)
        pulse = min(on_s, config.relay_max_s)
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
