"""`gate trust` (what the gate trusts, the EU test cases) and `gate pass` (the site's passes)."""

import argparse
import base64
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gate.cli.parse import add_judge_options, argument_bytes, instant, judge_config, report
from gate.credentials.model import Kind
from gate.decode import DecoderConfig, load_grey, make_decoder
from gate.errors import DccTestDataError, ImageReadError, PassError
from gate.judge import load_judge
from gate.remote_lists import trust_paths
from gate.trust import dgc_testdata, passes
from gate.trust.keys import PublicKey
from gate.trust.store import DocumentSigner, Role, TrustStore, load_trust


def add_trust_commands(commands: Any) -> None:
    """Register `gate trust ...` and `gate pass ...`."""
    trust = commands.add_parser("trust", help="show the pinned trust store; run EU test cases")
    trust_commands = trust.add_subparsers(title="trust commands", metavar="COMMAND")
    listing = trust_commands.add_parser(
        "list",
        help="list pinned signers and keys, and until when they are valid",
        description=(
            "Print one JSON object per pinned certificate or key: role, kid, subject, "
            "algorithm, validity and whether it is valid at --at (default now)."
        ),
    )
    add_judge_options(listing)
    listing.set_defaults(handler=_trust_list)
    testdata = trust_commands.add_parser(
        "testdata",
        help="hold EU dgc-testdata cases against the gate's HC1 checks",
        description=(
            "Load test cases in the EU dgc-testdata JSON format (files, or directories "
            "searched for *.json) and print, per case, each expected result beside the "
            "gate's and the gate's own verdict, then a summary line on stderr (cases, how many "
            "agree with the expected verdict, differences by check). A case file that cannot "
            "be read is that case's failure; the run goes on. Exit 1 when any case differs "
            "or cannot be read."
        ),
    )
    testdata.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    testdata.add_argument(
        "--pictures", action="store_true", help="also decode each case's 2DCODE PNG"
    )
    testdata.set_defaults(handler=_trust_testdata)

    gate_pass = commands.add_parser("pass", help="issue and show the site's own gate passes")
    pass_commands = gate_pass.add_subparsers(title="pass commands", metavar="COMMAND")
    keygen = pass_commands.add_parser(
        "keygen",
        help="create a pass signing key (private key 0600, public key beside it)",
        description=(
            "Write a new Ed25519 private key to KEYFILE (mode 0600, never overwritten) and its "
            "public half to KEYFILE.pub. Keep the private key with the operator; copy the .pub "
            "file into each gate's trust store."
        ),
    )
    keygen.add_argument("keyfile", type=Path, metavar="KEYFILE")
    keygen.set_defaults(handler=_pass_keygen)
    issue = pass_commands.add_parser(
        "issue",
        help="sign a pass and print its QR text (optionally render it)",
        description="Print the pass's QR text; --png/--svg also render it as a QR code.",
    )
    issue.add_argument("--key", type=Path, required=True, help="private key from keygen")
    issue.add_argument("--id", required=True, dest="pass_id", help="pass id (revocable)")
    issue.add_argument("--holder", required=True, help="holder label printed by the gate")
    issue.add_argument("--venue", required=True, help="venue id (the site's venue_id)")
    issue.add_argument(
        "--gate",
        action="append",
        default=[],
        dest="gates",
        help="allowed gate (repeatable; none: all)",
    )
    issue.add_argument("--from", type=instant, dest="not_before", help="valid from (default now)")
    issue.add_argument("--until", type=instant, required=True, dest="not_after", help="valid until")
    issue.add_argument("--png", type=Path, help="write the QR code as PNG")
    issue.add_argument("--svg", type=Path, help="write the QR code as SVG")
    issue.set_defaults(handler=_pass_issue)
    show = pass_commands.add_parser(
        "show",
        help="decode a pass (text or QR image) and check it against the trust store",
        description=(
            "Print the pass's fields and what this gate's policy decides on it (trust from "
            "--trust or the config; time from --at)."
        ),
    )
    show.add_argument("payload", nargs="?", metavar="PAYLOAD")
    show.add_argument("--png", type=Path, help="read the pass from a QR code image")
    add_judge_options(show)
    show.set_defaults(handler=_pass_show)


def _trust_list(args: argparse.Namespace) -> int:
    at = args.at or datetime.now(UTC)
    paths = trust_paths(judge_config(args))
    store = load_trust(paths)
    rows = list(trust_rows(store, at))
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    invalid = sum(not row["valid"] for row in rows)
    where = ", ".join(map(str, paths)) or "no trust.paths configured"
    print(f"{len(rows)} pinned ({invalid} not valid now) from {where}", file=sys.stderr)
    return 0


def trust_rows(store: TrustStore, at: datetime) -> Iterator[dict[str, Any]]:
    """What `gate trust list` prints: one row per pinned certificate or key."""
    for role, signer in store.pinned():
        yield _signer_row(role, signer, at)
    for key in store.pass_keys.values():
        yield {
            "role": "pass_key",
            "kid": key.kid.hex(),
            "algorithm": "Ed25519",
            "not_after": None,
            "valid": True,
            "source": key.source,
        }


def _signer_row(role: Role, signer: DocumentSigner, at: datetime) -> dict[str, Any]:
    window = signer.window_problem(at)
    return {
        "role": role,
        "kid": base64.b64encode(signer.kid).decode(),
        "subject": signer.subject,
        "algorithm": _key_description(signer.public_key),
        "not_before": signer.not_before.isoformat(),
        "not_after": signer.not_after.isoformat(),
        "valid": window is None,
        "problem": window,
        "usages": sorted(signer.usages),
        "source": signer.source,
    }


def _key_description(key: PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    return "Ed25519"


def _trust_testdata(args: argparse.Namespace) -> int:
    """One JSON line per case (a case file that cannot be read is that case's failure, and
    the run goes on), then the summary line on stderr."""
    decoder = _picture_decoder() if args.pictures else None
    tally = dgc_testdata.Tally()
    for path in _case_files(args.paths):
        try:
            outcome = dgc_testdata.evaluate(dgc_testdata.load_file(path), decoder)
        except DccTestDataError as exc:
            tally.add_unreadable()
            row: dict[str, Any] = {"file": str(path), "pass": False, "error": str(exc)}
        else:
            disagreements = tally.add(outcome)
            credential = outcome.credential
            row = {
                "file": str(path),
                "description": outcome.case.description,
                "pass": not outcome.mismatches,
                "verdict_agrees": not disagreements,
                "verdict_disagreements": disagreements,
                "checks": {
                    name: {"expected": expected, "got": outcome.checks.get(name)}
                    for name, expected in outcome.case.expected.items()
                },
                "gate": None if credential is None else report(credential),
            }
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print(tally.line(), file=sys.stderr)
    return 0 if tally.all_met else 1


def _case_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        yield from sorted(path.rglob("*.json")) if path.is_dir() else [path]


def _picture_decoder() -> dgc_testdata.PictureDecoder:
    """PNG bytes to QR texts with the gate's own decoder."""
    decoder = make_decoder(DecoderConfig())

    def texts(png: bytes) -> list[str]:
        try:
            grey = load_grey(png, "a test case's PNG")
        except ImageReadError:  # not a readable image, or too large for one
            return []
        return [code.text for code in decoder.decode(grey)]

    return texts


def _pass_keygen(args: argparse.Namespace) -> int:
    kid, public = passes.keygen(args.keyfile)
    print(
        json.dumps({"private_key": str(args.keyfile), "public_key": str(public), "kid": kid.hex()})
    )
    return 0


def _pass_issue(args: argparse.Namespace) -> int:
    payload = passes.issue(
        passes.load_private_key(args.key),
        pass_id=args.pass_id,
        holder=args.holder,
        not_before=args.not_before or datetime.now(UTC),
        not_after=args.not_after,
        venue=args.venue,
        gates=args.gates,
    )
    print(payload)
    if args.png or args.svg:
        passes.render(payload, png=args.png, svg=args.svg)
    return 0


def _pass_show(args: argparse.Namespace) -> int:
    if (args.payload is None) == (args.png is None):
        raise PassError("give either a PAYLOAD or --png FILE")
    payload = argument_bytes(args.payload) if args.png is None else _read_png(args.png)
    credential, decision = load_judge(judge_config(args)).judge(
        payload, args.at or datetime.now(UTC)
    )
    if credential.kind is not Kind.GATE_PASS:
        raise PassError(f"not a gate pass (read as {credential.kind}: {credential.reason})")
    print(json.dumps(report(credential, decision), ensure_ascii=False))
    return 0


def _read_png(path: Path) -> bytes:
    """The raw bytes of the first QR code in an image, read by the gate's own decoder."""
    codes = make_decoder(DecoderConfig()).decode(load_grey(path))
    if not codes:
        raise PassError(f"{path}: no QR code found")
    return codes[0].data
