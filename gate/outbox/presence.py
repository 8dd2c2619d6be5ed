"""Presence and telemetry payloads (schemas `gate.status.v1`, `gate.telemetry.v1`).

`status` is retained so whoever subscribes learns at once whether the gate is
`online`, `stopped` (clean exit) or `offline` (the broker published the last
will). `telemetry` is periodic, QoS 0 and not retained: a time series whose
last value would look current after the gate went away; `status` says that.
"""

import json
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from gate import __version__
from gate.outbox.store import OutboxStats

STATUS_SCHEMA = "gate.status.v1"
TELEMETRY_SCHEMA = "gate.telemetry.v1"


class Presence(StrEnum):
    ONLINE = "online"
    STOPPED = "stopped"
    OFFLINE = "offline"


def now_utc_ms() -> str:
    """The wall clock as ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_payload(
    state: Presence,
    *,
    client_id: str,
    boot_id: str,
    session: int,
    connection: int,
    faults: list[dict[str, str]] | None = None,
) -> bytes:
    """A `status` message; the last will (`offline`) has no time: the broker sends it later.

    `online` carries `faults` (`[{"code", "detail"}]`, empty when all is well): what keeps
    the gate from working fully, seen by whoever subscribes, at once and retained.
    """
    body: dict[str, object] = {
        "schema": STATUS_SCHEMA,
        "state": str(state),
        "client_id": client_id,
        "boot_id": boot_id,
        "session": session,
        "connection": connection,
        "version": __version__,
    }
    if state is not Presence.OFFLINE:
        body["at"] = now_utc_ms()
    if faults is not None:
        body["faults"] = faults
    return json.dumps(body, separators=(",", ":")).encode()


def disk_free(path: Path) -> int | None:
    """Free bytes on the file system holding `path` (None when unknown)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def outbox_section(stats: OutboxStats) -> dict[str, object]:
    """The outbox part of telemetry."""
    now_ms = time.time_ns() // 1_000_000
    oldest = stats.oldest_committed_ms
    return {
        "depth": stats.depth,
        "bytes": stats.bytes,
        "oldest_unsent_age_s": None if oldest is None else max(0.0, (now_ms - oldest) / 1000),
        "high_water": stats.high_water,
        "storage_full": stats.storage_full,
        "full_cause": stats.full_cause,
        "set_aside": stats.set_aside,
        "set_aside_last": stats.set_aside_last,
        "last_seq": stats.last_seq,
        "last_acked_seq": stats.last_acked_seq,
        "commits": stats.commits,
        "refused_full": stats.refused_full,
        "commit_ms_p50": stats.commit_ms_p50,
        "commit_ms_p99": stats.commit_ms_p99,
        "commit_ms_max": stats.commit_ms_max,
    }


def telemetry_payload(
    app: Mapping[str, object],
    *,
    boot_id: str,
    session: int,
    uptime_s: float,
    broker: str,
    outbox: Mapping[str, object],
    publisher: Mapping[str, object],
    disk_free_bytes: int | None,
    clock_synced: bool,
) -> bytes:
    """The daemon's counters (`app`) at top level, then ours; ours win a name clash.

    `clock_synced` is there so the operations team sees a gate whose event times cannot be
    trusted (no NTP yet) without waiting for its next check-in.
    """
    body: dict[str, object] = dict(app)
    body.update(
        schema=TELEMETRY_SCHEMA,
        at=now_utc_ms(),
        boot_id=boot_id,
        session=session,
        uptime_s=round(uptime_s, 3),
        broker=broker,
        outbox=dict(outbox),
        publisher=dict(publisher),
        disk_free_bytes=disk_free_bytes,
        clock_synced=clock_synced,
    )
    return json.dumps(body, separators=(",", ":"), default=str).encode()
