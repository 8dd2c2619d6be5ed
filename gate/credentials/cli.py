"""`gate parse`: what the gate makes of payloads, without a camera."""

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate.config.model import GateConfig, load_config
from gate.policy import Judge


def add_parse_command(commands: Any) -> None:
    parse = commands.add_parser(
        "parse",
        help="parse QR payloads into credentials and decide on them",
        description=(
            "Parse payloads given as arguments, or one per line on stdin, and print one JSON "
            "object per payload: kind, valid, verified, reason, the decision under the policy "
            "(the config's, or the default one), and the parsed fields."
        ),
    )
    parse.add_argument("payloads", nargs="*", metavar="PAYLOAD")
    parse.add_argument("--config", type=Path, help="take the policy from this config file")
    parse.add_argument("--at", type=_instant, help="evaluate at this time (ISO 8601; default now)")
    parse.set_defaults(handler=run_parse)


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_parse(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else GateConfig()
    judge = Judge.from_config(config)
    at = args.at or datetime.now(UTC)
    for payload in _payloads(args.payloads):
        credential, decision = judge.judge(payload, at)
        print(
            json.dumps(
                {
                    "kind": credential.kind,
                    "valid": credential.valid,
                    "verified": credential.verified,
                    "reason": credential.reason,
                    "decision": "accepted" if decision.accepted else "refused",
                    "decision_reason": decision.reason,
                    "subject_id": credential.subject_id,
                    "name": credential.name,
                    "birth_date": credential.birth_date,
                    "details": dict(credential.details),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    return 0


def _payloads(arguments: Sequence[str]) -> Iterator[bytes]:
    """Arguments as UTF-8; stdin as raw bytes, one payload per line."""
    if arguments:
        for text in arguments:
            yield text.encode("utf-8", "surrogateescape")
        return
    for line in sys.stdin.buffer:
        yield line.rstrip(b"\r\n")
