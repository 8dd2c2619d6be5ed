"""`gate parse`: what the gate makes of payloads, without a camera.

Also the options `gate trust` and `gate pass` share with it: the evaluation time and where
the trust store comes from, so every tool builds its judge the way the daemon does.
"""

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate.app_config import GateConfig, load_config
from gate.credentials import UNJUDGED, internal_error_summary
from gate.credentials.fields import iso_instant
from gate.credentials.model import Credential
from gate.decision import INTERNAL_ERROR, Decision
from gate.judge import load_judge


def add_parse_command(commands: Any) -> None:
    parse = commands.add_parser(
        "parse",
        help="parse QR payloads into credentials and decide on them",
        description=(
            "Parse payloads given as arguments, or one per line on stdin, and print one JSON "
            "object per payload: kind, valid, verified, reason, every problem found, the "
            "decision under the policy (the config's, or the default one), and the parsed "
            "fields. Signed kinds verify against the trust store (--trust, else the config's). "
            "A payload the gate fails on gets an internal_error line and the batch goes on; "
            "the exit status is then 1."
        ),
    )
    parse.add_argument("payloads", nargs="*", metavar="PAYLOAD")
    add_judge_options(parse)
    parse.set_defaults(handler=run_parse)


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    """--config, --trust and --at: `gate parse`, `gate trust list` and `gate pass show`."""
    parser.add_argument("--config", type=Path, help="take the policy and trust from this config")
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        metavar="PATH",
        help="trust store file or directory (repeatable); replaces the config's trust.paths",
    )
    parser.add_argument(
        "--at",
        type=instant,
        help="evaluate at this time (ISO 8601; without an offset: UTC; default now)",
    )


def instant(text: str) -> datetime:
    """An ISO 8601 time argument; one without an offset is UTC."""
    moment = iso_instant(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}")
    return moment


def judge_config(args: argparse.Namespace) -> GateConfig:
    """The config the options describe: the file's (or the defaults), --trust replacing its
    trust paths."""
    config = load_config(args.config) if args.config else GateConfig()
    if args.trust:
        trust = config.trust.model_copy(update={"paths": [p.resolve() for p in args.trust]})
        config = config.model_copy(update={"trust": trust})
    return config


def report(credential: Credential, decision: Decision | None = None) -> dict[str, Any]:
    """A credential (and the decision on it) as one JSON-ready object."""
    out: dict[str, Any] = {
        "kind": credential.kind,
        "valid": credential.valid,
        "verified": credential.verified,
        "reason": credential.reason,
        "problems": list(credential.problems),
    }
    if credential.field is not None or credential.flaw is not None:
        out |= {"field": credential.field, "flaw": credential.flaw}
    if decision is not None:
        out["decision"] = "accepted" if decision.accepted else "refused"
        out["decision_reason"] = decision.reason
    return out | {
        "subject_id": credential.subject_id,
        "name": credential.name,
        "birth_date": credential.birth_date,
        "details": dict(credential.details),
    }


def run_parse(args: argparse.Namespace) -> int:
    """One line per payload; a payload the judge fails on does not stop the batch."""
    judge = load_judge(judge_config(args))
    at = args.at or datetime.now(UTC)
    failed = 0
    for payload in _payloads(args.payloads):
        try:
            credential, decision = judge.judge(payload, at)
            line = report(credential, decision)
        except Exception as error:  # noqa: BLE001 -- reported on its line, the batch goes on
            failed += 1
            line = report(UNJUDGED, INTERNAL_ERROR)
            line["error"] = internal_error_summary(error)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    if failed:
        print(f"gate parse: {failed} payload(s) failed with internal_error", file=sys.stderr)
    return 1 if failed else 0


def argument_bytes(text: str) -> bytes:
    """A command-line argument as the bytes given (bytes that are not UTF-8 kept as they were)."""
    return text.encode("utf-8", "surrogateescape")


def _payloads(arguments: Sequence[str]) -> Iterator[bytes]:
    """Arguments as given; stdin as raw bytes, one payload per line."""
    if arguments:
        for text in arguments:
            yield argument_bytes(text)
        return
    for line in sys.stdin.buffer:
        yield line.rstrip(b"\r\n")
