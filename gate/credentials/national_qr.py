"""National personal QR (PC-Covid, VNeID, e-health book), QR-FORMATS.md section 2.

    SoGiayTo|HoTen|NgaySinh|LoaiDinhDanh|QID|EXT

Reported, never seen byte for byte, and plain text: strict only where the guidance is
explicit (field count, date shape, LoaiDinhDanh, QID digits), lenient elsewhere, and never
verified. Decisions where the reference is silent:
- subject_id is the QID: it identifies the person on the national platform, whereas
  SoGiayTo is masked by default and so neither unique nor complete. SoGiayTo is kept as
  `document_no`.
- SoGiayTo: 6 to 12 ASCII letters or digits (passports, 9- and 12-digit CMND, CCCD),
  of which any leading run may be `*` (the mask) but at least one is shown.
- HoTen should be upper case without diacritics; any non-blank name is accepted as given.
- NgaySinh: `YYYY-MM-DD` where month, day or both may be `**`; the given parts must fit
  the calendar, and the earliest day they allow must not be in the future. It is kept as
  given, masks included.
- LoaiDinhDanh is kept raw as `declaration_type` (`0` self-declared, `1` on someone's behalf).
- No ID/birth-year cross-check: published examples disagree.
- EXT is kept whole as `ext`; its `<`-separated sub-fields come in an uncertain order, so
  only those whose shape is unmistakable are also copied out, wherever they stand.
"""

import datetime
import re

from gate.credentials.fields import real_date, split_fields
from gate.credentials.model import Credential, Kind
from gate.reasons import Reason

_FIELDS = 6
_BIRTH = re.compile(r"([0-9]{4})-([0-9]{2}|\*\*)-([0-9]{2}|\*\*)")
_MASKED = "**"
_DOCUMENT_NO = re.compile(r"(?=[0-9A-Za-z*]{6,12}\Z)\**[0-9A-Za-z]+")
_DECLARATION_TYPES = frozenset({"0", "1"})
_QID = re.compile(r"[0-9]+")
#: EXT sub-fields recognised by shape alone; the first sub-field of each shape wins.
_EXT_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ext_gender", re.compile(r"[012]")),
    # Health-insurance card number, two letters then digits, possibly masked.
    ("ext_health_insurance_no", re.compile(r"[A-Z]{2}[0-9][0-9*]{7,12}")),
    # Vietnamese mobile number (03, 05, 07, 08, 09 and 8 more digits), possibly masked.
    ("ext_phone", re.compile(r"0[35789][0-9*]{8}")),
)


def recognise(text: str) -> bool:
    """Exactly six fields with a `YYYY-MM-DD` date third (month and day may be `**`)."""
    fields = split_fields(text)
    return len(fields) == _FIELDS and _BIRTH.fullmatch(fields[2]) is not None


def _earliest_birth(text: str) -> datetime.date | None:
    """The earliest day a possibly masked birth date allows, or None if no day fits it."""
    shape = _BIRTH.fullmatch(text)
    if shape is None:
        return None
    year, month, day = (1 if part == _MASKED else int(part) for part in shape.groups())
    return real_date(year, month, day)


def _ext_details(ext: str) -> dict[str, str]:
    """The EXT sub-fields whose shape says what they are, whatever their position."""
    found: dict[str, str] = {}
    for part in ext.split("<"):
        key = next((key for key, shape in _EXT_SHAPES if shape.fullmatch(part)), None)
        if key is not None and key not in found:
            found[key] = part
    return found


def parse(text: str, today: datetime.date) -> Credential | Reason:
    """A valid, unverified national-QR credential, or the first field that is wrong."""
    document_no, name, birth_text, declaration_type, qid, ext = split_fields(text)
    earliest_birth = _earliest_birth(birth_text)
    if _DOCUMENT_NO.fullmatch(document_no) is None:
        return Reason.BAD_ID_NUMBER
    if not name.strip():
        return Reason.MISSING_NAME
    if earliest_birth is None:
        return Reason.BAD_DATE
    if declaration_type not in _DECLARATION_TYPES:
        return Reason.BAD_DECLARATION_TYPE
    if _QID.fullmatch(qid) is None:
        return Reason.BAD_QID
    if earliest_birth > today:
        return Reason.DATE_IN_FUTURE
    return Credential(
        kind=Kind.NATIONAL_QR,
        valid=True,
        verified=False,
        reason=Reason.OK,
        subject_id=qid,
        name=name,
        birth_date=birth_text,
        details={"document_no": document_no, "declaration_type": declaration_type, "ext": ext}
        | _ext_details(ext),
    )
