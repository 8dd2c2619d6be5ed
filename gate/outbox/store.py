"""The durable outbox: every check-in is committed here before the gate opens (P1).

One SQLite file in WAL mode, two connections, so the door never waits for the uplink:

- the writer (capture thread, `synchronous=FULL`: a commit survives a power cut). A
  commit is one INSERT, its own transaction: one lock, one fsync, one hand-over of the
  interpreter between threads;
- the drain connection (publisher thread, `synchronous=NORMAL`: losing the last
  deletions to a power cut only re-sends acknowledged events, which P2 allows and
  the consumer de-duplicates by `event_id`). Its reads are WAL snapshots that never
  hold the writer up; its deletions go in transactions that give way to a waiting
  commit (`WriteTurn`), short while check-ins come, and it checkpoints the WAL
  outside of them. Between its steps the publisher waits while a commit is under way
  (`give_way`). Deleted rows are overwritten with zeros (`secure_delete`, Debian's
  default made sure of), and the WAL is cut back to `WAL_KEEP_BYTES` when it starts
  again: a check-in sent is personal data that the card should not keep.

The store does not build events: `append` takes a `render(seq, event_id)` callback
and calls it with the pair it assigns, under the write turn, so seq order is commit
order. Opening an existing file writes nothing (a gate killed on a full disk starts
again); a full disk at any point is the `storage_full` state, not a crash (P4).
"""

import errno
import logging
import math
import os
import sqlite3
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, TypeVar

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.errors import StorageError, StorageFull
from gate.files import create_private_file, make_private_directory
from gate.identity import clock_synced as system_clock_synced
from gate.outbox.config import OutboxConfig, PrivacyConfig
from gate.outbox.events import EventRenderer, uuid7
from gate.outbox.reader import newest_seq
from gate.privacy import load_key

log = logging.getLogger(__name__)

DB_VERSION = 1
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
MAX_SEQ = 2**63 - 1
_LATENCY_WINDOW = 2048
DELETE_ROWS_BUSY = 64  # rows per deleting transaction while check-ins come: a commit waits little
DELETE_ROWS_QUIET = 256  # ...and once none came for `_DOOR_QUIET_S`: cheaper a row
_DOOR_QUIET_S = 1.0
_CHECKPOINT_EVERY_S = 1.0  # the drain connection checkpoints the WAL at most this often
_WRITER_CHECKPOINT_PAGES = 4000  # backstop for a gate that is offline (nobody drains)
WAL_KEEP_BYTES = 64 * 1024
"""What the WAL file keeps when the drain connection's deletions start it again after a
checkpoint: without a limit it stays as
large as it ever grew (megabytes after a backlog), holding page images of check-ins long
sent. Truncated to this, not to 0: a WAL that must grow at every commit makes each fsync
write the file's size too (0.1-0.6 ms a commit, measured)."""
_T = TypeVar("_T")

Render = Callable[[int, str], bytes]
"""Makes the stored payload from the `(seq, event_id)` the store assigns."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    committed_ms INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class FullCause(StrEnum):
    """Why the outbox refuses new check-ins (the `storage_full` state, P4)."""

    CAP = "cap"  # `outbox.max_rows` or `outbox.max_bytes` reached
    DISK = "disk"  # the file system (or SQLite's page limit) has no room


class StoredEvent(NamedTuple):
    """One unsent event as stored: `payload` is the JSON without `replayed`.

    A named tuple: the drain reads thousands a second, and a fetched row becomes one in
    0.3 us where a frozen dataclass took 0.9 us.
    """

    seq: int
    event_id: str
    committed_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What telemetry and `gate queue` show of the outbox."""

    path: str
    depth: int
    bytes: int
    oldest_committed_ms: int | None
    last_seq: int
    last_acked_seq: int | None
    last_acked_ms: int | None
    high_water: bool
    storage_full: bool
    full_cause: FullCause | None
    set_aside: int
    set_aside_last: str | None
    commits: int
    refused_full: int
    commit_ms_p50: float | None
    commit_ms_p99: float | None
    commit_ms_max: float | None


def outbox_path(config: OutboxConfig, site: SiteConfig) -> Path:
    """Where the outbox file is."""
    return config.path or site.state_dir / "outbox.sqlite3"


def _errorcode(exc: sqlite3.Error) -> int:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF


def is_corruption(exc: sqlite3.Error) -> bool:
    """True for the errors that mean the file itself is bad (corrupt or not a database)."""
    if _errorcode(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text


def is_disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or the file's page limit) has no room for a write."""
    return _errorcode(exc) == _SQLITE_FULL


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class WriteTurn:
    """Who writes next: a waiting commit always goes before the next deleting transaction,
    and the publisher's thread pauses while a commit is under way (`give_way`).

    A threading condition, not SQLite's busy handler: that one sleeps 1, 2, 5, 10...
    ms between tries, and those sleeps were the commit's p99 beside a drain.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._commits = 0  # commits waiting for the turn or holding it
        self._clock = clock
        self._last_commit = -math.inf  # `clock()` when the last commit ended

    @contextmanager
    def commit(self) -> Iterator[None]:
        """The capture thread's turn: only waits for a transaction already running."""
        with self._cond:
            self._commits += 1
            while self._busy:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._commits -= 1
                self._busy = False
                self._last_commit = self._clock()
                self._cond.notify_all()

    def door_quiet(self) -> bool:
        """No commit runs, waits, or ended in the last `_DOOR_QUIET_S`: nobody is at the door."""
        return not self._commits and self._clock() - self._last_commit >= _DOOR_QUIET_S

    def give_way(self) -> None:
        """Wait while a commit is under way (the publisher's thread calls this between steps).

        Python runs one thread at a time: a drain's Python work interleaved with a commit's
        doubled the commit's time and made its p99 3-4x (bench/outbox_drain.py). Paused
        here, the publisher leaves the interpreter to the capture thread for the commit's
        fraction of a millisecond; the drain loses only that.
        """
        if not self._commits:  # read without the lock: a stale answer costs one step
            return
        with self._cond:
            while self._commits:
                self._cond.wait()

    @contextmanager
    def background(self) -> Iterator[None]:
        """Deletions and maintenance: only when no commit runs or waits."""
        with self._cond:
            while self._busy or self._commits:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


class Outbox:
    """The check-in sink: `commit` returns once the event is durable (P1), never overwrites (P4).

    Thread safe: `commit`/`append` from the capture thread, `fetch`/`ack` from the
    publisher; the two never wait for each other's reads, and deletions yield to commits.
    """

    def __init__(
        self,
        config: OutboxConfig,
        site: SiteConfig,
        privacy: PrivacyConfig,
        *,
        clock_synced: Callable[[], bool] = system_clock_synced,
        privacy_key: bytes | None = None,
    ) -> None:
        self.path = outbox_path(config, site)
        self._config = config
        key = privacy_key if privacy_key is not None else load_key(privacy, site)
        self._renderer = EventRenderer(site, privacy, key, clock_synced)
        self._turn = WriteTurn()
        self._drain_lock = threading.Lock()  # the drain connection is the publisher's
        self._writer: sqlite3.Connection | None = None
        self._drain: sqlite3.Connection | None = None
        self._rows = 0
        self._bytes = 0
        self._last_seq = 0
        self._full_cause: FullCause | None = None
        self._refused_size = 0
        self._high_water = False
        self._set_aside = 0
        self._set_aside_last: str | None = None
        self._commits = 0
        self._refused_full = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._unapplied_acks: list[int] = []
        self._next_checkpoint = time.monotonic() + _CHECKPOINT_EVERY_S
        with self._drain_lock, self._turn.background():
            self._open()

    # -- lifecycle -------------------------------------------------------------------------

    def _open(self) -> None:
        """Open the file, setting it aside once if it is corrupt; a full disk is a state."""
        try:
            make_private_directory(self.path.parent)
            create_private_file(self.path)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._opening_failed_full(exc)
                return
            raise StorageError(f"outbox folder {self.path.parent}: {exc.strerror}") from exc
        try:
            self._connect(None)
        except StorageError:
            self._close_connections()
            raise
        except sqlite3.DatabaseError as exc:
            self._close_connections()
            if is_disk_full(exc) or _no_room(self.path.parent):
                self._opening_failed_full(exc)
                return
            if not is_corruption(exc):
                raise StorageError(f"outbox {self.path}: {exc}") from exc
            self._set_aside_file(str(exc), None)

    def _opening_failed_full(self, exc: sqlite3.Error | OSError) -> None:
        """Start closed in the `storage_full` state; `_reopen` tries again later."""
        if self._full_cause is not FullCause.DISK:
            log.error("outbox %s cannot open, the disk is full (%s): scans refused", self.path, exc)
        self._full_cause = FullCause.DISK

    def _connect(self, seed: int | None) -> None:
        """Open both connections. Writes only to a new file or one that needs migrating."""
        writer = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._writer = writer
        mode = writer.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"outbox {self.path}: cannot use WAL (journal_mode={mode})")
        writer.execute("PRAGMA synchronous=FULL")
        writer.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
        writer.execute("PRAGMA secure_delete=ON")  # its page splits free content too
        writer.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")  # whichever connection
        # writes first after a checkpoint starts the WAL again and cuts it: mostly the door's
        version = writer.execute("PRAGMA user_version").fetchone()[0]
        if version > DB_VERSION:
            raise StorageError(f"outbox {self.path}: written by a newer gate (v{version})")
        problems = [row[0] for row in writer.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[:3]}")
        if version < DB_VERSION:
            self._create(writer, seed)
        drain = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._drain = drain
        drain.execute("PRAGMA synchronous=NORMAL")
        drain.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run outside the write turn
        drain.execute("PRAGMA secure_delete=ON")  # a sent check-in leaves no trace in the file
        drain.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
        rows, size = writer.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM events"
        ).fetchone()
        newest_row = writer.execute("SELECT max(seq) FROM events").fetchone()[0]
        self._rows, self._bytes = rows, size
        self._last_seq = newest_seq(self._meta(writer, "last_seq"), newest_row) or 0
        if rows >= self._config.max_rows or size >= self._config.max_bytes:
            self._full_cause = FullCause.CAP  # a gate restarted on a full store refuses at once
        self._update_high_water()

    @staticmethod
    def _create(writer: sqlite3.Connection, seed: int | None) -> None:
        """Schema and counters of a new file (version 0), in one transaction."""
        with _transaction(writer):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    writer.execute(statement)
            writer.executemany(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                [("last_seq", seed or 0), ("session", 0), ("created_ms", _now_ms())],
            )
            writer.execute(f"PRAGMA user_version={DB_VERSION}")

    def _reopen(self) -> bool:
        """After a full disk at start: try to open again; True when open."""
        with self._drain_lock, self._turn.background():
            if self._writer is not None:
                return True
            self._open()
            return self._writer is not None

    def _close_connections(self) -> None:
        for conn in (self._drain, self._writer):
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    log.warning("outbox close: %s", exc)
        self._writer = self._drain = None

    def _set_aside_file(self, why: str, known_seq: int | None) -> None:
        """Rename a bad file (and its WAL) aside, keep it for salvage, start a fresh one.

        The fresh file continues `seq` from what is known or can still be read;
        failing both, from the Unix time in ms, so `seq` keeps increasing.
        """
        salvaged = _salvage_last_seq(self.path)
        candidates = [s for s in (known_seq, salvaged) if s is not None]
        seed = max(candidates) if candidates else _now_ms()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{target}{suffix}"))
        except OSError as exc:
            raise StorageError(
                f"outbox {self.path} is unreadable ({why}) and cannot be set aside: {exc.strerror}"
            ) from exc
        self._set_aside += 1
        self._set_aside_last = str(target)
        log.error(
            "outbox %s is unreadable (%s): set aside as %s, its unsent events are kept there; "
            "continuing with a fresh outbox from seq %d",
            self.path,
            why,
            target,
            seed + 1,
        )
        try:
            self._connect(seed)
        except sqlite3.Error as exc:
            self._close_connections()
            raise StorageError(f"outbox {self.path}: fresh file unusable: {exc}") from exc

    def _recover(self, exc: sqlite3.DatabaseError) -> None:
        """Corruption found while running: set the file aside and go on with a fresh one.

        The caller holds the drain lock and the background write turn.
        """
        self._close_connections()
        self._set_aside_file(str(exc), self._last_seq)

    def close(self) -> None:
        """Close both connections (the last close checkpoints the WAL)."""
        with self._drain_lock, self._turn.background():
            self._close_connections()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- capture side ----------------------------------------------------------------------

    def commit(self, checkin: CheckIn) -> StoredEvent:
        """CheckinSink: durable on return (what was stored, for whoever wants its seq);
        StorageFull at the cap or on a full disk."""
        return self.append(self._renderer.render(checkin))

    def append(self, render: Render) -> StoredEvent:
        """Store the payload `render(seq, event_id)` makes; durable on return.

        StorageFull at the cap or on a full disk (nothing stored, no seq used).
        """
        started = time.perf_counter()
        if self._writer is None and not self._reopen():
            self._refuse(FullCause.DISK, 0)
            raise StorageFull("disk full, outbox cannot open: scan refused")
        try:
            with self._turn.commit():
                stored = self._insert(render)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise StorageError(f"outbox commit failed: {exc}") from exc
            with self._drain_lock, self._turn.background():
                self._recover(exc)
            with self._turn.commit():
                stored = self._insert(render)
        self._latencies.append((time.perf_counter() - started) * 1000)
        return stored

    def _insert(self, render: Render) -> StoredEvent:
        writer = self._require(self._writer)
        now = _now_ms()
        seq = self._last_seq + 1
        event_id = uuid7(now)
        payload = render(seq, event_id)
        if self._rows >= self._config.max_rows or (
            self._bytes + len(payload) > self._config.max_bytes
        ):
            self._refuse(FullCause.CAP, len(payload))
            raise StorageFull(
                f"outbox cap reached ({self._rows} events, {self._bytes} bytes): scan refused"
            )
        row = (seq, event_id, now, payload)
        try:
            self._transact(writer, lambda conn: _insert_row(conn, row))
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            self._refuse(FullCause.DISK, len(payload))
            raise StorageFull(f"disk full, scan refused: {exc}") from exc
        self._last_seq = seq
        self._rows += 1
        self._bytes += len(payload)
        self._commits += 1
        if self._full_cause is not None:
            log.warning("outbox accepts check-ins again (was full: %s)", self._full_cause)
            self._full_cause = None
        self._update_high_water()
        return StoredEvent(seq, event_id, now, payload)

    def _refuse(self, cause: FullCause, size: int) -> None:
        self._refused_full += 1
        self._refused_size = size
        if self._full_cause != cause:
            log.error(
                "outbox full (%s): refusing scans until events are acknowledged "
                "(%d events, %d bytes stored)",
                cause,
                self._rows,
                self._bytes,
            )
        self._full_cause = cause

    # -- publisher side --------------------------------------------------------------------

    def give_way(self) -> None:
        """Return once no commit is under way: the publisher calls it between its steps."""
        self._turn.give_way()

    def fetch(self, after: int, limit: int, upto: int = MAX_SEQ) -> list[StoredEvent]:
        """Unsent events with `after < seq <= upto`, in seq order (a snapshot; no commit waits)."""
        if self._drain is None and not self._reopen():
            return []
        with self._drain_lock:
            try:
                rows = (
                    self._require(self._drain)
                    .execute(
                        "SELECT seq, event_id, committed_ms, payload FROM events "
                        "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                        (after, upto, limit),
                    )
                    .fetchall()
                )
            except sqlite3.DatabaseError as exc:
                self._on_drain_error(exc)
                return []
        return list(map(StoredEvent._make, rows))

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events (P2: only after a successful PUBACK); returns how many.

        In transactions of `DELETE_ROWS_BUSY` rows while check-ins come (a commit waits for at
        most one of them), of `DELETE_ROWS_QUIET` once the door is quiet (a row then costs
        a fifth less: a transaction's fixed cost is large; bench/outbox_drain.py); each
        gives way to a waiting commit. Then, at most once a second, a passive checkpoint that
        holds no write lock.
        """
        with self._drain_lock:
            batch = self._unapplied_acks + list(seqs)
            if not batch or self._drain is None:
                self._unapplied_acks = batch
                return 0
            deleted = start = 0
            while start < len(batch):
                size = DELETE_ROWS_QUIET if self._turn.door_quiet() else DELETE_ROWS_BUSY
                done = self._delete(batch[start : start + size])
                if done is None:
                    self._unapplied_acks = batch[start:]
                    return deleted
                deleted += done
                start += size
            self._unapplied_acks = []
            self._checkpoint()
            return deleted

    def _delete(self, chunk: list[int]) -> int | None:
        """One deleting transaction; None when it failed (the rows stay, retried later)."""
        drain = self._require(self._drain)
        failure: sqlite3.DatabaseError | None = None
        with self._turn.background():
            try:
                deleted, freed = self._transact(drain, lambda conn: _delete_rows(conn, chunk))
            except sqlite3.DatabaseError as exc:
                failure = exc
            else:
                self._rows -= deleted
                self._bytes -= freed
                self._update_full()
                self._update_high_water()
                return deleted
        if not is_disk_full(failure):
            self._on_drain_error(failure)
            return None
        # the rows stay (and may be sent again); the deletions are retried next time
        if self._full_cause is None:
            log.error("outbox: disk full, cannot delete acknowledged events: %s", failure)
        self._full_cause = FullCause.DISK
        return None

    def _checkpoint(self) -> None:
        """Copy the WAL into the file from the publisher thread, so commits never do it."""
        now = time.monotonic()
        if now < self._next_checkpoint or self._drain is None:
            return
        self._next_checkpoint = now + _CHECKPOINT_EVERY_S
        try:
            self._drain.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("outbox: checkpoint failed: %s", exc)

    def _transact(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """One write (a statement or a `_transaction`); on a full disk, reclaim the WAL's
        space and try once more.

        The WAL only grows until a checkpoint: truncating it is what lets a full disk
        accept the deletions (and often the next check-in) again.
        """
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
        self._reclaim(conn)
        return work(conn)

    def _reclaim(self, conn: sqlite3.Connection) -> None:
        try:
            busy, wal_pages, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("outbox: cannot checkpoint the WAL on a full disk: %s", exc)
            return
        log.warning(
            "outbox: disk full, WAL checkpointed (%d/%d pages, busy=%d)", done, wal_pages, busy
        )

    def _on_drain_error(self, exc: sqlite3.DatabaseError) -> None:
        """The caller holds the drain lock."""
        if is_corruption(exc):
            with self._turn.background():
                self._recover(exc)
            return
        raise StorageError(f"outbox drain failed: {exc}") from exc

    def next_session(self) -> int:
        """Count one more publisher session; persisted so it grows across restarts (P5).

        On a full disk the count goes on in memory (from the stored one) and is not saved.
        """
        with self._drain_lock:
            stored = self._stored_session()
            if self._writer is None:
                return stored + 1
            with self._turn.background():
                try:
                    return self._transact(self._writer, _count_session)
                except sqlite3.OperationalError as exc:
                    if not is_disk_full(exc):
                        raise StorageError(f"outbox: cannot count the session: {exc}") from exc
                    log.warning("outbox: disk full, session %d not saved", stored + 1)
                    return stored + 1

    def _stored_session(self) -> int:
        """The saved count; read without locks or side files when the file cannot open."""
        query = "SELECT value FROM meta WHERE key = 'session'"
        if self._drain is None:
            return _peek(self.path, "immutable=1", query) or 0
        try:
            return self._meta(self._drain, "session") or 0
        except sqlite3.Error:
            return 0

    @property
    def depth(self) -> int:
        """Unsent events now (cheap: no query)."""
        return self._rows

    @property
    def pending_acks(self) -> bool:
        """Acknowledged events whose deletion failed on a full disk wait to be deleted."""
        return bool(self._unapplied_acks)

    @property
    def last_seq(self) -> int:
        """The seq of the newest committed event."""
        return self._last_seq

    @property
    def storage_full(self) -> FullCause | None:
        """Why new scans are refused, or None while there is room (no query: read every second)."""
        return self._full_cause

    # -- state -----------------------------------------------------------------------------

    def _update_full(self) -> None:
        if self._full_cause is None:
            return
        room = self._rows < self._config.max_rows and (
            self._bytes + self._refused_size <= self._config.max_bytes
        )
        if self._full_cause is FullCause.DISK or room:
            log.warning("outbox has room again (was full: %s)", self._full_cause)
            self._full_cause = None

    def _update_high_water(self) -> None:
        fraction = self._config.high_water
        high = (
            self._rows >= fraction * self._config.max_rows
            or self._bytes >= fraction * self._config.max_bytes
        )
        if high != self._high_water:
            if high:
                log.warning("outbox above high water: %d events, %d bytes", self._rows, self._bytes)
            else:
                log.info("outbox back below high water")
        self._high_water = high

    def stats(self) -> OutboxStats:
        """A snapshot for telemetry, read on the drain connection (no commit waits for it)."""
        with self._drain_lock:
            oldest = acked_seq = acked_ms = None
            if self._drain is not None:
                try:
                    row = self._drain.execute(
                        "SELECT committed_ms FROM events ORDER BY seq LIMIT 1"
                    ).fetchone()
                    oldest = row[0] if row else None
                    acked_seq = self._meta(self._drain, "last_acked_seq")
                    acked_ms = self._meta(self._drain, "last_acked_ms")
                except sqlite3.Error as exc:  # stats must not fail; the next commit recovers
                    log.warning("outbox stats: %s", exc)
        lat = sorted(self._latencies)
        return OutboxStats(
            path=str(self.path),
            depth=self._rows,
            bytes=self._bytes,
            oldest_committed_ms=oldest,
            last_seq=self._last_seq,
            last_acked_seq=acked_seq,
            last_acked_ms=acked_ms,
            high_water=self._high_water,
            storage_full=self._full_cause is not None,
            full_cause=self._full_cause,
            set_aside=self._set_aside,
            set_aside_last=self._set_aside_last,
            commits=self._commits,
            refused_full=self._refused_full,
            commit_ms_p50=statistics.median(lat) if lat else None,
            commit_ms_p99=lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
            commit_ms_max=lat[-1] if lat else None,
        )

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> int | None:
        """A counter of the meta table; one that is not a whole number means a damaged file,
        which opening sets aside like any other corruption."""
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise sqlite3.DatabaseError(f"database disk image is malformed: meta {key}") from None

    def _require(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise StorageError(f"outbox {self.path} is closed")
        return conn


def _no_room(folder: Path) -> bool:
    """The file system of `folder` has no free block left (SQLite may call that an I/O error)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Statements that commit together or not at all (the write lock taken at the start).

    Whatever interrupts them rolls back: a transaction left open would hold the write lock.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert_row(conn: sqlite3.Connection, row: tuple[int, str, int, bytes]) -> None:
    """A check-in: one statement, which SQLite commits as its own transaction (one lock, one
    fsync, and one hand-over of the interpreter where four statements took four).

    `last_seq` in meta is not touched: `newest_seq` reads the newest seq from it and the
    newest stored row.
    """
    conn.execute(
        "INSERT INTO events(seq, event_id, committed_ms, payload) VALUES (?, ?, ?, ?)", row
    )


def _count_session(conn: sqlite3.Connection) -> int:
    with _transaction(conn):
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'session'")
        row = conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
    return int(row[0]) if row else 0


def _delete_rows(conn: sqlite3.Connection, seqs: list[int]) -> tuple[int, int]:
    """Delete rows, raising `last_seq` to them; returns (rows deleted, payload bytes freed).

    By runs of consecutive seqs (acknowledgements mostly come in order): a range is read
    and deleted about a third faster than a list of seqs with RETURNING.
    """
    deleted = freed = newest = 0
    with _transaction(conn):
        for first, last in _runs(seqs):
            rows, size, top = conn.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(max(seq), 0) "
                "FROM events WHERE seq BETWEEN ? AND ?",
                (first, last),
            ).fetchone()
            if rows:
                conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, last))
                deleted, freed, newest = deleted + rows, freed + size, max(newest, top)
        if deleted:
            conn.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'last_seq'", (newest,))
        conn.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            [("last_acked_seq", max(seqs)), ("last_acked_ms", _now_ms())],
        )
    return deleted, freed


def _runs(seqs: Iterable[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive numbers in `seqs`, in order."""
    ordered = sorted(set(seqs))
    if not ordered:
        return
    first = previous = ordered[0]
    for seq in ordered[1:]:
        if seq != previous + 1:
            yield first, previous
            first = seq
        previous = seq
    yield first, previous


def _salvage_last_seq(path: Path) -> int | None:
    """The newest seq a bad file shows, or None when that cannot be known: meta's
    `last_seq` alone is only a floor (`newest_seq`), so the newest stored row must be
    readable as well, or nothing is said.
    """
    newest = _peek(path, "mode=ro", "SELECT coalesce(max(seq), 0) FROM events")
    if newest is None:
        return None
    return newest_seq(
        _peek(path, "mode=ro", "SELECT value FROM meta WHERE key = 'last_seq'"), newest
    )


def _peek(path: Path, mode: str, query: str) -> int | None:
    """One number read from `path` opened with URI parameters `mode`; None if unreadable."""
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?{mode}", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(query).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if not row or row[0] is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):  # a damaged file: nothing to say
        return None
