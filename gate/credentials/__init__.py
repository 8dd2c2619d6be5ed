"""From the raw bytes of a QR code to a Credential: the parsers' one entry point.

Pure: no I/O and no clock (the caller passes the time and the loaded trust store), and
`parse` never raises for any bytes: every payload comes back as a Credential, refused ones
with the precise reason.
"""

import datetime
import re
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from gate.credentials import bhyt, cccd, national_qr, refused, signed
from gate.credentials.model import Context, Credential, Kind, Refusal
from gate.reasons import Reason

if TYPE_CHECKING:  # loaded with the signed parsers (load_signed_formats), not before
    from gate.trust.store import TrustStore

__all__ = [
    "UNJUDGED",
    "Context",
    "Credential",
    "Format",
    "Kind",
    "Parser",
    "internal_error_summary",
    "load_signed_formats",
    "parse",
]

#: What a payload the judge failed on is reported as: refused, and no personal data.
UNJUDGED = Credential(
    kind=Kind.UNKNOWN,
    valid=False,
    verified=False,
    reason=Reason.INTERNAL_ERROR,
    problems=(Reason.INTERNAL_ERROR,),
)
#: Innermost frames named when an exception is summarised.
_SUMMARY_FRAMES = 3

_BOM = "\ufeff"
_LINE_ENDS = "\r\n"
#: Unicode control characters (C0, DEL, C1) other than tab, CR and LF.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Format(NamedTuple):
    """One payload format: a cheap shape test, and the parser for text that passes it.

    The parser returns a credential, or the reason to refuse a payload of this kind (with
    the field at fault when it can name one).
    """

    kind: Kind
    recognise: Callable[[str], bool]
    parse: Callable[[str, Context], Credential | Reason | Refusal]


def _by_date(
    parser: Callable[[str, datetime.date], Credential | Refusal],
) -> Callable[[str, Context], Credential | Refusal]:
    """A plain-text parser, which needs only the site's local date, in the table's shape."""
    return lambda text, context: parser(text, context.today)


#: The plain-text kinds and the codes that are not credentials, tried after the signed kinds
#: in the order of docs/formats.md "Recognising a kind"; the first format to recognise the
#: text parses it. Codes that are not credentials come last, each refused with its own reason.
UNSIGNED_FORMATS: tuple[Format, ...] = (
    Format(Kind.BHYT, bhyt.recognise, _by_date(bhyt.parse)),
    Format(Kind.NATIONAL_QR, national_qr.recognise, _by_date(national_qr.parse)),
    Format(Kind.CCCD, cccd.recognise, _by_date(cccd.parse)),
    Format(Kind.PAYMENT, refused.is_payment, refused.refuse_as(Reason.PAYMENT_CODE)),
    Format(
        Kind.SMART_HEALTH_CARD,
        refused.is_smart_health_card,
        refused.refuse_as(Reason.SMART_HEALTH_CARD),
    ),
    Format(Kind.VENUE_POSTER, refused.is_venue_poster, refused.refuse_as(Reason.VENUE_POSTER)),
    Format(Kind.URL, refused.is_url, refused.refuse_as(Reason.URL)),
)

#: The signed kinds, tried first and in this order, each with its shape test
#: (`gate.credentials.signed`), which needs no parser.
SIGNED_SHAPES: tuple[tuple[Kind, Callable[[str], bool]], ...] = (
    (Kind.EU_DCC, signed.is_hc1),
    (Kind.VDS_NC, signed.is_vds_nc),
    (Kind.GATE_PASS, signed.is_gate_pass),
)

#: The signed kinds as a gate that parses none of them sees them: refused `kind_not_accepted`
#: unread.
UNREAD_SIGNED_FORMATS: tuple[Format, ...] = tuple(
    Format(kind, shape, refused.refuse_as(Reason.KIND_NOT_ACCEPTED))
    for kind, shape in SIGNED_SHAPES
)


def load_signed_formats() -> tuple[tuple[Format, ...], "TrustStore"]:
    """The signed kinds' parsers, in the order they are tried, and an empty trust store.

    The one place their modules are loaded, and cryptography with them (about 15 MB and a
    tenth of a second here): a judge that verifies calls it once, when it is built, never
    at scan time.
    """
    from gate.credentials import dcc, gate_pass, vds_nc
    from gate.trust.store import TrustStore

    parsers = {Kind.EU_DCC: dcc.parse, Kind.VDS_NC: vds_nc.parse, Kind.GATE_PASS: gate_pass.parse}
    return tuple(Format(k, shape, parsers[k]) for k, shape in SIGNED_SHAPES), TrustStore()


def _refuse(kind: Kind, refusal: Reason | Refusal) -> Credential:
    """A refusal: never valid, never verified, and no personal data, since it identifies nobody."""
    if isinstance(refusal, Reason):
        refusal = Refusal(refusal)
    return Credential(
        kind=kind,
        valid=False,
        verified=False,
        reason=refusal.reason,
        problems=(refusal.reason,),
        field=refusal.field,
        flaw=refusal.flaw,
    )


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


class Parser:
    """Classify and check payloads, with or without the signed kinds' parsers.

    With `signed` (the default), every kind is parsed and signatures are checked against
    `trust` (empty when None): `load_signed_formats` runs once, here. Without, the signed
    kinds are recognised by their shape and refused `kind_not_accepted` unread, and
    cryptography is never loaded: for a gate that accepts no signed kind and pins nothing.
    """

    def __init__(self, *, signed: bool = True, trust: "TrustStore | None" = None) -> None:
        if signed:
            signed_formats, empty = load_signed_formats()
            self._trust = trust if trust is not None else empty
        else:
            signed_formats = UNREAD_SIGNED_FORMATS
            # read by the signed parsers only, and none is loaded: there is no store to give
            self._trust = cast("TrustStore", None)
        self._formats = signed_formats + UNSIGNED_FORMATS

    def parse(
        self,
        payload: bytes,
        *,
        today: datetime.date,
        at: datetime.datetime | None = None,
        max_bytes: int = 2048,
    ) -> Credential:
        """Classify and check one payload.

        `today` (the site's local date) bounds birth, issue and card dates; `at` (aware) is
        the instant for signatures and validity windows, by default the start of `today` in
        UTC (enough for callers that only meet plain-text kinds).
        """
        text = _text(payload, max_bytes)
        if isinstance(text, Credential):
            return text
        instant = (
            at
            if at is not None
            else datetime.datetime.combine(today, datetime.time(), datetime.UTC)
        )
        context = Context(today=today, at=instant, trust=self._trust)
        for fmt in self._formats:
            if fmt.recognise(text):
                outcome = fmt.parse(text, context)
                return outcome if isinstance(outcome, Credential) else _refuse(fmt.kind, outcome)
        return _refuse(Kind.UNKNOWN, Reason.UNKNOWN_FORMAT)


@cache
def _every_kind() -> Parser:
    """The tools' parser (`gate parse`, the self-test, tests): every kind, loaded once."""
    return Parser()


def parse(
    payload: bytes,
    *,
    today: datetime.date,
    at: datetime.datetime | None = None,
    trust: "TrustStore | None" = None,
    max_bytes: int = 2048,
) -> Credential:
    """One payload parsed as every kind, with `trust` (None: nothing pinned) holding the
    signers. The signed parsers load on the first call; the daemon's judge builds its own
    `Parser` when it is built instead."""
    parser = _every_kind() if trust is None else Parser(trust=trust)
    return parser.parse(payload, today=today, at=at, max_bytes=max_bytes)


def internal_error_summary(error: BaseException) -> str:
    """What a log may say of an exception raised while judging a payload: its type and the
    innermost frames (file, line, function), never its message, which may quote the
    payload (names, birth dates). Bounded by the frames named."""
    frames = traceback.extract_tb(error.__traceback__)[-_SUMMARY_FRAMES:]
    where = " < ".join(
        f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in reversed(frames)
    )
    return f"{type(error).__name__} at {where}" if where else type(error).__name__
