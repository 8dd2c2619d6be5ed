"""Health-insurance card (BHYT), QR-FORMATS.md section 3: structure checks only.

    card|name_hex|DOB|sex|address_hex|facility|valid from|valid to|issue date[|...]|$

Seen in two independent public parsers, never specified: strict where both agree (the
trailing `$`, the card number forms, hex-encoded UTF-8 text, `dd/mm/yyyy` dates, `-` for
empty), lenient elsewhere. The check string looks like a MAC of unknown algorithm: a card
is at best valid, never verified. Decisions where the reference is silent:
- The first nine fields are required (the published sample has exactly those); fields
  from the tenth on are optional and kept by position: management code, parents' names
  (hex), benefit code, 5-year date, check string, then `extra_1`...
- The date of birth may be a year alone (`yyyy`), as on cards of people whose day of birth
  is unknown. The address may be empty (`-`), the name may not.
- The card's own window counts: before `valid from` it is `not_yet_valid`, after
  `valid to` it is `expired` (an open end, `-`, never expires).
- subject_id is the card number.
"""

import datetime
import re
import unicodedata

from gate.credentials.fields import real_date
from gate.credentials.model import Credential, Kind, judged
from gate.reasons import Reason

_END = "$"
_REQUIRED = 9
_CARD = re.compile(r"[A-Z]{2}[0-9]{13}|[0-9]{10}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_DMY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")
_EMPTY = "-"
_SEXES = {"1": "male", "2": "female"}
_OPTIONAL = ("management_code", "parents", "benefit_code", "five_year_date", "check")


def recognise(text: str) -> bool:
    """Ends with `|$`, and the second field is hex (the name)."""
    fields = text.split("|")
    return len(fields) > _REQUIRED and fields[-1] == _END and bool(_HEX.fullmatch(fields[1]))


def _hex_text(field: str) -> str | None:
    """Hex-encoded UTF-8 as text (NFC), `-` (or nothing) as empty, or None otherwise."""
    if field in ("", _EMPTY):
        return ""
    if not _HEX.fullmatch(field):
        return None
    try:
        return unicodedata.normalize("NFC", bytes.fromhex(field).decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _date(field: str) -> datetime.date | None:
    shape = _DMY.fullmatch(field)
    if shape is None:
        return None
    day, month, year = (int(part) for part in shape.groups())
    return real_date(year, month, day)


def _date_or_empty(field: str) -> bool:
    """A real `dd/mm/yyyy` date, or `-`."""
    return field == _EMPTY or _date(field) is not None


def _iso(day: datetime.date | None) -> str:
    return day.isoformat() if day else ""


def _birth(field: str) -> tuple[datetime.date, str] | None:
    """The earliest day the field allows, and the ISO form to report."""
    if _YEAR.fullmatch(field):
        year = int(field)
        return (datetime.date(year, 1, 1), field) if year > 0 else None
    day = _date(field)
    return (day, day.isoformat()) if day else None


def parse(text: str, today: datetime.date) -> Credential | Reason:
    """A valid, unverified card; or the first broken field; or the card's own window."""
    fields = text.split("|")[:-1]
    card, name_hex, birth_text, sex, address_hex, facility = fields[:6]
    if not _CARD.fullmatch(card):
        return Reason.BAD_ID_NUMBER
    name, address = _hex_text(name_hex), _hex_text(address_hex)
    if name is None or address is None:
        return Reason.BAD_ENCODING
    if not name.strip():
        return Reason.MISSING_NAME
    birth = _birth(birth_text)
    if birth is None:
        return Reason.BAD_DATE
    if sex not in _SEXES:
        return Reason.BAD_GENDER
    if not all(_date_or_empty(field) for field in fields[6:9]):
        return Reason.BAD_DATE
    valid_from, valid_to, issued = (_date(field) for field in fields[6:9])
    extras = _extras(fields[9:])
    if isinstance(extras, Reason):
        return extras
    earliest_birth, birth_iso = birth
    if earliest_birth > today or (issued and issued > today):
        return Reason.DATE_IN_FUTURE
    if issued and issued < earliest_birth:
        return Reason.ISSUE_BEFORE_BIRTH
    if valid_from and valid_to and valid_to < valid_from:
        return Reason.BAD_DATE
    problems = []
    if valid_from and today < valid_from:
        problems.append(Reason.NOT_YET_VALID)
    if valid_to and today > valid_to:
        problems.append(Reason.EXPIRED)
    details = {
        "sex": _SEXES[sex],
        "address": address,
        "first_care_facility": facility,
        "valid_from": _iso(valid_from),
        "valid_to": _iso(valid_to),
        "issue_date": _iso(issued),
    }
    return judged(
        Kind.BHYT,
        problems,
        verified=False,
        subject_id=card,
        name=name.strip(),
        birth_date=birth_iso,
        details=details | extras,
    )


def _extras(fields: list[str]) -> dict[str, str] | Reason:
    """The optional trailing fields by position; parents' names decoded, the date checked."""
    extras: dict[str, str] = {}
    for index, field in enumerate(fields):
        key = _OPTIONAL[index] if index < len(_OPTIONAL) else f"extra_{index - len(_OPTIONAL) + 1}"
        if key == "parents":
            decoded = _hex_text(field)
            if decoded is None:
                return Reason.BAD_ENCODING
            field = decoded
        elif key == "five_year_date":
            if not _date_or_empty(field):
                return Reason.BAD_DATE
            field = _iso(_date(field))
        extras[key] = field
    return extras
