"""Options that several subcommands share, in a module of their own so that a subcommand
loads only what it runs (`gate run` does not load the config editor or the reference)."""

import argparse
from pathlib import Path

from gate.app_config import DEFAULT_PATH


def config_option(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, as every subcommand that reads the config takes it."""
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})"
    )
