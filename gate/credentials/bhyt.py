"""Health-insurance card (BHYT), docs/formats.md "BHYT": structure checks only.

    card|name_hex|DOB|sex|address_hex|facility|valid from|valid to|issue date[|...]|$

Seen in two independent public parsers, never specified: strict where both agree (the
trailing `$`, the card number forms, hex-encoded UTF-8 text, `dd/mm/yyyy` dates, `-` for
empty), lenient elsewhere. The check string looks like a MAC of unknown algorithm: a card
is at best valid, never verified. Decisions where the reference is silent:
- Recognised (and then refused as `bhyt`, naming the field, when a field is wrong): nine
  or more fields of which at least three of five have their shape: a card number, a hex name,
  a date, a one-digit sex, and `$` last. At most `MAX_FIELDS` fields.
- The first nine fields are required (the published sample has exactly those); fields
  from the tenth on are optional and kept by position: management code, parents' names
  (hex), benefit code, 5-year date, check string, then `extra_1`...
- The date of birth may be a year alone (`yyyy`), as on cards of people whose day of birth
  is unknown. The address may be empty (`-`), the name may not.
- Dates are plausible: births within 130 years, card dates (validity, issue, 5-year date)
  neither more than 130 years ago nor more than 30 years ahead.
- The card's own window counts: before `valid from` it is `not_yet_valid`, after
  `valid to` it is `expired` (an open end, `-`, never expires).
- subject_id is the card number.
"""

import datetime
import re
import unicodedata

from gate.credentials.fields import (
    birth_refusal,
    card_date_refusal,
    date_like,
    field_is,
    name_refusal,
    real_date,
    resembles,
    text_refusal,
    wrong_date_shape,
)
from gate.credentials.model import Credential, Kind, Refusal, judged
from gate.reasons import Reason

_END = "$"
_REQUIRED = 9
#: Fourteen fields and the `$` on today's cards, and room for what newer cards append.
MAX_FIELDS = 24
_CARD = re.compile(r"[A-Z]{2}[0-9]{13}|[0-9]{10}")
_CARD_LIKE = re.compile(r"[A-Za-z]{0,3}[0-9]{8,15}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_DMY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")
_EMPTY = "-"
_SEXES = {"1": "male", "2": "female"}
_WINDOW = ("valid_from", "valid_to", "issue_date")
_OPTIONAL = ("management_code", "parents", "benefit_code", "five_year_date", "check")
_ANCHORS = (
    field_is(0, lambda text: _CARD_LIKE.fullmatch(text) is not None),
    field_is(1, lambda text: _HEX.fullmatch(text) is not None),
    field_is(2, date_like),
    field_is(3, lambda text: len(text) == 1 and text.isdigit()),
    lambda fields: fields[-1] == _END,
)


def recognise(text: str) -> bool:
    """Nine or more fields, most of them shaped as a card's are (see the module docstring)."""
    fields = text.split("|")
    return len(fields) >= _REQUIRED and resembles(fields, _ANCHORS)


def _hex_text(field: str, value: str) -> str | Refusal:
    """Hex-encoded UTF-8 as text (NFC), `-` (or nothing) as empty, or the refusal."""
    if value in ("", _EMPTY):
        return ""
    try:
        if not _HEX.fullmatch(value):
            raise ValueError("not hex")
        text = unicodedata.normalize("NFC", bytes.fromhex(value).decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return Refusal(Reason.BAD_ENCODING, field, "not hex-encoded UTF-8")
    return text_refusal(field, text) or text


def _date(field: str) -> datetime.date | None:
    shape = _DMY.fullmatch(field)
    if shape is None:
        return None
    day, month, year = (int(part) for part in shape.groups())
    return real_date(year, month, day)


def _card_date(field: str, value: str, today: datetime.date) -> datetime.date | Refusal | None:
    """A real and plausible `dd/mm/yyyy` date, None for `-`, or the refusal."""
    if value == _EMPTY:
        return None
    day = _date(value)
    if day is None:
        return wrong_date_shape(field, value, "DD/MM/YYYY")
    return card_date_refusal(field, day, today) or day


def _iso(day: datetime.date | None) -> str:
    return day.isoformat() if day else ""


def _birth(value: str, today: datetime.date) -> tuple[datetime.date, str] | Refusal:
    """The earliest day the field allows (it may be a year alone), and the form to report."""
    if _YEAR.fullmatch(value):
        day = real_date(int(value), 1, 1)
        reported = value
    else:
        day = _date(value)
        reported = day.isoformat() if day else ""
    if day is None:
        return wrong_date_shape("birth_date", value, "DD/MM/YYYY")
    return birth_refusal("birth_date", day, today) or (day, reported)


def _layout_refusal(fields: list[str]) -> Refusal | None:
    if fields[-1] != _END:
        return Refusal(Reason.MALFORMED, None, "does not end with |$")
    if len(fields) <= _REQUIRED:
        return Refusal(
            Reason.MALFORMED, None, f"{len(fields)} fields, expected at least {_REQUIRED + 1}"
        )
    if len(fields) > MAX_FIELDS:
        return Refusal(Reason.TOO_MANY_FIELDS, None, f"{len(fields)} fields, at most {MAX_FIELDS}")
    return None


def parse(text: str, today: datetime.date) -> Credential | Refusal:
    """A valid, unverified card; or the first broken field; or the card's own window."""
    fields = text.split("|")
    layout = _layout_refusal(fields)
    if layout:
        return layout
    card, name_hex, birth_text, sex, address_hex, facility = fields[:6]
    if not _CARD.fullmatch(card):
        return Refusal(
            Reason.BAD_ID_NUMBER,
            "card_number",
            "not 2 capital letters and 13 digits, nor 10 digits",
        )
    name = _hex_text("name", name_hex)
    if isinstance(name, Refusal):
        return name
    bad_name = name_refusal("name", name)
    if bad_name:
        return bad_name
    birth = _birth(birth_text, today)
    if isinstance(birth, Refusal):
        return birth
    if sex not in _SEXES:
        return Refusal(Reason.BAD_GENDER, "sex", "not 1 or 2")
    address = _hex_text("address", address_hex)
    if isinstance(address, Refusal):
        return address
    bad_facility = text_refusal("first_care_facility", facility)
    if bad_facility:
        return bad_facility
    window = [
        _card_date(field, value, today) for field, value in zip(_WINDOW, fields[6:9], strict=True)
    ]
    broken = next((day for day in window if isinstance(day, Refusal)), None)
    if broken:
        return broken
    extras = _extras(fields[9:-1], today)
    if isinstance(extras, Refusal):
        return extras
    earliest_birth, birth_reported = birth
    valid_from, valid_to, issued = (
        day if isinstance(day, datetime.date) else None for day in window
    )
    if issued and issued > today:
        return Refusal(Reason.DATE_IN_FUTURE, "issue_date", "after today")
    if issued and issued < earliest_birth:
        return Refusal(Reason.ISSUE_BEFORE_BIRTH, "issue_date", "before the birth date")
    if valid_from and valid_to and valid_to < valid_from:
        return Refusal(Reason.BAD_DATE, "valid_to", "before valid_from")
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
        birth_date=birth_reported,
        details=details | extras,
    )


def _extras(fields: list[str], today: datetime.date) -> dict[str, str] | Refusal:
    """The optional trailing fields by position; parents' names decoded, the date checked."""
    extras: dict[str, str] = {}
    for index, value in enumerate(fields):
        key = _OPTIONAL[index] if index < len(_OPTIONAL) else f"extra_{index - len(_OPTIONAL) + 1}"
        if key == "parents":
            checked: str | datetime.date | Refusal | None = _hex_text(key, value)
        elif key == "five_year_date":
            checked = _card_date(key, value, today)
        else:
            checked = text_refusal(key, value) or value
        if isinstance(checked, Refusal):
            return checked
        extras[key] = checked if isinstance(checked, str) else _iso(checked)
    return extras
