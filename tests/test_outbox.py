"""The outbox on its own: durability settings, seq, caps, full disk, corrupt files, threads."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from outbox_driver import KEY, commit_checkins, make_checkin, make_site

import gate.outbox.store as store_module
from gate.errors import StorageError, StorageFull
from gate.outbox.config import OutboxConfig, PrivacyConfig
from gate.outbox.reader import export
from gate.outbox.store import WAL_KEEP_BYTES, Outbox, WriteTurn


def open_outbox(state: Path, **config: object) -> Outbox:
    return Outbox(OutboxConfig(**config), make_site(state), PrivacyConfig(), privacy_key=KEY)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = open_outbox(tmp_path)
    yield box
    box.close()


def seqs(box: Outbox) -> list[int]:
    return [row.seq for row in box.fetch(0, 1_000_000)]


def test_commit_is_durable_in_wal_with_synchronous_full(outbox: Outbox) -> None:
    outbox.commit(make_checkin(1))
    probe = sqlite3.connect(outbox.path)
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert probe.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # visible to others
    probe.close()
    assert outbox._writer is not None
    assert outbox._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_seq_increases_and_survives_reopen(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    stored = commit_checkins(box, 5)
    assert [s.seq for s in stored] == [1, 2, 3, 4, 5]
    assert len({s.event_id for s in stored}) == 5
    box.ack([1, 2, 3, 4, 5])
    box.close()
    box = open_outbox(tmp_path)
    assert box.commit(make_checkin(6)).seq == 6  # not reused after the rows were deleted
    payload = json.loads(box.fetch(0, 10)[0].payload)
    assert payload["seq"] == 6 and "replayed" not in payload
    box.close()


def test_a_deleted_check_in_leaves_no_trace_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = sqlite3.connect

    def insecure_by_default(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # as a SQLite built without SECURE_DELETE opens one
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    monkeypatch.setattr(store_module.sqlite3, "connect", insecure_by_default)
    box = open_outbox(tmp_path)
    stored = commit_checkins(box, 200)
    box.ack([s.seq for s in stored[:150]])
    box.close()  # the last close checkpoints the WAL into the file and removes it

    raw = b"".join(p.read_bytes() for p in tmp_path.glob(f"{box.path.name}*"))
    assert [s for s in stored if s.event_id.encode() in raw] == stored[150:]


@pytest.mark.parametrize("first_write", ["a deletion", "a check-in"])
def test_the_write_ahead_log_keeps_little_of_what_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_write: str
) -> None:
    monkeypatch.setattr(store_module, "_CHECKPOINT_EVERY_S", 0.0)  # each ack checkpoints
    box = open_outbox(tmp_path)
    sent = commit_checkins(box, 600)  # a backlog: a 4 MB WAL
    box.ack([s.seq for s in sent[:-1]])  # the deletions, then a checkpoint
    if first_write == "a check-in":  # as at a gate in use: the door writes first
        box.commit(make_checkin(601))  # this write starts the WAL again from its beginning
    box.ack([sent[-1].seq])

    wal = tmp_path / f"{box.path.name}-wal"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob(f"{box.path.name}*"))
    assert wal.stat().st_size <= WAL_KEEP_BYTES
    assert sum(s.event_id.encode() in raw for s in sent) < len(sent) // 20  # all, unlimited
    box.close()


def test_seq_goes_on_from_the_newest_row_deleted_not_from_an_acknowledgement(
    tmp_path: Path,
) -> None:
    box = open_outbox(tmp_path)
    commit_checkins(box, 3)
    assert box.ack([3, 99]) == 1  # 99 was never stored
    box.close()
    box = open_outbox(tmp_path)
    assert box.commit(make_checkin(4)).seq == 4
    box.close()


def test_fetch_ranges_and_ack(outbox: Outbox) -> None:
    commit_checkins(outbox, 10)
    assert [r.seq for r in outbox.fetch(3, 4)] == [4, 5, 6, 7]
    assert [r.seq for r in outbox.fetch(3, 100, upto=5)] == [4, 5]
    assert outbox.ack([4, 5, 99]) == 2
    assert seqs(outbox) == [1, 2, 3, 6, 7, 8, 9, 10]
    stats = outbox.stats()
    assert (stats.depth, stats.last_acked_seq, stats.last_seq) == (8, 99, 10)
    assert stats.bytes == sum(len(r.payload) for r in outbox.fetch(0, 100))


def test_acknowledged_rows_are_deleted_exactly_in_any_order_with_gaps(outbox: Outbox) -> None:
    commit_checkins(outbox, 10)
    assert outbox.ack([8, 1, 3, 7, 3]) == 4
    assert seqs(outbox) == [2, 4, 5, 6, 9, 10]  # the rows between the runs stay
    assert outbox.stats().bytes == sum(len(r.payload) for r in outbox.fetch(0, 100))


def test_session_counter_persists(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    assert [box.next_session(), box.next_session()] == [1, 2]
    box.close()
    box = open_outbox(tmp_path)
    assert box.next_session() == 3
    box.close()


def test_row_cap_refuses_keeps_everything_and_recovers(tmp_path: Path) -> None:
    box = open_outbox(tmp_path, max_rows=5, high_water=0.6)
    commit_checkins(box, 5)
    before = box.fetch(0, 100)
    assert box.stats().high_water
    with pytest.raises(StorageFull):
        box.commit(make_checkin(99))
    stats = box.stats()
    assert stats.storage_full and stats.full_cause == "cap" and stats.refused_full == 1
    assert box.fetch(0, 100) == before  # nothing overwritten, nothing lost
    box.ack([1, 2])
    assert not box.stats().storage_full  # recovered by the acknowledgements
    assert box.commit(make_checkin(6)).seq == 6  # the refused scan took no seq
    assert not box.stats().high_water or box.stats().depth >= 3
    box.close()


@pytest.mark.parametrize("cap", ["max_rows", "max_bytes"])
def test_a_store_reopened_at_its_cap_refuses_at_once_and_recovers(tmp_path: Path, cap: str) -> None:
    box = open_outbox(tmp_path)
    commit_checkins(box, 20)
    stored = box.stats()
    box.close()
    limit = {"max_rows": stored.depth, "max_bytes": max(4096, stored.bytes - 1)}[cap]
    assert cap == "max_rows" or stored.bytes > 4096

    box = open_outbox(tmp_path, **{cap: limit})  # a restart, or a config that lowered the cap

    assert box.storage_full == "cap"
    box.ack(range(1, 11))
    assert box.storage_full is None
    box.close()


def test_byte_cap(tmp_path: Path) -> None:
    box = open_outbox(tmp_path, max_bytes=4096)
    committed = 0
    with pytest.raises(StorageFull):
        for i in range(100):
            box.commit(make_checkin(i))
            committed += 1
    assert 0 < committed < 100
    assert box.stats().bytes <= 4096
    assert len(seqs(box)) == committed
    box.close()


def test_database_full_is_storage_full_and_recovers(tmp_path: Path) -> None:
    """SQLITE_FULL from the file's page limit: the same path as a full disk."""
    box = open_outbox(tmp_path)
    assert box._writer is not None
    pages = box._writer.execute("PRAGMA page_count").fetchone()[0]
    box._writer.execute(f"PRAGMA max_page_count={pages + 8}")
    committed = 0
    with pytest.raises(StorageFull, match="disk full"):
        for i in range(10_000):
            box.commit(make_checkin(i))
            committed += 1
    stats = box.stats()
    assert stats.storage_full and stats.full_cause == "disk"
    assert len(seqs(box)) == committed
    half = seqs(box)[: committed // 2]  # frees whole pages for the right edge of the b-tree
    box.ack(half)
    assert not box.stats().storage_full
    box.commit(make_checkin(10_001))
    assert len(seqs(box)) == committed - len(half) + 1
    box.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (tests run as root): {done.stderr!r}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_a_signalled_state_and_recovers_when_space_frees(tiny_disk: Path) -> None:
    box = open_outbox(tiny_disk)
    commit_checkins(box, 20)
    filler = fill(tiny_disk)
    committed = 20
    with pytest.raises(StorageFull):
        for i in range(20, 10_000):
            box.commit(make_checkin(i))
            committed += 1
    assert box.stats().full_cause == "disk"
    assert box.ack([1, 2]) in (0, 2)  # may not even delete on a full disk; never raises
    filler.unlink()
    box.ack([])  # the publisher retries deletions that failed
    assert not box.pending_acks
    assert seqs(box)[0] == 3
    box.commit(make_checkin(10_000))
    assert not box.stats().storage_full
    assert len(seqs(box)) == committed - 2 + 1
    box.close()


def fill(disk: Path) -> Path:
    """Another program fills the disk to the last block; returns its file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"x" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


_CHILD = """
import sys
from pathlib import Path
from outbox_driver import KEY, make_checkin, make_site
from gate.outbox.config import OutboxConfig, PrivacyConfig
from gate.outbox.store import Outbox
box = Outbox(OutboxConfig(), make_site(Path(sys.argv[1])), PrivacyConfig(), privacy_key=KEY)
box.next_session()
for i in range(20):
    box.commit(make_checkin(i))
print("committed", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("ending", ["killed", "closed"])
def test_gate_stopped_on_a_full_disk_opens_again_in_the_storage_full_state(
    tiny_disk: Path, ending: str
) -> None:
    """Issue 8: opening writes nothing; what cannot be written is StorageFull, never a crash."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tiny_disk)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == b"committed\n"
    if ending == "killed":
        filler = fill(tiny_disk)
        child.send_signal(signal.SIGKILL)
    else:
        child.stdin.close()  # a clean close removes the WAL; the disk fills afterwards
        child.wait(10)
        filler = fill(tiny_disk)
    child.wait(10)

    box = open_outbox(tiny_disk)  # does not raise
    session = box.next_session()  # counted (in memory if it cannot be saved)
    assert session >= 2
    with pytest.raises(StorageFull):
        box.commit(make_checkin(99))
    assert box.storage_full == "disk" and box.stats().full_cause == "disk"
    if box.depth:  # open: the stored check-ins are there to be sent
        assert seqs(box) == list(range(1, 21))
    filler.unlink()
    assert box.commit(make_checkin(100)).seq == 21
    assert box.storage_full is None
    assert seqs(box) == list(range(1, 22))
    box.close()


def test_opening_an_existing_outbox_writes_nothing(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    box.commit(make_checkin(1))
    box.close()
    path = tmp_path / "outbox.sqlite3"
    before = path.read_bytes()
    path.chmod(0o444)  # a write would need the file writable; root ignores modes, so compare
    box = open_outbox(tmp_path)
    assert seqs(box) == [1]
    box.close()
    assert path.read_bytes() == before


def test_garbage_file_is_set_aside_and_a_fresh_outbox_works(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    box = open_outbox(tmp_path)
    stats = box.stats()
    assert stats.set_aside == 1 and stats.set_aside_last is not None
    aside = Path(stats.set_aside_last)
    assert aside.name.startswith("outbox.sqlite3.corrupt-")
    assert aside.read_bytes() == garbage  # kept, not deleted
    stored = box.commit(make_checkin(1))
    assert stored.seq > 1_600_000_000_000  # nothing readable: seq jumps to Unix ms, still rising
    box.close()


def test_a_meta_counter_that_is_not_a_number_is_corruption_set_aside(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    box.commit(make_checkin(1))
    box.close()
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = 'garbage'")
    box = open_outbox(tmp_path)
    try:
        assert box.stats().set_aside == 1
        assert box.commit(make_checkin(2)).seq > 1
    finally:
        box.close()


def damage_event_pages(path: Path) -> None:
    """Pages 3-6 are the events table's: the meta table stays readable."""
    data = bytearray(path.read_bytes())
    data[2 * 4096 : 6 * 4096] = os.urandom(4 * 4096)
    path.write_bytes(bytes(data))


def damage_events_root(path: Path) -> None:
    """The events table's root page: no row can be found, the newest included."""
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root[0] - 1) * 4096 : root[0] * 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("acked", "damage"),
    [([], damage_event_pages), ([1, 2, 3], damage_events_root)],
    ids=["from what is readable", "not from meta alone, which says 3"],
)
def test_a_damaged_file_is_set_aside_and_its_seqs_are_never_lent_again(
    tmp_path: Path, acked: list[int], damage: Callable[[Path], None]
) -> None:
    box = open_outbox(tmp_path)
    commit_checkins(box, 200)
    box.ack(acked)  # deletions raise `last_seq` in meta; the rest wait, unsent
    box.close()
    damage(tmp_path / "outbox.sqlite3")
    box = open_outbox(tmp_path)
    assert box.stats().set_aside == 1
    assert box.commit(make_checkin(201)).seq > 200  # the unsent rows stay in the file set aside
    box.close()


def test_corruption_while_running_is_set_aside_and_commit_goes_on(outbox: Outbox) -> None:
    commit_checkins(outbox, 100)
    assert outbox._writer is not None
    outbox._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = outbox.path.stat().st_size
    with open(outbox.path, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    assert outbox.fetch(0, 1000) == []  # the publisher's read finds it corrupt
    stats = outbox.stats()
    assert stats.set_aside == 1
    assert outbox.commit(make_checkin(1)).seq == 101
    assert Path(f"{stats.set_aside_last}").exists()


def test_unusable_folder_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="outbox folder"):
        open_outbox(tmp_path / "file" / "state")


def test_newer_database_is_not_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        open_outbox(tmp_path)
    assert path.exists()


def test_commits_and_acks_from_two_threads(outbox: Outbox) -> None:
    total = 1500
    seen: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def drain() -> None:
        after = 0
        try:
            while not (done.is_set() and outbox.stats().depth == 0):
                rows = outbox.fetch(after, 37)
                if rows:
                    after = rows[-1].seq
                    seen.extend(r.seq for r in rows)
                    outbox.ack(r.seq for r in rows)
        except (sqlite3.Error, StorageError, AssertionError) as exc:  # reported to the test
            errors.append(exc)

    drainer = threading.Thread(target=drain, name="test-drain")
    drainer.start()
    commit_checkins(outbox, total)
    done.set()
    drainer.join(30)
    assert not errors
    assert seen == list(range(1, total + 1))
    stats = outbox.stats()
    assert stats.depth == 0 and stats.bytes == 0 and stats.commits == total
    assert stats.commit_ms_p50 is not None and stats.commit_ms_p99 is not None


def test_the_publisher_gives_way_while_a_commit_is_under_way() -> None:
    turn = WriteTurn()
    committing, finish, passed = threading.Event(), threading.Event(), threading.Event()

    def commit() -> None:
        with turn.commit():
            committing.set()
            finish.wait(10)

    def publisher_step() -> None:
        committing.wait(10)
        turn.give_way()
        passed.set()

    threads = [threading.Thread(target=commit), threading.Thread(target=publisher_step)]
    for thread in threads:
        thread.start()
    assert committing.wait(10)
    assert not passed.wait(0.2)  # the publisher waits while the commit runs
    finish.set()
    assert passed.wait(10)  # and goes on as soon as it is done
    for thread in threads:
        thread.join(10)
    turn.give_way()  # no commit: returns at once


def test_the_door_is_quiet_only_a_while_after_the_last_commit() -> None:
    now = [100.0]
    turn = WriteTurn(clock=lambda: now[0])
    assert turn.door_quiet()  # nothing committed yet
    with turn.commit():
        assert not turn.door_quiet()  # a commit under way
    now[0] += store_module._DOOR_QUIET_S / 2
    assert not turn.door_quiet()  # one just ended: more may follow
    now[0] += store_module._DOOR_QUIET_S / 2
    assert turn.door_quiet()


@pytest.mark.parametrize(
    ("quiet", "sizes"),
    [
        ([False], [64] * 8),  # check-ins come: a commit waits for at most a short one
        ([True], [256, 256]),  # the door is quiet: fewer, cheaper transactions
        ([True, False], [256, 64, 64, 64, 64]),  # asked again before each transaction
    ],
)
def test_deletions_take_short_transactions_while_check_ins_come_and_long_ones_when_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: list[bool], sizes: list[int]
) -> None:
    deletes: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: deletes.append(sql) if "DELETE" in sql else None)
        return conn

    answers = iter(quiet)
    monkeypatch.setattr(store_module.sqlite3, "connect", traced)
    monkeypatch.setattr(WriteTurn, "door_quiet", lambda self: next(answers, quiet[-1]))
    box = open_outbox(tmp_path)
    stored = commit_checkins(box, 600)
    deletes.clear()
    assert box.ack([s.seq for s in stored[:512]]) == 512
    bounds = [[int(n) for n in sql.split("BETWEEN ")[1].split(" AND ")] for sql in deletes]
    assert [last - first + 1 for first, last in bounds] == sizes
    assert [s.seq for s in box.fetch(0, 600)] == list(range(513, 601))
    box.close()


def test_an_export_writes_each_stored_event_as_one_line_and_skips_the_rest(
    tmp_path: Path,
) -> None:
    """A set-aside file's payload column may hold anything: never a crash, never a line that
    is not one event."""
    conn = sqlite3.connect(tmp_path / "set-aside.sqlite3")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload)")
    payloads = [b'{"a":1}', '{"b":2}', -1, 1.5, None, b"", b"{}", b"[1]", b'{"c":"}']
    payloads += [b'{"d":1}\n{"forged":true}', b'{"e":1} ', b"{\xff}", b"{" * 100_000 + b"}"]
    payloads += [b'{"f":"' + b"x" * (2 << 20) + b'"}']  # an event, but no event is that long
    conn.executemany("INSERT INTO events VALUES (?, ?)", enumerate(payloads, 1))
    out = io.BytesIO()
    assert export(conn, out) == (2, len(payloads) - 2)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [{"a": 1, "replayed": True}, {"b": 2, "replayed": True}]
    conn.close()
