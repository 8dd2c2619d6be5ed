"""The drain's rules, without a broker: events in, actions out, in milliseconds.

A tiny shell here plays the publisher's part: a dict is the outbox, a list of
message ids is paho. The real-broker soaks are in test_publisher*.py.
"""

import itertools
import json
import random
import sys
from typing import NamedTuple

import pytest

from gate.outbox.drain import (
    DELETE_BATCH,
    DELETE_EVERY_S,
    FETCH_ROWS,
    LIVE_POLL_S,
    Backoff,
    Delete,
    Drain,
    Fetch,
    Lane,
    Publish,
    Refused,
    Rewind,
    Stuck,
)
from gate.outbox.store import StoredEvent

WINDOW = 10


def row(seq: int) -> StoredEvent:
    return StoredEvent(seq, f"id-{seq}", 0, json.dumps({"seq": seq}).encode())


class Sent(NamedTuple):
    """One event of a `Publish`, as paho would send it."""

    seq: int
    payload: bytes
    lane: Lane


class Shell:
    """Does what the drain asks against a dict outbox; `sent` holds (mid, Sent) in order."""

    def __init__(self, stored: int = 0, window: int = WINDOW, ack_timeout_s: float = 60) -> None:
        self.store = {seq: row(seq) for seq in range(1, stored + 1)}
        self.last_seq = stored
        self.window = window
        self.drain = Drain(window, ack_timeout_s, Backoff(1.0, 8.0, rng=lambda: 1.0))
        self.sent: list[tuple[int, Sent]] = []
        self.flying: list[int] = []  # mids of this connection without a PUBACK yet
        self.epochs: list[int] = []  # of each sent message: how many rewinds came before it
        self.rewinds = 0
        self.deleted: list[int] = []
        self.other: list[object] = []
        self.order: list[str] = []  # the kinds of the actions done, Fetch left out
        self.fetched_flying: list[int] = []  # events in flight at each backlog Fetch
        self.acknowledged: list[int] = []  # seqs of the successful PUBACKs, in order
        self.next_mid = 1
        self.now = 0.0
        self.paho_takes = sys.maxsize  # how many events paho takes before a publish fails

    def commit(self, n: int = 1) -> None:
        for _ in range(n):
            self.last_seq += 1
            self.store[self.last_seq] = row(self.last_seq)
        self.drain.wake()

    def turn(self, owes: bool = False) -> None:
        while (action := self.drain.next_action(self.now, owes)) is not None:
            owes = False
            if not isinstance(action, Fetch):
                self.order.append(type(action).__name__)
            match action:
                case Fetch(lane, after, upto, limit):
                    if lane is Lane.BACKLOG:
                        self.fetched_flying.append(self.drain.inflight)
                    rows = [self.store[s] for s in sorted(self.store) if after < s <= upto]
                    self.drain.fetched(lane, rows[:limit])
                case Publish(lane, seqs, payloads):
                    taken = min(len(seqs), self.paho_takes)
                    mids = range(self.next_mid, self.next_mid + taken)
                    for mid, seq, payload in zip(mids, seqs, payloads, strict=False):
                        self.sent.append((mid, Sent(seq, payload, lane)))
                        self.flying.append(mid)
                        self.epochs.append(self.rewinds)
                    self.drain.sent(action, mids, self.now)
                    self.next_mid += taken
                    if taken < len(seqs):
                        return  # paho failed: the publisher drops the connection
                case Delete(seqs):
                    for seq in seqs:
                        self.store.pop(seq, None)
                    self.deleted += seqs
                case Rewind():
                    self.rewinds += 1
                    self.drain.reset(self.last_seq)
                case _:
                    self.other.append(action)
                    if isinstance(action, Stuck):
                        return

    def connect(self) -> None:
        self.flying.clear()
        self.drain.begin()
        self.turn()

    def ack(self, *mids: int, refusal: str | None = None) -> None:
        seqs = dict((mid, event.seq) for mid, event in self.sent)
        for mid in mids:
            assert self.drain.puback(mid, refusal)
            self.flying.remove(mid)
            if refusal is None:
                self.acknowledged.append(seqs[mid])

    def seqs(self, lane: Lane | None = None) -> list[int]:
        return [p.seq for _, p in self.sent if lane is None or p.lane is lane]

    def mids(self) -> list[int]:
        return [mid for mid, _ in self.sent]


def test_a_connection_sends_the_stored_backlog_in_order_within_the_window() -> None:
    shell = Shell(stored=100)
    shell.connect()
    assert shell.seqs() == list(range(1, WINDOW + 1))  # the window is full: nothing more
    assert all(json.loads(p.payload)["replayed"] is True for _, p in shell.sent)
    assert shell.drain.inflight == WINDOW
    shell.ack(*shell.mids()[:3])
    shell.turn()
    assert shell.seqs() == list(range(1, WINDOW + 4))
    assert shell.deleted == []  # acknowledged rows wait for a batch while others fly


def test_nothing_is_sent_before_the_connection_begins() -> None:
    shell = Shell(stored=5)
    shell.turn()
    assert shell.sent == []


def test_deletions_are_batched_by_time_and_size_and_flushed_when_idle() -> None:
    shell = Shell(stored=2000)
    shell.connect()
    shell.ack(*shell.mids())
    shell.turn()
    assert shell.deleted == []
    shell.now += DELETE_EVERY_S
    shell.turn()
    assert shell.deleted == list(range(1, WINDOW + 1))  # the time limit
    for _ in range(DELETE_BATCH // WINDOW):  # acknowledged faster than the time limit
        shell.ack(*shell.mids()[-WINDOW:])
        shell.turn()
    assert len(shell.deleted) == WINDOW
    shell.ack(*shell.mids()[-WINDOW:])
    shell.turn()
    assert shell.deleted == shell.acknowledged  # the size limit reached: the whole batch
    shell = Shell(stored=3)
    shell.connect()
    shell.ack(*shell.mids())
    shell.turn()
    assert shell.deleted == [1, 2, 3]  # nothing else to send: no reason to wait


def test_a_due_deletion_waits_until_the_window_is_full_again() -> None:
    shell = Shell(stored=2000)
    shell.connect()
    turns = 0
    while not shell.deleted:  # acknowledged quickly, until the size limit is reached
        shell.ack(*list(shell.flying))
        shell.order.clear()
        shell.turn()
        turns += 1
    assert turns * WINDOW >= DELETE_BATCH
    assert shell.order == ["Publish", "Delete"]  # sent first, deleted while flying
    assert len(shell.flying) == WINDOW  # the whole window in that one burst
    assert shell.deleted == shell.acknowledged  # the whole batch
    in_flight = {event.seq for mid, event in shell.sent if mid in shell.flying}
    assert not in_flight & set(shell.deleted)
    shell.ack(shell.flying[0])
    shell.turn()
    assert len(shell.deleted) == len(shell.acknowledged) - 1  # a new batch, not yet due
    shell.now += DELETE_EVERY_S
    shell.order.clear()
    shell.turn()
    assert shell.order == ["Delete"]  # due by its age, the window full: deleted while flying
    assert shell.deleted == shell.acknowledged


def test_the_free_part_of_the_window_goes_out_in_one_publish_of_one_lane() -> None:
    shell = Shell(stored=100)
    shell.connect()
    shell.ack(*shell.mids()[:4])
    shell.commit(2)
    shell.order.clear()
    shell.turn()
    assert shell.order == ["Publish", "Publish"]  # the live events first, then the backlog
    assert shell.seqs(Lane.LIVE) == [101, 102]
    assert shell.seqs(Lane.BACKLOG) == list(range(1, WINDOW + 3))
    assert shell.drain.inflight == WINDOW


@pytest.mark.parametrize("window", [WINDOW, 3 * DELETE_BATCH])
def test_deletions_keep_up_with_acknowledgements_whatever_the_window(window: int) -> None:
    shell = Shell(stored=20 * window, window=window)
    shell.connect()
    most_waiting = 0
    while shell.flying:
        shell.ack(*list(shell.flying))
        shell.turn()
        waiting = len(shell.mids()) - len(shell.flying) - len(shell.deleted)
        most_waiting = max(most_waiting, waiting)
    assert most_waiting <= DELETE_BATCH + window  # acknowledged, not yet deleted
    assert len(shell.deleted) == 20 * window


def test_acknowledged_rows_do_not_wait_for_one_slow_puback() -> None:
    stored = 3 * DELETE_BATCH
    shell = Shell(stored=stored)
    shell.connect()
    slow = shell.flying[0]  # its PUBACK does not come
    while len(shell.mids()) < stored:
        shell.ack(*[mid for mid in shell.flying if mid != slow])
        shell.turn()
    shell.ack(*[mid for mid in shell.flying if mid != slow])
    shell.turn()
    shell.now += DELETE_EVERY_S
    shell.turn()
    assert len(shell.deleted) == stored - 1  # nothing left to send: the due batch goes at once
    assert shell.drain.inflight == 1


def test_acknowledgements_are_counted_however_their_rows_leave() -> None:
    shell = Shell(stored=100)
    shell.connect()
    shell.ack(*list(shell.flying))
    shell.turn()
    handed_out = shell.drain.take_deletions()  # the connection is lost: the shell deletes them
    assert len(handed_out) == WINDOW
    assert shell.drain.counters.acked == WINDOW


def test_the_backlog_is_read_ahead_while_the_window_is_full() -> None:
    shell = Shell(stored=3 * FETCH_ROWS)
    shell.connect()
    while len(shell.fetched_flying) < 3:
        shell.ack(*list(shell.flying))
        shell.turn()
    assert shell.fetched_flying[1:] == [WINDOW, WINDOW]  # not when the window has room
    assert shell.seqs() == list(range(1, len(shell.seqs()) + 1))  # nothing skipped, in order


def test_live_check_ins_take_up_to_half_the_window_ahead_of_the_backlog() -> None:
    shell = Shell(stored=1000)
    shell.connect()
    shell.commit(8)  # people scan while the backlog drains
    shell.ack(*shell.mids())
    shell.turn()
    live = shell.seqs(Lane.LIVE)
    assert live == [1001, 1002, 1003, 1004, 1005]  # half of the window, in seq order
    assert shell.seqs()[-WINDOW:].count(1001) == 1
    assert all(json.loads(p.payload)["replayed"] is False for _, p in shell.sent[-10:][:5])
    shell.ack(*shell.mids()[-WINDOW:])
    shell.turn()
    assert shell.seqs(Lane.LIVE) == list(range(1001, 1009))
    backlog = shell.seqs(Lane.BACKLOG)
    assert backlog == sorted(backlog) == list(range(1, len(backlog) + 1))


def test_rows_of_a_publish_that_failed_midway_go_out_on_the_next_connection() -> None:
    shell = Shell(stored=30)
    shell.paho_takes = 3  # then paho fails, and the connection is dropped
    shell.connect()
    assert shell.seqs() == [1, 2, 3]
    assert shell.drain.inflight == 3 and shell.drain.counters.published == 3
    shell.paho_takes = WINDOW
    shell.connect()
    assert shell.seqs()[3:] == list(range(1, WINDOW + 1))  # the seven never sent among them
    for _ in range(5):
        shell.ack(*list(shell.flying))
        shell.now += DELETE_EVERY_S
        shell.turn()
    assert shell.store == {}  # every row sent and deleted


def test_live_rows_are_looked_for_on_a_wake_up_or_every_poll() -> None:
    shell = Shell()
    shell.connect()
    shell.store[1] = row(1)  # committed without a wake-up
    shell.last_seq = 1
    shell.turn()
    assert shell.seqs() == []
    shell.now += LIVE_POLL_S
    shell.turn()
    assert shell.seqs() == [1]
    shell.commit()
    shell.turn()
    assert shell.seqs() == [1, 2]


def test_a_refusal_keeps_the_row_pauses_with_backoff_then_rewinds() -> None:
    shell = Shell(stored=30)
    shell.connect()
    mids = shell.mids()
    shell.ack(*mids[:4])
    shell.ack(mids[4], refusal="Not authorized")
    shell.ack(*mids[5:])
    shell.turn()
    assert shell.other == [Refused(1, 5, "Not authorized", 1.0)]
    assert 5 not in shell.deleted and 5 in shell.store
    assert len(shell.sent) == WINDOW  # paused: nothing new
    shell.now += 0.99
    shell.turn()
    assert len(shell.sent) == WINDOW
    shell.now += 0.01
    shell.turn()
    assert shell.deleted == [1, 2, 3, 4, 6, 7, 8, 9, 10]  # flushed before the rewind
    assert shell.seqs()[WINDOW:] == [5, *range(11, 20)]  # from the oldest unsent row
    shell.ack(shell.mids()[-1], refusal="Quota exceeded")
    shell.turn()
    assert shell.other[-1] == Refused(1, 19, "Quota exceeded", 2.0)  # backoff doubles
    shell.ack(*shell.mids()[-WINDOW:-1])
    shell.now += 2.0
    shell.turn()
    assert shell.seqs()[2 * WINDOW] == 19  # resent after the pause
    shell.ack(*shell.mids()[-WINDOW:])
    shell.turn()  # acknowledgements without a refusal: the backoff starts over
    shell.ack(shell.mids()[-1], refusal="Quota exceeded")
    shell.turn()
    assert shell.other[-1].delay_s == 1.0
    assert shell.drain.counters.refused == 3


def test_a_missing_puback_means_a_stuck_connection() -> None:
    shell = Shell(stored=3, ack_timeout_s=5)
    shell.connect()
    shell.now += 5
    shell.turn()
    assert shell.other == []
    shell.now += 0.1
    shell.turn()
    assert shell.other == [Stuck(pytest.approx(5.1), 3)]
    assert shell.drain.counters.ack_timeouts == 1


def test_a_new_connection_sends_again_what_was_in_flight() -> None:
    shell = Shell(stored=20)
    shell.connect()
    shell.ack(*shell.mids()[:2])
    shell.connect()  # the old connection's PUBACKs for 3..10 never came
    assert shell.deleted == [1, 2]
    assert shell.seqs()[WINDOW:] == list(range(3, 13))
    assert not shell.drain.puback(shell.mids()[5], None)  # an old connection's id


def test_deletions_the_store_owes_are_retried_on_their_own_cadence() -> None:
    shell = Shell()
    shell.connect()
    action = shell.drain.next_action(shell.now, store_owes_deletes=True)
    assert action == Delete(())
    assert shell.drain.next_action(shell.now, store_owes_deletes=True) is None
    shell.now += DELETE_EVERY_S
    assert shell.drain.next_action(shell.now, store_owes_deletes=True) == Delete(())


def test_fetches_read_a_few_rows_at_a_time() -> None:
    shell = Shell(stored=1000, window=1000)
    shell.connect()
    assert len(shell.sent) == 1000  # the window allows it, read in pages of FETCH_ROWS
    assert shell.seqs() == list(range(1, 1001))
    drain = Drain(1, 60, Backoff(1, 1))
    drain.begin()
    assert drain.next_action(0) == Rewind()
    drain.reset(500)
    assert drain.next_action(0) == Fetch(Lane.LIVE, 500, 2**63 - 1, FETCH_ROWS)


@pytest.mark.parametrize("seed", range(20))
def test_every_event_is_delivered_each_lane_in_order_only_acknowledged_rows_deleted(
    seed: int,
) -> None:
    """A random day: commits, acknowledgements out of order, refusals, reconnects, time."""
    rng = random.Random(seed)
    shell = Shell(stored=rng.randrange(0, 300), window=rng.choice([1, 2, 10, 32]))
    shell.connect()
    for _ in range(600):
        pick = rng.random()
        if pick < 0.1:
            shell.commit(rng.randrange(1, 4))
        elif pick < 0.8 and shell.flying:
            mid = shell.flying[rng.randrange(min(3, len(shell.flying)))]
            shell.ack(mid, refusal="Quota exceeded" if rng.random() < 0.02 else None)
        elif pick < 0.82:
            shell.connect()
        shell.now += rng.choice([0.0, 0.001, 0.05, 0.5])
        shell.turn()
        assert set(shell.deleted) <= set(shell.acknowledged)  # only acknowledged rows deleted
        assert shell.drain.inflight == len(shell.flying) <= shell.window
    for _ in range(200):  # a calm end: everything acknowledged
        shell.ack(*shell.flying)
        shell.now += 1.0
        shell.turn()
        if not shell.store:
            break
    assert shell.store == {}  # all delivered and deleted
    assert len(shell.deleted) == len(set(shell.deleted))  # none deleted twice
    assert shell.drain.counters.acked == len(shell.acknowledged)  # telemetry counts every one
    for (epoch, lane), group in itertools.groupby(
        sorted(zip(shell.epochs, shell.sent, strict=True), key=lambda x: (x[0], x[1][1].lane)),
        key=lambda x: (x[0], x[1][1].lane),
    ):
        runs = [p.seq for _, (_, p) in group]
        assert runs == sorted(set(runs)), (epoch, lane)  # between rewinds, each lane in order
