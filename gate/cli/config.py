"""`gate config`: check a config file, set keys in it, print the reference or an example.

Further `gate config` subcommands go on the `config` parser `add_config_command` makes.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from gate.app_config import DEFAULT_PATH, GateConfig, load_config
from gate.config.docs import config_example, config_reference
from gate.config_edit import set_keys
from gate.errors import ConfigError


def add_config_command(commands: Any) -> None:
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


def _config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    site, camera = config.site, config.camera
    print(f"{args.file}: OK")
    print(f"  gate {site.name}, state in {site.state_dir}")
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


def add_config_set(config_commands: Any) -> None:
    """`gate config set FILE KEY VALUE [KEY VALUE...]` on the `config` subparsers."""
    parser = config_commands.add_parser(
        "set",
        help="set dotted keys in a config file, keeping its comments",
        description="Set each KEY (dotted: mqtt.host, camera.replay.fps) to VALUE, read as "
        "YAML: null, true, 8883, or text (quote text that looks like a number: '\"0123\"'). "
        "Only those lines change; the result must be a valid config, else the file is left "
        "as it was and every problem is printed (exit 1). Prints `unchanged` or `changed`.",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("pairs", nargs="+", metavar="KEY VALUE")
    parser.set_defaults(handler=_config_set)


def _config_set(args: argparse.Namespace) -> int:
    if len(args.pairs) % 2:
        print(f"gate: config set: {args.pairs[-1]!r} has no VALUE", file=sys.stderr)
        return 2
    pairs = list(zip(args.pairs[::2], args.pairs[1::2], strict=True))
    try:
        changed = set_keys(args.file, pairs)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("changed" if changed else "unchanged")
    return 0
