"""Rows about the machine rather than the gate's parts: the service, clock, disk, outbox."""

import datetime
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import cast

from gate.app_config import GateConfig
from gate.outbox.reader import summary
from gate.outbox.store import outbox_path
from gate.selftest.report import Row, Status

SERVICE = "gate.service"

BUSY_STATES = frozenset({"active", "activating", "reloading", "deactivating", "refreshing"})
"""systemd states in which the daemon may hold the camera and the pins."""

STOP_SERVICE = (
    "stop the service: sudo systemctl stop gate; run the self-test again, "
    "then sudo systemctl start gate"
)

STALE_OUTBOX_S = 3600.0
"""An unsent check-in older than this means events are not leaving the gate."""


def service_state() -> str | None:
    """`systemctl is-active gate.service` ('active', 'inactive', 'failed'...); None without
    systemd (no systemctl, or systemd is not the init here)."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return None
    try:
        done = subprocess.run(
            [systemctl, "is-active", SERVICE], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def service_row(state: str | None) -> Row:
    if state is None:
        return Row("service", Status.PASS, "no systemd", "gate.service cannot be running here")
    if state in BUSY_STATES:
        return Row(
            "service",
            Status.FAIL,
            state,
            "gate.service holds the camera and the pins",
            STOP_SERVICE,
        )
    if state == "failed":
        return Row(
            "service",
            Status.WARN,
            state,
            "gate.service stopped on an error",
            "see why: journalctl -u gate -b -n 50; after fixing: sudo systemctl restart gate",
        )
    return Row("service", Status.PASS, state)


def clock_row(synced: bool) -> Row:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    if synced:
        return Row("clock", Status.PASS, "synchronised", f"UTC now {now}")
    return Row(
        "clock",
        Status.WARN,
        "not synchronised",
        f"UTC now {now}; check-ins carry clock_synced=false until NTP sets the clock",
        "`timedatectl status` must say 'System clock synchronized: yes': "
        "sudo timedatectl set-ntp true, and let the gate reach an NTP server (UDP 123)",
    )


def disk_row(config: GateConfig) -> Row:
    """Free space where the outbox lives; below twice its cap the disk may fill first."""
    state = config.site.state_dir
    path = next((p for p in (state, *state.parents) if p.exists()), Path("/"))
    need = 2 * config.outbox.max_bytes  # payload cap plus SQLite's overhead and WAL
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        return Row("disk", Status.FAIL, "unknown", f"{path}: {exc.strerror}", "check the SD card")
    value = f"{_size(free)} free"
    if free < need:
        return Row(
            "disk",
            Status.WARN,
            value,
            f"{path}: less than {_size(need)} (twice outbox.max_bytes): the disk could fill "
            "before the outbox reaches its cap",
            "free space (`sudo journalctl --vacuum-size=100M`, old files) "
            "or lower outbox.max_bytes",
        )
    return Row("disk", Status.PASS, value, str(path))


def outbox_row(config: GateConfig) -> Row:
    """Read-only, beside a running gate or a stopped one: depth, age, set-aside files."""
    path = outbox_path(config.outbox, config.site)
    set_aside = sorted(
        p
        for p in path.parent.glob(f"{path.name}.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    )
    depth, size, age = 0, 0, None
    value = "none yet (created at the first start)"
    if path.is_file():
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                info = summary(conn, path)
        except sqlite3.Error as exc:
            return Row(
                "outbox",
                Status.WARN,
                "unreadable",
                f"{path}: {exc}",
                "gate run sets a corrupt outbox aside and starts a fresh one; "
                f"save what it holds first: gate queue --db {path} --export FILE",
            )
        depth, size = cast(int, info["depth"]), cast(int, info["bytes"])
        age = cast(float | None, info["oldest_unsent_age_s"])
        value = "empty" if age is None else f"{depth} unsent, oldest {_duration(age)} old"
    if set_aside:
        return Row(
            "outbox",
            Status.WARN,
            f"{value}; {len(set_aside)} set aside",
            ", ".join(p.name for p in set_aside),
            f"export their check-ins (gate queue --db {set_aside[0]} --export FILE) for the "
            "operations team, then delete the set-aside files",
        )
    limits = config.outbox
    full = max(depth / limits.max_rows, size / limits.max_bytes) >= limits.high_water
    if full or (age is not None and age > STALE_OUTBOX_S):
        return Row(
            "outbox",
            Status.WARN,
            value,
            f"{path}: check-ins are not leaving the gate",
            "fix the broker row; gate run sends the backlog once connected (gate queue shows it)",
        )
    return Row("outbox", Status.PASS, value, str(path))


def _size(size: float) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
