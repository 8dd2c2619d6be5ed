"""A process running the real Outbox and Publisher, for tests that kill it and for the bench.

Run as a script (the tests start it with `python tests/outbox_driver.py ...`), it
prints one JSON object per line, flushed: `{"committed": seq, "event_id": ...}`
after each commit returned, `{"started": pid}`, `{"drained": ...}` with memory
figures, `{"command": name, "bytes": n}` for each command routed to it (with
`--commands`). SIGTERM stops it cleanly (retained `stopped`). Also imported by the
tests for `make_checkin` and `make_site`.
"""

import argparse
import json
import signal
import sys
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.credentials.model import Credential, Kind
from gate.decision import Decision
from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.publisher import Publisher
from gate.outbox.store import Outbox, StoredEvent
from gate.reasons import Reason

KEY = b"0123456789abcdef0123456789abcdef"


def make_site(state_dir: Path, gate_id: str = "gate-1") -> SiteConfig:
    """A test site with its state in `state_dir`."""
    return SiteConfig(
        province="hn", venue_id="stadium", gate_id=gate_id, device_id="dev1", state_dir=state_dir
    )


def make_checkin(i: int, *, accepted: bool = True) -> CheckIn:
    """The i-th test check-in: a valid chip ID card, accepted or refused."""
    return CheckIn(
        captured_at=datetime.now(UTC),
        credential=Credential(
            kind=Kind.CCCD,
            valid=True,
            verified=False,
            reason=Reason.OK,
            subject_id=f"{1_000_000_000 + i:012d}",
            name="Nguyễn Văn An",
            birth_date="1990-01-01",
        ),
        decision=Decision(accepted, Reason.OK if accepted else Reason.KIND_NOT_ACCEPTED),
    )


def commit_checkins(outbox: Outbox, count: int, first: int = 0) -> list[StoredEvent]:
    """Commit the test check-ins `first` .. `first + count - 1`; what was stored, in order."""
    return [outbox.commit(make_checkin(i)) for i in range(first, first + count)]


def _rss_kb() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


_SAYING = threading.Lock()


def _say(**fields: object) -> None:
    """One JSON line, whole: the command handler and the main loop both report, and print()
    writes the text and its newline separately."""
    line = json.dumps(fields) + "\n"
    with _SAYING:
        sys.stdout.write(line)
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", default="v5")
    parser.add_argument("--keepalive", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=0, help="commit this many before starting")
    parser.add_argument("--commit", type=int, default=0, help="commit this many while running")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between commits")
    parser.add_argument("--exit-when-drained", action="store_true")
    parser.add_argument("--trace-memory", action="store_true")
    parser.add_argument("--commands", action="store_true", help="report every command received")
    args = parser.parse_args()

    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    site = make_site(args.state)
    outbox = Outbox(OutboxConfig(), site, PrivacyConfig(), privacy_key=KEY)
    for i in range(args.backlog):
        outbox.commit(make_checkin(i))
    mqtt = MqttConfig(
        host="127.0.0.1",
        port=args.port,
        transport="plain",
        protocol=args.protocol,
        keepalive=args.keepalive,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        ack_timeout_s=5,
        connect_timeout_s=2,
        telemetry_interval_s=2,
    )
    publisher = Publisher(mqtt, site, outbox, dict, client_id="gate-dev1", boot_id="boot-test")
    if args.commands:
        publisher.on_command("+", lambda name, payload: _say(command=name, bytes=len(payload)))
    if args.trace_memory:
        tracemalloc.start()
    before = _rss_kb()
    traced_before = tracemalloc.get_traced_memory()[0] if args.trace_memory else 0
    started = time.monotonic()
    publisher.start()
    _say(started=True, backlog=outbox.stats().depth)
    for i in range(args.commit):
        if stop.is_set():
            break
        stored = outbox.commit(make_checkin(args.backlog + i))
        publisher.notify()
        _say(committed=stored.seq, event_id=stored.event_id)
        if args.interval:
            time.sleep(args.interval)
    if args.exit_when_drained:
        while outbox.depth and not stop.wait(0.01):
            pass
        after = _rss_kb()
        traced = tracemalloc.get_traced_memory() if args.trace_memory else (0, 0)
        _say(
            drained=True,
            seconds=time.monotonic() - started,
            rss_before_kb=before["VmRSS"],
            rss_after_kb=after["VmRSS"],
            hwm_after_kb=after["VmHWM"],
            traced_before=traced_before,
            traced_after=traced[0],
            traced_peak=traced[1],
        )
    else:
        stop.wait()
    publisher.stop()
    outbox.close()
    _say(stopped=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
