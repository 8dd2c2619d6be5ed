"""What `gate run` loads, and when: a config that verifies nothing never loads cryptography.

The footprint goals (issue 12) are figures, printed by bench/footprint.py; these tests hold
the structure that makes them possible, so that it cannot regress silently: the module set
of the real `gate run` on the demo config, the judge that refuses signed kinds unread when
it cannot verify them and still verifies them when it can, the replay that decodes each
image in turn, and the dropped sd_notify messages in telemetry.
"""

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import yaml
from broker import Broker, Watcher, wait_until
from credentialgen import certificate, cose, ec_key, hc1, kid_of, pem, vaccination
from gpiozero.pins.mock import MockFactory
from imagegen import save_png
from paho.mqtt.enums import CallbackAPIVersion

import gate.app as app_module
from gate.app import GateApp, Request
from gate.app_config import GateConfig, load_config
from gate.camera.replay import ReplaySource
from gate.credentials import Kind
from gate.daemon import MALLOC_ARENAS
from gate.errors import CameraError
from gate.judge import load_judge, verifies
from gate.notify import Notifier
from gate.outbox.service import OutboxService, open_outbox
from gate.reasons import Reason

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"
UTC = datetime.UTC
AT = datetime.datetime(2025, 6, 1, 12, tzinfo=UTC)
DSC = certificate(ec_key(30), subject="DSC footprint")
#: Modules only a gate that verifies signatures, or answers remote commands, needs.
SIGNED_ONLY = ("cryptography", "asn1crypto", "cbor2", "gate.trust.store", "gate.commands.service")
#: Modules the demo never needs: zbar loads when a rescue reaches its rung (every demo code
#: reads at the first pass), the config editor and reference with their subcommand.
DEMO_NEVER = (
    "pyzbar",
    "gate.decode.zbar",
    "gate.config_edit",
    "gate.config.docs",
    "gate.cli.config",
)

#: Counts the process's malloc arenas (glibc's `<heap>`s in `malloc_info`).
COUNT_ARENAS = """
import ctypes, tempfile
def malloc_arenas():
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile() as report:
        stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
        assert stream.value, "fopen failed"
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        return report.read().count(b"<heap nr=")
"""
#: `gate run` itself, with SIGUSR1 writing the names of the loaded modules to a file, and
#: how many malloc arenas the process has.
CHILD = (
    COUNT_ARENAS
    + """
import json, os, signal, sys
from gate.cli import main
def dump(_signum, _frame):
    with open(sys.argv[2] + ".tmp", "w") as out:
        json.dump({"modules": sorted(sys.modules), "arenas": malloc_arenas()}, out)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
signal.signal(signal.SIGUSR1, dump)
sys.exit(main(["run", "--config", sys.argv[1]]))
"""
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


def without_arena_limits() -> dict[str, str]:
    """This environment without a malloc arena limit of its own, which would win."""
    return {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}


class DemoRun:
    """The real `gate run` on config/demo.yaml (state in a temporary folder, the test
    broker), started as systemd would (a notify socket), asked for its module set."""

    def __init__(self, folder: Path, broker: Broker) -> None:
        raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
        raw["site"]["state_dir"] = str(folder / "state")
        raw["camera"]["replay"]["paths"] = [str(ROOT / "config" / "demo-frames")]
        raw["mqtt"] |= {"port": broker.port, "reconnect_min_s": 0.05}
        raw["log"] = {"level": "warning"}
        self.config = folder / "gate.yaml"
        self.config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        self.modules_file = folder / "modules.json"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(folder / "notify.sock"))
        self.notify.settimeout(30)
        env = without_arena_limits() | {"NOTIFY_SOCKET": str(folder / "notify.sock")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(self.config), str(self.modules_file)], env=env
        )

    def wait_ready(self) -> None:
        while not self.notify.recv(4096).startswith(b"READY=1"):
            pass

    def probe(self) -> dict:
        self.modules_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        assert wait_until(self.modules_file.exists, 10)
        return json.loads(self.modules_file.read_text())

    def modules(self) -> set[str]:
        return set(self.probe()["modules"])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(30)
        self.notify.close()
        return status


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_gate_run_on_the_demo_config_loads_no_cryptography_until_a_command_arrives(
    tmp_path: Path, broker: Broker
) -> None:
    watcher = Watcher(broker, "#", client_id="footprint-watcher", persistent=False)
    run = DemoRun(tmp_path, broker)
    try:
        run.wait_ready()
        assert wait_until(lambda: watcher.received("/event"), 20)  # scans judged and sent
        before = run.modules()

        root = watcher.received("/event")[0].topic.removesuffix("/event")
        sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="footprint-operator")
        sender.connect(broker.host, broker.port)
        sender.loop_start()
        sender.publish(f"{root}/cmd/open", b'{"cmd": "open"}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: watcher.received("/cmd/open/result"), 20)
        sender.loop_stop()
        sender.disconnect()
        after = run.modules()
    finally:
        status = run.stop()
        watcher.close()

    assert "numpy" in before and "paho" in before  # the set is `gate run`'s own
    assert loaded(before, SIGNED_ONLY) == []
    assert loaded(before, DEMO_NEVER) == []
    result = json.loads(watcher.received("/cmd/open/result")[0].payload)
    assert (result["ok"], result["reason"]) == (False, "commands_disabled")
    assert {"cryptography", "gate.commands.service"} <= after  # loaded to answer it
    assert status == 0


def test_gate_run_threads_share_two_malloc_arenas(tmp_path: Path, broker: Broker) -> None:
    watcher = Watcher(broker, "#", client_id="arena-watcher", persistent=False)
    run = DemoRun(tmp_path, broker)
    try:
        run.wait_ready()
        assert wait_until(lambda: watcher.received("/event"), 20)  # every thread is at work
        probe = run.probe()
    finally:
        run.stop()
        watcher.close()

    assert "gate.outbox.publisher" in probe["modules"]
    assert 1 <= probe["arenas"] <= MALLOC_ARENAS  # without: about one per thread (11)


#: Eight threads allocating at once, after `share_malloc_arenas`: how many arenas result.
ARENAS_OF_EIGHT_THREADS = (
    COUNT_ARENAS
    + """
import threading
from gate.daemon import share_malloc_arenas
share_malloc_arenas()
held, ready, done = [], threading.Barrier(9), threading.Event()
def allocate():
    held.append(bytearray(64 * 1024))  # a thread's first allocation picks its arena
    ready.wait()
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
ready.wait()
print(malloc_arenas())
done.set()
"""
)


@pytest.mark.parametrize(
    ("setting", "arenas"),
    [
        ({}, MALLOC_ARENAS),
        ({"MALLOC_ARENA_MAX": "4"}, 4),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=3"}, 3),
    ],
)
def test_an_arena_limit_set_in_the_environment_wins(setting: dict, arenas: int) -> None:
    env = without_arena_limits()
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_OF_EIGHT_THREADS],
        env=env | setting,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert int(done.stdout) == arenas


def hc1_text() -> str:
    return hc1(cose(vaccination(), ec_key(30), kid=kid_of(DSC)))


def test_a_gate_that_accepts_no_signed_kind_refuses_them_unread(tmp_path: Path) -> None:
    config = GateConfig.model_validate({"site": {"state_dir": str(tmp_path)}})
    assert not verifies(config)
    judge = load_judge(config, every_kind=False)

    credential, decision = judge.judge(hc1_text().encode(), AT)
    payloads = {
        Kind.VDS_NC: b'{"data": {"hdr": {}}, "sig": {}}',
        Kind.GATE_PASS: b"GP1:ANYTHING",
    }

    assert (credential.kind, decision.reason) == (Kind.EU_DCC, Reason.KIND_NOT_ACCEPTED)
    assert credential.subject_id is None and credential.details == {}  # nothing read
    for kind, payload in payloads.items():
        other, refusal = judge.judge(payload, AT)
        assert (other.kind, refusal.reason) == (kind, Reason.KIND_NOT_ACCEPTED)
    cccd = "079201004567||Huỳnh Hiếu Thuận|30061992|Nam|TP. Hồ Chí Minh|02082022".encode()
    assert judge.judge(cccd, AT) == load_judge(config).judge(cccd, AT)  # plain kinds as before


def test_a_gate_that_accepts_hc1_still_parses_and_verifies_it(tmp_path: Path) -> None:
    (tmp_path / "dsc.pem").write_bytes(pem(DSC))
    config_file = tmp_path / "gate.yaml"
    config_file.write_text(
        f"site:\n  state_dir: {tmp_path / 'state'}\n"
        "policy:\n  accept_kinds: [eu_dcc]\ntrust:\n  paths: [dsc.pem]\n"
    )
    config = load_config(config_file)
    assert verifies(config)

    credential, decision = load_judge(config, every_kind=False).judge(hc1_text().encode(), AT)

    assert credential.verified and decision.accepted


def test_pinned_signers_alone_make_a_gate_parse_signed_kinds(tmp_path: Path) -> None:
    (tmp_path / "dsc.pem").write_bytes(pem(DSC))
    config = GateConfig.model_validate(
        {"site": {"state_dir": str(tmp_path / "state")}, "trust": {"paths": [tmp_path / "dsc.pem"]}}
    )
    assert verifies(config)

    credential, decision = load_judge(config, every_kind=False).judge(hc1_text().encode(), AT)

    assert credential.verified and decision.reason is Reason.KIND_NOT_ACCEPTED


def frames_of(tmp_path: Path, count: int) -> list[Path]:
    return [
        save_png(np.full((48, 64), 10 * i, np.uint8), tmp_path / f"{i:02d}.png")
        for i in range(count)
    ]


def test_paced_replay_plays_every_image_in_order_decoding_each_in_turn(tmp_path: Path) -> None:
    paths = frames_of(tmp_path, 3)
    source = ReplaySource(paths=paths, fps=200, loop=True, repeat_each=2)
    source.open()
    paths[2].unlink()  # read when its turn comes, not at open
    save_png(np.full((48, 64), 99, np.uint8), paths[2])

    shown = [int(f[0, 0]) for f in islice(source.frames(threading.Event()), 8)]

    assert shown == [0, 0, 10, 10, 99, 99, 0, 0]


def test_paced_replay_of_an_unreadable_image_is_a_camera_error_when_it_is_shown(
    tmp_path: Path,
) -> None:
    paths = frames_of(tmp_path, 2)
    source = ReplaySource(paths=paths, fps=200)
    source.open()
    paths[1].write_text("not a PNG any more")

    with pytest.raises(CameraError, match="not an image"):
        list(source.frames(threading.Event()))


def test_sd_notify_messages_dropped_are_in_telemetry(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-reads.sock")})
    app = GateApp(GateConfig(), notifier=notifier)
    assert app.telemetry()["notify_dropped"] == 0

    notifier.notify("STATUS=running")

    assert app.telemetry()["notify_dropped"] == 1


def test_the_door_runs_before_the_uplink_starts(
    tmp_path: Path, broker: Broker, mock_factory: MockFactory
) -> None:
    """READY does not wait for paho: the camera opens, and its first frame is read, before
    the publisher exists; the publisher starts once READY is sent."""
    publisher_at: dict[str, object] = {}

    class WatchedCamera(ReplaySource):
        def open(self) -> None:
            assert app.outbox is not None
            publisher_at["open"] = app.outbox.publisher
            super().open()

        def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
            for frame in super().frames(stop):
                assert app.outbox is not None
                publisher_at.setdefault("first frame", app.outbox.publisher)
                yield frame

    config = GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path), "device_id": "start-order"},
            "mqtt": {"host": broker.host, "port": broker.port, "transport": "plain"},
        }
    )
    camera = WatchedCamera([np.zeros((48, 64), np.uint8)], fps=20, loop=True)
    app = GateApp(config, source=camera, pin_factory=mock_factory)
    try:
        app.start()
        assert publisher_at == {"open": None, "first frame": None}
        assert app.door is not None and app.door.serving.is_set()
        assert app.outbox is not None and app.outbox.publisher is not None
        assert wait_until(lambda: app.outbox is not None and app.outbox.connected, 15)
    finally:
        app.stop()


class SilentCamera(ReplaySource):
    """Opens, then gives no frame until stopped: the door never serves."""

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        stop.wait()
        return iter(())


def test_a_stop_asked_while_the_outbox_opens_starts_nothing_after_it(
    tmp_path: Path, mock_factory: MockFactory
) -> None:
    config = GateConfig.model_validate(
        {"site": {"state_dir": str(tmp_path), "device_id": "stop-in-open"}}
    )

    def open_while_asked_to_stop(config: GateConfig) -> OutboxService:
        app.request(Request.STOP)  # as a SIGTERM does, while the first read runs
        return open_outbox(config)

    app = GateApp(
        config,
        source=SilentCamera([]),
        pin_factory=mock_factory,
        open_store=open_while_asked_to_stop,
    )
    try:
        app.start()
        assert app.outbox is not None and app.door is None  # no pins, no camera, no threads
        assert app.serve() == 0
    finally:
        app.stop()
    assert app.outbox.publisher is None


def test_a_stop_asked_while_the_uplink_waits_for_ready_is_served_at_once(
    tmp_path: Path, broker: Broker, mock_factory: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "UPLINK_WAIT_S", 120.0)
    config = GateConfig.model_validate(
        {
            "site": {"state_dir": str(tmp_path), "device_id": "stop-early"},
            "mqtt": {"host": broker.host, "port": broker.port, "transport": "plain"},
        }
    )
    app = GateApp(config, source=SilentCamera([]), pin_factory=mock_factory)
    threading.Timer(0.3, app.request, args=(Request.STOP,)).start()
    started = time.monotonic()
    try:
        app.start()
        assert time.monotonic() - started < 60  # not the 120 s the uplink may wait
        assert app.door is not None and not app.door.serving.is_set()
        assert app.outbox is not None and app.outbox.publisher is None  # nor does the uplink
        assert app.serve() == 0
    finally:
        app.stop()
