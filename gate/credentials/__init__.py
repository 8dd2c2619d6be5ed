"""From the raw bytes of a QR code to a Credential: the parsers' one entry point.

Pure: no I/O and no clock (the caller passes "today"), and `parse` never raises for any
bytes: every payload comes back as a Credential, refused ones with the precise reason.
"""

import datetime
import re
from collections.abc import Callable
from typing import NamedTuple

from gate.credentials import cccd, national_qr
from gate.credentials.model import Credential, Kind
from gate.reasons import Reason

__all__ = ["FORMATS", "Credential", "Format", "Kind", "parse"]

_BOM = "\ufeff"
_LINE_ENDS = "\r\n"
#: Unicode control characters (C0, DEL, C1) other than tab, CR and LF.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Format(NamedTuple):
    """One payload format: a cheap shape test, and the parser for text that passes it.

    The parser returns a credential, or the reason to refuse a payload of this kind.
    """

    kind: Kind
    recognise: Callable[[str], bool]
    parse: Callable[[str, datetime.date], Credential | Reason]


#: Tried in QR-FORMATS.md's classification order; the first format to recognise the text
#: parses it. Kinds to come (HC1, VDS-NC, gate pass, BHYT, then refused ones such as
#: VietQR `000201`, URLs and `shc:/`) slot in here, one line each.
FORMATS: tuple[Format, ...] = (
    Format(Kind.NATIONAL_QR, national_qr.recognise, national_qr.parse),
    Format(Kind.CCCD, cccd.recognise, cccd.parse),
)


def _refuse(kind: Kind, reason: Reason) -> Credential:
    """A refusal: never valid, never verified, and no personal data, since it identifies nobody."""
    return Credential(kind=kind, valid=False, verified=False, reason=reason)


def _text(payload: bytes, max_bytes: int) -> str | Credential:
    """The payload as text, or the refusal of a payload that is empty, oversized or binary.

    The size limit applies to the raw bytes, before any decoding work. Leniency: one leading
    BOM and any trailing CR/LF are dropped, since keyboard-wedge scanners, text files and
    some encoders add them and no format ends in a line break; a payload of nothing else is
    empty. Text is not normalised here: signed formats need it exactly as encoded.
    """
    if not payload:
        return _refuse(Kind.UNKNOWN, Reason.EMPTY)
    if len(payload) > max_bytes:
        return _refuse(Kind.UNKNOWN, Reason.OVERSIZED)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(Kind.UNKNOWN, Reason.BINARY)
    if _CONTROL.search(text):
        return _refuse(Kind.UNKNOWN, Reason.BINARY)
    text = text.removeprefix(_BOM).rstrip(_LINE_ENDS)
    return text or _refuse(Kind.UNKNOWN, Reason.EMPTY)


def parse(payload: bytes, *, today: datetime.date, max_bytes: int = 2048) -> Credential:
    """Classify and check one payload; "today" bounds birth and issue dates."""
    text = _text(payload, max_bytes)
    if isinstance(text, Credential):
        return text
    for fmt in FORMATS:
        if fmt.recognise(text):
            outcome = fmt.parse(text, today)
            return outcome if isinstance(outcome, Credential) else _refuse(fmt.kind, outcome)
    return _refuse(Kind.UNKNOWN, Reason.UNKNOWN_FORMAT)
