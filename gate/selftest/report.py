"""The self-test's rows and how they are shown: a table for the technician, or JSON."""

import json
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from itertools import zip_longest


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: `action` is what to do, set on warnings and failures."""

    name: str
    status: Status
    value: str
    detail: str = ""
    action: str = ""


def skipped(names: Sequence[str], why: str) -> list[Row]:
    """Rows not run because something they depend on is missing or busy."""
    return [Row(name, Status.SKIP, "not run", why) for name in names]


def exit_status(rows: Sequence[Row]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return 1 if any(r.status is Status.FAIL for r in rows) else 0


def table(rows: Sequence[Row], width: int = 110) -> str:
    """Row, result, value, what to do (long cells wrap); a detail goes below its row."""
    name_w = max(len(r.name) for r in rows)
    value_w = min(34, max(len(r.value) for r in rows))
    indent = name_w + 2 + 6 + 2
    action_w = max(30, width - indent - value_w - 2)
    lines = [f"{'row':<{name_w}}  result  {'value':<{value_w}}  what to do"]
    for row in rows:
        result = row.status.upper() if row.status in (Status.FAIL, Status.WARN) else row.status
        cells = zip_longest(
            textwrap.wrap(row.value, value_w) or [""],
            textwrap.wrap(row.action, action_w) or [""],
            fillvalue="",
        )
        for i, (value, action) in enumerate(cells):
            head = f"{row.name:<{name_w}}  {result:<6}" if i == 0 else " " * (indent - 2)
            lines.append(f"{head}  {value:<{value_w}}  {action}")
        for paragraph in row.detail.splitlines():
            lines += [" " * indent + part for part in textwrap.wrap(paragraph, width - indent)]
    counts = {s: sum(r.status is s for r in rows) for s in Status}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(line.rstrip() for line in lines)


def render(rows: Sequence[Row], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=1)
    return table(rows, max(80, shutil.get_terminal_size((110, 24)).columns))
