"""`gate config set FILE KEY VALUE...`: change dotted keys in a YAML config, line by line.

A YAML library would drop the file's comments and reorder it, and the technician's notes in
gate.yaml matter; so the file is edited as text. Only the line of each key changes; a missing
key is added after the last line of its section, a missing section at the end of the file.
Block style is edited; what cannot be edited safely this way (a section written in flow style
on one line, a value spanning several lines, a key given twice) is refused, naming the key.
The result must load as a valid config (`gate config check`) before it replaces the file.
"""

import re
from collections.abc import Sequence
from pathlib import Path

from gate.app_config import load_config
from gate.config.loader import parse_yaml, read_config_text
from gate.errors import ConfigError
from gate.files import write_atomically

INDENT = 2
"""The indent of a key added to a section that has no other key."""


_OTHER_LINE_BREAK = re.compile("\r(?!\n)|[\x85\u2028\u2029]")
"""What YAML takes for a line break besides `\n` and `\r\n`."""


class UneditableConfig(ConfigError):
    """The file's layout keeps a key from being changed line by line."""


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_of(line: str, indent: int) -> str | None:
    """The mapping key a content line at exactly `indent` starts with, else None."""
    if _indent(line) != indent or not _content(line):
        return None
    key, colon, after = line[indent:].partition(":")
    if not colon or (after and after[0] not in " \t"):
        return None
    return key.strip().strip("'\"")


def _block_end(lines: Sequence[str], header: int, indent: int) -> int:
    """One past the last content line under the header line at `indent`."""
    last = header
    for i in range(header + 1, len(lines)):
        if _content(lines[i]):
            if _indent(lines[i]) <= indent:
                break
            last = i
    return last + 1


def _set_one(lines: list[str], dotted: str, rendered: str) -> list[str]:
    """`lines` with the key at `dotted` set to `rendered`: its line replaced, or added."""
    parts = dotted.split(".")
    start, end, indent = 0, len(lines), 0
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        found = [i for i in range(start, end) if _key_of(lines[i], indent) == part]
        if len(found) > 1:
            raise UneditableConfig(f"{path}: given twice")
        if not found:
            return _insert(lines, start, end, indent, parts[depth:], rendered)
        at = found[0]
        value = lines[at].partition(":")[2].strip()
        below = _block_end(lines, at, indent)
        if depth == len(parts) - 1:
            if value.startswith(("|", ">")) or below > at + 1:
                raise UneditableConfig(f"{path}: its value spans several lines")
            return [*lines[:at], f"{' ' * indent}{part}: {rendered}", *lines[at + 1 :]]
        if value and not value.startswith("#"):
            raise UneditableConfig(f"{path}: written in flow style (on one line)")
        child = next((_indent(x) for x in lines[at + 1 : below] if _content(x)), indent + INDENT)
        start, end, indent = at + 1, below, child
    raise ConfigError(f"{dotted}: expected a dotted key such as mqtt.host")


def _insert(
    lines: list[str], start: int, end: int, indent: int, missing: Sequence[str], rendered: str
) -> list[str]:
    """The missing keys (sections, then the key with its value) added at the block's end; a
    missing top-level section at the end of the file, after a blank line."""
    added = [f"{' ' * (indent + i * INDENT)}{name}:" for i, name in enumerate(missing[:-1])]
    added.append(f"{' ' * (indent + (len(missing) - 1) * INDENT)}{missing[-1]}: {rendered}")
    if indent == 0:
        blank = [""] if lines and lines[-1] != "" else []
        return [*lines, *blank, *added]
    last = max((i for i in range(start, end) if _content(lines[i])), default=start - 1)
    return [*lines[: last + 1], *added, *lines[last + 1 :]]


def render_scalar(value: str) -> str:
    """VALUE as YAML: null, true, 8883 or "quoted text" as given; other text double-quoted."""
    if "".join(value.splitlines()) != value:  # any line break: \n, \r, U+2028, a form feed...
        raise ConfigError(f"{value!r}: expected a value on one line")
    try:
        _, parsed = parse_yaml(value, "VALUE")
    except ConfigError:  # not YAML: text
        return _quoted(value)
    if isinstance(parsed, dict | list):
        raise ConfigError(f"{value!r}: expected one value (text, number, true/false or null)")
    if isinstance(parsed, str) and value[:1] not in "\"'":
        return _quoted(value)
    return value


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edited_text(text: str, updates: Sequence[tuple[str, str]]) -> str:
    """`text` with each dotted key set to its value, every other line as it was."""
    other_break = _OTHER_LINE_BREAK.search(text)
    if other_break is not None and updates:  # YAML ends a line there too: the lines would
        raise UneditableConfig(  # not be those YAML reads, and a key could be lost
            f"{updates[0][0]}: the file breaks a line with {other_break.group()!r}, not a newline"
        )
    lines = re.split(r"\r?\n", text.removesuffix("\n"))
    for key, value in updates:
        if not key or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"{key!r}: expected a dotted key such as mqtt.host")
        lines = _set_one(lines, key, render_scalar(value))
    return "\n".join(lines) + "\n"


def set_keys(path: Path, updates: Sequence[tuple[str, str]]) -> bool:
    """Set the keys in the file at `path`; True when it changed. The edited text must load as a
    valid config before it atomically replaces the file (same mode); else ConfigError naming
    the file, the key and what was expected, and the file is untouched."""
    text = read_config_text(path)
    try:
        new = edited_text(text, updates)
    except UneditableConfig as exc:
        raise ConfigError(
            f"{path}: cannot set {exc}; edit it by hand (block style, one line per key)"
        ) from None
    if new == text:
        return False
    try:
        load_config(path, new)
    except ConfigError as exc:
        raise ConfigError(f"{path}: not changed, the result would be invalid:\n{exc}") from None
    target = path.resolve()  # a linked config: the file it points at, the link kept
    try:
        now = target.stat()
        write_atomically(
            target, new.encode(), mode=now.st_mode & 0o7777, owner=(now.st_uid, now.st_gid)
        )
    except OSError as exc:
        raise ConfigError(f"{path}: not changed: {exc.strerror or exc}") from None
    return True
