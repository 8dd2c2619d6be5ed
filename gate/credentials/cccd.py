"""Chip citizen ID card (CCCD, 2021) and Căn cước card (2024), QR-FORMATS.md section 1.

Plain text: the checks prove structure and consistency, never authenticity, so a card is
at best valid and never verified. Layout, by position:

    ID|old CMND|full name|DOB ddmmyyyy|Nam or Nữ|address|issue date ddmmyyyy[|extra...]

Decisions where the reference is silent:
- The old-ID field may be empty, 9 digits (CMND) or 12 digits: 12-digit CMNDs were issued
  before CCCDs existed, and nothing says the field must differ from the new ID.
- The address is free text and may be empty; the province code need not match it.
- The issue date must be strictly after the date of birth.
- Fields after the seventh (Căn cước: expiry, cancelled IDs, parents' names) are kept as
  `extra_1`, `extra_2`... by position, empty ones included, so numbering stays positional.
"""

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from gate.credentials.fields import real_date, split_fields
from gate.credentials.model import Credential, Kind
from gate.reasons import Reason

_FIELDS = 7
_DIGITS = re.compile(r"[0-9]+")
_ID = re.compile(r"[0-9]{12}")
_OLD_ID = re.compile(r"(?:[0-9]{9}|[0-9]{12})?")
_DDMMYYYY = re.compile(r"[0-9]{8}")
_PROVINCES = range(1, 97)
#: Digit 4 of the ID is even for men, odd for women.
_GENDER_PARITY = {"Nam": 0, "Nữ": 1}
CHIP_CARDS_FROM = datetime.date(2021, 1, 1)


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


def _province_known(card: _Card) -> bool:
    """Codes 001-096 are provinces; a first digit other than 0 is a foreign country: accepted."""
    return card.id_no[0] != "0" or int(card.id_no[:3]) in _PROVINCES


def _id_century(card: _Card) -> int:
    """The birth century that ID digit 4 encodes: 0/1 = 1900s, 2/3 = 2000s, 4/5 = 2100s..."""
    return (int(card.id_no[3]) // 2 + 19) * 100


#: Cross-field rules in the order they are checked; the first that fails is the reason.
_RULES: tuple[tuple[Reason, Callable[[_Card, datetime.date], bool]], ...] = (
    (Reason.BAD_PROVINCE_CODE, lambda card, _today: _province_known(card)),
    (Reason.DATE_IN_FUTURE, lambda card, today: max(card.birth, card.issue) <= today),
    (Reason.ISSUE_BEFORE_BIRTH, lambda card, _today: card.issue > card.birth),
    (Reason.ISSUE_BEFORE_CHIP_CARDS, lambda card, _today: card.issue >= CHIP_CARDS_FROM),
    (
        Reason.ID_GENDER_MISMATCH,
        lambda card, _today: int(card.id_no[3]) % 2 == _GENDER_PARITY[card.gender],
    ),
    (
        Reason.ID_CENTURY_MISMATCH,
        lambda card, _today: _id_century(card) == card.birth.year // 100 * 100,
    ),
    (
        Reason.ID_BIRTH_YEAR_MISMATCH,
        lambda card, _today: card.id_no[4:6] == f"{card.birth.year % 100:02d}",
    ),
)


def recognise(text: str) -> bool:
    """Seven or more fields, digits first and an eight-digit date fourth.

    Looser than QR-FORMATS.md's step 6, which wants a twelve-digit ID: a card whose ID has
    the wrong length is then refused as `bad_id_number`, not as an unknown format.
    """
    fields = split_fields(text)
    return (
        len(fields) >= _FIELDS
        and _DIGITS.fullmatch(fields[0]) is not None
        and _DDMMYYYY.fullmatch(fields[3]) is not None
    )


def _ddmmyyyy(text: str) -> datetime.date | None:
    """A printed card date, or None when it is not eight digits naming a real day."""
    if _DDMMYYYY.fullmatch(text) is None:
        return None
    return real_date(int(text[4:]), int(text[2:4]), int(text[:2]))


def _read(fields: list[str]) -> _Card | Reason:
    """Check each field on its own, in field order; the first malformed one is the reason."""
    id_no, old_id, name, birth_text, gender, address, issue_text, *extras = fields
    birth, issue = _ddmmyyyy(birth_text), _ddmmyyyy(issue_text)
    if _ID.fullmatch(id_no) is None:
        return Reason.BAD_ID_NUMBER
    if _OLD_ID.fullmatch(old_id) is None:
        return Reason.BAD_OLD_ID_NUMBER
    if not name.strip():
        return Reason.MISSING_NAME
    if birth is None:
        return Reason.BAD_DATE
    if gender not in _GENDER_PARITY:
        return Reason.BAD_GENDER
    if issue is None:
        return Reason.BAD_DATE
    return _Card(id_no, old_id, name, birth, gender, address, issue, tuple(extras))


def parse(text: str, today: datetime.date) -> Credential | Reason:
    """A valid, unverified CCCD credential, or the first rule the card breaks."""
    card = _read(split_fields(text))
    if isinstance(card, Reason):
        return card
    broken = next((reason for reason, holds in _RULES if not holds(card, today)), None)
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
