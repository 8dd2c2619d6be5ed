"""`gate cmd`: the operations team's side of remote commands.

    gate cmd keygen --out ops.key         # ops.key (0600), ops.key.pub for the gates' config
    gate cmd device-key --config /etc/gate/gate.yaml   # on a gate: its registry line
    gate cmd send --key ops.key --device-keys devices.jsonl --broker broker.example \\
        --ca ca.pem --cert me.pem --key-file me.key --target hn/stadium/gate-1 lock

`send` signs the command once per gate (`gate.commands.envelope`: the signed `target` and
`topic` name that gate and its topic), publishes each on its gate's `cmd/<name>` topic,
waits for the results carrying each nonce, checks each against the gate's registered device
key (`gate.commands.device`) and prints one JSON object per gate with `verified`. Exit
status: 0 when every gate answered ok, verified; 1 when one refused; 2 when one did not
answer within --wait (or the broker could not be reached); 3 when an answer cannot be
verified (no registry, no key for that gate, or not signed by it): a forged `ok` looks
like that.
"""

import argparse
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.app_config import load_config
from gate.cli.options import config_option
from gate.commands import device
from gate.commands.envelope import (
    TAKES_ARGS,
    CommandError,
    Name,
    encode,
    result_problem,
    sign,
)
from gate.config.base import ValidationError
from gate.config.site import SiteConfig
from gate.identity import topic_root
from gate.outbox.config import MqttConfig, Transport
from gate.outbox.publisher import connect, new_client
from gate.trust import passes

EXIT_REFUSED = 1
EXIT_NO_ANSWER = 2
EXIT_UNVERIFIED = 3
_SEVERITY = (0, EXIT_REFUSED, EXIT_NO_ANSWER, EXIT_UNVERIFIED)  # the worst is the exit status
_DEFAULT_ROOT = MqttConfig.model_fields["topic_root"].default
MAX_RESULT_BYTES = 64 * 1024
"""A gate's result is a few hundred bytes (`status` a few KiB): anything larger on a result
topic is not a gate's and is not parsed."""


def add_remote_commands(commands: Any) -> None:
    """Register `gate cmd keygen`, `gate cmd device-key` and `gate cmd send`."""
    cmd = commands.add_parser("cmd", help="sign and send remote commands (operations team)")
    cmd_commands = cmd.add_subparsers(title="cmd commands", metavar="COMMAND")
    keygen = cmd_commands.add_parser(
        "keygen",
        help="create the operations signing key (private 0600, public beside it)",
        description="Write a new Ed25519 private key to FILE (mode 0600, never overwritten) "
        "and its public half to FILE.pub; list the .pub file in each gate's "
        "commands.public_keys. Prints the key id that commands carry.",
    )
    keygen.add_argument("--out", type=Path, required=True, metavar="FILE")
    keygen.set_defaults(handler=_keygen)

    device_key = cmd_commands.add_parser(
        "device-key",
        help="print this gate's device key for the province's registry (made if missing)",
        description="Print the JSON line to add to the registry `gate cmd send "
        "--device-keys` reads: this gate's name and the public half of the key it signs "
        "command results with (<state_dir>/commands/device.key, 0600, made now if the gate "
        "has none yet; run as the gate's user).",
    )
    config_option(device_key)
    device_key.set_defaults(handler=_device_key)

    send = cmd_commands.add_parser(
        "send",
        help="sign a command, send it to gates and print their results",
        description="Exit 0 when every gate answered ok (verified), 1 when one refused, 2 "
        "when one did not answer (or the broker could not be reached), 3 when an answer "
        "cannot be verified with the gate's registered device key.",
    )
    send.add_argument("name", choices=list(Name), metavar="NAME", help=", ".join(Name))
    send.add_argument("--key", type=Path, required=True, help="operations private key (keygen)")
    send.add_argument("--broker", required=True, metavar="HOST[:PORT]")
    send.add_argument("--plain", action="store_true", help="plain TCP instead of TLS")
    send.add_argument("--ca", type=Path, help="CA file the broker's certificate is checked with")
    send.add_argument("--cert", type=Path, help="client certificate (PEM)")
    send.add_argument("--key-file", type=Path, help="private key of --cert (PEM)")
    send.add_argument("--username", help="MQTT user name")
    send.add_argument("--password-file", type=Path, help="file whose first line is the password")
    send.add_argument(
        "--topic-root",
        default=_DEFAULT_ROOT,
        help=f"the gates' mqtt.topic_root (default {_DEFAULT_ROOT})",
    )
    send.add_argument(
        "--target",
        required=True,
        metavar="PROVINCE/VENUE/GATE",
        help="the gates it is for; a part may be * (quote it), and then --to names them",
    )
    send.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="PROVINCE/VENUE/GATE",
        help="a gate of --target to sign and send it to (repeatable); default: the target, "
        "which then must name one gate",
    )
    send.add_argument(
        "--device-keys",
        type=Path,
        metavar="REGISTRY",
        help="the gates' registered device keys (lines of `gate cmd device-key`); without "
        "it no answer can be verified (exit 3)",
    )
    send.add_argument(
        "--file",
        type=Path,
        help="deny_list: JSON {subject_hashes, pass_ids, certificate_ids}; "
        "trust_list: a kid -> certificate JSON map (.json) or PEM certificates and keys",
    )
    send.add_argument("--wait", type=float, default=10.0, metavar="SECONDS")
    send.set_defaults(handler=_send)


def _keygen(args: argparse.Namespace) -> int:
    kid, public = passes.keygen(args.out)
    print(
        json.dumps({"private_key": str(args.out), "public_key": str(public), "key_id": kid.hex()})
    )
    return 0


def _device_key(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    site = config.site
    device.check_owner(site.state_dir, os.geteuid())
    key = device.load_or_create(site.state_dir)
    print(json.dumps(device.registration(site.name, key)))
    return 0


def _send(args: argparse.Namespace) -> int:
    key = passes.load_private_key(args.key)
    config = _mqtt_config(args)
    registry = device.read_registry(args.device_keys) if args.device_keys else None
    command_args = _command_args(args.name, args.file)
    deliveries = []
    for gate in args.to or [args.target]:
        if not _within(gate, args.target):
            raise CommandError(f"{gate} is not one of --target {args.target}")
        topic = command_topic(args.topic_root, gate, args.name)
        document = sign(key, args.name, gate, topic, command_args)
        deliveries.append(
            Delivery(
                gate=gate,
                topic=topic,
                payload=encode(document),
                nonce=document["nonce"],
                key=registry.get(gate) if registry is not None else None,
            )
        )
    try:
        answers = exchange(config, deliveries, args.wait)
    except CommandError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    status = 0
    for delivery in deliveries:
        answer = answers.get(delivery.topic)
        if answer is None:
            line: dict[str, Any] = {"ok": None, "error": f"no answer within {args.wait:g} s"}
            outcome = EXIT_NO_ANSWER
        else:
            problem = answer.problem
            if registry is None:
                problem = "no --device-keys registry given"
            line = {**answer.result, "verified": problem is None}
            if problem is not None:
                line["verification"] = problem
            outcome = EXIT_UNVERIFIED if problem else 0 if answer.result.get("ok") else 1
        status = max(status, outcome, key=_SEVERITY.index)
        # ASCII: a result may come from anyone on the broker, and its text reaches a terminal
        print(json.dumps({**line, "gate": delivery.gate}), flush=True)
    return status


def _within(gate: str, target: str) -> bool:
    """Whether the gate `p/v/g` is one of `target`, whose parts may be `*`."""
    parts, pattern = gate.split("/"), target.split("/")
    if len(parts) != len(pattern):
        return False
    return all(p in ("*", g) for g, p in zip(parts, pattern, strict=True))


def _mqtt_config(args: argparse.Namespace) -> MqttConfig:
    host, _, port = args.broker.rpartition(":")
    if not port.isdigit():
        host, port = args.broker, ""
    try:
        return MqttConfig(
            host=host.strip("[]"),
            port=int(port) if port else None,
            transport=Transport.PLAIN if args.plain else Transport.TLS,
            ca_file=args.ca,
            cert_file=args.cert,
            key_file=args.key_file,
            username=args.username,
            password_file=args.password_file,
            topic_root=args.topic_root,
        )
    except ValidationError as exc:
        raise CommandError(f"broker options: {exc.problems[0]}") from exc


def command_topic(template: str, gate: str, name: str) -> str:
    """`<topic root>/cmd/<name>` of one gate, `province/venue_id/gate_id` (no wildcard)."""
    if "{device_id}" in template:
        raise CommandError("a topic root with {device_id} cannot be addressed by gate")
    try:
        province, venue_id, gate_id = gate.split("/")
        site = SiteConfig(province=province, venue_id=venue_id, gate_id=gate_id)
    except (ValueError, ValidationError) as exc:
        raise CommandError(
            f"{gate!r}: name one gate as province/venue/gate (with a * target, list the "
            "gates with --to)"
        ) from exc
    return f"{topic_root(template, site, '')}/cmd/{name}"


def _command_args(name: str, file: Path | None) -> dict[str, Any]:
    """The args of a command: from --file for the two that replace a list, else none."""
    if (file is None) != (name not in TAKES_ARGS):
        raise CommandError(f"{name} {'needs' if file is None else 'takes no'} --file")
    if file is None:
        return {}
    try:
        text = file.read_text(encoding="utf-8")
        if name == Name.TRUST_LIST and file.suffix.lower() != ".json":
            return {"pem": text}
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{file}: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{file}: expected a JSON object")
    return data if name == Name.DENY_LIST else {"kid_map": data}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One gate's signed command, and what its answer is checked with."""

    gate: str  # province/venue_id/gate_id
    topic: str  # <topic root>/cmd/<name>
    payload: bytes
    nonce: str | None  # the answer carries it (None: any answer on the topic)
    key: ed25519.Ed25519PublicKey | None  # registered device key; None: cannot verify


@dataclass(frozen=True, slots=True)
class Answer:
    result: dict[str, Any]
    problem: str | None  # why it cannot be believed; None: signed by the gate's key


def exchange(
    config: MqttConfig, deliveries: Sequence[Delivery], wait_s: float
) -> dict[str, Answer]:
    """Publish each payload on its topic; the answer each gate gave on `<topic>/result`
    with its nonce, by topic, within `wait_s`. An answer the gate's key verifies replaces
    an earlier one it does not (someone else may answer first); without a key for the
    gate, the first answer is taken.

    CommandError when the broker cannot be reached or does not take the subscription.
    """
    answers: dict[str, Answer] = {}
    lock = threading.Lock()
    ready, answered = threading.Event(), threading.Event()
    refusal: list[str] = []  # why the broker did not let us listen for results
    by_result_topic = {f"{d.topic}/result": d for d in deliveries}

    def on_connect(client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason == 0:
            client.subscribe([(topic, 1) for topic in by_result_topic])
        else:
            refusal.append(f"CONNACK {reason}")
            ready.set()

    def on_subscribe(_c: mqtt.Client, _u: object, _m: int, reasons: list, _p: object) -> None:
        refusal.extend(f"SUBACK {r}" for r in reasons if r.is_failure)
        ready.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        delivery = by_result_topic.get(message.topic)
        if delivery is None or len(message.payload) > MAX_RESULT_BYTES:
            return
        try:
            result = json.loads(message.payload)
        except (ValueError, RecursionError):  # anyone may publish on a result topic
            return
        if not isinstance(result, dict):
            return
        if delivery.nonce is not None and result.get("nonce") != delivery.nonce:
            return
        answer = Answer(result, _problem(delivery, result))
        with lock:
            before = answers.get(delivery.topic)
            if before is None or (before.problem is not None and answer.problem is None):
                answers[delivery.topic] = answer
            if all(_settled(d, answers.get(d.topic)) for d in deliveries):
                answered.set()

    deadline = time.monotonic() + wait_s
    try:
        client = new_client(config, f"gate-cmd-{secrets.token_hex(6)}")
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        connect(client, config)
    except (OSError, ValueError) as exc:
        raise CommandError(
            f"cannot connect to {config.host}:{config.effective_port}: {exc}"
        ) from exc
    client.loop_start()
    try:
        if not ready.wait(max(0.0, deadline - time.monotonic())) or refusal:
            why = ", ".join(refusal) or "no answer"
            raise CommandError(f"broker {config.host} refused to relay results ({why})")
        for delivery in deliveries:
            client.publish(delivery.topic, delivery.payload, qos=1)
        answered.wait(max(0.0, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(answers)


def _problem(delivery: Delivery, result: Mapping[str, Any]) -> str | None:
    name = delivery.topic.rpartition("/")[2]
    if delivery.nonce is None:
        return "no nonce to match the answer with"
    return result_problem(result, delivery.key, gate=delivery.gate, name=name, nonce=delivery.nonce)


def _settled(delivery: Delivery, answer: Answer | None) -> bool:
    """Nothing better can come: a verified answer, or any when it cannot be verified."""
    return answer is not None and (answer.problem is None or delivery.key is None)
