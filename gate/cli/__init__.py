"""The `gate` command: run the daemon, and the tools a technician uses at the door.

Each subcommand lives in its own module of this package and is imported only when it is
the one asked for (`gate run` never loads the pass tools, `gate --help` loads them all):
SUBCOMMANDS names, per command, the module and the function that adds its parser. A new
subcommand is a new module and one line there.
"""

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gate import __version__
from gate.errors import GateError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gate.cli.run", "add_run_command"),
    "decode": ("gate.cli.decode", "add_decode_command"),
    "parse": ("gate.cli.parse", "add_parse_command"),
    "queue": ("gate.cli.queue", "add_queue_command"),
    "trust": ("gate.cli.trust", "add_trust_commands"),
    "pass": ("gate.cli.trust", "add_trust_commands"),
    "cmd": ("gate.cli.cmd", "add_remote_commands"),
    "selftest": ("gate.cli.selftest", "add_selftest_command"),
    "config": ("gate.cli.config", "add_config_command"),
    "device-id": ("gate.cli.device", "add_device_id_command"),
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_wanted(arguments))
    args = parser.parse_args(arguments)
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


def _wanted(arguments: list[str]) -> list[tuple[str, str]]:
    """The parser builders to load: the named subcommand's alone, none for `--version`
    alone, or all (help, no command, a typo)."""
    command = next((a for a in arguments if not a.startswith("-")), None)
    if command in SUBCOMMANDS:
        return [SUBCOMMANDS[command]]
    if arguments == ["--version"]:
        return []
    return list(dict.fromkeys(SUBCOMMANDS.values()))


def _parser(builders: list[tuple[str, str]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gate", description="Unattended QR entrance gate: run the daemon and its tools."
    )
    parser.add_argument("--version", action="version", version=f"gate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module, function in builders:
        getattr(importlib.import_module(module), function)(commands)
    return parser
