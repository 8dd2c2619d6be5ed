"""An outbox file read as it is, read-only: its summary and an export of what it holds.

For `gate queue` and the self-test; safe beside a running gate (WAL readers do not block its
writer), and on a file set aside as corrupt, whose values may be anything.
"""

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from gate.outbox.events import with_replayed

_EXPORT_ROW_BYTES = 1 << 20
"""A row longer than this is skipped unread: far beyond any event the gate writes (a QR code
holds under 3 KB), while a set-aside file's row may hold up to a gigabyte."""


def _whole(value: object) -> int | None:
    """A counter as stored, or None: `--db` reads files set aside as corrupt, whose values
    may be anything."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def newest_seq(meta_last_seq: int | None, newest_row: int | None) -> int | None:
    """The newest seq a file has committed, None when neither number is known.

    Commits leave `last_seq` in meta alone (one statement, one page) and deletions raise it
    to the rows they remove: so it is the larger of that and the newest stored row.
    """
    known = [seq for seq in (meta_last_seq, newest_row) if seq is not None]
    return max(known) if known else None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):  # not a time any clock shows
        return None


def summary(conn: sqlite3.Connection, path: Path) -> dict[str, object]:
    """Depth, oldest unsent, last acknowledged, as read from the file now."""
    depth, size, first, last = conn.execute(
        "SELECT count(*), coalesce(sum(length(payload)), 0), min(seq), max(seq) FROM events"
    ).fetchone()
    oldest = conn.execute("SELECT committed_ms FROM events ORDER BY seq LIMIT 1").fetchone()
    meta = {key: _whole(value) for key, value in conn.execute("SELECT key, value FROM meta")}
    now = time.time()
    oldest_ms = _whole(oldest[0]) if oldest else None
    return {
        "path": str(path),
        "depth": depth,
        "bytes": size,
        "first_unsent_seq": _whole(first),
        "last_unsent_seq": _whole(last),
        "oldest_unsent_at": _iso(oldest_ms),
        "oldest_unsent_age_s": None if oldest_ms is None else round(now - oldest_ms / 1000, 3),
        "last_seq": newest_seq(meta.get("last_seq"), _whole(last)),
        "last_acked_seq": meta.get("last_acked_seq"),
        "last_acked_at": _iso(meta.get("last_acked_ms")),
        "sessions": meta.get("session"),
    }


def export(conn: sqlite3.Connection, out: IO[bytes]) -> tuple[int, int]:
    """Every unsent event as one JSON line, in seq order: (exported, skipped).

    A row of a file set aside as corrupt may hold anything: only a JSON object of a sane
    size is written (with `replayed`), so that each line is one event; the rest are counted
    as skipped. One row in memory at a time.
    """
    exported = skipped = 0
    for (payload,) in conn.execute(
        "SELECT CASE WHEN length(CAST(payload AS BLOB)) <= ? THEN CAST(payload AS BLOB) END "
        "FROM events ORDER BY seq",
        (_EXPORT_ROW_BYTES,),
    ):
        if _is_event(payload):
            out.write(with_replayed(payload, True) + b"\n")
            exported += 1
        else:
            skipped += 1
    out.flush()
    return exported, skipped


def _is_event(payload: bytes | None) -> bool:
    """A payload as the store writes it: a JSON object with members, on one line, from its
    first byte to its last (`with_replayed` adds a member before the last)."""
    if not payload or payload[:1] != b"{" or payload[-1:] != b"}":
        return False
    if b"\n" in payload or b"\r" in payload:
        return False
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # json.JSONDecodeError and bad UTF-8 are ValueErrors
        return False
    return isinstance(event, dict) and bool(event)
