"""National personal QR (PC-Covid, VNeID, e-health book), docs/formats.md "National personal QR".

    SoGiayTo|HoTen|NgaySinh|LoaiDinhDanh|QID|EXT

Reported, never seen byte for byte, and plain text: strict only where the guidance is
explicit (field count, date shape, LoaiDinhDanh, QID digits), lenient elsewhere, and never
verified. Decisions where the reference is silent:
- Recognised (and then refused as `national_qr`, naming the field, when a field is wrong):
  six or more fields of which at least three of five have their shape: a document number,
  a name, a date, a one-digit declaration type, a number. More than six is refused.
- subject_id is the QID: it identifies the person on the national platform, whereas
  SoGiayTo is masked by default and so neither unique nor complete. SoGiayTo is kept as
  `document_no`.
- SoGiayTo: 6 to 12 ASCII letters or digits (passports, 9- and 12-digit CMND, CCCD),
  of which any leading run may be `*` (the mask) but at least one is shown.
- HoTen should be upper case without diacritics; any name that is not blank is accepted
  as given, up to the length and characters every plain-text kind allows.
- NgaySinh: `YYYY-MM-DD` where month, day or both may be `**`; the given parts must fit
  the calendar, and the earliest day they allow must be neither in the future nor more
  than 130 years ago. It is kept as given, masks included.
- LoaiDinhDanh is kept raw as `declaration_type` (`0` self-declared, `1` on someone's behalf).
- No ID/birth-year cross-check: published examples disagree.
- EXT is kept whole as `ext`; its `<`-separated sub-fields come in an uncertain order, so
  only those whose shape is unmistakable are also copied out, wherever they stand.
"""

import datetime
import re

from gate.credentials.fields import (
    birth_refusal,
    date_like,
    field_is,
    id_flaw,
    name_like,
    name_refusal,
    real_date,
    resembles,
    split_fields,
    text_refusal,
    wrong_date_shape,
)
from gate.credentials.model import Credential, Kind, Refusal
from gate.reasons import Reason

_FIELDS = 6
_BIRTH = re.compile(r"([0-9]{4})-([0-9]{2}|\*\*)-([0-9]{2}|\*\*)")
_MASKED = "**"
_DOCUMENT_NO = re.compile(r"(?=[0-9A-Za-z*]{6,12}\Z)\**[0-9A-Za-z]+")
_DOCUMENT_LIKE = re.compile(r"[0-9A-Za-z*]{4,20}")
_DECLARATION_TYPES = frozenset({"0", "1"})
_QID = re.compile(r"[0-9]+")
_MAX_QID = 40
_ANCHORS = (
    field_is(0, lambda text: _DOCUMENT_LIKE.fullmatch(text) is not None),
    field_is(1, name_like),
    # A date with separators: eight bare digits are a CCCD's date, not this kind's.
    field_is(2, lambda text: date_like(text) and not text.isdigit()),
    field_is(3, lambda text: len(text) == 1 and text.isdigit()),
    field_is(4, lambda text: len(text) >= 6 and text.isdigit()),
)
#: EXT sub-fields recognised by shape alone; the first sub-field of each shape wins.
_EXT_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ext_gender", re.compile(r"[012]")),
    # Health-insurance card number, two letters then digits, possibly masked.
    ("ext_health_insurance_no", re.compile(r"[A-Z]{2}[0-9][0-9*]{7,12}")),
    # Vietnamese mobile number (03, 05, 07, 08, 09 and 8 more digits), possibly masked.
    ("ext_phone", re.compile(r"0[35789][0-9*]{8}")),
)


def recognise(text: str) -> bool:
    """Six or more fields, most of them shaped as the guidance says (see the docstring)."""
    fields = split_fields(text)
    return len(fields) >= _FIELDS and resembles(fields, _ANCHORS)


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


def _refusal(fields: list[str], today: datetime.date) -> Refusal | None:
    """The first field that is wrong, in field order."""
    if len(fields) > _FIELDS:
        return Refusal(Reason.TOO_MANY_FIELDS, None, f"{len(fields)} fields, expected {_FIELDS}")
    document_no, name, birth_text, declaration_type, qid, ext = fields
    if _DOCUMENT_NO.fullmatch(document_no) is None:
        return Refusal(
            Reason.BAD_ID_NUMBER, "document_no", "not 6-12 letters or digits, masked with *"
        )
    bad_name = name_refusal("name", name)
    if bad_name:
        return bad_name
    earliest_birth = _earliest_birth(birth_text)
    if earliest_birth is None:
        return wrong_date_shape("birth_date", birth_text, "YYYY-MM-DD")
    if declaration_type not in _DECLARATION_TYPES:
        return Refusal(Reason.BAD_DECLARATION_TYPE, "declaration_type", "not 0 or 1")
    if _QID.fullmatch(qid) is None:
        return Refusal(Reason.BAD_QID, "qid", id_flaw(qid, ()))
    if len(qid) > _MAX_QID:
        return Refusal(Reason.FIELD_TOO_LONG, "qid", f"{len(qid)} digits, at most {_MAX_QID}")
    return text_refusal("ext", ext) or birth_refusal("birth_date", earliest_birth, today)


def parse(text: str, today: datetime.date) -> Credential | Refusal:
    """A valid, unverified national-QR credential, or the first field that is wrong."""
    fields = split_fields(text)
    refusal = _refusal(fields, today)
    if refusal is not None:
        return refusal
    document_no, name, birth_text, declaration_type, qid, ext = fields
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
