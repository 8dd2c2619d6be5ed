"""The `platform` row: whether this machine's Python can run the gate, and what to do if not.

What it reports is what a Raspberry Pi install most often gets wrong: a 32-bit userland
(Raspberry Pi OS 32-bit on a 64-bit kernel, where `uname -m` says aarch64), numpy or Pillow
below the versions the gate is tested with, a decoder backend that does not import, a pin
factory whose library is missing. The userland is the interpreter's, never the kernel's.
"""

import platform as host
import struct
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from gate.app_config import GateConfig
from gate.selftest.report import Row, Status

TESTED_FLOORS = {"numpy": (1, 24), "pillow": (9, 4)}
"""The oldest versions the test suite runs on: Debian bookworm's python3-numpy and python3-pil."""

DECODERS = ("zxing", "zbar")

PIN_LIBRARIES = {
    "lgpio": ("lgpio", "apt install python3-lgpio (Raspberry Pi OS)"),
    "rpigpio": ("RPi.GPIO", "apt install python3-rpi.gpio"),
    "pigpio": ("pigpio", "apt install python3-pigpio, and run pigpiod"),
    "native": ("gpiozero.pins.native", "reinstall the gate (gpiozero is incomplete)"),
    "mock": ("gpiozero.pins.mock", "reinstall the gate (gpiozero is incomplete)"),
}
"""signals.pin_factory -> (the module it needs, how to get it)."""

REFLASH = "flash Raspberry Pi OS Lite (64-bit) and install the gate again"


@dataclass(frozen=True, slots=True)
class Probe:
    """What the row looks at, injectable so that tests can show it another machine."""

    pointer_bits: int
    userland: str
    python: str
    version_of: Callable[[str], str | None]
    why_not_importable: Callable[[str], str | None]


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _why_not_importable(module: str) -> str | None:
    """None when the module imports, else the reason in one line: missing, or there but
    broken (RPi.GPIO on another board; the decoders say so as an ImportError)."""
    try:
        import_module(module)
    except ImportError as exc:
        return str(exc).splitlines()[0]
    except (OSError, AttributeError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"
    return None


def this_machine() -> Probe:
    return Probe(
        pointer_bits=struct.calcsize("P") * 8,
        userland=sysconfig.get_platform(),
        python=host.python_version(),
        version_of=_version_of,
        why_not_importable=_why_not_importable,
    )


def _release(text: str | None) -> tuple[int, ...]:
    parts = []
    for part in (text or "0").split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def platform_row(config: GateConfig, probe: Probe | None = None) -> Row:
    """One row: pass, warn (runs, outside what is tested) or fail (the gate cannot work)."""
    probe = probe or this_machine()
    failures: list[str] = []
    warnings: list[str] = []
    actions: list[str] = []

    if probe.pointer_bits != 64:
        failures.append(f"{probe.pointer_bits}-bit userland")
        actions.append(REFLASH)

    versions = []
    for name, floor in TESTED_FLOORS.items():
        found = probe.version_of(name)
        versions.append(f"{name} {found or 'missing'}")
        if found is None:
            failures.append(f"{name} missing")
            actions.append(f"apt install python3-{'pil' if name == 'pillow' else name}")
        elif _release(found) < floor:
            warnings.append(f"{name} {found} is older than the tested {'.'.join(map(str, floor))}")
            actions.append(f"upgrade to Raspberry Pi OS bookworm (its python3-{name})")

    available, unavailable = [], []
    for backend in DECODERS:
        reason = probe.why_not_importable(f"gate.decode.{backend}")
        if reason is None:
            available.append(backend)
        else:
            unavailable.append(f"{backend}: {reason}")
    wanted = config.decoder.backend
    if not available:
        failures.append("no QR decoder")
        actions.append("apt install libzbar0, then reinstall the gate (pyzbar, zxing-cpp)")
    elif wanted != "auto" and wanted not in available:
        failures.append(f"decoder.backend {wanted} unavailable")
        actions.append(f"set decoder.backend: auto, or reinstall the gate ({wanted} missing)")
    elif "zxing" not in available:
        warnings.append("zbar only (slower, reads fewer photos)")
        actions.append("reinstall the gate on a 64-bit system (zxing-cpp wheel)")
    elif "zbar" in config.decoder.rescue and "zbar" not in available:
        warnings.append("the zbar rescue rung is off (hard codes are read less often)")
        pyzbar_missing = probe.version_of("pyzbar") is None  # else libzbar is what is missing
        actions.append("reinstall the gate (pyzbar)" if pyzbar_missing else "apt install libzbar0")

    factory = config.signals.pin_factory
    names = [factory] if factory != "default" else ["lgpio", "rpigpio", "pigpio", "native"]
    importable = [n for n in names if probe.why_not_importable(PIN_LIBRARIES[n][0]) is None]
    if not importable:
        failures.append(f"pin factory {factory}: {PIN_LIBRARIES[names[0]][0]} missing")
        actions.append(PIN_LIBRARIES[names[0]][1])
    pins = f"pins {importable[0] if importable else 'none'}"

    value = f"{probe.userland}, Python {probe.python}"
    detail = "; ".join(
        [
            ", ".join(versions),
            f"decoders {', '.join(available) or 'none'}",
            *unavailable,
            pins,
        ]
    )
    problems = failures + warnings
    if problems:
        detail = f"{'; '.join(problems)}. {detail}"
    status = Status.FAIL if failures else Status.WARN if warnings else Status.PASS
    return Row("platform", status, value, detail, "; ".join(dict.fromkeys(actions)))
