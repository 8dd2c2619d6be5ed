"""`gate cmd`: the operations team's side of remote commands.

    gate cmd keygen --out ops.key         # ops.key (0600), ops.key.pub for the gates' config
    gate cmd send --key ops.key --broker broker.example --ca ca.pem --cert me.pem \\
        --key-file me.key --target hn/stadium/gate-1 lock

`send` signs the command (`gate.commands.envelope`), publishes it on each gate's
`cmd/<name>` topic, waits for the results carrying its nonce and prints one JSON object per
gate. Exit status: 0 when every gate answered ok, 1 when one refused, 2 when one did not
answer within --wait (or the broker could not be reached).
"""

import argparse
import json
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from gate.commands.envelope import TAKES_ARGS, CommandError, Name, encode, sign
from gate.config.site import SiteConfig
from gate.identity import topic_root
from gate.outbox.config import MqttConfig, Transport
from gate.outbox.publisher import connect, new_client
from gate.trust import passes

EXIT_REFUSED = 1
EXIT_NO_ANSWER = 2
_DEFAULT_ROOT = MqttConfig.model_fields["topic_root"].default


def add_remote_commands(commands: Any) -> None:
    """Register `gate cmd keygen` and `gate cmd send`."""
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

    send = cmd_commands.add_parser(
        "send",
        help="sign a command, send it to gates and print their results",
        description="Exit 0 when every gate answered ok, 1 when one refused, 2 when one did "
        "not answer (or the broker could not be reached).",
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
        help="who the signed command is for; a part may be * (quote it)",
    )
    send.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="PROVINCE/VENUE/GATE",
        help="gate to send it to (repeatable); default: the target, which then must name one",
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


def _send(args: argparse.Namespace) -> int:
    key = passes.load_private_key(args.key)
    config = _mqtt_config(args)
    topics = {
        gate: command_topic(args.topic_root, gate, args.name) for gate in args.to or [args.target]
    }
    document = sign(key, args.name, args.target, _command_args(args.name, args.file))
    try:
        results = exchange(
            config, list(topics.values()), encode(document), document["nonce"], args.wait
        )
    except CommandError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    status = 0
    for gate, topic in topics.items():
        result = results.get(topic)
        if result is None:
            result = {"ok": None, "error": f"no answer within {args.wait:g} s"}
            status = EXIT_NO_ANSWER
        elif not result.get("ok") and status == 0:
            status = EXIT_REFUSED
        print(json.dumps({"gate": gate, **result}, ensure_ascii=False), flush=True)
    return status


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
        raise CommandError(f"broker options: {exc.errors()[0]['msg']}") from exc


def command_topic(template: str, gate: str, name: str) -> str:
    """`<topic root>/cmd/<name>` of one gate, `province/venue_id/gate_id`."""
    if "{device_id}" in template:
        raise CommandError("a topic root with {device_id} cannot be addressed by gate")
    try:
        province, venue_id, gate_id = gate.split("/")
        site = SiteConfig(province=province, venue_id=venue_id, gate_id=gate_id)
    except (ValueError, ValidationError) as exc:
        raise CommandError(
            f"{gate!r}: name one gate as province/venue/gate (use --to with a * target)"
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


def exchange(
    config: MqttConfig, topics: Sequence[str], payload: bytes, nonce: str | None, wait_s: float
) -> dict[str, dict[str, Any]]:
    """Publish `payload` on each command topic; the result each gate answered on
    `<topic>/result` with this nonce (any, when None), by topic, within `wait_s`.

    CommandError when the broker cannot be reached or does not take the subscription.
    """
    results: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    ready, answered = threading.Event(), threading.Event()
    refusal: list[str] = []  # why the broker did not let us listen for results
    by_result_topic = {f"{topic}/result": topic for topic in topics}

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
        topic = by_result_topic.get(message.topic)
        try:
            result = json.loads(message.payload)
        except ValueError:
            return
        if topic is None or not isinstance(result, dict):
            return
        if nonce is not None and result.get("nonce") != nonce:
            return
        with lock:
            results.setdefault(topic, result)
            if len(results) == len(by_result_topic):
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
        for topic in topics:
            client.publish(topic, payload, qos=1)
        answered.wait(max(0.0, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(results)
