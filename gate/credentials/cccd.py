"""Chip citizen ID card (CCCD, 2021) and Căn cước card (2024), docs/formats.md "CCCD".

Plain text: the checks prove structure and consistency, never authenticity, so a card is
at best valid and never verified. Layout, by position:

    ID|old CMND|full name|DOB ddmmyyyy|Nam or Nữ|address|issue date ddmmyyyy[|extra...]

Decisions where the reference is silent:
- Recognised (and then refused as `cccd`, naming the field, when a field is wrong): seven
  or more fields of which at least three of five have their shape: an identifier of
  letters and digits first, a name third, a date fourth, a gender fifth, a date seventh.
- The old-ID field may be empty, 9 digits (CMND) or 12 digits: 12-digit CMNDs were issued
  before CCCDs existed, and nothing says the field must differ from the new ID.
- The address is free text and may be empty; the province code need not match it.
- The issue date must be strictly after the date of birth.
- Fields after the seventh (Căn cước: expiry, cancelled IDs, parents' names) are kept as
  `extra_1`, `extra_2`... by position, empty ones included, so numbering stays positional;
  at most `MAX_FIELDS` fields in all.
"""

import datetime
import re
from dataclasses import dataclass

from gate.credentials.fields import (
    birth_refusal,
    count_refusal,
    date_like,
    field_is,
    id_flaw,
    name_like,
    name_refusal,
    real_date,
    resembles,
    split_fields,
    text_refusal,
    texts_refusal,
    wrong_date_shape,
)
from gate.credentials.model import Credential, Kind, Refusal
from gate.reasons import Reason

_FIELDS = 7
#: Seven fields and room for every addition the 2024 card is reported to make.
MAX_FIELDS = 16
_ID = re.compile(r"[0-9]{12}")
_ID_LIKE = re.compile(r"(?=.*[0-9])[0-9A-Za-z]{6,16}")
_OLD_ID = re.compile(r"(?:[0-9]{9}|[0-9]{12})?")
_DDMMYYYY = re.compile(r"[0-9]{8}")
_PROVINCES = range(1, 97)
#: Digit 4 of the ID is even for men, odd for women.
_GENDER_PARITY = {"Nam": 0, "Nữ": 1}
_GENDER_LIKE = frozenset({"nam", "nữ", "nu"})
CHIP_CARDS_FROM = datetime.date(2021, 1, 1)
_ANCHORS = (
    field_is(0, lambda text: _ID_LIKE.fullmatch(text) is not None),
    field_is(2, name_like),
    field_is(3, date_like),
    field_is(4, lambda text: text.strip().casefold() in _GENDER_LIKE),
    field_is(6, date_like),
)


@dataclass(frozen=True, slots=True)
class _Card:
    """A card whose every field is well-formed; consistency between fields is still unchecked."""

    id_no: str
    old_id: str
    name: str
    birth: datetime.date
    gender: str
    address: str
    issue: datetime.date
    extras: tuple[str, ...]


def recognise(text: str) -> bool:
    """Seven or more fields, most of them shaped as a card's are (see the module docstring)."""
    fields = split_fields(text)
    return len(fields) >= _FIELDS and resembles(fields, _ANCHORS)


def _ddmmyyyy(text: str) -> datetime.date | None:
    """A printed card date, or None when it is not eight digits naming a real day."""
    if _DDMMYYYY.fullmatch(text) is None:
        return None
    return real_date(int(text[4:]), int(text[2:4]), int(text[:2]))


def _read(fields: list[str]) -> _Card | Refusal:
    """Check each field on its own, in field order; the first malformed one is the refusal."""
    too_many = count_refusal(fields, MAX_FIELDS)
    if too_many:
        return too_many
    id_no, old_id, name, birth_text, gender, address, issue_text, *extras = fields
    birth, issue = _ddmmyyyy(birth_text), _ddmmyyyy(issue_text)
    if _ID.fullmatch(id_no) is None:
        return Refusal(Reason.BAD_ID_NUMBER, "id_number", id_flaw(id_no, (12,)))
    if _OLD_ID.fullmatch(old_id) is None:
        return Refusal(Reason.BAD_OLD_ID_NUMBER, "old_id_number", id_flaw(old_id, (9, 12)))
    bad_name = name_refusal("name", name)
    if bad_name:
        return bad_name
    if birth is None:
        return wrong_date_shape("birth_date", birth_text, "DDMMYYYY")
    if gender not in _GENDER_PARITY:
        return Refusal(Reason.BAD_GENDER, "gender", "not Nam or Nữ")
    bad_address = text_refusal("address", address)
    if bad_address:
        return bad_address
    if issue is None:
        return wrong_date_shape("issue_date", issue_text, "DDMMYYYY")
    bad_extra = texts_refusal(
        [(f"extra_{number}", extra) for number, extra in enumerate(extras, start=1)]
    )
    if bad_extra:
        return bad_extra
    return _Card(id_no, old_id, name, birth, gender, address, issue, tuple(extras))


def _inconsistency(card: _Card, today: datetime.date) -> Refusal | None:
    """The first cross-field rule the card breaks, in a fixed order."""
    if card.id_no[0] == "0" and int(card.id_no[:3]) not in _PROVINCES:
        # 001-096 are provinces; a first digit other than 0 is a foreign country: accepted.
        return Refusal(Reason.BAD_PROVINCE_CODE, "id_number", "digits 1-3 name no province")
    bad_birth = birth_refusal("birth_date", card.birth, today)
    if bad_birth:
        return bad_birth
    if card.issue > today:
        return Refusal(Reason.DATE_IN_FUTURE, "issue_date", "after today")
    if card.issue <= card.birth:
        return Refusal(Reason.ISSUE_BEFORE_BIRTH, "issue_date", "not after the birth date")
    if card.issue < CHIP_CARDS_FROM:
        return Refusal(Reason.ISSUE_BEFORE_CHIP_CARDS, "issue_date", "before 2021")
    digit4 = int(card.id_no[3])
    if digit4 % 2 != _GENDER_PARITY[card.gender]:
        return Refusal(Reason.ID_GENDER_MISMATCH, "id_number", "digit 4 disagrees with gender")
    if (digit4 // 2 + 19) * 100 != card.birth.year // 100 * 100:
        # Digit 4 encodes the century: 0/1 = 1900s, 2/3 = 2000s, 4/5 = 2100s...
        return Refusal(
            Reason.ID_CENTURY_MISMATCH, "id_number", "digit 4 disagrees with the birth century"
        )
    if card.id_no[4:6] != f"{card.birth.year % 100:02d}":
        return Refusal(
            Reason.ID_BIRTH_YEAR_MISMATCH, "id_number", "digits 5-6 disagree with the birth year"
        )
    return None


def parse(text: str, today: datetime.date) -> Credential | Refusal:
    """A valid, unverified CCCD credential, or the first rule the card breaks."""
    card = _read(split_fields(text))
    if isinstance(card, Refusal):
        return card
    broken = _inconsistency(card, today)
    if broken is not None:
        return broken
    return Credential(
        kind=Kind.CCCD,
        valid=True,
        verified=False,
        reason=Reason.OK,
        subject_id=card.id_no,
        name=card.name,
        birth_date=card.birth.isoformat(),
        details={
            "gender": card.gender,
            "old_id": card.old_id,
            "address": card.address,
            "issue_date": card.issue.isoformat(),
        }
        | {f"extra_{number}": extra for number, extra in enumerate(card.extras, start=1)},
    )
