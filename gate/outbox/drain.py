"""The publisher's drain decisions as a pure object: events in, actions out (P2, P3).

`Drain` knows the two lanes, the in-flight window, acknowledgements, refusals,
the rewind after a refusal and when to delete acknowledged rows. It does no I/O
and reads no clock: the publisher's thread (the shell) tells it what happened
(`begin`, `fetched`, `sent`, `puback`, `wake`) with the time, asks `next_action`
what to do, does it, and reports back. So every rule here is tested in
milliseconds without a broker; tests/test_publisher*.py keep a few real-broker
soaks for the shell.

The rules:
- Per connection, whatever is stored when it comes up (or is rewound) is the
  backlog, sent in seq order with `replayed: true`; what is committed later is
  live, in seq order with `replayed: false`, with first claim on up to half the
  window, so a week's backlog does not delay a check-in happening now.
- At most `window` events without a PUBACK. A success acknowledges the row (it
  is deleted, in batches); a refusal (PUBACK >= 0x80) keeps it, pauses sending
  with exponential backoff, then rewinds both lanes to what is stored.
- An event unacknowledged for `ack_timeout_s` means the connection is stuck.
- Acknowledged rows are deleted in batches of `DELETE_BATCH` or `DELETE_EVERY_S`
  after the first, once nothing more can be sent: with the window full (the
  deletion overlaps the broker's work instead of delaying the next events) or
  nothing left to send; at once when nothing is in flight, and always before a
  lane reset (until deleted, only the lane cursors keep them from being sent
  again).
"""

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from gate.outbox.events import with_replayed
from gate.outbox.store import DELETE_ROWS_QUIET, MAX_SEQ, StoredEvent

FETCH_ROWS = 64  # rows read from the outbox at a time, per lane
DELETE_BATCH = DELETE_ROWS_QUIET  # acknowledged rows deleted together (one long transaction)...
DELETE_EVERY_S = 0.05  # ...or this long after the first of them was acknowledged
LIVE_POLL_S = 0.5  # look for live events without a wake-up this often


class Backoff:
    """Exponential delay with jitter: `low * 2**n`, capped at `high`, minus up to half."""

    def __init__(self, low: float, high: float, rng: Callable[[], float] = random.random) -> None:
        self._low, self._high, self._rng = low, high, rng
        self._attempt = 0

    def next(self) -> float:
        """The next delay; jitter keeps a fleet of gates from reconnecting in lockstep."""
        delay = min(self._high, self._low * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return delay * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        self._attempt = 0


class Lane(StrEnum):
    BACKLOG = "backlog"
    LIVE = "live"


# -- actions: what the shell is asked to do ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read up to `limit` stored rows with `after < seq <= upto`; answer with `fetched`."""

    lane: Lane
    after: int
    upto: int
    limit: int


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish each of `payloads` (QoS 1), in order, for the rows `seqs` of one lane; answer
    with `sent(...)` and the message ids paho gave them.

    All that fits the window at once: the shell publishes them back to back, so the
    broker gets them in one burst and the drain is asked once, not once an event.
    """

    lane: Lane
    seqs: tuple[int, ...]
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete these acknowledged rows (empty: retry deletions the store still owes)."""

    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rewind:
    """Reset the lanes to what is stored: answer with `reset(last stored seq)`."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker refused `count` events (kept); sending pauses for `delay_s`."""

    count: int
    first_seq: int
    reason: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class Stuck:
    """No PUBACK for `waited_s` with `inflight` events out: drop the connection."""

    waited_s: float
    inflight: int


Action = Fetch | Publish | Delete | Rewind | Refused | Stuck


# -- state -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cursor:
    """Rows of one lane, read ahead a little: `after < seq <= upto`."""

    after: int
    upto: int
    rows: deque[StoredEvent] = field(default_factory=deque)


@dataclass(slots=True)
class _Sent:
    seq: int
    at: float
    lane: Lane


@dataclass(slots=True)
class DrainCounters:
    published: int = 0
    acked: int = 0
    refused: int = 0
    last_refusal: str | None = None
    ack_timeouts: int = 0


class Drain:
    """The drain of one publisher, across its connections; single-threaded, no I/O."""

    def __init__(self, window: int, ack_timeout_s: float, refusal_backoff: Backoff) -> None:
        self._window = window
        self._live_share = max(1, window // 2)
        self._ack_timeout_s = ack_timeout_s
        self._backoff = refusal_backoff
        self.counters = DrainCounters()
        self._inflight: dict[int, _Sent] = {}  # by mid, in sending order
        self._live_inflight = 0
        self._acked: list[int] = []  # acknowledged, not yet handed out for deletion
        self._refused: list[tuple[int, str]] = []
        self._acked_lately = False  # since the last `next_action`
        self._batch_opened = False  # `_batch_started` is stamped at the next `next_action`
        self._batch_started = 0.0  # when the first row of the coming deletion was acknowledged
        self._retry_by = 0.0
        self._backlog = _Cursor(0, 0)
        self._live = _Cursor(0, MAX_SEQ)
        self._woken = False
        self._next_live_poll = 0.0
        self._paused_until = 0.0
        self._rewind = True  # after `begin`, nothing is sent before a `reset`
        self._linked = False  # no connection has begun yet

    # -- what happened -----------------------------------------------------------------

    def begin(self) -> None:
        """A new connection: what was in flight is gone (it stays stored); rewind first."""
        self._linked = True
        self._inflight.clear()
        self._live_inflight = 0
        self._refused.clear()
        self._paused_until = 0.0
        self._rewind = True

    def reset(self, last_stored_seq: int) -> None:
        """Answer to `Rewind`: stored now is backlog, committed from now on is live."""
        self._backlog = _Cursor(0, last_stored_seq)
        self._live = _Cursor(last_stored_seq, MAX_SEQ)
        self._next_live_poll = 0.0
        self._rewind = False

    def fetched(self, lane: Lane, rows: list[StoredEvent]) -> None:
        """Answer to `Fetch`."""
        cursor = self._cursor(lane)
        cursor.rows.extend(rows)
        if rows:
            cursor.after = rows[-1].seq
        elif lane is Lane.BACKLOG:
            cursor.after = cursor.upto  # the backlog is done
        # an empty live lane waits for a wake-up or the next poll

    def sent(self, publish: Publish, mids: Sequence[int], now: float) -> None:
        """Answer to `Publish`: paho took its first `len(mids)` events as these messages
        (fewer than asked when publishing failed: the connection is then dropped)."""
        inflight, lane = self._inflight, publish.lane
        for seq, mid in zip(publish.seqs, mids, strict=False):
            inflight[mid] = _Sent(seq, now, lane)
        if lane is Lane.LIVE:
            self._live_inflight += len(mids)
        self.counters.published += len(mids)

    def puback(self, mid: int, refusal: str | None) -> bool:
        """A PUBACK: `refusal` is the reason of a failure code, None on success.

        False when `mid` is not an event in flight (another message of the shell's).
        """
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return False
        if sent.lane is Lane.LIVE:
            self._live_inflight -= 1
        if refusal is None:
            self._batch_opened |= not self._acked
            self._acked_lately = True
            self._acked.append(sent.seq)
            self.counters.acked += 1
        else:
            self._refused.append((sent.seq, refusal))
        return True

    def wake(self) -> None:
        """A check-in was committed: look for live rows now."""
        self._woken = True

    # -- what to do --------------------------------------------------------------------

    def next_action(self, now: float, store_owes_deletes: bool = False) -> Action | None:
        """The next thing to do, or None for nothing until something happens.

        `store_owes_deletes`: deletions failed earlier (full disk) and wait for a retry.
        Call again after doing (and answering) each action.
        """
        if not self._linked:
            return None
        refused = self._settle(now)
        if refused is not None:
            return refused
        if self._inflight:
            waited = now - next(iter(self._inflight.values())).at  # dicts keep sending order
            if waited > self._ack_timeout_s:
                self.counters.ack_timeouts += 1
                return Stuck(waited, len(self._inflight))
        resetting = self._rewind and not self._inflight and now >= self._paused_until
        if self._acked and resetting:
            return self._delete(now)
        if store_owes_deletes and now >= self._retry_by:
            return self._delete(now)
        if resetting:
            return Rewind()
        action = None if self._rewind else self._fill(now)
        if action is not None:
            return action
        if not self._acked:
            return None
        if not self._inflight:
            return self._delete(now)  # idle: no reason to wait for a batch
        if len(self._acked) >= DELETE_BATCH or now >= self._batch_started + DELETE_EVERY_S:
            # Nothing more can be sent now (the window is full, so the broker works on what
            # is in flight meanwhile; or nothing is left to send; or a refusal pauses us).
            return self._delete(now)
        return None

    def take_deletions(self) -> tuple[int, ...]:
        """Every acknowledged row not yet handed out: at a clean stop or a lost connection."""
        done, self._acked = tuple(self._acked), []
        return done

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- inside ------------------------------------------------------------------------

    def _settle(self, now: float) -> Refused | None:
        if self._batch_opened:  # the first acknowledgement of a new batch came in
            self._batch_opened = False
            self._batch_started = now
        if self._acked_lately and not self._refused and not self._rewind:
            self._backoff.reset()
        self._acked_lately = False
        if not self._refused:
            return None
        refused, self._refused = self._refused, []
        self.counters.refused += len(refused)
        self.counters.last_refusal = refused[-1][1]
        delay = self._backoff.next()
        self._paused_until = now + delay
        self._rewind = True
        return Refused(len(refused), refused[0][0], refused[0][1], delay)

    def _delete(self, now: float) -> Delete:
        """Every acknowledged row, handed out for deletion."""
        self._retry_by = now + DELETE_EVERY_S
        return Delete(self.take_deletions())

    def _fill(self, now: float) -> Fetch | Publish | None:
        """Live first (up to half the window), then backlog, then live; with the window
        full, the backlog's next rows are read ahead while the broker works."""
        room = self._window - len(self._inflight)
        if room <= 0:
            backlog = self._backlog
            if len(backlog.rows) < self._window and backlog.after < backlog.upto:
                return Fetch(Lane.BACKLOG, backlog.after, backlog.upto, FETCH_ROWS)
            return None
        live_room = self._live_share - self._live_inflight
        order = (Lane.LIVE, Lane.BACKLOG) if live_room > 0 else (Lane.BACKLOG, Lane.LIVE)
        for lane in order:
            cursor = self._cursor(lane)
            if cursor.rows:
                most = min(room, live_room) if lane is Lane.LIVE and live_room > 0 else room
                return self._publish(lane, cursor.rows, most)
            fetch = self._fetch(lane, now)
            if fetch is not None:
                return fetch
        return None

    @staticmethod
    def _publish(lane: Lane, rows: deque[StoredEvent], most: int) -> Publish:
        """The next `most` rows of a lane (or all it has), as one `Publish`."""
        taken = [rows.popleft() for _ in range(min(most, len(rows)))]
        replayed = lane is Lane.BACKLOG
        return Publish(
            lane,
            tuple(row.seq for row in taken),
            tuple(with_replayed(row.payload, replayed) for row in taken),
        )

    def _fetch(self, lane: Lane, now: float) -> Fetch | None:
        cursor = self._cursor(lane)
        if lane is Lane.BACKLOG:
            if cursor.after >= cursor.upto:
                return None
        elif self._woken or now >= self._next_live_poll:
            self._woken = False
            self._next_live_poll = now + LIVE_POLL_S
        else:
            return None
        return Fetch(lane, cursor.after, cursor.upto, FETCH_ROWS)

    def _cursor(self, lane: Lane) -> _Cursor:
        return self._backlog if lane is Lane.BACKLOG else self._live
