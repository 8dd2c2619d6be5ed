"""Field helpers shared by the parsers: `|`-separated text, dates, and JSON/CBOR values.

The plain-text kinds (CCCD, national QR, BHYT) are read in two steps. First a cheap test
says whether the text resembles the kind at all: enough of its fields have the shape they
should (`resembles`). Only then is each field checked precisely, so that a payload which
is recognisably a card but has one bad field is refused as that kind, naming the field
and what is wrong with it (a `Refusal`), while random text stays `unknown_format`.
"""

import datetime
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeGuard

from gate.credentials.model import Refusal
from gate.reasons import Reason

#: Longest name a plain-text credential may carry: the longest Vietnamese full names run to
#: about 40 characters, so this only stops padding and abuse.
MAX_NAME = 100
#: Longest other text field (an address, a facility, an extension field).
MAX_TEXT = 300
#: Nobody alive was born more than this many years ago.
MAX_AGE_YEARS = 130
#: No card is valid, or issued, this many years ahead.
MAX_YEARS_AHEAD = 30

#: Bidirectional formatting controls (Unicode's Bidi_Control property): they reorder what
#: a person reads (U+202E writes the rest of a name backwards), so no field may hold one.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Characters no field may hold, by general category: controls (tab and line breaks
#: included), line and paragraph separators, and surrogates.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: Format characters (zero-width space, joiners, soft hyphen...) print as nothing.
_INVISIBLE_CATEGORY = "Cf"

_NAME_LIKE = re.compile(r"[^\W\d_](?:[^\W\d_]|[ .'\-\u0300-\u036f])*", re.UNICODE)
#: The ways people write a date, by the shape a technician would read: `DDMMYYYY` and such.
_DATE_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("DDMMYYYY", re.compile(r"[0-9]{8}")),
    ("DD/MM/YYYY", re.compile(r"[0-9*]{2}/[0-9*]{2}/[0-9]{4}")),
    ("YYYY-MM-DD", re.compile(r"[0-9]{4}-[0-9*]{2}-[0-9*]{2}")),
    ("D/M/YYYY", re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}")),
    ("YYYY-M-D", re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")),
    ("DD-MM-YYYY", re.compile(r"[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}")),
    ("DD.MM.YYYY", re.compile(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}")),
    ("YYYY/MM/DD", re.compile(r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}")),
    ("YYYY", re.compile(r"[0-9]{4}")),
)


def split_fields(text: str) -> list[str]:
    """NFC-normalise, then split on `|`.

    Some encoders emit decomposed (NFD) Vietnamese, so `Nữ` can arrive as `Nu` plus two
    combining marks; after NFC it compares equal to the printed text. Normalising here, per
    format, rather than on the whole payload keeps the exact text for signed formats.
    """
    return unicodedata.normalize("NFC", text).split("|")


def resembles(fields: Sequence[str], anchors: Sequence[Callable[[Sequence[str]], bool]]) -> bool:
    """Whether most of a kind's anchors (field shapes it is known by) hold: all but two.

    One or two broken fields leave a payload recognisable, so it is refused with the field
    named; text that shares fewer shapes with the kind is not of that kind at all.
    """
    return sum(1 for anchor in anchors if anchor(fields)) >= len(anchors) - 2


def field_is(position: int, shape: Callable[[str], bool]) -> Callable[[Sequence[str]], bool]:
    """An anchor: the field at this position exists and has this shape."""
    return lambda fields: len(fields) > position and shape(fields[position])


def name_like(text: str) -> bool:
    """Letters (any script, diacritics included), spaces, dots, apostrophes and hyphens."""
    return _NAME_LIKE.fullmatch(text.strip()) is not None


def date_like(text: str) -> bool:
    """Written as a date in any common way, whether or not it is the right way."""
    return date_shape(text) is not None


def date_shape(text: str) -> str | None:
    """How a date is written (`DDMMYYYY`, `YYYY-MM-DD`...), or None when it is not one."""
    return next((shape for shape, pattern in _DATE_SHAPES if pattern.fullmatch(text)), None)


def wrong_date_shape(field: str, text: str, expected: str) -> Refusal:
    """The refusal of a date that is not written `expected`, saying how it is written."""
    shape = date_shape(text)
    if shape == expected:
        return Refusal(Reason.BAD_DATE, field, "no such day")
    if shape is None:
        return Refusal(Reason.BAD_DATE, field, f"not a date, expected {expected}")
    return Refusal(Reason.BAD_DATE, field, f"written {shape}, expected {expected}")


def id_flaw(text: str, lengths: Sequence[int]) -> str:
    """What is wrong with an all-digit identifier, said without quoting it."""
    if not text:
        return "empty"
    if any(char.isalpha() for char in text):
        return "has letters"
    if not text.isascii() or not text.isdigit():
        return "has characters other than digits"
    expected = " or ".join(str(length) for length in lengths)
    return f"has {len(text)} digits, expected {expected}"


def blank(text: str) -> bool:
    """Nothing a person could read: only whitespace and format characters (category Cf).

    `str.strip` keeps a zero-width space, so a name of only U+200B would pass as present.
    """
    return all(char.isspace() or unicodedata.category(char) == _INVISIBLE_CATEGORY for char in text)


def text_refusal(field: str, text: str, max_length: int = MAX_TEXT) -> Refusal | None:
    """The refusal of a text field that holds a character no field may, or is too long."""
    for char in text:
        if char in _BIDI_CONTROLS:
            return Refusal(Reason.BAD_CHARACTER, field, f"has bidi control U+{ord(char):04X}")
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return Refusal(Reason.BAD_CHARACTER, field, f"has character U+{ord(char):04X}")
    if len(text) > max_length:
        return Refusal(
            Reason.FIELD_TOO_LONG, field, f"{len(text)} characters, at most {max_length}"
        )
    return None


def name_refusal(field: str, text: str) -> Refusal | None:
    """The refusal of a holder's name: blank, a forbidden character, or too long."""
    if blank(text):
        return Refusal(Reason.MISSING_NAME, field, "empty" if not text else "only blank characters")
    return text_refusal(field, text, MAX_NAME)


def texts_refusal(texts: Sequence[tuple[str, str]]) -> Refusal | None:
    """The first refusal among (field, text) pairs of free text."""
    return next((refusal for field, text in texts if (refusal := text_refusal(field, text))), None)


def count_refusal(fields: Sequence[str], most: int) -> Refusal | None:
    """The refusal of a payload with more fields than its kind ever has."""
    if len(fields) > most:
        return Refusal(Reason.TOO_MANY_FIELDS, None, f"{len(fields)} fields, at most {most}")
    return None


def birth_refusal(field: str, birth: datetime.date, today: datetime.date) -> Refusal | None:
    """The refusal of a birth date in the future, or too long ago for anyone alive."""
    if birth > today:
        return Refusal(Reason.DATE_IN_FUTURE, field, "after today")
    if birth.year < today.year - MAX_AGE_YEARS:
        return Refusal(Reason.IMPLAUSIBLE_DATE, field, f"more than {MAX_AGE_YEARS} years ago")
    return None


def card_date_refusal(field: str, day: datetime.date, today: datetime.date) -> Refusal | None:
    """The refusal of a card date (issue, validity) no real card carries."""
    if day.year > today.year + MAX_YEARS_AHEAD:
        return Refusal(Reason.IMPLAUSIBLE_DATE, field, f"more than {MAX_YEARS_AHEAD} years ahead")
    if day.year < today.year - MAX_AGE_YEARS:
        return Refusal(Reason.IMPLAUSIBLE_DATE, field, f"more than {MAX_AGE_YEARS} years ago")
    return None


def real_date(year: int, month: int, day: int) -> datetime.date | None:
    """The date, or None when the calendar has no such day (30 February, month 13, year 0)."""
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def text_value(value: object) -> TypeGuard[str]:
    """A string with something other than whitespace in it."""
    return isinstance(value, str) and not blank(value)


def small_int(value: object, low: int, high: int) -> TypeGuard[int]:
    """An integer (not a bool) within [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def iso_date(value: object) -> datetime.date | None:
    """A `YYYY-MM-DD` date; a date-time's date part is accepted (older schemas wrote one)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None


def iso_instant(value: object) -> datetime.datetime | None:
    """An RFC 3339 / ISO 8601 date-time; one without an offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
