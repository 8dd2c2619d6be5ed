"""Outbox and publisher figures, side by side in one run.

    .venv/bin/python bench/outbox_drain.py [--events 5000] [--runs 3] [--interval-ms 2]

Prints, asserts nothing. Starts its own mosquitto on loopback (tests/broker.py).

1. Commit latency (issue "the door never waits for the uplink"): check-ins
   committed `--interval-ms` apart, `synchronous=FULL` on the file system of
   `--dir`, once with the publisher stopped and once while it drains a
   `--events` backlog; the same number of commits in both, pooled over `--runs`.
   Goal: p99 beside the drain at most 1.5x p99 alone. Then `--drain-pairs` lone
   check-ins per run, each 100-150 ms into a drain begun at a quiet door, when the
   deletions run in their long transactions: what the first person after a quiet
   spell may wait.
2. Drain rate: the Publisher empties a `--events` backlog (QoS 1, window
   `max_inflight`), beside a bare paho QoS 1 loop publishing the same payloads
   with the same window to the same broker; `--drain-pairs` of each per run, in
   turns (the machine's speed drifts by 20% from one second to the next, so one
   pair says little). Goal: at least 0.9x bare. In the same turns, paho driven from
   one thread as the publisher drives it (the bare loop uses two: paho's and the
   publishing one), the same payloads and window: the ceiling of the publisher's
   shape; and the CPU time an event of the publisher's thread beside that loop's (the
   machine's scheduling left out). Then what the publisher does that the bare loops do
   not, timed alone: reading and deleting the backlog, per row (deleting in the store's
   short and in its long transactions).
"""

import argparse
import importlib.metadata
import math
import os
import platform
import select
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig, Transport
from gate.outbox.drain import FETCH_ROWS
from gate.outbox.events import with_replayed
from gate.outbox.publisher import Publisher
from gate.outbox.store import DELETE_ROWS_BUSY, DELETE_ROWS_QUIET, Outbox
from tests.broker import MOSQUITTO, Broker
from tests.outbox_driver import KEY, commit_checkins, make_checkin, make_site

EVENT_TOPIC = "checkin/hn/stadium/gate-1/event"


def filesystem(path: Path) -> str:
    """The mount point and type holding `path` (fsync cost depends on it)."""
    best = ("?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, kind, *_ = line.split()
        if str(path.resolve()).startswith(mount) and len(mount) >= len(best[0]):
            best = (mount, kind)
    return f"{best[0]} ({best[1]})"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class WatchedOutbox(Outbox):
    """An outbox that says when its last row is deleted: the bench waits for that without
    polling, as the bare loop waits for its last PUBACK (a poll every 2 ms took the
    interpreter from the publisher's thread 500 times a second)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(OutboxConfig(), make_site(directory), PrivacyConfig(), privacy_key=KEY)
        self.emptied = threading.Event()

    def ack(self, seqs: Iterable[int]) -> int:
        deleted = super().ack(seqs)
        if not self.depth:
            self.emptied.set()
        return deleted


def make_backlog(directory: Path, events: int) -> Path:
    """An outbox file holding `events` unsent check-ins, closed (built once, not timed)."""
    outbox = WatchedOutbox(directory)
    commit_checkins(outbox, events)
    outbox.close()
    return outbox.path


def backlog(template: Path, directory: Path) -> WatchedOutbox:
    """A copy of the backlog file, opened: every run starts from the same bytes."""
    directory.mkdir(parents=True)
    shutil.copyfile(template, directory / template.name)
    return WatchedOutbox(directory)


def publisher_for(outbox: Outbox, directory: Path, broker: Broker, window: int) -> Publisher:
    config = MqttConfig(
        host=broker.host, port=broker.port, transport=Transport.PLAIN, max_inflight=window
    )
    return Publisher(
        config, make_site(directory), outbox, dict, client_id="gate-bench", boot_id="b"
    )


def timed_commits(
    outbox: Outbox, interval: float, count: int | None, until: threading.Event | None
) -> list[float]:
    """Commit check-ins `interval` apart: `count` of them, or until `until` is set."""
    times: list[float] = []
    due = time.perf_counter()
    i = 0
    while (count is None or i < count) and (until is None or not until.is_set()):
        started = time.perf_counter()
        outbox.commit(make_checkin(100_000 + i))
        times.append((time.perf_counter() - started) * 1000)
        i += 1
        due += interval
        time.sleep(max(0.0, due - time.perf_counter()))
    return times


def commits_beside_drain(
    template: Path, directory: Path, broker: Broker, window: int, interval: float
) -> list[float]:
    """Latencies of commits made while the publisher drains the backlog."""
    outbox = backlog(template, directory)
    publisher = publisher_for(outbox, directory, broker, window)
    boundary = outbox.last_seq
    drained = threading.Event()

    def watch() -> None:
        while not drained.is_set():
            rows = outbox.fetch(0, 1, boundary)
            if not rows:
                drained.set()
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, name="bench-watch")
    publisher.start()
    watcher.start()
    times = timed_commits(outbox, interval, None, drained)
    watcher.join(5)
    publisher.stop()
    outbox.close()
    return times


def lone_commit(
    template: Path, directory: Path, broker: Broker | None, window: int, delay: float
) -> float:
    """The latency of one check-in committed `delay` seconds after the backlog is opened
    (the door quiet until then): with a `broker`, into the publisher's drain of it, whose
    deletions then run in their long transactions, so the commit may wait for one."""
    outbox = backlog(template, directory)
    publisher = None if broker is None else publisher_for(outbox, directory, broker, window)
    if publisher is not None:
        publisher.start()
    time.sleep(delay)
    started = time.perf_counter()
    outbox.commit(make_checkin(200_000))
    latency = (time.perf_counter() - started) * 1000
    missed = publisher is not None and outbox.depth <= 1  # the drain was over
    if publisher is not None:
        publisher.stop()
    outbox.close()
    return math.nan if missed else latency


def commits_alone(template: Path, directory: Path, interval: float, count: int) -> list[float]:
    """Latencies of `count` commits beside the same stored backlog, nothing draining it."""
    outbox = backlog(template, directory)
    times = timed_commits(outbox, interval, count, None)
    outbox.close()
    return times


def drain_publisher(
    template: Path, directory: Path, broker: Broker, window: int
) -> tuple[float, float]:
    """Events per second for the Publisher to empty the backlog (from start to empty), and
    its thread's CPU microseconds per event (connecting and the last deletions included)."""
    outbox = backlog(template, directory)
    events = outbox.depth
    publisher = publisher_for(outbox, directory, broker, window)
    started = time.perf_counter()
    publisher.start()
    thread = next(t for t in threading.enumerate() if t.name == "gate-publisher")
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    if not outbox.emptied.wait(120):
        print(f"  (a publisher drain left {outbox.depth} of {events} after 120 s)")
    elapsed = time.perf_counter() - started
    cpu = time.clock_gettime(clock)
    drained = events - outbox.depth  # after a timeout, only what was deleted
    publisher.stop()
    outbox.close()
    return drained / elapsed, cpu * 1e6 / max(drained, 1)


def drain_bare(payloads: list[bytes], broker: Broker, window: int) -> float:
    """Events per second for a bare paho QoS 1 loop: publish all, wait for every PUBACK."""
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.on_publish = on_publish
    started = time.perf_counter()
    client.connect(broker.host, broker.port)
    client.loop_start()
    for payload in payloads:
        client.publish(EVENT_TOPIC, payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return acked / elapsed  # after a timeout, only what was acknowledged


def drain_one_thread(payloads: list[bytes], broker: Broker, window: int) -> tuple[float, float]:
    """Events per second for a paho QoS 1 loop in one thread, the shape of the publisher's:
    publish up to the window, select on the socket, read the PUBACKs, again; nothing else.
    As the publisher does: TCP_NODELAY, and never `loop()` (its wake-up socket pair). And
    the thread's CPU microseconds per event, connecting included."""
    acked = 0
    cpu = time.thread_time()

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="one-thread", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.on_publish = on_publish
    started = time.perf_counter()
    deadline = started + 120
    client.connect(broker.host, broker.port)
    sent = 0
    while acked < len(payloads) and time.perf_counter() < deadline:
        sock = client.socket()
        if not isinstance(sock, socket.socket):
            break  # the connection is gone: the figure says how far it got
        if client.is_connected():
            if not sent:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while sent < len(payloads) and sent - acked < window:
                client.publish(EVENT_TOPIC, payloads[sent], qos=1)
                sent += 1
        readable, writable, _ = select.select([sock], [sock] if client.want_write() else [], [], 1)
        if readable and client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
            break
        if writable and client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            break
    elapsed = time.perf_counter() - started
    cpu = time.thread_time() - cpu
    if acked < len(payloads):
        print(f"  (one-thread drain stopped at {acked} of {len(payloads)} acknowledged)")
    client.disconnect()
    return acked / elapsed, cpu * 1e6 / max(acked, 1)


def store_alone(template: Path, directory: Path) -> tuple[float, float, float]:
    """Process CPU microseconds per row to read the backlog (`FETCH_ROWS` consecutive rows
    a read, as the drain does), and to delete it in the store's short and in its long
    transactions (one transaction an `ack` of that many rows), nothing else running: the
    publisher's share that a bare loop does not have (checkpoints, once a second, left out)."""
    outbox = backlog(template, directory / "read")
    started = time.process_time()
    after = rows = 0
    while batch := outbox.fetch(after, FETCH_ROWS):
        after, rows = batch[-1].seq, rows + len(batch)
    read = time.process_time() - started
    outbox.close()
    deleted = []
    for size in (DELETE_ROWS_BUSY, DELETE_ROWS_QUIET):
        outbox = backlog(template, directory / f"delete-{size}")
        started = time.process_time()
        for first in range(1, after + 1, size):
            outbox.ack(range(first, min(first + size, after + 1)))
        deleted.append((time.process_time() - started) * 1e6 / rows)
        outbox.close()
    return read * 1e6 / rows, deleted[0], deleted[1]


def latency_line(label: str, times: list[float]) -> str:
    return (
        f"  {label:<16} n {len(times):5d}   p50 {statistics.median(times):6.3f} ms   "
        f"p99 {percentile(times, 0.99):6.3f} ms   max {max(times):7.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5_000, help="backlog size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval-ms", type=float, default=2.0, help="between commits")
    parser.add_argument("--window", type=int, default=MqttConfig().max_inflight)
    parser.add_argument(
        "--drain-pairs", type=int, default=6, help="drains of each kind per run, in turns"
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("/var/tmp"), help="where the outbox files go"
    )
    args = parser.parse_args()
    if args.drain_pairs % 3:
        parser.error(
            "--drain-pairs: a multiple of 3, so that each kind of drain goes first, "
            "second and third as often"
        )
    interval = args.interval_ms / 1000
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    print(
        f"python {platform.python_version()}  paho {importlib.metadata.version('paho-mqtt')}  "
        f"sqlite {sqlite3.sqlite_version}  {mosq}  {platform.machine()}  cpus {os.cpu_count()}  "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="gate-bench-") as tmp:
        root = Path(tmp)
        beside: list[float] = []
        alone: list[float] = []
        ours: list[float] = []
        bare: list[float] = []
        one_thread: list[float] = []
        ours_cpu: list[float] = []
        one_thread_cpu: list[float] = []
        bare_cpu: list[float] = []
        store: list[tuple[float, float, float]] = []
        lone: list[float] = []
        lone_alone: list[float] = []
        with Broker(root / "broker") as broker:
            template = make_backlog(root / "template", args.events)
            probe = backlog(template, root / "payloads")
            payloads = [with_replayed(r.payload, True) for r in probe.fetch(0, args.events)]
            probe.close()
            for run in range(args.runs):
                during = commits_beside_drain(
                    template, root / f"beside-{run}", broker, args.window, interval
                )
                beside += during
                alone += commits_alone(template, root / f"alone-{run}", interval, len(during))
                for turn in range(args.drain_pairs):  # in turns: each kind first, second, third

                    def publisher(folder: Path = root / f"drain-{run}-{turn}") -> None:
                        rate, cpu = drain_publisher(template, folder, broker, args.window)
                        ours.append(rate)
                        ours_cpu.append(cpu)

                    def bare_loop() -> None:
                        cpu = time.process_time()
                        bare.append(drain_bare(payloads, broker, args.window))
                        bare_cpu.append((time.process_time() - cpu) * 1e6 / args.events)

                    def one_thread_loop() -> None:
                        rate, cpu = drain_one_thread(payloads, broker, args.window)
                        one_thread.append(rate)
                        one_thread_cpu.append(cpu)

                    kinds = [publisher, bare_loop, one_thread_loop]
                    for drain in kinds[turn % 3 :] + kinds[: turn % 3]:
                        drain()
                store.append(store_alone(template, root / f"store-{run}"))
                for turn in range(args.drain_pairs):  # a commit 100-150 ms in, both ways
                    delay = 0.1 + 0.05 * turn / args.drain_pairs
                    folder = root / f"lone-{run}-{turn}"
                    lone_alone.append(lone_commit(template, folder, None, args.window, delay))
                    lone.append(lone_commit(template, folder / "drain", broker, args.window, delay))
        print(
            f"commit latency, check-ins {args.interval_ms:g} ms apart, synchronous=FULL, "
            f"on {filesystem(root)}, {args.runs} runs pooled:"
        )
        print(latency_line("alone", alone))
        print(latency_line("beside a drain", beside))
        ratio = percentile(beside, 0.99) / percentile(alone, 0.99)
        print(
            f"  p99 beside/alone: {ratio:.2f}x  (goal <= 1.5x; "
            f"max beside/alone {max(beside) / max(alone):.2f}x; one frame at 30 fps: 33.3 ms)"
        )
        print("a lone check-in after a quiet door, 100-150 ms after the backlog is opened:")
        print(latency_line("alone", lone_alone))
        lone_drained = [t for t in lone if not math.isnan(t)]
        if lone_drained:
            print(
                latency_line("into a drain", lone_drained)
                + f"   ({len(lone) - len(lone_drained)} came after it)"
            )
            print(
                "    (the deletions run in their long transactions then: the check-in may "
                "wait for one)"
            )
        print(
            f"drain of a {args.events}-event backlog to local mosquitto, QoS 1, "
            f"window {args.window}:"
        )
        print(f"  publisher  {' '.join(f'{r:6.0f}' for r in ours)}  events/s")
        print(f"  bare paho  {' '.join(f'{r:6.0f}' for r in bare)}  events/s")
        drain_ratio = statistics.median(ours) / statistics.median(bare)
        print(
            f"  median ratio publisher/bare: {drain_ratio:.2f}x  (goal >= 0.9x; "
            f"median publisher {statistics.median(ours):.0f}, bare {statistics.median(bare):.0f})"
        )
        print(f"  paho alone, one thread {' '.join(f'{r:6.0f}' for r in one_thread)}  events/s")
        print(
            f"  median ratio publisher/paho in one thread: "
            f"{statistics.median(ours) / statistics.median(one_thread):.2f}x, "
            f"one thread/bare: {statistics.median(one_thread) / statistics.median(bare):.2f}x"
        )
        print(
            f"  thread CPU an event (median): publisher {statistics.median(ours_cpu):.0f} us, "
            f"paho in one thread {statistics.median(one_thread_cpu):.0f} us: "
            f"{statistics.median(one_thread_cpu) / statistics.median(ours_cpu):.2f}x"
        )
        read, busy, quiet = (statistics.median(figures) for figures in zip(*store, strict=True))
        print(
            f"  the publisher's share, alone, in process CPU: read {read:.1f} us a row "
            f"({FETCH_ROWS} at a time), delete {busy:.1f} us in transactions of "
            f"{DELETE_ROWS_BUSY} (while check-ins come), {quiet:.1f} us in transactions of "
            f"{DELETE_ROWS_QUIET} (at a quiet door); beside "
            f"{statistics.median(bare_cpu):.0f} us an event for the bare loop"
        )
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (figures share the machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
