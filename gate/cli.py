"""The `gate` command: run the daemon, and the tools a technician uses at the door."""

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gate import __version__
from gate.commands.cli import add_remote_commands
from gate.config.docs import config_example, config_reference
from gate.config.model import DEFAULT_PATH, GateConfig, load_config
from gate.config.tools import add_config_set, add_device_id_command
from gate.credentials.cli import add_parse_command
from gate.errors import EXIT_CONFIG, ConfigError, GateError
from gate.outbox import add_queue_arguments, run_queue
from gate.selftest import add_selftest_command
from gate.trust.cli import add_trust_commands

log = logging.getLogger("gate")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except GateError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gate", description="Unattended QR entrance gate: run the daemon and its tools."
    )
    parser.add_argument("--version", action="version", version=f"gate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the gate daemon",
        description=(
            "Run the gate: capture, decode, decide, signal, store and publish check-ins. "
            "SIGTERM/SIGINT stop it cleanly (relay safe); SIGHUP reloads the config."
        ),
    )
    _config_option(run)
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override log.level from the config",
    )
    run.set_defaults(handler=_run)

    decode = commands.add_parser(
        "decode",
        help="decode QR codes in image files",
        description=(
            'Print one JSON object per file: {"file", "codes": [{"text", "data_hex", '
            '"backend"}]} or {"file", "error"}; carries on after an unreadable file.'
        ),
    )
    decode.add_argument("files", nargs="+", metavar="FILE")
    decode.add_argument("--backend", choices=["auto", "zxing", "zbar"], default="auto")
    decode.set_defaults(handler=_decode)

    add_parse_command(commands)

    queue = commands.add_parser(
        "queue",
        help="what waits in the outbox: depth, oldest unsent, last acknowledged; export",
        description="Read the outbox (read-only; works while the gate runs) and print its "
        "depth, the oldest unsent check-in and the last one the broker acknowledged.",
    )
    _config_option(queue)
    add_queue_arguments(queue)
    queue.set_defaults(handler=_queue)
    add_trust_commands(commands)
    add_remote_commands(commands)
    add_selftest_command(commands)

    config = commands.add_parser("config", help="check or document the configuration")
    config_commands = config.add_subparsers(title="config commands", metavar="COMMAND")
    check = config_commands.add_parser(
        "check",
        help="validate a config file",
        description=(
            "Print every problem (file:line: key: what was expected) and exit 1, or a short "
            "summary and exit 0."
        ),
    )
    check.add_argument("file", type=Path, nargs="?", default=DEFAULT_PATH)
    check.set_defaults(handler=_config_check)
    reference = config_commands.add_parser(
        "reference", help="print the configuration reference (Markdown), generated from the models"
    )
    reference.set_defaults(handler=_config_reference)
    example = config_commands.add_parser(
        "example", help="print a config file with every key, its default and its description"
    )
    example.set_defaults(handler=_config_example)
    add_config_set(config_commands)
    add_device_id_command(commands)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})"
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(threadName)-12s %(name)s: %(message)s",
    )


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gate: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    _configure_logging(args.log_level or config.log.level)
    from gate.daemon import run

    return run(config, args.config)


def _queue(args: argparse.Namespace) -> int:
    """With --db, no config is needed: an outbox from another card is read as it is."""
    return run_queue(args, None if args.db else load_config(args.config))


def _decode(args: argparse.Namespace) -> int:
    from gate.decode import DecoderConfig, decode_files, make_decoder

    decoder = make_decoder(DecoderConfig(backend=args.backend))
    failed = False
    for result in decode_files(args.files, decoder):
        failed |= "error" in result
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def _config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    site, camera = config.site, config.camera
    print(f"{args.file}: OK")
    print(f"  gate {site.province}/{site.venue_id}/{site.gate_id}, state in {site.state_dir}")
    print(
        f"  camera {camera.source} {camera.width}x{camera.height} @ {camera.fps:g} fps, "
        f"decoder {config.decoder.backend}"
    )
    print(
        f"  accepts {', '.join(sorted(config.policy.accept_kinds))}; "
        f"relay pulse {config.signals.relay_pulse_s:g} s (max {config.signals.relay_max_s:g} s)"
    )
    return 0


def _config_reference(_args: argparse.Namespace) -> int:
    print(config_reference(GateConfig))
    return 0


def _config_example(_args: argparse.Namespace) -> int:
    print(config_example(GateConfig), end="")
    return 0
