"""Outbox and publisher figures: commit latency, and drain rate beside a bare paho loop.

    .venv/bin/python bench/outbox_drain.py [--events 10000] [--commits 2000] [--runs 3]

Prints, asserts nothing. Starts its own mosquitto on loopback (tests/broker.py).
Commit latency is per check-in with `synchronous=FULL` on the file system of
`--dir`. The drain is a 10,000-event backlog sent by the Publisher (QoS 1, window
`max_inflight`), beside a bare paho QoS 1 loop publishing the same payloads with
the same window to the same broker in the same run; the goal is >= 80 % of bare.
"""

import argparse
import importlib.metadata
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.events import with_replayed
from gate.outbox.publisher import Publisher
from gate.outbox.store import Outbox
from tests.broker import MOSQUITTO, Broker
from tests.outbox_driver import KEY, make_checkin, make_site


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


def commit_latency(directory: Path, commits: int) -> None:
    outbox = Outbox(OutboxConfig(), make_site(directory), PrivacyConfig(), privacy_key=KEY)
    checkins = [make_checkin(i) for i in range(commits)]
    times = []
    for checkin in checkins:
        started = time.perf_counter()
        outbox.commit(checkin)
        times.append((time.perf_counter() - started) * 1000)
    outbox.close()
    print(f"commit latency, {commits} check-ins, synchronous=FULL, on {filesystem(directory)}:")
    print(
        f"  p50 {statistics.median(times):.3f} ms   p99 {percentile(times, 0.99):.3f} ms   "
        f"max {max(times):.3f} ms   (one frame at 30 fps: 33.3 ms)"
    )


def backlog(directory: Path, events: int) -> Outbox:
    """An outbox holding `events` unsent check-ins (not timed)."""
    outbox = Outbox(OutboxConfig(), make_site(directory), PrivacyConfig(), privacy_key=KEY)
    for i in range(events):
        outbox.commit(make_checkin(i))
    return outbox


def drain_publisher(directory: Path, broker: Broker, events: int, window: int) -> float:
    """Events per second for the Publisher to empty a backlog (from start to empty)."""
    outbox = backlog(directory, events)
    config = MqttConfig(host=broker.host, port=broker.port, transport="plain", max_inflight=window)
    publisher = Publisher(
        config, make_site(directory), outbox, dict, client_id="gate-bench", boot_id="b"
    )
    started = time.perf_counter()
    publisher.start()
    while outbox.depth:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    publisher.stop()
    outbox.close()
    return events / elapsed


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
        client.publish("checkin/hn/stadium/gate-1/event", payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return len(payloads) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=MqttConfig().max_inflight)
    parser.add_argument(
        "--dir", type=Path, default=Path("/var/tmp"), help="where the outbox files go"
    )
    args = parser.parse_args()
    mosq = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    print(
        f"python {platform.python_version()}  paho {importlib.metadata.version('paho-mqtt')}  "
        f"sqlite {sqlite3.sqlite_version}  {mosq}  {platform.machine()}  cpus {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="gate-bench-") as tmp:
        root = Path(tmp)
        commit_latency(root / "latency", args.commits)
        with Broker(root / "broker") as broker:
            probe = backlog(root / "payloads", args.events)
            payloads = [with_replayed(r.payload, True) for r in probe.fetch(0, args.events)]
            probe.close()
            ours: list[float] = []
            bare: list[float] = []
            for run in range(args.runs):
                bare.append(drain_bare(payloads, broker, args.window))
                ours.append(
                    drain_publisher(root / f"drain-{run}", broker, args.events, args.window)
                )
        print(
            f"drain of a {args.events}-event backlog to local mosquitto, QoS 1, "
            f"window {args.window}:"
        )
        print(f"  publisher  {' '.join(f'{r:8.0f}' for r in ours)}  events/s")
        print(f"  bare paho  {' '.join(f'{r:8.0f}' for r in bare)}  events/s")
        ratio = statistics.median(ours) / statistics.median(bare)
        print(f"  median ratio publisher/bare: {ratio:.0%}  (goal >= 80%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
