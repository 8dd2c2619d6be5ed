"""Light, sound and the relay, through gpiozero devices built on an injected pin factory.

gpiozero's own classes (`LED`, `Buzzer`, a `DigitalOutputDevice` for the relay, `Button`)
and its own pin-factory lookup (the `gpiozero_pin_factories` entry points, by name).

The relay's safe state is de-energised: it is off when the devices are built, off again
before they are closed, and a pulse is always bounded by `relay_max_s`. Only an explicit
hold (an emergency open) keeps it on without a bound.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, Literal, TypeVar

from gpiozero import LED, Button, Buzzer, Device, DigitalOutputDevice, Factory, OutputDevice

from gate.config.base import Field, Section, field_validator, model_validator
from gate.errors import SignalError

log = logging.getLogger(__name__)

PinName = int | str
_Output = TypeVar("_Output", bound=DigitalOutputDevice)


class Outcome(StrEnum):
    """What the gate tells the person in front of it. Each has its own pattern."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    DUPLICATE = "duplicate"
    ERROR = "error"
    STORAGE_FULL = "storage_full"


class OutputPin(Section):
    pin: PinName = Field(description="BCM number (17) or gpiozero pin name ('GPIO17', 'BOARD11').")
    active_high: bool = Field(
        default=True, description="False when the device is on at a low level."
    )


class InputPin(Section):
    pin: PinName = Field(description="BCM number or gpiozero pin name.")
    pull_up: bool = Field(
        default=True,
        description="True for a contact wired to ground (internal pull-up); false to 3V3.",
    )
    bounce_s: float = Field(default=0.05, ge=0, le=1, description="Debounce time in seconds.")


class Blink(Section):
    on_s: float = Field(gt=0, le=30, description="Seconds on in each cycle.")
    off_s: float = Field(default=0.0, ge=0, le=30, description="Seconds off after each cycle.")
    times: int = Field(default=1, ge=1, le=20, description="Number of cycles.")

    @property
    def duration_s(self) -> float:
        return (self.on_s + self.off_s) * self.times


class Pattern(Section):
    green: Blink | None = Field(default=None, description="Green LED blinks; null leaves it dark.")
    red: Blink | None = Field(default=None, description="Red LED blinks; null leaves it dark.")
    buzzer: Blink | None = Field(default=None, description="Buzzer beeps; null keeps it silent.")

    @property
    def duration_s(self) -> float:
        return max((b.duration_s for b in (self.green, self.red, self.buzzer) if b), default=0.0)


def _pattern(**parts: tuple[float, float, int]) -> Callable[[], "Pattern"]:
    """A pattern's default from (on_s, off_s, times) per part."""
    return lambda: Pattern(
        **{name: Blink(on_s=on, off_s=off, times=n) for name, (on, off, n) in parts.items()}
    )


class Patterns(Section):
    accepted: Pattern = Field(
        default_factory=_pattern(green=(1.5, 0, 1), buzzer=(0.1, 0, 1)),
        description="Accepted: the relay opens; default steady green, one short beep.",
    )
    refused: Pattern = Field(
        default_factory=_pattern(red=(0.2, 0.2, 3), buzzer=(0.2, 0.2, 3)),
        description="Refused: default three red flashes with three beeps.",
    )
    duplicate: Pattern = Field(
        default_factory=_pattern(green=(0.1, 0.1, 2), buzzer=(0.05, 0.1, 2)),
        description="Already checked in within the cooldown: two quick green flashes and chirps.",
    )
    error: Pattern = Field(
        default_factory=_pattern(red=(2.0, 0, 1), buzzer=(1.0, 0, 1)),
        description="The gate failed to handle the scan: long red, long beep.",
    )
    storage_full: Pattern = Field(
        default_factory=_pattern(red=(0.1, 0.1, 6), green=(0.1, 0.1, 6), buzzer=(1.0, 0, 1)),
        description="Check-in store full, scan refused: red and green flashing with a long beep.",
    )
    offline: Blink = Field(
        default_factory=lambda: Blink(on_s=0.05, off_s=4.95, times=1),
        description="While the broker is unreachable, the red LED repeats this blink when idle "
        "(check-ins are kept on the device meanwhile).",
    )
    out_of_service: Blink = Field(
        default_factory=lambda: Blink(on_s=1.0, off_s=1.0, times=1),
        description="While a fault keeps the gate from reading scans (no camera, no decoder), "
        "the red LED repeats this blink; the exit button still opens.",
    )

    def for_outcome(self, outcome: Outcome) -> Pattern:
        return getattr(self, outcome.value)


class SignalsConfig(Section):
    pin_factory: Literal["default", "lgpio", "rpigpio", "pigpio", "native", "mock"] = Field(
        default="default",
        description="gpiozero pin factory; `default` honours GPIOZERO_PIN_FACTORY, then "
        "gpiozero's own order. `mock` (no hardware) logs every pin change: the demo.",
    )
    green_led: OutputPin = Field(
        default_factory=lambda: OutputPin(pin=17), description="Green LED."
    )
    red_led: OutputPin = Field(default_factory=lambda: OutputPin(pin=27), description="Red LED.")
    buzzer: OutputPin = Field(
        default_factory=lambda: OutputPin(pin=22), description="Active buzzer."
    )
    relay: OutputPin = Field(
        default_factory=lambda: OutputPin(pin=23),
        description="Relay driving the door strike, turnstile or barrier. Many relay boards "
        "are active-low: set active_high false for them.",
    )
    exit_button: InputPin | None = Field(
        default_factory=lambda: InputPin(pin=24),
        description="Request-to-exit button: opens the relay. null when there is none.",
    )
    door_contact: InputPin | None = Field(
        default=None,
        description="Door contact, closed when the door is shut. null when there is none.",
    )
    relay_max_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Upper bound on any relay pulse, whatever asks for it.",
    )
    relay_pulse_s: float = Field(
        default=3.0, gt=0, le=60, description="How long an accepted scan opens."
    )
    exit_pulse_s: float = Field(
        default=5.0, gt=0, le=60, description="How long the exit button opens."
    )
    patterns: Patterns = Field(default_factory=Patterns, description="Light and sound per outcome.")

    @model_validator(mode="after")
    def _one_device_per_pin(self) -> "SignalsConfig":
        owners: dict[str, str] = {}
        for name in ("green_led", "red_led", "buzzer", "relay", "exit_button", "door_contact"):
            device = getattr(self, name)
            if device is None:
                continue
            pin = _pin_key(device.pin)
            if pin in owners:
                raise ValueError(f"{name} and {owners[pin]} are both on pin {device.pin}")
            owners[pin] = name
        return self

    @field_validator("relay_pulse_s", "exit_pulse_s")
    @classmethod
    def _within_bound(cls, value: float, earlier: Mapping[str, Any]) -> float:
        bound = earlier.get("relay_max_s")
        if bound is not None and value > bound:
            raise ValueError(f"must not exceed relay_max_s ({bound})")
        return value


def _pin_key(pin: PinName) -> str:
    """17, "17", "GPIO17" and "BCM17" name the same pin; other spellings are compared as given."""
    text = str(pin).upper()
    for prefix in ("GPIO", "BCM"):
        text = text.removeprefix(prefix)
    return text


PIN_FACTORIES = "gpiozero_pin_factories"
"""The entry-point group gpiozero finds its pin factories in (and GPIOZERO_PIN_FACTORY names)."""


def make_pin_factory(name: str) -> Factory | None:
    """The named factory, or None for gpiozero's default choice. Failures are SignalError."""
    if name == "default":
        return None
    found = entry_points(group=PIN_FACTORIES, name=name)
    if not found:
        raise SignalError(f"signals.pin_factory {name!r}: gpiozero has no such pin factory")
    try:
        return next(iter(found)).load()()
    except Exception as exc:  # lgpio raises its own `lgpio.error` for a missing chip
        raise SignalError(f"signals.pin_factory {name!r} is unavailable here: {exc}") from exc


class Signals:
    """Shows outcomes and drives the relay. Every method returns at once (gpiozero blinks
    in its own background threads), so the capture loop never waits on a pattern."""

    def __init__(self, config: SignalsConfig, pin_factory: Factory | None = None) -> None:
        self._config = config
        self._patterns = config.patterns
        self._devices: list[Device] = []
        self._offline = False
        self._out_of_service = False
        self._held = False
        self._safe = False
        """Set by `make_safe`: the relay stays off until these signals are built again."""
        self._relay_lock = threading.Lock()
        self._pattern_lock = threading.Lock()
        self._closed = False
        self._idle_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.door_open: bool | None = None
        try:
            self.relay = self._output(DigitalOutputDevice, config.relay, pin_factory)
            self.green = self._output(LED, config.green_led, pin_factory)
            self.red = self._output(LED, config.red_led, pin_factory)
            self.buzzer = self._output(Buzzer, config.buzzer, pin_factory)
            self.exit_button = self._input(config.exit_button, pin_factory)
            self.door_contact = self._input(config.door_contact, pin_factory)
        except Exception as exc:  # gpiozero, the pin library (ImportError, lgpio.error), OS
            self.close()
            raise SignalError(f"cannot set up the signal pins: {exc}") from exc
        if self.exit_button is not None:
            self.exit_button.when_pressed = self._exit_requested
        if self.door_contact is not None:
            self.door_contact.when_pressed = self._door_closed
            self.door_contact.when_released = self._door_opened
            self.door_open = not self.door_contact.is_pressed
        self._idle_thread = threading.Thread(
            target=self._idle_loop, name="signals-idle", daemon=True
        )
        self._idle_thread.start()

    def _output(self, kind: type[_Output], pin: OutputPin, factory: Factory | None) -> _Output:
        device = kind(
            pin.pin, active_high=pin.active_high, initial_value=False, pin_factory=factory
        )
        self._devices.append(device)
        return device

    def _input(self, pin: InputPin | None, factory: Factory | None) -> Button | None:
        if pin is None:
            return None
        device = Button(
            pin.pin, pull_up=pin.pull_up, bounce_time=pin.bounce_s or None, pin_factory=factory
        )
        self._devices.append(device)
        return device

    def show(self, outcome: Outcome) -> None:
        """Start the outcome's light and sound pattern, replacing whatever was showing."""
        pattern = self._patterns.for_outcome(outcome)
        with self._pattern_lock:  # the idle loop must not switch off what starts here
            self._idle_at = time.monotonic() + pattern.duration_s
            for device, blink in (
                (self.green, pattern.green),
                (self.red, pattern.red),
                (self.buzzer, pattern.buzzer),
            ):
                if blink is None:
                    device.off()
                else:
                    device.blink(on_time=blink.on_s, off_time=blink.off_s, n=blink.times)
        self._wake.set()

    def open_relay(self, seconds: float | None = None) -> None:
        """Pulse the relay, never longer than `relay_max_s`; a new pulse extends an open one.

        While the relay is held open (emergency), a pulse changes nothing: it must not
        end the hold when its time runs out.
        """
        with self._relay_lock:
            if self._held or self._safe:
                return
            pulse = self._config.relay_pulse_s if seconds is None else seconds
            self.relay.blink(on_time=min(pulse, self._config.relay_max_s), off_time=0, n=1)

    def hold_relay(self, held: bool) -> None:
        """Keep the relay open without a bound (emergency open), or return it to closed."""
        with self._relay_lock:
            self._held = held and not self._safe
            if self._held:
                self.relay.on()
            else:
                self.relay.off()

    def set_offline(self, offline: bool) -> None:
        if offline != self._offline:
            self._offline = offline
            self._wake.set()

    def set_out_of_service(self, out: bool) -> None:
        """The red LED's out-of-service blink while idle (it wins over the offline one)."""
        if out != self._out_of_service:
            self._out_of_service = out
            self._wake.set()

    def _exit_requested(self) -> None:
        log.info("exit button pressed: opening")
        self.open_relay(self._config.exit_pulse_s)

    def _door_opened(self) -> None:
        self.door_open = True
        log.info("door opened")

    def _door_closed(self) -> None:
        self.door_open = False
        log.info("door closed")

    def _idle_loop(self) -> None:
        """Keep the out-of-service or offline blink going between outcome patterns."""
        patterns = self._patterns
        while not self._stop.is_set():
            remaining = self._idle_at - time.monotonic()
            if remaining > 0:
                self._wake.wait(remaining)
                self._wake.clear()
                continue
            with self._pattern_lock:
                if self._idle_at > time.monotonic():
                    continue  # a pattern began meanwhile
                idle = patterns.out_of_service if self._out_of_service else patterns.offline
                if self._out_of_service or self._offline:
                    self.red.blink(on_time=idle.on_s, off_time=idle.off_s, n=None)
                else:
                    self.red.off()
            self._wake.wait()
            self._wake.clear()

    def named_devices(self) -> dict[str, Device]:
        """The devices by their config names, for showing pin changes in the demo."""
        names = ("relay", "green", "red", "buzzer", "exit_button", "door_contact")
        return {
            name: getattr(self, name) for name in names if getattr(self, name, None) is not None
        }

    def make_safe(self) -> None:
        """Relay off now, hold and pulse ended, and no new pulse or hold from here on: the
        first step of a stop, before anything it waits for (systemd may kill it meanwhile)."""
        with self._relay_lock:
            self._safe = True
            self._held = False
            relay = getattr(self, "relay", None)
            if relay is not None:
                relay.off()

    def close(self) -> None:
        """Relay to its safe state first, then release every pin. Closing twice is harmless."""
        with self._relay_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        self.make_safe()
        idle = getattr(self, "_idle_thread", None)
        if idle is not None:
            idle.join(timeout=2.0)
        for device in reversed(self._devices):
            device.close()
        self._devices.clear()


def _active_high(device: Device) -> bool:
    """Outputs say it; a button is active at the level its pull resistor does not give."""
    if isinstance(device, Button):
        return not device.pull_up
    return isinstance(device, OutputDevice) and device.active_high


class PinChangeLog:
    """Logs every change of mock pins in readable form: what the demo shows instead of LEDs.

    Reads gpiozero's own `MockPin.states` record (appended by the pins themselves), so
    nothing in the signal path changes for the demo.
    """

    def __init__(self, devices: dict[str, Device], interval_s: float = 0.02) -> None:
        self._pins = {name: device.pin for name, device in devices.items()}
        self._active_high = {name: _active_high(device) for name, device in devices.items()}
        self._seen = {name: len(pin.states) for name, pin in self._pins.items()}
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pin-change-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        for name, pin in self._pins.items():
            states = pin.states
            for change in states[self._seen[name] :]:
                active = bool(change.state) == self._active_high[name]
                level = "high" if change.state else "low"
                log.info(
                    "pin %-12s %-3s (%s %s)", name, "ON" if active else "off", pin.info.name, level
                )
            self._seen[name] = len(states)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self.flush()
