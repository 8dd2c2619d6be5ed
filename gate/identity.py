"""Who this device is and whether its clock can be trusted: small readers the daemon reuses."""

import ctypes
import functools
import re
import uuid
from collections.abc import Callable
from pathlib import Path

from gate.config.site import SiteConfig
from gate.errors import ConfigError

_CPUINFO = Path("/proc/cpuinfo")
_DT_SERIAL = Path("/sys/firmware/devicetree/base/serial-number")
MACHINE_ID_FILE = Path("/etc/machine-id")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
_TIME_ERROR = 5  # adjtimex(2) return value when the kernel clock is unsynchronised
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00\n\t ") or None
    except OSError:
        return None


def _cpu_serial(cpuinfo: Path = _CPUINFO, dt_serial: Path = _DT_SERIAL) -> str | None:
    text = _read(cpuinfo) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "serial" and value.strip().strip("0"):
            return value.strip()
    serial = _read(dt_serial)
    return serial if serial and serial.strip("0") else None


def device_id(
    site: SiteConfig,
    *,
    cpuinfo: Path = _CPUINFO,
    dt_serial: Path = _DT_SERIAL,
    machine_id: Path = MACHINE_ID_FILE,
) -> str:
    """The hardware's id: config override, else CPU serial, else machine id.

    Derived from the hardware so that a cloned SD card does not share the MQTT
    client id of its original (two equal ids flap each other off the broker).
    """
    if site.device_id:
        return site.device_id
    raw = _cpu_serial(cpuinfo, dt_serial) or _read(machine_id)
    if not raw:
        raise ConfigError("no device id: set site.device_id (no CPU serial, no machine-id)")
    return _SAFE.sub("-", raw)[:64]


def client_id(device: str) -> str:
    """MQTT client id of this device."""
    return f"gate-{device}"


def boot_id(path: Path = _BOOT_ID) -> str:
    """The kernel's id of this boot (a fresh random one where the kernel has none)."""
    return _read(path) or str(uuid.uuid4())


def clock_synced() -> bool:
    """True when the wall clock is disciplined (timesyncd says so, or adjtimex is not unsynced).

    Events carry this flag so the consumer knows whether `captured_at` can be
    trusted (a Pi has no RTC: before NTP its clock may be days off).
    """
    if _TIMESYNCD_FLAG.exists():
        return True
    adjtimex = _adjtimex()
    if adjtimex is None:
        return False
    timex = ctypes.create_string_buffer(1024)  # larger than struct timex; modes=0: read only
    return 0 <= adjtimex(timex) < _TIME_ERROR


@functools.cache
def _adjtimex() -> Callable[[ctypes.Array[ctypes.c_char]], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None


def topic_root(template: str, site: SiteConfig, device: str) -> str:
    """The configured topic root with the site's ids filled in."""
    return template.format(
        province=site.province, venue_id=site.venue_id, gate_id=site.gate_id, device_id=device
    )
