"""Text from outside (a topic, a validation error's location, a detail) made safe for a log
line: nothing in it can start a new line, move the terminal's cursor, reorder what follows
or run on without end."""

import unicodedata

DEFAULT_LIMIT = 200
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """`text` (str() of it) with control, format (bidi, zero-width), separator, surrogate
    and unassigned characters written as `\\xNN` / `\\uNNNN` / `\\UNNNNNNNN` escapes and a
    backslash doubled, cut to `limit` characters of the original with the rest counted."""
    original = str(text)
    shown = original[:limit]
    escaped = "".join(_escape(char) for char in shown)
    cut = len(original) - len(shown)
    return f"{escaped}...(+{cut} characters)" if cut else escaped


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
