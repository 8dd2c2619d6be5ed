"""`gate selftest`: the technician's check at the door, one row per part, each with what to do.

Rows, in order: config, platform, service, green_led, red_led, buzzer, relay, camera, exposure,
code, broker, clock, disk, outbox. Each is pass, warn or fail with a measured value; a failure or
a warning says what to do. A row that depends on one that failed is `skip` (one cause, one
failure): exposure and code when the camera gave no frames.

While gate.service runs it holds the camera and the pins, and two programs driving one relay
is unsafe: the `service` row then fails ("stop the service") and the pin and camera rows are
skipped, not attempted. The self-test never creates anything under `site.state_dir` (it
often runs as root): the outbox is read read-only, and the broker round trip uses its own
client id (`gate-<device>-selftest`) so the running daemon's session is never taken over.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpiozero import Factory

from gate.app_config import GateConfig, load_config
from gate.errors import EXIT_CONFIG, ConfigError
from gate.identity import clock_synced
from gate.selftest.broker import broker_row
from gate.selftest.camera import CAMERA_ROWS, camera_rows
from gate.selftest.host import (
    STOP_SERVICE,
    clock_row,
    disk_row,
    outbox_row,
    service_row,
    service_state,
)
from gate.selftest.pins import SIGNAL_ROWS, signal_rows
from gate.selftest.platform import platform_row
from gate.selftest.report import Row, Status, exit_status, render, skipped

__all__ = [
    "CHECKS",
    "STOP_SERVICE",
    "Options",
    "Row",
    "Status",
    "run_checks",
    "selftest",
]

CHECKS = ("platform", "signals", "camera", "broker", "clock", "disk", "outbox")
"""What `--only` selects; the config row always runs, the service row with signals or camera."""


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
    where = f"gate {config.site.name}, camera {config.camera.source}"
    rows = [Row("config", Status.PASS, str(config_path), where)]
    busy = False
    if "platform" in options.only:
        rows.append(platform_row(config))
    if options.only & {"signals", "camera"}:
        service = service_row(options.service_state())
        busy = service.status is Status.FAIL
        rows.append(service)
    if "signals" in options.only:
        if busy:
            rows += skipped(SIGNAL_ROWS, "not run: gate.service holds the pins")
        else:
            options.say("signals: watch the LEDs and listen to the buzzer and the relay")
            rows += signal_rows(config.signals, options.pin_on_s, options.pin_factory)
    if "camera" in options.only:
        if busy:
            rows += skipped(CAMERA_ROWS, "not run: gate.service holds the camera")
        else:
            rows += camera_rows(
                config,
                window_s=options.camera_window_s,
                code_timeout_s=options.code_timeout_s,
                say=options.say,
            )
    if "broker" in options.only:
        options.say(f"broker: connecting to {config.mqtt.host}")
        rows.append(broker_row(config))
    if "clock" in options.only:
        rows.append(clock_row(options.clock_synced()))
    if "disk" in options.only:
        rows.append(disk_row(config))
    if "outbox" in options.only:
        rows.append(outbox_row(config))
    return rows


def selftest(config_path: Path, *, as_json: bool = False, options: Options = Options()) -> int:
    """Load the config (exit 78 at once when invalid), run the checks, print the report."""

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        action = f"fix the file: `gate config check {config_path}` lists every problem"
        print(render([Row("config", Status.FAIL, "invalid", str(exc), action)], as_json))
        return EXIT_CONFIG
    rows = run_checks(config, config_path, options)
    print(render(rows, as_json))
    return exit_status(rows)
