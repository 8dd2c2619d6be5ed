"""`gate device-id`: the id the daemon uses for its MQTT client id, for the installer and for
registering the gate with the province."""

import argparse
import sys
from pathlib import Path
from typing import Any

from gate.app_config import load_config
from gate.cli.options import config_option
from gate.config.site import SiteConfig
from gate.errors import ConfigError
from gate.identity import MACHINE_ID_FILE, device_id


def add_device_id_command(commands: Any) -> None:
    """`gate device-id` on the `gate` command's subparsers."""
    parser = commands.add_parser(
        "device-id",
        help="print the device id the daemon would use",
        description="site.device_id from the config when set, else the CPU serial, else the "
        "machine id: what the daemon uses for its MQTT client id (gate-<id>). A missing "
        "config file counts as one with every key at its default.",
    )
    config_option(parser)
    parser.add_argument(
        "--machine-id",
        type=Path,
        default=MACHINE_ID_FILE,
        help="the machine-id file (another root filesystem's when installing into it)",
    )
    parser.set_defaults(handler=_device_id)


def _device_id(args: argparse.Namespace) -> int:
    site = load_config(args.config).site if args.config.exists() else SiteConfig()
    try:
        print(device_id(site, machine_id=args.machine_id))
    except ConfigError as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 1
    return 0
