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
    return "".join(_escape(char) for char in shortened(str(text), limit))


def shortened(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """`text` cut to `limit` characters with the rest counted, for a part of a line that is
    made `printable` as a whole."""
    cut = len(text) - limit
    return f"{text[:limit]}...(+{cut} characters)" if cut > 0 else text


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
