"""Behaviour of `gate.credentials.parse`: what each payload becomes, and why it is refused."""

import dataclasses
import datetime
import unicodedata

import pytest

from gate.credentials import Credential, Kind, parse
from gate.reasons import Reason

TODAY = datetime.date(2025, 6, 1)

# docs/formats.md "CCCD": a man born 1990 with an old CMND, a woman born 2003 without one.
AN = (
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam"
    "|Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|15042021"
)
HOA = "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Xã Vũ Hội, Huyện Vũ Thư, Thái Bình|14082021"
# docs/formats.md "National personal QR".
KHA_HAN = (
    "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|1<GD4877*******<0943******"
)

# CCCD field positions.
ID, OLD_ID, NAME, DOB, GENDER, ADDRESS, ISSUED = range(7)
# National personal QR field positions.
DOC_NO, HO_TEN, NGAY_SINH, LOAI, QID, EXT = range(6)


def parse_text(text: str) -> Credential:
    return parse(text.encode(), today=TODAY)


def with_fields(payload: str, changes: dict[int, str]) -> str:
    """`payload` with the fields at the given positions replaced."""
    fields = payload.split("|")
    for position, value in changes.items():
        fields[position] = value
    return "|".join(fields)


def refused(kind: Kind, reason: Reason) -> Credential:
    return Credential(kind=kind, valid=False, verified=False, reason=reason, problems=(reason,))


def undiagnosed(credential: Credential) -> Credential:
    """The credential without the field and flaw a refusal names (tested on their own)."""
    return dataclasses.replace(credential, field=None, flaw=None)


# --- CCCD -----------------------------------------------------------------------------------


def test_cccd_yields_the_printed_fields_valid_but_never_verified() -> None:
    assert parse_text(AN) == Credential(
        kind=Kind.CCCD,
        valid=True,
        verified=False,
        reason=Reason.OK,
        subject_id="001090123456",
        name="Nguyễn Văn An",
        birth_date="1990-01-01",
        details={
            "gender": "Nam",
            "old_id": "012345678",
            "address": "Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
            "issue_date": "2021-04-15",
        },
    )


def test_cccd_without_old_id_keeps_the_empty_field() -> None:
    credential = parse_text(HOA)
    assert credential.valid
    assert credential.details["old_id"] == ""
    assert (credential.subject_id, credential.birth_date) == ("034303012345", "2003-03-21")


def test_cccd_in_nfd_parses_as_its_nfc_form() -> None:
    decomposed = unicodedata.normalize("NFD", HOA)
    assert decomposed != HOA
    credential = parse_text(decomposed)
    assert credential == parse_text(HOA)
    assert credential.name == "Nguyễn Thị Hoa"
    assert credential.details["gender"] == "Nữ"


def test_can_cuoc_2024_card_keeps_extra_fields_by_position() -> None:
    credential = parse_text(AN + "|01011990||Nguyễn Văn Bình|Trần Thị Cúc")
    assert credential.valid
    assert credential.subject_id == "001090123456"
    assert {key: value for key, value in credential.details.items() if key.startswith("extra")} == {
        "extra_1": "01011990",
        "extra_2": "",
        "extra_3": "Nguyễn Văn Bình",
        "extra_4": "Trần Thị Cúc",
    }


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(with_fields(AN, {ID: "096090123456"}), id="last-province-code-096"),
        pytest.param(with_fields(AN, {ID: "704090123456"}), id="foreign-country-code"),
        pytest.param(with_fields(AN, {OLD_ID: "012345678901"}), id="12-digit-old-cmnd"),
        pytest.param(with_fields(AN, {ADDRESS: ""}), id="empty-address"),
        pytest.param(
            with_fields(AN, {ID: "001190123456", GENDER: "Nữ"}), id="woman-born-in-the-1900s"
        ),
        pytest.param(
            with_fields(AN, {ID: "001204123456", DOB: "29022004"}), id="man-born-on-29-february"
        ),
        pytest.param(with_fields(AN, {ISSUED: "01012021"}), id="issued-first-day-of-chip-cards"),
        pytest.param(with_fields(AN, {ISSUED: "01062025"}), id="issued-today"),
        pytest.param(
            with_fields(AN, {ID: "001225123456", DOB: "31052025", ISSUED: "01062025"}),
            id="born-yesterday-issued-today",
        ),
    ],
)
def test_cccd_accepted_edge_cases(payload: str) -> None:
    assert parse_text(payload).reason is Reason.OK


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # The ID: exactly twelve digits, a known province unless it is a foreign country code.
        pytest.param(with_fields(AN, {ID: "00109012345"}), Reason.BAD_ID_NUMBER, id="id-11-digits"),
        pytest.param(
            with_fields(AN, {ID: "0010901234567"}), Reason.BAD_ID_NUMBER, id="id-13-digits"
        ),
        pytest.param(
            with_fields(AN, {ID: "000090123456"}), Reason.BAD_PROVINCE_CODE, id="province-000"
        ),
        pytest.param(
            with_fields(AN, {ID: "097090123456"}), Reason.BAD_PROVINCE_CODE, id="province-097"
        ),
        # The old CMND: empty, nine or twelve digits.
        pytest.param(
            with_fields(AN, {OLD_ID: "01234567"}), Reason.BAD_OLD_ID_NUMBER, id="old-id-8-digits"
        ),
        pytest.param(
            with_fields(AN, {OLD_ID: "01234567890"}),
            Reason.BAD_OLD_ID_NUMBER,
            id="old-id-11-digits",
        ),
        pytest.param(
            with_fields(AN, {OLD_ID: "B1234567"}), Reason.BAD_OLD_ID_NUMBER, id="old-id-letter"
        ),
        # The name: anything but blank.
        pytest.param(with_fields(AN, {NAME: ""}), Reason.MISSING_NAME, id="empty-name"),
        pytest.param(with_fields(AN, {NAME: "  "}), Reason.MISSING_NAME, id="blank-name"),
        # Dates must exist.
        pytest.param(with_fields(AN, {DOB: "30021990"}), Reason.BAD_DATE, id="dob-30-february"),
        pytest.param(with_fields(AN, {DOB: "01131990"}), Reason.BAD_DATE, id="dob-month-13"),
        pytest.param(with_fields(AN, {DOB: "00000000"}), Reason.BAD_DATE, id="dob-zeros"),
        pytest.param(with_fields(AN, {ISSUED: "31042021"}), Reason.BAD_DATE, id="issued-31-april"),
        pytest.param(with_fields(AN, {ISSUED: "15-04-2021"}), Reason.BAD_DATE, id="issued-dashed"),
        pytest.param(with_fields(AN, {ISSUED: ""}), Reason.BAD_DATE, id="issued-empty"),
        # Gender is printed as Nam or Nữ, nothing else.
        pytest.param(with_fields(AN, {GENDER: "nam"}), Reason.BAD_GENDER, id="gender-lower-case"),
        pytest.param(with_fields(AN, {GENDER: "Nu"}), Reason.BAD_GENDER, id="gender-no-diacritics"),
        pytest.param(with_fields(AN, {GENDER: "Male"}), Reason.BAD_GENDER, id="gender-english"),
        pytest.param(with_fields(AN, {GENDER: ""}), Reason.BAD_GENDER, id="gender-empty"),
        # Dates are not in the future.
        pytest.param(with_fields(AN, {DOB: "02062025"}), Reason.DATE_IN_FUTURE, id="born-tomorrow"),
        pytest.param(
            with_fields(AN, {ISSUED: "02062025"}), Reason.DATE_IN_FUTURE, id="issued-tomorrow"
        ),
        # The issue date follows the birth and the start of chip cards.
        pytest.param(
            with_fields(AN, {ID: "001222123456", DOB: "01012022", ISSUED: "15042021"}),
            Reason.ISSUE_BEFORE_BIRTH,
            id="issued-before-birth",
        ),
        pytest.param(
            with_fields(AN, {ID: "001221123456", DOB: "15042021", ISSUED: "15042021"}),
            Reason.ISSUE_BEFORE_BIRTH,
            id="issued-on-birth-day",
        ),
        pytest.param(
            with_fields(AN, {ISSUED: "31122020"}), Reason.ISSUE_BEFORE_CHIP_CARDS, id="issued-2020"
        ),
        # ID digit 4 carries gender (even men, odd women) and century; digits 5-6 the year.
        pytest.param(
            with_fields(AN, {GENDER: "Nữ"}), Reason.ID_GENDER_MISMATCH, id="even-digit-but-woman"
        ),
        pytest.param(
            with_fields(AN, {ID: "001190123456"}), Reason.ID_GENDER_MISMATCH, id="odd-digit-but-man"
        ),
        pytest.param(
            with_fields(AN, {ID: "001290123456"}),
            Reason.ID_CENTURY_MISMATCH,
            id="2000s-id-1990-dob",
        ),
        pytest.param(
            with_fields(HOA, {ID: "034103012345"}),
            Reason.ID_CENTURY_MISMATCH,
            id="1900s-id-2003-dob",
        ),
        pytest.param(
            with_fields(AN, {ID: "001091123456"}), Reason.ID_BIRTH_YEAR_MISMATCH, id="id-says-1991"
        ),
    ],
)
def test_cccd_refused_with_the_broken_rule(payload: str, reason: Reason) -> None:
    assert undiagnosed(parse_text(payload)) == refused(Kind.CCCD, reason)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            "001090123456|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1|15042021",
            id="six-fields-old-id-dropped",
        ),
        pytest.param(
            "001090123456|012345678|Nguyễn Văn An|01011990|Nam|15042021",
            id="six-fields-address-dropped",
        ),
        pytest.param("a|b|c|d|e|f|g", id="seven-letters"),
        pytest.param("1|2|3|12345678|5|6|7", id="only-the-date-fits"),
        pytest.param("Hello|world|this is|just|some|text|here", id="prose-with-pipes"),
    ],
)
def test_cccd_lookalikes_are_unknown_not_cccd(payload: str) -> None:
    assert parse_text(payload) == refused(Kind.UNKNOWN, Reason.UNKNOWN_FORMAT)


# --- National personal QR -------------------------------------------------------------------


def test_national_qr_identifies_by_qid_and_keeps_the_rest() -> None:
    assert parse_text(KHA_HAN) == Credential(
        kind=Kind.NATIONAL_QR,
        valid=True,
        verified=False,
        reason=Reason.OK,
        subject_id="162979388586171100",
        name="NGUYEN LE KHA HAN",
        birth_date="1987-01-18",
        details={
            "document_no": "******029317",
            "declaration_type": "0",
            "ext": "1<GD4877*******<0943******",
            "ext_gender": "1",
            "ext_health_insurance_no": "GD4877*******",
            "ext_phone": "0943******",
        },
    )


@pytest.mark.parametrize(
    "birth", ["1987-**-**", "1987-01-**", "1987-**-18", "1987-**-31", "2025-06-**", "2025-**-**"]
)
def test_national_qr_masked_birth_date_kept_as_given(birth: str) -> None:
    credential = parse_text(with_fields(KHA_HAN, {NGAY_SINH: birth}))
    assert (credential.reason, credential.birth_date) == (Reason.OK, birth)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(with_fields(KHA_HAN, {DOC_NO: "079087029317"}), id="unmasked-cccd"),
        pytest.param(with_fields(KHA_HAN, {DOC_NO: "******317"}), id="masked-9-digit-cmnd"),
        pytest.param(with_fields(KHA_HAN, {DOC_NO: "C1234567"}), id="passport"),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "001090123456"}), id="id-disagrees-with-birth-year"
        ),
        pytest.param(
            with_fields(KHA_HAN, {HO_TEN: "Nguyễn Lê Kha Hân"}), id="name-with-diacritics"
        ),
        pytest.param(with_fields(KHA_HAN, {LOAI: "1"}), id="declared-on-behalf"),
        pytest.param(with_fields(KHA_HAN, {EXT: ""}), id="empty-ext"),
        pytest.param(with_fields(KHA_HAN, {EXT: "whatever<goes"}), id="opaque-ext"),
    ],
)
def test_national_qr_accepted_variants(payload: str) -> None:
    assert parse_text(payload).reason is Reason.OK


def test_national_qr_ext_sub_fields_recognised_in_any_order() -> None:
    credential = parse_text(with_fields(KHA_HAN, {EXT: "0987***321<XY<2<HS4010120878837"}))
    assert {key: value for key, value in credential.details.items() if key.startswith("ext_")} == {
        "ext_phone": "0987***321",
        "ext_gender": "2",
        "ext_health_insurance_no": "HS4010120878837",
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(with_fields(KHA_HAN, {DOC_NO: ""}), Reason.BAD_ID_NUMBER, id="doc-no-empty"),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "************"}),
            Reason.BAD_ID_NUMBER,
            id="doc-no-all-masked",
        ),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "0790*7029317"}),
            Reason.BAD_ID_NUMBER,
            id="doc-no-mask-inside",
        ),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "12345"}), Reason.BAD_ID_NUMBER, id="doc-no-too-short"
        ),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "******0293170"}),
            Reason.BAD_ID_NUMBER,
            id="doc-no-too-long",
        ),
        pytest.param(
            with_fields(KHA_HAN, {DOC_NO: "C123-4567"}),
            Reason.BAD_ID_NUMBER,
            id="doc-no-punctuation",
        ),
        pytest.param(with_fields(KHA_HAN, {HO_TEN: " "}), Reason.MISSING_NAME, id="blank-name"),
        pytest.param(
            with_fields(KHA_HAN, {NGAY_SINH: "1987-02-30"}), Reason.BAD_DATE, id="30-february"
        ),
        pytest.param(
            with_fields(KHA_HAN, {NGAY_SINH: "1987-13-**"}), Reason.BAD_DATE, id="month-13"
        ),
        pytest.param(with_fields(KHA_HAN, {NGAY_SINH: "1987-**-32"}), Reason.BAD_DATE, id="day-32"),
        pytest.param(with_fields(KHA_HAN, {NGAY_SINH: "0000-**-**"}), Reason.BAD_DATE, id="year-0"),
        pytest.param(
            with_fields(KHA_HAN, {NGAY_SINH: "2025-06-02"}),
            Reason.DATE_IN_FUTURE,
            id="born-tomorrow",
        ),
        pytest.param(
            with_fields(KHA_HAN, {NGAY_SINH: "2025-07-**"}),
            Reason.DATE_IN_FUTURE,
            id="born-next-month",
        ),
        pytest.param(
            with_fields(KHA_HAN, {NGAY_SINH: "2026-**-**"}),
            Reason.DATE_IN_FUTURE,
            id="born-next-year",
        ),
        pytest.param(with_fields(KHA_HAN, {LOAI: "2"}), Reason.BAD_DECLARATION_TYPE, id="loai-2"),
        pytest.param(
            with_fields(KHA_HAN, {LOAI: ""}), Reason.BAD_DECLARATION_TYPE, id="loai-empty"
        ),
        pytest.param(with_fields(KHA_HAN, {QID: ""}), Reason.BAD_QID, id="qid-empty"),
        pytest.param(
            with_fields(KHA_HAN, {QID: "16297938858617110A"}), Reason.BAD_QID, id="qid-letter"
        ),
    ],
)
def test_national_qr_refused_with_the_wrong_field(payload: str, reason: Reason) -> None:
    assert undiagnosed(parse_text(payload)) == refused(Kind.NATIONAL_QR, reason)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(KHA_HAN.rsplit("|", 1)[0], id="five-fields"),
        pytest.param("a|b|c|d|e|f", id="six-letters"),
    ],
)
def test_national_qr_lookalikes_are_unknown(payload: str) -> None:
    assert parse_text(payload) == refused(Kind.UNKNOWN, Reason.UNKNOWN_FORMAT)


# --- Payload shape and refused kinds --------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", Reason.EMPTY, id="empty"),
        pytest.param(b"\r\n", Reason.EMPTY, id="only-a-line-break"),
        pytest.param(b"\xef\xbb\xbf", Reason.EMPTY, id="only-a-bom"),
        pytest.param(b"x" * 2049, Reason.OVERSIZED, id="one-byte-over-2048"),
        pytest.param(b"\xff" * 4096, Reason.OVERSIZED, id="oversized-binary"),
        pytest.param(b"\x89PNG\r\n\x1a\n", Reason.BINARY, id="png-header"),
        pytest.param("テスト".encode("shift_jis"), Reason.BINARY, id="shift-jis-not-utf8"),
        pytest.param(b"abc\x00def", Reason.BINARY, id="nul"),
        pytest.param(b"abc\x1b[0m", Reason.BINARY, id="escape"),
        pytest.param(b"abc\x7f", Reason.BINARY, id="del"),
        pytest.param("abc\x85".encode(), Reason.BINARY, id="c1-control"),
        pytest.param("Xin chào".encode(), Reason.UNKNOWN_FORMAT, id="plain-text"),
        pytest.param(b"a\tb", Reason.UNKNOWN_FORMAT, id="tab-is-text"),
        pytest.param(b"x" * 2048, Reason.UNKNOWN_FORMAT, id="exactly-2048-bytes"),
    ],
)
def test_unrecognised_payloads_refused_as_unknown(payload: bytes, reason: Reason) -> None:
    assert parse(payload, today=TODAY) == refused(Kind.UNKNOWN, reason)


@pytest.mark.parametrize(
    ("payload", "kind", "reason"),
    [
        pytest.param(
            "00020101021238570010A000000727012700069704220113012345678901020208QRIBFTTA"
            "53037045802VN62150811Thanh toan6304ABCD",
            Kind.PAYMENT,
            Reason.PAYMENT_CODE,
            id="vietqr-payment",
        ),
        pytest.param("000201", Kind.PAYMENT, Reason.PAYMENT_CODE, id="bare-emvco-indicator"),
        pytest.param(
            "https://tokhaiyte.vn/?venue=123", Kind.VENUE_POSTER, Reason.VENUE_POSTER, id="venue"
        ),
        pytest.param(
            "https://qr.PCCOVID.gov.vn/d/8812",
            Kind.VENUE_POSTER,
            Reason.VENUE_POSTER,
            id="venue-subdomain-any-case",
        ),
        pytest.param("www.bluezone.gov.vn", Kind.VENUE_POSTER, Reason.VENUE_POSTER, id="www-venue"),
        pytest.param("https://example.com/x?y=1", Kind.URL, Reason.URL, id="https-url"),
        pytest.param("HTTP://EXAMPLE.COM", Kind.URL, Reason.URL, id="upper-case-url"),
        pytest.param("www.example.com", Kind.URL, Reason.URL, id="www-url"),
        pytest.param(
            "https://nottokhaiyte.vn/", Kind.URL, Reason.URL, id="lookalike-host-is-a-plain-url"
        ),
        pytest.param(
            "shc:/5676290952432060346029243740",
            Kind.SMART_HEALTH_CARD,
            Reason.SMART_HEALTH_CARD,
            id="smart-health-card",
        ),
        pytest.param(
            "SHC:/5676290952", Kind.SMART_HEALTH_CARD, Reason.SMART_HEALTH_CARD, id="shc-upper"
        ),
    ],
)
def test_codes_that_are_not_credentials_say_what_they_are(
    payload: str, kind: Kind, reason: Reason
) -> None:
    assert parse_text(payload) == refused(kind, reason)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("https://example.com/a b", id="url-with-space"),
        pytest.param("mailto:someone@example.com", id="mailto-has-no-slashes"),
        pytest.param("00020", id="payment-prefix-cut-short"),
        pytest.param("shc:", id="shc-without-slash"),
    ],
)
def test_near_misses_of_refused_kinds_stay_unknown(payload: str) -> None:
    assert parse_text(payload) == refused(Kind.UNKNOWN, Reason.UNKNOWN_FORMAT)


def test_max_bytes_is_the_callers_limit() -> None:
    assert parse(AN.encode(), today=TODAY, max_bytes=64).reason is Reason.OVERSIZED
    assert parse(b"x" * 4000, today=TODAY, max_bytes=4096).reason is Reason.UNKNOWN_FORMAT


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(AN.encode() + b"\n", id="trailing-lf"),
        pytest.param(AN.encode() + b"\r\n", id="trailing-crlf"),
        pytest.param(b"\xef\xbb\xbf" + AN.encode(), id="leading-bom"),
    ],
)
def test_bom_and_trailing_line_break_are_tolerated(payload: bytes) -> None:
    assert parse(payload, today=TODAY) == parse_text(AN)


def test_today_decides_what_is_in_the_future() -> None:
    fresh = with_fields(AN, {ISSUED: "01062025"})
    assert parse(fresh.encode(), today=TODAY).reason is Reason.OK
    yesterday = TODAY - datetime.timedelta(days=1)
    assert parse(fresh.encode(), today=yesterday).reason is Reason.DATE_IN_FUTURE
