"""Reading gpiozero MockPin records as levels and durations, for exact pattern checks."""

from math import isclose

from broker import wait_until
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockPin

TOLERANCE_S = 0.05
"""gpiozero's own tolerance in MockPin.assert_states_and_times."""


def levels(pin: MockPin) -> list[bool]:
    """Every level the pin took, the initial one first."""
    return [bool(state.state) for state in pin.states]


def assert_pattern(pin: MockPin, expected: list[tuple[float | None, bool]]) -> None:
    """The pin went through exactly `expected`: (seconds since the previous change, level),
    the initial level first. None accepts any time: the wait for the next code to be shown.

    Like MockPin.assert_states_and_times, with two differences it cannot give: the number
    of changes is asserted (its zip ignores extra or missing ones), and a time can be left open.
    """
    actual = [(state.timestamp, bool(state.state)) for state in pin.states]
    assert [level for _, level in actual] == [level for _, level in expected], actual
    for (took, _), (want, _) in zip(actual, expected, strict=True):
        if want is not None:
            assert isclose(took, want, abs_tol=TOLERANCE_S), (actual, expected)


def join_blinks(*devices: OutputDevice, timeout: float = 10.0) -> None:
    """Return once every finite blink on `devices` has run its course and left it off, so no
    change is still to come.

    gpiozero runs each blink in a GPIOThread it keeps on the device (it has no public handle);
    the thread ends with the last phase, and its join raises ZombieThread if it outlives
    `timeout`, for instance on an endless blink. A blink stopped right at its end by `off()`
    (the signals' idle loop does so when a pattern's time is up) ends its thread before
    `off()` writes the level, hence the wait for the device to be off.
    """
    for device in devices:
        thread = device._blink_thread
        if thread is not None:
            thread.join(timeout)
        assert wait_until(lambda device=device: not device.is_active, timeout), device
