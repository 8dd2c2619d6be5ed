"""`gate selftest`: the command line of the technician's check (`gate.selftest` runs it)."""

import argparse
from typing import Any

from gate.cli.options import config_option
from gate.selftest import CHECKS, Options, selftest


def add_selftest_command(commands: Any) -> None:
    """`gate selftest` on the `gate` command's subparsers."""
    parser = commands.add_parser(
        "selftest",
        help="check the gate at the door: pins, camera, a code, broker, clock, disk, outbox",
        description="Switch each LED, the buzzer and the relay in turn, measure the camera, read "
        "a QR code shown to it, make a publish round trip to the broker, and check the clock, "
        "the disk and the outbox. Prints one row per check with what to do about each "
        "problem. Exit status: 0 nothing failed (warnings allowed), 1 a check failed, "
        "78 the config is invalid. Stop gate.service first: it holds the camera and pins.",
    )
    config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CHECKS,
        metavar="NAME",
        help=f"run only these checks ({', '.join(CHECKS)}); the config always, the service "
        "check with signals or camera",
    )
    parser.add_argument(
        "--code-timeout",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds to wait for a QR code shown to the camera (default 15)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    only = frozenset(args.only or CHECKS)
    options = Options(only=only, code_timeout_s=args.code_timeout)
    return selftest(args.config, as_json=args.json, options=options)
