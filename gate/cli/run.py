"""`gate run`: the daemon (`gate.daemon`)."""

import argparse
import logging
import sys
from typing import Any

from gate.app_config import load_config
from gate.cli.options import config_option
from gate.daemon import run
from gate.errors import EXIT_CONFIG, ConfigError


def add_run_command(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="run the gate daemon",
        description=(
            "Run the gate: capture, decode, decide, signal, store and publish check-ins. "
            "SIGTERM/SIGINT stop it cleanly (relay safe); SIGHUP reloads the config."
        ),
    )
    config_option(parser)
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override log.level from the config",
    )
    parser.set_defaults(handler=_run)


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
    return run(config, args.config)
