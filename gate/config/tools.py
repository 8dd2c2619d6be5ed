"""`gate config set` and `gate device-id`: what the installer asks of the program it installs,
instead of re-implementing config editing and the device id in shell."""

import argparse
import sys
from pathlib import Path
from typing import Any

from gate.config.edit import set_keys
from gate.config.model import DEFAULT_PATH, load_config
from gate.config.site import SiteConfig
from gate.errors import ConfigError
from gate.outbox.identity import _MACHINE_ID, device_id


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


def add_device_id_command(commands: Any) -> None:
    """`gate device-id` on the `gate` command's subparsers."""
    parser = commands.add_parser(
        "device-id",
        help="print the device id the daemon would use",
        description="site.device_id from the config when set, else the CPU serial, else the "
        "machine id: what the daemon uses for its MQTT client id (gate-<id>). A missing "
        "config file counts as one with every key at its default.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--machine-id",
        type=Path,
        default=_MACHINE_ID,
        help="the machine-id file (another root filesystem's when installing into it)",
    )
    parser.set_defaults(handler=_device_id)


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


def _device_id(args: argparse.Namespace) -> int:
    site = load_config(args.config).site if args.config.exists() else SiteConfig()
    try:
        print(device_id(site, machine_id=args.machine_id))
    except ConfigError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 1
    return 0
