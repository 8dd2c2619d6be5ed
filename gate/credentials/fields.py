"""Field helpers shared by the parsers: `|`-separated text, dates, and JSON/CBOR values."""

import datetime
import unicodedata


def split_fields(text: str) -> list[str]:
    """NFC-normalise, then split on `|`.

    Some encoders emit decomposed (NFD) Vietnamese, so `Nữ` can arrive as `Nu` plus two
    combining marks; after NFC it compares equal to the printed text. Normalising here, per
    format, rather than on the whole payload keeps the exact text for signed formats.
    """
    return unicodedata.normalize("NFC", text).split("|")


def real_date(year: int, month: int, day: int) -> datetime.date | None:
    """The date, or None when the calendar has no such day (30 February, month 13, year 0)."""
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def text_value(value: object) -> bool:
    """A string with something other than whitespace in it."""
    return isinstance(value, str) and bool(value.strip())


def small_int(value: object, low: int, high: int) -> bool:
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
