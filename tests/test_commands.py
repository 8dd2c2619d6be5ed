"""Remote commands against a real mosquitto: the real Gate on gpiozero MockFactory pins, the
real publisher, commands signed and sent the way `gate cmd send` sends them.

The relay and the mode change exactly as commanded, never for a refused command, and every
command, accepted or refused, is answered on its result topic with the reason.
"""

import datetime
import json
import logging
import os
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import pytest
import yaml
from broker import Broker, Watcher, wait_until
from conftest import ListSink
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from gpiozero.pins.mock import MockFactory
from imagegen import empty_frame, qr_frame, save_png
from paho.mqtt.enums import CallbackAPIVersion
from pins import levels

from gate.app_config import load_config
from gate.camera.replay import ReplaySource
from gate.cli import main
from gate.cli.cmd import Delivery, command_topic, exchange
from gate.commands import device
from gate.commands.budget import RefusalBudget
from gate.commands.envelope import (
    NONCE_MAX,
    CommandError,
    Outcome,
    encode,
    now_ms,
    result_payload,
    sign,
)
from gate.commands.nonces import FILE as NONCE_FILE
from gate.commands.nonces import NonceBook
from gate.commands.service import QUEUE_MAX, CommandService, Inbox
from gate.control import Mode
from gate.daemon import run
from gate.door import Gate
from gate.outbox.config import MqttConfig, SubjectMode
from gate.outbox.service import OutboxService, open_outbox
from gate.privacy import load_key, subject_form
from gate.reasons import Reason
from gate.remote_lists import DENY_FILE, REMOTE, TRUST_LINK
from gate.trust import passes

pytestmark = [pytest.mark.broker]

TARGET = "hn/stadium/gate-1"
ROOT = MqttConfig.model_fields["topic_root"].default
GATE_ROOT = "checkin/hn/stadium/gate-1"
RELAY = 23
CCCD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021"
CCCD_ID = "001090123456"
EMPTY = empty_frame(size=(320, 240), seed=1)


@pytest.fixture(scope="module")
def ops_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operations key pair as `gate cmd keygen` writes it."""
    private = tmp_path_factory.mktemp("ops") / "ops.key"
    assert main(["cmd", "keygen", "--out", str(private)]) == 0
    return private


class Rig:
    """One gate as `gate run` wires it: Gate, outbox and publisher, and the command service."""

    def __init__(
        self,
        tmp_path: Path,
        broker: Broker,
        factory: MockFactory,
        ops_key: Path,
        frames: list[np.ndarray] | None = None,
        **sections: Any,
    ) -> None:
        self.broker = broker
        self.key = passes.load_private_key(ops_key)
        self.factory = factory
        self.config_path = tmp_path / "gate.yaml"
        self.write_config(
            {
                "site": {
                    "province": "hn",
                    "venue_id": "stadium",
                    "gate_id": "gate-1",
                    "device_id": "dev1",
                    "state_dir": str(tmp_path / "state"),
                },
                "camera": {"source": "replay"},
                "presentation": {"confirm_frames": 1, "leave_after_s": 0.2, "cooldown_s": 0},
                "signals": {"pin_factory": "mock", "relay_pulse_s": 0.3, "exit_pulse_s": 0.3},
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "transport": "plain",
                    "reconnect_min_s": 0.05,
                    "reconnect_max_s": 0.5,
                },
                "commands": {
                    "public_keys": [str(passes.public_path(ops_key))],
                    "max_payload_bytes": 4096,
                },
            }
            | sections
        )
        config = load_config(self.config_path)
        self.config = config
        self.sink = ListSink()
        self.store: OutboxService = open_outbox(config)
        self.store.start_uplink()
        self.gate = Gate(
            config,
            sink=self.sink,
            source=ReplaySource(frames or [EMPTY], fps=20, loop=True),
            pin_factory=factory,
            config_path=self.config_path,
        )
        self.gate.start()
        self.lock = threading.Lock()
        self.restarts = 0
        self.service = self.start_service()
        self.device_key = device.load_or_create(config.site.state_dir).public_key()
        self.problems: list[str | None] = []  # why each result could not be verified
        assert wait_until(lambda: self.send(self.signed("status"), wait=0.5), 15)

    def write_config(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def start_service(self) -> CommandService:
        def restart() -> None:
            self.restarts += 1

        service = CommandService(
            self.gate,
            self.store.publisher,
            lock=self.lock,
            restart=restart,
            outbox=self.store.outbox,
        )
        service.start()
        return service

    def signed(self, name: str, args: dict[str, Any] | None = None, **fields: Any) -> dict:
        """Signed as `gate cmd send` signs it: for one gate and its topic (unless told)."""
        target = fields.pop("target", TARGET)
        topic = fields.pop("topic", None) or command_topic(ROOT, target, name)
        return sign(self.key, name, target, topic, args, **fields)

    def send(
        self, command: dict | bytes, name: str | None = None, wait: float = 5.0
    ) -> dict[str, Any] | None:
        """Publish on this gate's topic as `gate cmd send` does; the result (matched by
        nonce when there is one), after checking it with the gate's device key (the
        problem, if any, goes to `problems`)."""
        if isinstance(command, dict):
            payload, name, nonce = encode(command), name or command["cmd"], command.get("nonce")
        else:
            payload, nonce = command, None
        assert name is not None
        topic = command_topic(ROOT, TARGET, name)
        mqtt = MqttConfig(host=self.broker.host, port=self.broker.port, transport="plain")
        delivery = Delivery(TARGET, topic, payload, nonce, self.device_key)
        answer = exchange(mqtt, [delivery], wait).get(topic)
        if answer is None:
            return None
        self.problems.append(answer.problem)
        return answer.result

    def relay(self) -> list[bool]:
        return levels(self.factory.pin(RELAY))

    def close(self) -> None:
        self.service.stop()
        self.gate.stop()
        self.store.close()


@pytest.fixture
def rigs(tmp_path: Path, broker: Broker, mock_factory: MockFactory, ops_key: Path):
    """Makes the test's rig (frames and config sections may vary); closes it at the end."""
    made: list[Rig] = []

    def make(frames: list[np.ndarray] | None = None, **sections: Any) -> Rig:
        made.append(Rig(tmp_path, broker, mock_factory, ops_key, frames, **sections))
        return made[-1]

    yield make
    for rig in made:
        rig.close()


def wait(seconds: float) -> None:
    threading.Event().wait(seconds)


# --- good commands ------------------------------------------------------------------------


def register(rig: Rig, capsys: pytest.CaptureFixture[str], registry: Path) -> None:
    """Add the gate's line from `gate cmd device-key` to the province's registry."""
    capsys.readouterr()
    assert main(["cmd", "device-key", "--config", str(rig.config_path)]) == 0
    line = capsys.readouterr().out
    assert json.loads(line)["gate"] == TARGET
    with registry.open("a") as file:
        file.write(line)


def test_open_pulses_the_relay_once_and_the_cli_prints_the_verified_result(
    rigs, broker, ops_key, tmp_path, capsys
):
    rig = rigs()
    register(rig, capsys, tmp_path / "devices.jsonl")
    argv = ["cmd", "send", "--key", str(ops_key), "--broker", f"{broker.host}:{broker.port}"]
    keys = ["--device-keys", str(tmp_path / "devices.jsonl")]
    assert main([*argv, *keys, "--plain", "--target", TARGET, "open"]) == 0
    wait(0.6)  # the 0.3 s pulse ends

    [line] = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert (result["gate"], result["verified"]) == (TARGET, True)
    assert (result["ok"], result["reason"], result["cmd"]) == (True, "ok", "open")
    assert result["state"] == {"mode": "normal"}
    assert rig.relay() == [False, True, False]
    assert rig.gate.mode is Mode.NORMAL


def test_the_cli_exits_1_when_refused_2_without_an_answer_3_when_it_cannot_verify(
    rigs, broker, tmp_path, capsys
):
    rig = rigs()
    register(rig, capsys, tmp_path / "devices.jsonl")
    stranger = tmp_path / "stranger.key"
    assert main(["cmd", "keygen", "--out", str(stranger)]) == 0
    argv = ["cmd", "send", "--key", str(stranger), "--broker", f"{broker.host}:{broker.port}"]
    keys = ["--device-keys", str(tmp_path / "devices.jsonl")]
    capsys.readouterr()

    assert main([*argv, *keys, "--plain", "--target", TARGET, "lock"]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert (refused["reason"], refused["verified"]) == ("bad_signature", True)
    to = ["--to", TARGET, "--to", "hn/stadium/gate-9", "--wait", "1"]
    assert main([*argv, *keys, "--plain", "--target", "hn/stadium/*", *to, "status"]) == 2
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["gate"], a["ok"]) for a in answers] == [(TARGET, False), ("hn/stadium/gate-9", None)]
    assert answers[1]["error"] == "no answer within 1 s"
    assert main([*argv, "--plain", "--target", TARGET, "lock"]) == 3  # no registry
    unverified = json.loads(capsys.readouterr().out)
    assert unverified["verified"] is False
    assert unverified["verification"] == "no --device-keys registry given"
    closed = ["--broker", f"{broker.host}:1", "--plain", "--target", TARGET, "status"]
    assert main(["cmd", "send", "--key", str(stranger), *closed]) == 2
    assert "cannot connect to 127.0.0.1:1" in capsys.readouterr().err
    outside = ["--target", "hn/stadium/*", "--to", "hn/arena/gate-1", "status"]
    assert main([*argv, "--plain", *outside]) == 1
    assert "hn/arena/gate-1 is not one of --target hn/stadium/*" in capsys.readouterr().err


def test_lock_emergency_open_and_normal_set_the_mode_and_the_relay(rigs):
    rig = rigs()
    mode_file = rig.config.site.state_dir / "mode"

    result = rig.send(rig.signed("lock"))
    assert (result["ok"], result["state"]) == (True, {"mode": "locked"})
    assert rig.gate.mode is Mode.LOCKED
    assert json.loads(mode_file.read_text()) == {"mode": "locked"}
    assert rig.relay() == [False]

    assert rig.send(rig.signed("emergency_open"))["state"] == {"mode": "emergency_open"}
    wait(0.5)  # longer than a pulse: held, not pulsed
    assert rig.relay() == [False, True]

    assert rig.send(rig.signed("normal"))["state"] == {"mode": "normal"}
    assert rig.relay() == [False, True, False]
    assert json.loads(mode_file.read_text()) == {"mode": "normal"}


def test_status_reports_mode_counters_outbox_broker_clock_and_version(rigs):
    rig = rigs()
    assert wait_until(lambda: rig.gate.counters.frames > 0, 5)
    result = rig.send(rig.signed("status"))

    state = result["state"]
    assert result["ok"] is True
    assert state["mode"] == "normal"
    assert state["broker"] == "connected"
    assert state["outbox"]["depth"] == 0
    assert state["gate"]["frames"] > 0
    assert isinstance(state["clock_synced"], bool)
    assert state["version"]
    assert state["remote_deny"] == {"subject_hashes": 0, "pass_ids": 0, "certificate_ids": 0}
    assert state["remote_trust"] is None
    assert rig.relay() == [False]


def test_reload_applies_a_valid_file_and_refuses_an_invalid_one(rigs):
    rig = rigs()
    rig.write_config(rig.raw | {"presentation": {"confirm_frames": 2, "cooldown_s": 0}})
    result = rig.send(rig.signed("reload"))
    assert (result["ok"], result["reason"]) == (True, "ok")
    assert rig.gate.config.presentation.confirm_frames == 2

    rig.config_path.write_text("presentation: {confirm_frames: -1}\n")
    result = rig.send(rig.signed("reload"))
    assert (result["ok"], result["reason"]) == (False, "reload_failed")
    assert rig.gate.config.presentation.confirm_frames == 2
    assert rig.restarts == 0


def test_reload_of_a_section_the_publisher_holds_asks_for_a_restart(rigs):
    rig = rigs()
    rig.write_config(rig.raw | {"mqtt": rig.raw["mqtt"] | {"keepalive": 20}})
    result = rig.send(rig.signed("reload"))

    assert (result["ok"], result["state"]) == (True, {"mode": "normal", "restarting": True})
    assert rig.restarts == 1


# --- refused commands: answered with the reason, nothing changed --------------------------


def _without(document: dict, *names: str) -> dict:
    return {k: v for k, v in document.items() if k not in names}


def _tampered(document: dict, **changes: Any) -> dict:
    return document | changes


def _repeated_member(rig: Rig) -> bytes:
    return encode(rig.signed("open")).replace(
        b'{"schema":"gate.command.v2",',
        b'{"schema":"gate.command.v2","schema":"gate.command.v2",',
        1,
    )


OTHER_KEY = ed25519.Ed25519PrivateKey.generate()
REFUSALS = {
    "unsigned": (lambda rig: _without(rig.signed("open"), "sig", "key_id"), "open", "unsigned"),
    "wrong key": (
        lambda rig: sign(OTHER_KEY, "open", TARGET, f"{GATE_ROOT}/cmd/open"),
        "open",
        "bad_signature",
    ),
    "tampered": (
        lambda rig: _tampered(rig.signed("lock"), cmd="open"),
        "open",
        "bad_signature",
    ),
    "stale": (
        lambda rig: rig.signed("open", issued_at=now_ms() - 301_000),
        "open",
        "stale",
    ),
    "future": (
        lambda rig: rig.signed("open", issued_at=now_ms() + 301_000),
        "open",
        "stale",
    ),
    "garbled": (lambda rig: b'{"schema":"gate.command.v2","cmd":"open",', "open", "malformed"),
    "old schema": (
        lambda rig: _tampered(rig.signed("open"), schema="gate.command.v1"),
        "open",
        "malformed",
    ),
    "a wildcard target": (
        lambda rig: rig.signed("open", target="hn/stadium/*", topic=f"{GATE_ROOT}/cmd/open"),
        "open",
        "malformed",
    ),
    "bad field": (
        lambda rig: _tampered(rig.signed("open"), issued_at="now"),
        "open",
        "malformed",
    ),
    "repeated member": (_repeated_member, "open", "malformed"),
    "args to open": (lambda rig: rig.signed("open", {"seconds": 60}), "open", "malformed"),
    "on another topic": (lambda rig: rig.signed("emergency_open"), "open", "malformed"),
    "unknown": (lambda rig: rig.signed("self_destruct"), "open", "unknown_command"),
    "unknown on its own topic": (
        lambda rig: rig.signed("self_destruct"),
        "self_destruct",
        "unknown_command",
    ),
    "wrong gate": (
        lambda rig: rig.signed("open", target="hn/stadium/gate-2"),
        "open",
        "wrong_target",
    ),
    "other venue": (
        lambda rig: rig.signed("open", target="hn/arena/gate-1"),
        "open",
        "wrong_target",
    ),
    "signed for another topic": (
        lambda rig: rig.signed("open", topic="checkin/hn/stadium/gate-2/cmd/open"),
        "open",
        "wrong_target",
    ),
    "oversized": (lambda rig: b" " * 4097 + encode(rig.signed("open")), "open", "oversized"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_command_is_answered_with_its_reason_and_changes_nothing(rigs, case, caplog):
    make, topic, reason = REFUSALS[case]
    rig = rigs()
    command = make(rig)
    nonce = command.get("nonce") if isinstance(command, dict) else None

    # Without a nonce no answer settles the exchange, so it listens its whole window.
    result = rig.send(command, topic, wait=5.0 if nonce else 2.0)

    assert (result["ok"], result["reason"], result["cmd"]) == (False, reason, topic)
    assert result["nonce"] == nonce
    assert result["state"] == {"mode": "normal"}
    assert result["detail"]
    assert rig.problems[-1] == (None if nonce else "no nonce to match the answer with")
    assert f"command {topic} (nonce {nonce}) refused: {reason}" in caplog.text
    wait(0.4)  # a pulse would have started
    assert rig.relay() == [False]
    assert rig.gate.mode is Mode.NORMAL
    assert not (rig.config.site.state_dir / "mode").exists()


def test_a_replayed_command_is_refused_also_after_the_service_restarts(rigs):
    rig = rigs()
    command = rig.signed("open")

    assert rig.send(command)["reason"] == "ok"
    assert rig.send(command)["reason"] == "replayed"
    rig.service.stop()
    rig.service = rig.start_service()
    assert rig.send(command)["reason"] == "replayed"
    wait(0.6)

    assert rig.relay() == [False, True, False]  # one pulse, for the first
    kept = json.loads((rig.config.site.state_dir / NONCE_FILE).read_text())
    assert kept["nonces"][command["nonce"]] == command["issued_at"]


@pytest.mark.parametrize("keys", ["none", "a private key"])
def test_without_a_usable_operations_key_every_command_is_refused_until_a_reload_brings_one(
    rigs, ops_key, keys, caplog
):
    public_keys = [] if keys == "none" else [str(ops_key)]
    rig = rigs(commands={"public_keys": public_keys})

    result = rig.send(rig.signed("open"))
    assert (result["ok"], result["reason"]) == (False, "commands_disabled")
    wait(0.4)
    assert rig.relay() == [False]
    if keys != "none":
        assert "holds a private key" in caplog.text

    public = {"public_keys": [str(passes.public_path(ops_key))]}
    rig.write_config(rig.raw | {"commands": public})
    with rig.lock:  # as SIGHUP's reload in run() does
        rig.gate.reload()
    assert rig.send(rig.signed("open"))["reason"] == "ok"


class Burst:
    """Raw publishes of many commands at once, and every result as a consumer sees them."""

    def __init__(self, broker: Broker) -> None:
        self.nonces: set[str] = set()
        self.watcher = Watcher(
            broker, f"{GATE_ROOT}/cmd/+/result", client_id="results", persistent=False
        )
        self.sender = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.sender.connect(broker.host, broker.port)
        self.sender.loop_start()

    def publish(self, commands: list[dict]) -> None:
        self.nonces |= {command["nonce"] for command in commands}
        for command in commands:
            topic = f"{GATE_ROOT}/cmd/{command['cmd']}"
            self.sender.publish(topic, encode(command), qos=1).wait_for_publish(5)

    def results(self) -> list[dict]:
        """The results of the commands published here, in arrival order."""
        results = [json.loads(r.payload) for r in self.watcher.received()]
        return [r for r in results if r["nonce"] in self.nonces]

    def close(self) -> None:
        self.sender.disconnect()
        self.sender.loop_stop()
        self.watcher.close()


@pytest.fixture
def burst(broker: Broker) -> Iterator[Burst]:
    made = Burst(broker)
    yield made
    made.close()


def test_the_network_thread_never_waits_for_a_command_and_overflow_is_answered_busy(rigs, burst):
    rig = rigs()
    commands = [rig.signed("status") for _ in range(QUEUE_MAX + 4)]

    with rig.lock:  # as a SIGHUP reload would: the worker waits for the gate
        burst.publish(commands)
        assert wait_until(lambda: len(burst.results()) >= 3, 10)  # answered meanwhile
        early = burst.results()
    assert wait_until(lambda: len(burst.results()) == len(commands), 10)

    assert {r["reason"] for r in early} == {"busy"}
    results = burst.results()
    busy = [r["nonce"] for r in results if r["reason"] == "busy"]
    done = [r["nonce"] for r in results if r["reason"] == "ok"]
    assert len(busy) >= 3
    assert sorted(busy + done) == sorted(c["nonce"] for c in commands)
    assert done == [c["nonce"] for c in commands if c["nonce"] in done]  # in order


def test_commands_still_waiting_when_the_service_stops_are_answered_unavailable(rigs, burst):
    rig = rigs()
    commands = [rig.signed("open"), rig.signed("lock"), rig.signed("emergency_open")]

    with rig.lock:
        burst.publish(commands)
        wait(0.3)  # the first is taken, the others queue
        stopping = threading.Thread(target=rig.service.stop, name="stopping")
        stopping.start()
    stopping.join(5)
    assert wait_until(lambda: len(burst.results()) == 3, 10)

    results = {r["cmd"]: (r["reason"], r["nonce"]) for r in burst.results()}
    assert results == {
        "open": ("ok", commands[0]["nonce"]),
        "lock": ("unavailable", commands[1]["nonce"]),
        "emergency_open": ("unavailable", commands[2]["nonce"]),
    }
    assert rig.gate.mode is Mode.NORMAL
    more = rig.signed("normal")
    burst.publish([more])
    assert wait_until(lambda: len(burst.results()) == 4, 10)
    assert burst.results()[-1]["reason"] == "unavailable"


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nonces_are_kept_for_the_skew_window_and_never_forgotten_to_make_room(tmp_path):
    window, at = 300_000, 1_767_225_600_000
    book = NonceBook(tmp_path, capacity=2, monotonic=Monotonic())  # time stands still
    assert book.claim("a" * 16, at, at, window) is None
    assert book.claim("b" * 16, at, at, window) is None
    assert book.claim("c" * 16, at, at, window) == (
        Outcome.BUSY,
        "too many commands within the skew window",
    )
    assert book.claim("a" * 16, at, at, window) == (
        Outcome.REPLAYED,
        "nonce already accepted within the skew window",
    )

    later = at + window + 1  # a and b could no longer pass the time check
    assert book.claim("c" * 16, later, later, window) is None
    assert json.loads(book.path.read_text()) == {"v": 1, "nonces": {"c" * 16: later}}
    assert NonceBook(tmp_path, monotonic=Monotonic()).claim("c" * 16, later, later, window) == (
        Outcome.REPLAYED,
        "nonce already accepted within the skew window",
    )


@pytest.mark.parametrize("file", ["missing", "unreadable", "an old copy"])
def test_what_was_issued_before_the_service_started_is_refused_whatever_the_nonce_file_says(
    tmp_path, file, caplog
):
    (tmp_path / NONCE_FILE).parent.mkdir()
    if file == "unreadable":
        (tmp_path / NONCE_FILE).write_text("{garbage")
    elif file == "an old copy":  # a card restored from an image made before the command
        (tmp_path / NONCE_FILE).write_text('{"v": 1, "nonces": {}}')
    clock = Monotonic()
    book = NonceBook(tmp_path, monotonic=clock)
    clock.now += 60  # a minute later, the clock reads 5_060_000: the gate started at 5_000_000

    assert book.floor_ms(5_060_000) == 5_000_000
    assert book.claim("a" * 16, 4_999_999, 5_060_000, 300_000) == (
        Outcome.REPLAYED,
        "issued before the command service started",
    )
    assert book.claim("b" * 16, 5_000_000, 5_060_000, 300_000) is None
    # NTP steps the clock 200 s forward: the start moves with it
    assert book.claim("c" * 16, 5_100_000, 5_260_000, 300_000) is not None
    assert json.loads(book.path.read_text())["nonces"] == {"b" * 16: 5_000_000}
    logged = {
        "missing": "no command nonce file",
        "unreadable": "cannot read the command nonces",
        "an old copy": "",
    }
    assert logged[file] in caplog.text


def test_a_full_book_of_the_longest_nonces_is_read_back_whole(tmp_path, caplog):
    window, at = 300_000, 1_767_225_600_000
    book = NonceBook(tmp_path, capacity=3, monotonic=Monotonic())
    longest = [f"{i}" * NONCE_MAX for i in range(3)]
    for nonce in longest:
        assert book.claim(nonce, at, at, window) is None

    reopened = NonceBook(tmp_path, capacity=3, monotonic=Monotonic())

    assert "cannot read" not in caplog.text
    assert [reopened.claim(n, at, at, window) for n in longest] == [
        (Outcome.REPLAYED, "nonce already accepted within the skew window")
    ] * 3


def test_a_nonce_file_larger_than_the_book_is_not_read(tmp_path, caplog):
    """The file is the gate's own and small; a bloated one (a card written by someone else)
    is not read whole, and the floor still refuses what was issued before the start."""
    (tmp_path / NONCE_FILE).parent.mkdir()
    fresh = {f"{i:016d}": 5_000_000 for i in range(3)}
    (tmp_path / NONCE_FILE).write_text(json.dumps({"v": 1, "nonces": fresh}) + " " * 400)
    book = NonceBook(tmp_path, capacity=2, monotonic=Monotonic())
    assert "cannot read the command nonces" in caplog.text
    assert "larger than 2 nonces" in caplog.text
    assert book.claim("a" * 16, 5_000_000, 5_000_000, 300_000) is None


# --- the lists the operations team replaces -----------------------------------------------


def scene(code: str) -> list[np.ndarray]:
    """Someone shows a code for a moment, leaves, and comes back, again and again."""
    return [EMPTY] * 6 + [qr_frame(code, size=(320, 240), module_px=3)] * 3


def checkins_after(rig: Rig, start: int, reason: Reason, timeout: float = 10.0) -> list:
    """Check-ins after the first `start`, once one of them has `reason`."""
    assert wait_until(
        lambda: any(c.decision.reason is reason for c in rig.sink.checkins[start:]), timeout
    ), [c.decision.reason for c in rig.sink.checkins]
    return rig.sink.checkins[start:]


def test_a_subject_on_a_replaced_deny_list_is_refused_denied_on_the_next_scan(rigs):
    rig = rigs(scene(CCCD))
    checkins_after(rig, 0, Reason.OK)
    key = load_key(rig.config.privacy, rig.config.site)
    hashed = subject_form(CCCD_ID, SubjectMode.HMAC, key)

    result = rig.send(rig.signed("deny_list", {"subject_hashes": [hashed.upper()]}))
    assert (result["ok"], result["reason"]) == (True, "ok")
    assert result["state"]["remote_deny"] == {
        "subject_hashes": 1,
        "pass_ids": 0,
        "certificate_ids": 0,
    }
    start = len(rig.sink.checkins)
    after = checkins_after(rig, start, Reason.DENIED)
    assert {c.decision.reason for c in after} == {Reason.DENIED}
    stored = rig.config.site.state_dir / REMOTE / DENY_FILE
    assert json.loads(stored.read_text())["subject_hashes"] == [hashed]

    refused = rig.send(rig.signed("deny_list", {"subject_hashes": ["not-a-hash"]}))
    assert (refused["ok"], refused["reason"]) == (False, "invalid_list")
    assert json.loads(stored.read_text())["subject_hashes"] == [hashed]
    assert rig.send(rig.signed("status"))["state"]["remote_deny"]["subject_hashes"] == 1


def test_a_list_push_keeps_who_went_through_and_anti_passback_still_refuses(rigs):
    rig = rigs(scene(CCCD), policy={"anti_passback_minutes": 30})
    first = checkins_after(rig, 0, Reason.ANTI_PASSBACK)
    assert [c.decision.reason for c in first][:2] == [Reason.OK, Reason.ANTI_PASSBACK]

    assert rig.send(rig.signed("deny_list", {"pass_ids": ["P-9"]}))["ok"]  # a new judge
    start = len(rig.sink.checkins)
    assert wait_until(lambda: len(rig.sink.checkins) >= start + 2, 10)

    after = {c.decision.reason for c in rig.sink.checkins[start:]}
    assert after == {Reason.ANTI_PASSBACK}


def test_a_list_replaced_during_an_emergency_open_keeps_the_relay_held(rigs):
    rig = rigs()
    assert rig.send(rig.signed("emergency_open"))["ok"]

    assert rig.send(rig.signed("deny_list", {"pass_ids": ["P-9"]}))["ok"]
    wait(0.3)

    assert rig.relay() == [False, True]  # held from the first command on, never dropped
    assert rig.gate.mode is Mode.EMERGENCY_OPEN


def test_a_replaced_trust_list_verifies_passes_and_a_bad_one_leaves_it_in_place(rigs, capsys):
    issuer = ed25519.Ed25519PrivateKey.generate()
    now = datetime.datetime.now(datetime.UTC)
    gate_pass = passes.issue(
        issuer,
        pass_id="P-1",
        holder="Staff",
        not_before=now - datetime.timedelta(hours=1),
        not_after=now + datetime.timedelta(days=1),
        venue="stadium",
    )
    rig = rigs(scene(gate_pass), policy={"accept_kinds": ["gate_pass"]})
    checkins_after(rig, 0, Reason.SIGNER_UNKNOWN)
    pem = issuer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    result = rig.send(rig.signed("trust_list", {"pem": pem.decode()}))
    assert (result["ok"], result["state"]["pinned"]) == (True, {"signers": 0, "pass_keys": 1})
    checkins_after(rig, len(rig.sink.checkins), Reason.OK)
    remote = rig.config.site.state_dir / REMOTE
    installed = (remote / TRUST_LINK).resolve()
    assert (installed / "list.pem").read_bytes() == pem

    bad_certificate = {"AAAAAAAAAAA=": "bm90IGEgY2VydGlmaWNhdGU="}
    refused = rig.send(rig.signed("trust_list", {"kid_map": bad_certificate}))
    assert (refused["ok"], refused["reason"]) == (False, "invalid_list")
    assert refused["detail"].startswith("trust_list: kid 'AAAAAAAAAAA=': not a PEM or DER")
    assert (remote / TRUST_LINK).resolve() == installed
    assert sorted(p.name for p in remote.iterdir()) == sorted([TRUST_LINK, installed.name])
    after = checkins_after(rig, len(rig.sink.checkins), Reason.OK)
    assert {c.decision.reason for c in after} == {Reason.OK}
    status = rig.send(rig.signed("status"))["state"]
    assert status["remote_trust"] == {"signers": 0, "pass_keys": 1}
    capsys.readouterr()
    assert main(["trust", "list", "--config", str(rig.config_path)]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["role"], row["source"]) == ("pass_key", str(remote / TRUST_LINK / "list.pem"))


# --- `gate run` with commands -------------------------------------------------------------


def test_gate_run_answers_commands_and_exits_75_after_a_reload_that_needs_a_restart(
    tmp_path, broker, mock_factory, ops_key, os_signal_handlers
):
    frames = tmp_path / "frames"
    frames.mkdir()
    save_png(EMPTY, frames / "empty.png")
    raw = {
        "site": {"province": "hn", "venue_id": "stadium", "gate_id": "gate-1"}
        | {"device_id": "dev1", "state_dir": str(tmp_path / "state")},
        "camera": {"source": "replay", "replay": {"paths": ["frames"], "fps": 20, "loop": True}},
        "signals": {"pin_factory": "mock", "relay_pulse_s": 0.3, "exit_pulse_s": 0.3},
        "mqtt": {"host": broker.host, "port": broker.port, "transport": "plain"},
        "commands": {"public_keys": [str(passes.public_path(ops_key))]},
    }
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(raw))
    key = passes.load_private_key(ops_key)
    mqtt = MqttConfig(host=broker.host, port=broker.port, transport="plain")
    answers: dict[str, dict] = {}

    def send(name: str, wait: float) -> dict | None:
        topic = command_topic(ROOT, TARGET, name)
        command = sign(key, name, TARGET, topic)
        delivery = Delivery(TARGET, topic, encode(command), command["nonce"], None)
        answer = exchange(mqtt, [delivery], wait).get(topic)
        return answer.result if answer is not None else None

    def operator() -> None:
        def status() -> dict | None:
            answers["status"] = send("status", 0.5)  # until the gate has subscribed
            return answers["status"]

        if wait_until(status, 40):
            answers["open"] = send("open", 15)
            path.write_text(yaml.safe_dump(raw | {"mqtt": raw["mqtt"] | {"keepalive": 20}}))
            answers["reload"] = send("reload", 15)

    operating = threading.Thread(target=operator, name="operator", daemon=True)
    operating.start()
    safety = threading.Timer(90, os.kill, (os.getpid(), signal.SIGTERM))
    safety.start()
    try:
        assert run(load_config(path), path) == 75
    finally:
        safety.cancel()
    operating.join(30)  # the reload's answer may still be on its way to the operator

    assert answers["status"]["state"]["broker"] == "connected"
    assert answers["open"]["ok"] is True
    assert answers["reload"]["state"] == {"mode": "normal", "restarting": True}


# --- a hostile network: the relay never opens, scanning goes on --------------------------


def hostile(rigs) -> Rig:
    """A gate someone keeps scanning a card at (refused: only passes are accepted here, so
    any opening of the relay would be the attacker's) while commands are thrown at it."""
    return rigs(scene(CCCD), policy={"accept_kinds": ["gate_pass"]})


def scanning_goes_on(rig: Rig) -> None:
    """A scan after the attack is still decided and stored, and the relay never opened."""
    checkins_after(rig, len(rig.sink.checkins), Reason.KIND_NOT_ACCEPTED)
    assert rig.relay() == [False]


def unsigned(rig: Rig, name: str = "open") -> dict:
    return _without(rig.signed(name), "sig", "key_id")


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("gate.commands")]


def test_an_oversized_command_is_turned_away_in_the_network_thread_never_queued(rigs, burst):
    rig = hostile(rigs)
    raw = burst.watcher

    with rig.lock:  # the worker holds the next command: anything queued would wait
        burst.publish([rig.signed("status")])
        for _ in range(10):
            big = b" " * 1_048_576 + encode(rig.signed("open"))
            burst.sender.publish(f"{GATE_ROOT}/cmd/open", big, qos=1).wait_for_publish(10)
        oversized = lambda: [r for r in raw.received() if b'"oversized"' in r.payload]  # noqa: E731
        assert wait_until(lambda: len(oversized()) == 10, 20)
    assert wait_until(lambda: len(burst.results()) == 1, 10)

    results = [json.loads(r.payload) for r in oversized()]
    assert {(r["nonce"], r["detail"]) for r in results} == {
        (None, f"{1_048_576 + len(encode(rig.signed('open')))} bytes, at most 4096")
    }
    assert burst.results()[0]["reason"] == "ok"
    scanning_goes_on(rig)


def test_the_inbox_is_bounded_in_bytes_as_well_as_in_number():
    inbox = Inbox(max_count=3)
    assert inbox.put("open", b"x" * 600, max_bytes=1000)
    assert not inbox.put("open", b"x" * 401, max_bytes=1000)  # 1001 bytes would wait
    assert inbox.put("open", b"x" * 400, max_bytes=1000)
    assert inbox.get(0) == ("open", b"x" * 600)
    assert inbox.put("lock", b"", max_bytes=1000)
    assert inbox.put("lock", b"", max_bytes=1000)
    assert not inbox.put("lock", b"", max_bytes=1000)  # three wait
    assert [inbox.get(0), inbox.get(0), inbox.get(0), inbox.get(0)] == [
        ("open", b"x" * 400),
        ("lock", b""),
        ("lock", b""),
        None,
    ]


@pytest.mark.slow
def test_a_command_captured_on_another_gates_topic_is_refused_there(rigs, broker, ops_key, capsys):
    rig = hostile(rigs)
    assert rig.send(rig.signed("lock"))["reason"] == "ok"
    other = Watcher(broker, "checkin/hn/stadium/gate-2/cmd/+", client_id="eve", persistent=False)
    argv = ["cmd", "send", "--key", str(ops_key), "--broker", f"{broker.host}:{broker.port}"]
    to_gate_2 = ["--target", "hn/stadium/*", "--to", "hn/stadium/gate-2", "--wait", "0.5"]
    try:
        assert main([*argv, "--plain", *to_gate_2, "open"]) == 2  # gate-2 is not up
        assert wait_until(lambda: other.received(), 5)
        [captured] = other.received()
    finally:
        other.close()
    command = json.loads(captured.payload)
    assert command["target"] == "hn/stadium/gate-2"

    result = rig.send(captured.payload, "open")  # republished on gate-1's topic at once

    assert (result["reason"], result["nonce"]) == ("wrong_target", command["nonce"])
    assert result["detail"] == "for hn/stadium/gate-2"
    assert rig.gate.mode is Mode.LOCKED
    wait(0.4)
    scanning_goes_on(rig)


def test_a_lost_nonce_file_does_not_let_an_executed_open_run_again(rigs):
    rig = rigs()
    command = rig.signed("open")
    assert rig.send(command)["reason"] == "ok"
    wait(0.6)

    rig.service.stop()
    (rig.config.site.state_dir / NONCE_FILE).unlink()  # the SD card was replaced
    rig.service = rig.start_service()
    result = rig.send(command)
    wait(0.6)

    assert (result["reason"], result["nonce"]) == ("replayed", command["nonce"])
    assert result["detail"] == "issued before the command service started"
    assert rig.relay() == [False, True, False]  # one pulse, for the first
    assert rig.send(rig.signed("open"))["reason"] == "ok"  # a new command still runs


class Forger:
    """Someone with broker credentials who answers every command `ok`, signed with a key
    of their own, before any gate can."""

    def __init__(self, broker: Broker, detail: str | None = None) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.detail = detail
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe("checkin/+/+/+/cmd/+", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._answer
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _answer(self, client: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        command = json.loads(message.payload)
        forged = result_payload(
            command["cmd"],
            command["nonce"],
            Outcome.OK,
            gate=command["target"],
            at_ms=now_ms(),
            state={"mode": command["cmd"]},
            detail=self.detail,
            device_key=self.key,
        )
        client.publish(f"{message.topic}/result", forged, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
def test_a_forged_result_is_never_taken_for_the_gates_answer(
    rigs, broker, ops_key, tmp_path, capsys
):
    rig = hostile(rigs)
    registry = tmp_path / "devices.jsonl"
    register(rig, capsys, registry)
    stranger = tmp_path / "stranger.key"
    assert main(["cmd", "keygen", "--out", str(stranger)]) == 0
    base = ["cmd", "send", "--broker", f"{broker.host}:{broker.port}", "--plain", "--wait", "3"]
    with_keys = [*base, "--device-keys", str(registry)]
    forger = Forger(broker)
    capsys.readouterr()
    try:
        # a gate that does not exist "answers" ok
        ghost = ["--key", str(ops_key), "--target", "hn/stadium/gate-9", "lock"]
        assert main([*with_keys, *ghost]) == 3
        line = json.loads(capsys.readouterr().out)
        assert (line["ok"], line["verified"]) == (True, False)
        assert line["verification"] == "no device key registered for hn/stadium/gate-9"

        # the forger answers first, but the gate's own refusal is the one believed
        forged_ok = ["--key", str(stranger), "--target", TARGET, "lock"]
        assert main([*with_keys, *forged_ok]) == 1
        line = json.loads(capsys.readouterr().out)
        assert (line["ok"], line["reason"], line["verified"]) == (False, "bad_signature", True)

        # a registered gate that is offline: the forger's ok is all there is, not believed
        offline = {"gate": "hn/stadium/gate-8", "public_key": device.public_text(rig.device_key)}
        with registry.open("a") as file:
            file.write(json.dumps(offline) + "\n")
        silent = ["--key", str(ops_key), "--target", "hn/stadium/gate-8", "lock"]
        assert main([*with_keys, *silent]) == 3
        line = json.loads(capsys.readouterr().out)
        assert (line["ok"], line["verified"]) == (True, False)
        assert line["verification"] == "`key_id` is not the key's"
    finally:
        forger.close()
    assert rig.gate.mode is Mode.NORMAL
    scanning_goes_on(rig)


def test_a_forged_result_reaches_the_operators_terminal_escaped(broker, ops_key, capsys):
    """Anyone on the broker can answer; what they write must not drive the terminal."""
    forger = Forger(broker, detail="\x1b[2J\u009b31m\u202egate ok")
    base = ["cmd", "send", "--broker", f"{broker.host}:{broker.port}", "--plain", "--wait", "2"]
    try:
        ghost = ["--key", str(ops_key), "--target", "hn/stadium/gate-9", "lock"]
        assert main([*base, *ghost]) == 3
    finally:
        forger.close()
    out = capsys.readouterr().out
    assert out.isascii() and "\x1b" not in out
    assert json.loads(out)["detail"] == "\x1b[2J\u009b31m\u202egate ok"  # the text, escaped


@pytest.mark.slow
def test_a_flood_of_unsigned_commands_is_answered_and_logged_within_a_budget(rigs, burst, caplog):
    caplog.set_level(logging.INFO, logger="gate.commands")
    rig = hostile(rigs)
    flood = [unsigned(rig) for _ in range(3000)]
    burst.nonces |= {command["nonce"] for command in flood}

    sent = [burst.sender.publish(f"{GATE_ROOT}/cmd/open", encode(c), qos=1) for c in flood]
    sent[-1].wait_for_publish(60)
    assert wait_until(lambda: rig.send(rig.signed("status"), wait=1), 60)  # heard again

    def suppressed() -> int:
        summaries = [m for m in refusal_lines(caplog) if "neither answered nor logged" in m]
        return sum(int(m.split()[0]) for m in summaries)

    def answered() -> list[dict]:
        """One result per command: QoS 1 may deliver a result twice (at least once)."""
        by_nonce = {r["nonce"]: r for r in burst.results() if r["nonce"] in burst.nonces}
        return list(by_nonce.values())

    # every command answered or counted; QoS 1 may hand the gate one twice (at least once)
    assert wait_until(lambda: len(answered()) + suppressed() >= 3000, 30), (
        len(answered()),
        suppressed(),
    )
    refused_lines = [m for m in refusal_lines(caplog) if " refused: " in m]
    assert len(refused_lines) == len(answered()) < 100
    assert {r["reason"] for r in answered()} <= {"unsigned", "busy"}
    assert "messages wait for the broker" not in caplog.text  # the outgoing queue kept room
    scanning_goes_on(rig)


def test_command_names_and_list_errors_from_outside_are_logged_escaped(rigs, burst, caplog):
    rig = hostile(rigs)
    # what mosquitto lets through: a bidi override and a line separator
    name = "open\u2028gate: command open done\u202e"
    burst.sender.publish(f"{GATE_ROOT}/cmd/{name}", encode(unsigned(rig)), qos=1)
    # what it refuses, and another broker might not: a newline and terminal escapes
    rig.service.received("open\n2026-12-01 gate: command open done\x1b[2J", b"{}")
    evil = {"subject_hashes": [], "x\nforged line\x1b[31m": 1}
    result = rig.send(rig.signed("deny_list", evil))

    assert result["reason"] == "invalid_list"
    assert result["detail"].startswith("x\\x0aforged line\\x1b[31m: ")
    assert wait_until(lambda: len(refusal_lines(caplog)) >= 3, 10)
    lines = refusal_lines(caplog)
    assert any("command open\\u2028gate: command open done\\u202e (nonce" in m for m in lines)
    assert any("command open\\x0a2026-12-01 gate: command open done\\x1b[2J" in m for m in lines)
    assert all(m.isprintable() for m in lines), lines
    scanning_goes_on(rig)


def test_the_device_key_is_made_once_private_and_a_readable_one_is_warned_about(tmp_path, caplog):
    before = os.umask(0o022)  # as outside systemd
    try:
        key = device.load_or_create(tmp_path)
    finally:
        os.umask(before)
    path = tmp_path / device.FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = device.load_or_create(tmp_path)
    assert device.public_text(again.public_key()) == device.public_text(key.public_key())
    assert "readable by other users" not in caplog.text
    path.chmod(0o644)
    device.load_or_create(tmp_path)
    assert f"{path} is readable by other users (mode 0644)" in caplog.text
    path.write_text("not a key")
    with pytest.raises(CommandError, match="not a PEM private key"):
        device.load_or_create(tmp_path)


def test_the_registry_names_the_line_that_is_wrong(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    registry = tmp_path / "devices.jsonl"
    line = json.dumps(device.registration(TARGET, key))
    registry.write_text(f'{line}\n\n{{"gate": "hn/stadium/gate-2"}}\n')
    with pytest.raises(CommandError, match=r"devices.jsonl:3: expected"):
        device.read_registry(registry)
    registry.write_text(f"{line}\n")
    assert list(device.read_registry(registry)) == [TARGET]


@pytest.mark.parametrize("public_key", [123, None, ["AAAA"]])
def test_a_registry_key_that_is_not_text_is_refused_with_its_line(tmp_path, public_key):
    registry = tmp_path / "devices.jsonl"
    registry.write_text(json.dumps({"gate": TARGET, "public_key": public_key}) + "\n")
    with pytest.raises(CommandError, match=r"devices.jsonl:1: expected .*base64 public key"):
        device.read_registry(registry)


def test_a_registry_key_with_a_character_outside_base64_is_refused_not_skipped(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    entry = device.registration(TARGET, key)
    text = entry["public_key"]
    registry = tmp_path / "devices.jsonl"
    registry.write_text(json.dumps(entry | {"public_key": f"{text[:8]}!!{text[8:]}"}) + "\n")
    with pytest.raises(CommandError, match=r"devices.jsonl:1: expected"):
        device.read_registry(registry)  # a lenient decoder dropped the "!" and read the key


def test_the_refusal_budget_lets_a_burst_through_then_one_a_second_and_sums_up_the_rest():
    clock = Monotonic()
    budget = RefusalBudget(burst=3, per_second=1.0, summary_every_s=10.0, clock=clock)

    assert [budget.allow("unsigned") for _ in range(5)] == [True, True, True, False, False]
    clock.now += 1.0
    assert [budget.allow("bad_signature") for _ in range(3)] == [True, False, False]
    clock.now += 8.0
    assert budget.summary() is None  # nine seconds since the first one suppressed
    clock.now += 1.0
    assert budget.summary() == (
        "4 refused commands in the last 10 s neither answered nor logged (too many): "
        "unsigned 2, bad_signature 2"
    )
    assert budget.summary() is None
    assert [budget.allow("unsigned") for _ in range(4)] == [True, True, True, False]


def test_device_key_must_be_made_by_the_owner_of_the_state_directory(tmp_path):
    device.check_owner(tmp_path, os.geteuid())
    device.check_owner(tmp_path / "not yet", os.geteuid() + 1)  # made by whoever runs first
    with pytest.raises(CommandError, match=f"{tmp_path} belongs to user {os.geteuid()}"):
        device.check_owner(tmp_path, os.geteuid() + 1)
