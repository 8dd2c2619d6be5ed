"""`gate queue`: what waits in the outbox, and an export of it, without disturbing the gate.

Opens the file read-only (`mode=ro`): safe beside a running gate (WAL readers do
not block its writer) and on a stopped one.
"""

import argparse
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

from gate.app_config import load_config
from gate.cli.options import config_option
from gate.config.site import SiteConfig
from gate.outbox.config import OutboxConfig
from gate.outbox.reader import export, summary
from gate.outbox.store import outbox_path


class QueueConfig(Protocol):
    """The part of the root config `gate queue` reads."""

    @property
    def site(self) -> SiteConfig: ...

    @property
    def outbox(self) -> OutboxConfig: ...


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `gate queue`."""
    parser.add_argument(
        "--export",
        metavar="FILE",
        help='write the unsent events as JSON lines (with "replayed": true) to FILE, '
        "or to standard output with '-' (the summary then goes to standard error)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="read this outbox file instead of the configured one, "
        "e.g. a set-aside outbox.sqlite3.corrupt-* file",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run_queue(args: argparse.Namespace, config: QueueConfig | None) -> int:
    """Print the outbox summary (and export); 0 on success, 1 when the file cannot be read.

    `config` is None when `--db` names the file (an old card read on a laptop).
    """
    path: Path = args.db if config is None else args.db or outbox_path(config.outbox, config.site)
    to_stdout = args.export == "-"
    report = sys.stderr if to_stdout else sys.stdout
    if not path.is_file():
        print(f"gate queue: no outbox at {path}", file=sys.stderr)
        return 1
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            conn.execute("BEGIN")  # one snapshot for the summary and the export
            info = summary(conn, path)
            if args.export:
                if to_stdout:
                    info["exported"], info["skipped"] = export(conn, sys.stdout.buffer)
                else:
                    with open(args.export, "wb") as out:
                        info["exported"], info["skipped"] = export(conn, out)
    except (sqlite3.Error, OSError) as exc:
        print(f"gate queue: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info), file=report)
    else:
        for key, value in info.items():
            print(f"{key:>20}: {'-' if value is None else value}", file=report)
    return 0


def add_queue_command(commands: Any) -> None:
    """`gate queue` on the `gate` command's subparsers."""
    queue = commands.add_parser(
        "queue",
        help="what waits in the outbox: depth, oldest unsent, last acknowledged; export",
        description="Read the outbox (read-only; works while the gate runs) and print its "
        "depth, the oldest unsent check-in and the last one the broker acknowledged.",
    )
    config_option(queue)
    add_queue_arguments(queue)
    queue.set_defaults(handler=_queue)


def _queue(args: argparse.Namespace) -> int:
    """With --db, no config is needed: an outbox from another card is read as it is."""
    return run_queue(args, None if args.db else load_config(args.config))
