"""Helpers shared by the `|`-separated plain-text formats (CCCD, national personal QR)."""

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
