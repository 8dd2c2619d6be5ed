"""Health-insurance cards (BHYT): structure checks, hex text, dates and the card's own window."""

import datetime

import pytest
from credentialgen import bhyt, hexed

from gate.credentials import Credential, Kind, parse
from gate.reasons import Reason

TODAY = datetime.date(2025, 6, 1)
#: The sample of docs/formats.md "BHYT", with the address filled in.
SAMPLE = (
    "HS4010120878837|4e677579e1bb856e2056c4836e20416e|07/09/2008|1|"
    + hexed("Hà Nội")
    + "|01 - 028|24/01/2019|-|24/01/2019|$"
)


def check(text: str, today: datetime.date = TODAY) -> Credential:
    return parse(text.encode(), today=today)


def test_sample_card_is_valid_never_verified() -> None:
    assert check(SAMPLE) == Credential(
        kind=Kind.BHYT,
        valid=True,
        verified=False,
        reason=Reason.OK,
        subject_id="HS4010120878837",
        name="Nguyễn Văn An",
        birth_date="2008-09-07",
        details={
            "sex": "male",
            "address": "Hà Nội",
            "first_care_facility": "01 - 028",
            "valid_from": "2019-01-24",
            "valid_to": "",
            "issue_date": "2019-01-24",
        },
    )


def test_fourteen_field_layout_keeps_the_optional_fields_by_position() -> None:
    text = bhyt(
        valid_to="31/12/2025",
        extra=["79", hexed("Nguyễn Văn Bố"), "4", "01/01/2024", "ABCDEF0123", "newer"],
    )
    details = check(text).details
    assert details["valid_to"] == "2025-12-31"
    assert details["management_code"] == "79"
    assert details["parents"] == "Nguyễn Văn Bố"
    assert details["benefit_code"] == "4"
    assert details["five_year_date"] == "2024-01-01"
    assert details["check"] == "ABCDEF0123"
    assert details["extra_1"] == "newer"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(bhyt(card="0123456789"), id="2023-social-insurance-number"),
        pytest.param(bhyt(birth="1980"), id="year-of-birth-only"),
        pytest.param(bhyt(sex="2"), id="female"),
        pytest.param(bhyt(valid_from="-", issued="-"), id="no-dates"),
        pytest.param(bhyt(holder="Lê  Thị   Hoa "), id="spaces-in-name"),
    ],
)
def test_accepted_variants(text: str) -> None:
    assert check(text).reason is Reason.OK


@pytest.mark.parametrize(
    ("text", "reason", "field"),
    [
        pytest.param(
            bhyt(card="HS40101208788"), Reason.BAD_ID_NUMBER, "card_number", id="card-too-short"
        ),
        pytest.param(
            bhyt(card="hs4010120878837"), Reason.BAD_ID_NUMBER, "card_number", id="card-lower-case"
        ),
        pytest.param(
            bhyt(card="12345678901"), Reason.BAD_ID_NUMBER, "card_number", id="eleven-digits"
        ),
        pytest.param(
            SAMPLE.replace("4e67", "ff67", 1), Reason.BAD_ENCODING, "name", id="name-not-utf8"
        ),
        pytest.param(
            SAMPLE.replace("4e677579e1bb856e2056c4836e20416e", "Nguyen"),
            Reason.BAD_ENCODING,
            "name",
            id="name-not-hex",
        ),
        pytest.param(bhyt(holder="   "), Reason.MISSING_NAME, "name", id="blank-name"),
        pytest.param(
            SAMPLE.replace(hexed("Hà Nội"), "zz"), Reason.BAD_ENCODING, "address", id="address-hex"
        ),
        pytest.param(
            bhyt(birth="31/02/2000"), Reason.BAD_DATE, "birth_date", id="no-such-birth-day"
        ),
        pytest.param(bhyt(birth="2000-01-01"), Reason.BAD_DATE, "birth_date", id="iso-birth-date"),
        pytest.param(bhyt(sex="0"), Reason.BAD_GENDER, "sex", id="sex-zero"),
        pytest.param(
            bhyt(valid_from="2019"), Reason.BAD_DATE, "valid_from", id="valid-from-year-only"
        ),
        pytest.param(
            bhyt(valid_from="01/01/2025", valid_to="31/12/2024"),
            Reason.BAD_DATE,
            "valid_to",
            id="ends-first",
        ),
        pytest.param(
            bhyt(birth="01/01/2026"), Reason.DATE_IN_FUTURE, "birth_date", id="born-tomorrow"
        ),
        pytest.param(
            bhyt(issued="02/06/2025"), Reason.DATE_IN_FUTURE, "issue_date", id="issued-tomorrow"
        ),
        pytest.param(
            bhyt(birth="01/01/2020", issued="31/12/2019"),
            Reason.ISSUE_BEFORE_BIRTH,
            "issue_date",
            id="issued-before-birth",
        ),
        pytest.param(
            bhyt(extra=["79", "xyz"]), Reason.BAD_ENCODING, "parents", id="parents-not-hex"
        ),
        pytest.param(
            bhyt(extra=["79", "-", "4", "2024"]),
            Reason.BAD_DATE,
            "five_year_date",
            id="five-year-date",
        ),
        pytest.param(SAMPLE.removesuffix("|$"), Reason.MALFORMED, None, id="no-terminator"),
    ],
)
def test_refused_with_the_broken_field(text: str, reason: Reason, field: str | None) -> None:
    credential = check(text)
    assert (credential.kind, credential.reason, credential.field) == (Kind.BHYT, reason, field)
    assert credential.flaw
    assert (credential.valid, credential.verified, credential.problems) == (False, False, (reason,))
    assert (credential.subject_id, credential.name, credential.details) == (None, None, {})


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "problems"),
    [
        pytest.param("01/06/2025", "01/06/2025", (), id="one-day-card-on-its-day"),
        pytest.param("02/06/2025", "-", (Reason.NOT_YET_VALID,), id="starts-tomorrow"),
        pytest.param("01/01/2024", "31/05/2025", (Reason.EXPIRED,), id="ended-yesterday"),
    ],
)
def test_the_cards_own_window(valid_from: str, valid_to: str, problems: tuple) -> None:
    credential = check(bhyt(valid_from=valid_from, valid_to=valid_to))
    assert credential.problems == problems
    assert credential.valid == (not problems)
    assert credential.subject_id == "HS4010120878837"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("HS4010120878837|4e67|07/09/2008|$", id="too-few-fields"),
        pytest.param("a|b|c|d|e|f|g|h|i|j", id="ten-letters"),
        pytest.param("x|x|x|x|x|x|x|x|x|$", id="only-the-terminator-fits"),
    ],
)
def test_lookalikes_are_not_bhyt(text: str) -> None:
    assert check(text).kind is Kind.UNKNOWN
