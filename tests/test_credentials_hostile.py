"""Crafted payloads that broke `parse` or slipped through, and what a technician is told.

Issue 9 item 6 (VDS-NC with lone surrogates or deep nesting raised; a judge exception put
the payload into the log; `gate parse` stopped a batch at the first), item 9 (blank,
bidi, overlong and implausible plain-text cards passed) and issue 10 part 3 (a payload
recognisably of a kind was refused as `unknown_format` without saying what is wrong).
"""

import json
import logging

import pytest
from conftest import ListSink
from credentialgen import (
    FUZZ_AT,
    b64url,
    bhyt,
    der,
    ec_key,
    fuzz_signers,
    fuzz_trust,
    hexed,
    vds_seal,
    vds_vaccination,
)
from imagegen import qr_frame

from gate.app_config import GateConfig
from gate.cli import main
from gate.credentials import Credential, Kind, Parser, internal_error_summary, parse
from gate.credentials.vds_nc import MAX_DEPTH, canonical
from gate.pipeline import Pipeline
from gate.reasons import Reason
from gate.signals import Signals

TODAY = FUZZ_AT.date()
AN = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1|15042021"
KHA_HAN = "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|1<GD4877*******"


def judged(text: str, max_bytes: int = 8192) -> Credential:
    return parse(text.encode(), today=TODAY, at=FUZZ_AT, trust=fuzz_trust(), max_bytes=max_bytes)


def replaced(payload: str, position: int, value: str) -> str:
    fields = payload.split("|")
    fields[position] = value
    return "|".join(fields)


def refusal(credential: Credential) -> tuple[Kind, Reason, str | None]:
    assert not credential.valid and credential.problems == (credential.reason,)
    assert credential.subject_id is None and credential.name is None
    return credential.kind, credential.reason, credential.field


# --- VDS-NC: lone surrogates and deep nesting (issue 9 item 6) ----------------------------


def seal(data: dict) -> str:
    return vds_seal(data, ec_key(72), fuzz_signers()[2])


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(seal(vds_vaccination()).replace("Smith Bill", "Smith \\ud800"), id="value"),
        pytest.param(seal(vds_vaccination()).replace('"uvci"', '"uvci\\ud800"'), id="key"),
        pytest.param(seal(vds_vaccination()).replace('"seq": 2', '"seq": NaN'), id="nan"),
    ],
)
def test_a_seal_that_is_not_i_json_is_malformed(text: str) -> None:
    assert refusal(judged(text)) == (Kind.VDS_NC, Reason.MALFORMED, "data")


def test_a_seal_nested_400_deep_is_malformed() -> None:
    document = json.loads(seal(vds_vaccination()))
    document["data"]["msg"]["deep"] = json.loads("[" * 400 + "]" * 400)
    credential = judged(json.dumps(document))
    assert refusal(credential) == (Kind.VDS_NC, Reason.MALFORMED, "data")
    assert credential.flaw == f"nested deeper than {MAX_DEPTH}"


def test_a_seal_nested_to_the_limit_is_canonicalised_and_verified() -> None:
    data = vds_vaccination()
    data["msg"]["deep"] = json.loads("[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2))
    credential = judged(seal(data))
    assert (credential.reason, credential.verified) == (Reason.OK, True)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 50_000])
def test_canonical_json_refuses_nesting_past_the_limit_without_recursing(depth: int) -> None:
    deep: object = 0
    for level in range(depth):
        deep = [deep] if level % 2 else {"k": deep}
    with pytest.raises(ValueError, match="nested deeper than"):
        canonical(deep)


def test_canonical_json_sorts_members_by_utf16_and_writes_integral_floats_bare() -> None:
    assert canonical({"é": 1.0, "a": [True, None, "\u20ac"], "\U0001f600": 2, "\uffff": 3}) == (
        '{"a":[true,null,"€"],"é":1,"\U0001f600":2,"\uffff":3}'
    )


@pytest.mark.parametrize(
    "version", [pytest.param(4, id="x509-v5"), pytest.param(0x7F, id="version-127")]
)
def test_a_seal_certificate_of_an_unknown_x509_version_is_malformed(version: int) -> None:
    certificate = bytearray(der(fuzz_signers()[2]))
    certificate[certificate.index(bytes.fromhex("a003020102")) + 4] = version
    document = json.loads(seal(vds_vaccination()))
    document["sig"]["cer"] = b64url(bytes(certificate))
    assert refusal(judged(json.dumps(document))) == (Kind.VDS_NC, Reason.MALFORMED, None)


# --- Plain-text cards: blank, bidi, overlong, too many fields, implausible (item 9) --------

CCCD_NAME, CCCD_ADDRESS, CCCD_ISSUED = 2, 5, 6
NQR_NAME, NQR_BIRTH, NQR_EXT = 1, 2, 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            replaced(AN, CCCD_NAME, "\u200b"),
            (Kind.CCCD, Reason.MISSING_NAME, "name"),
            id="cccd-zero-width-name",
        ),
        pytest.param(
            replaced(KHA_HAN, NQR_NAME, "\u200b\u2060 \ufeff"),
            (Kind.NATIONAL_QR, Reason.MISSING_NAME, "name"),
            id="national-qr-invisible-name",
        ),
        pytest.param(
            bhyt(holder="\u200d\u00ad"), (Kind.BHYT, Reason.MISSING_NAME, "name"), id="bhyt-joiner"
        ),
        pytest.param(
            replaced(AN, CCCD_NAME, "Nguyễn \u202eAn"),
            (Kind.CCCD, Reason.BAD_CHARACTER, "name"),
            id="cccd-right-to-left-override",
        ),
        pytest.param(
            replaced(AN, CCCD_NAME, "\u2067Nguyễn Văn An\u2069"),
            (Kind.CCCD, Reason.BAD_CHARACTER, "name"),
            id="cccd-isolate",
        ),
        pytest.param(
            replaced(AN, CCCD_ADDRESS, "Quận 1\u2028Hà Nội"),
            (Kind.CCCD, Reason.BAD_CHARACTER, "address"),
            id="cccd-line-separator-in-address",
        ),
        pytest.param(
            replaced(AN, CCCD_NAME, "Nguyễn\tAn"),
            (Kind.CCCD, Reason.BAD_CHARACTER, "name"),
            id="cccd-tab-in-name",
        ),
        pytest.param(
            replaced(KHA_HAN, NQR_EXT, "1\u2029x"),
            (Kind.NATIONAL_QR, Reason.BAD_CHARACTER, "ext"),
            id="national-qr-paragraph-separator",
        ),
        pytest.param(
            bhyt(holder="Nguyễn\x00An"), (Kind.BHYT, Reason.BAD_CHARACTER, "name"), id="bhyt-nul"
        ),
        pytest.param(
            bhyt(extra=["79", hexed("Bố\u202e")]),
            (Kind.BHYT, Reason.BAD_CHARACTER, "parents"),
            id="bhyt-bidi-parents",
        ),
        pytest.param(
            replaced(AN, CCCD_NAME, "Nguyễn Văn An" * 146),
            (Kind.CCCD, Reason.FIELD_TOO_LONG, "name"),
            id="cccd-1900-character-name",
        ),
        pytest.param(
            replaced(KHA_HAN, NQR_EXT, "x" * 301),
            (Kind.NATIONAL_QR, Reason.FIELD_TOO_LONG, "ext"),
            id="national-qr-long-ext",
        ),
        pytest.param(
            bhyt(holder="A" * 101), (Kind.BHYT, Reason.FIELD_TOO_LONG, "name"), id="bhyt-long-name"
        ),
        pytest.param(
            AN + "|" * 1000, (Kind.CCCD, Reason.TOO_MANY_FIELDS, None), id="cccd-1000-extra-fields"
        ),
        pytest.param(
            KHA_HAN + "|x", (Kind.NATIONAL_QR, Reason.TOO_MANY_FIELDS, None), id="national-qr-7"
        ),
        pytest.param(
            bhyt(extra=["-"] * 20), (Kind.BHYT, Reason.TOO_MANY_FIELDS, None), id="bhyt-30-fields"
        ),
        pytest.param(
            replaced(KHA_HAN, NQR_BIRTH, "0001-01-01"),
            (Kind.NATIONAL_QR, Reason.IMPLAUSIBLE_DATE, "birth_date"),
            id="national-qr-born-year-1",
        ),
        pytest.param(
            replaced(KHA_HAN, NQR_BIRTH, "1890-**-**"),
            (Kind.NATIONAL_QR, Reason.IMPLAUSIBLE_DATE, "birth_date"),
            id="national-qr-born-135-years-ago",
        ),
        pytest.param(
            bhyt(birth="01/01/0001"),
            (Kind.BHYT, Reason.IMPLAUSIBLE_DATE, "birth_date"),
            id="bhyt-born-year-1",
        ),
        pytest.param(
            bhyt(birth="0001"),
            (Kind.BHYT, Reason.IMPLAUSIBLE_DATE, "birth_date"),
            id="bhyt-born-year-1-alone",
        ),
        pytest.param(
            bhyt(valid_to="31/12/9999"),
            (Kind.BHYT, Reason.IMPLAUSIBLE_DATE, "valid_to"),
            id="bhyt-valid-to-9999",
        ),
        pytest.param(
            bhyt(valid_from="01/01/0001"),
            (Kind.BHYT, Reason.IMPLAUSIBLE_DATE, "valid_from"),
            id="bhyt-valid-from-year-1",
        ),
        pytest.param(
            bhyt(extra=["79", "-", "4", "01/01/9999"]),
            (Kind.BHYT, Reason.IMPLAUSIBLE_DATE, "five_year_date"),
            id="bhyt-five-year-date-9999",
        ),
    ],
)
def test_hostile_plain_text_cards_are_refused_naming_the_field(
    text: str, expected: tuple[Kind, Reason, str | None]
) -> None:
    assert refusal(judged(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(replaced(AN, CCCD_NAME, "Nguyễn\u200bVăn An"), id="zero-width-inside"),
        pytest.param(replaced(AN, CCCD_NAME, "Đ" * 100), id="name-of-100-characters"),
        pytest.param(AN + "|" * 9, id="cccd-of-16-fields"),
        pytest.param(bhyt(birth="01/01/1896"), id="born-129-years-ago"),
        pytest.param(bhyt(valid_to="31/12/2055"), id="valid-to-30-years-ahead"),
    ],
)
def test_the_bounds_leave_real_cards_alone(text: str) -> None:
    assert judged(text).reason is Reason.OK


# --- Diagnostics a technician can act on (issue 10 part 3) --------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "field", "flaw"),
    [
        pytest.param(
            replaced(AN, 0, "00109012345A"), Kind.CCCD, "id_number", "has letters", id="id-letter"
        ),
        pytest.param(
            replaced(AN, 0, "00109012345"),
            Kind.CCCD,
            "id_number",
            "has 11 digits, expected 12",
            id="id-11-digits",
        ),
        pytest.param(
            replaced(AN, 3, "1990-01-01"),
            Kind.CCCD,
            "birth_date",
            "written YYYY-MM-DD, expected DDMMYYYY",
            id="iso-birth-date",
        ),
        pytest.param(
            replaced(AN, 3, "01/01/1990"),
            Kind.CCCD,
            "birth_date",
            "written DD/MM/YYYY, expected DDMMYYYY",
            id="slashed-birth-date",
        ),
        pytest.param(
            replaced(AN, 6, "31042021"), Kind.CCCD, "issue_date", "no such day", id="31-april"
        ),
        pytest.param(
            replaced(AN, 4, "Male"), Kind.CCCD, "gender", "not Nam or Nữ", id="english-gender"
        ),
        pytest.param(
            replaced(AN, 1, "01234567A"),
            Kind.CCCD,
            "old_id_number",
            "has letters",
            id="old-id-letter",
        ),
        pytest.param(
            replaced(AN, 0, "001190123456"),
            Kind.CCCD,
            "id_number",
            "digit 4 disagrees with gender",
            id="gender-digit",
        ),
        pytest.param(
            replaced(KHA_HAN, 2, "18/01/1987"),
            Kind.NATIONAL_QR,
            "birth_date",
            "written DD/MM/YYYY, expected YYYY-MM-DD",
            id="national-qr-slashed-date",
        ),
        pytest.param(
            replaced(KHA_HAN, 2, "1987-1-18"),
            Kind.NATIONAL_QR,
            "birth_date",
            "written YYYY-M-D, expected YYYY-MM-DD",
            id="national-qr-one-digit-month",
        ),
        pytest.param(
            replaced(KHA_HAN, 4, "16297938858617110A"),
            Kind.NATIONAL_QR,
            "qid",
            "has letters",
            id="national-qr-qid-letter",
        ),
        pytest.param(
            bhyt(birth="2000-01-01"),
            Kind.BHYT,
            "birth_date",
            "written YYYY-MM-DD, expected DD/MM/YYYY",
            id="bhyt-iso-birth-date",
        ),
        pytest.param(
            bhyt(card="HS40101208788"),
            Kind.BHYT,
            "card_number",
            "not 2 capital letters and 13 digits, nor 10 digits",
            id="bhyt-short-card",
        ),
    ],
)
def test_a_recognisable_payload_is_refused_as_its_kind_with_field_and_flaw(
    text: str, kind: Kind, field: str, flaw: str
) -> None:
    credential = judged(text)
    assert (credential.kind, credential.field, credential.flaw) == (kind, field, flaw)
    assert not credential.valid


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Xin chào|các bạn|hôm nay|trời|đẹp|quá|nhỉ", id="vietnamese-prose"),
        pytest.param("1|2|3|4|5|6|7|8|9|10|11", id="numbers"),
        pytest.param("Nguyễn Văn An|Nguyễn Văn An|Nguyễn Văn An|x|y|z|w", id="only-names"),
        pytest.param("abc|def|2020-01-01|ghi|jkl|mno", id="a-date-among-words"),
        pytest.param("||||||", id="empty-fields"),
    ],
)
def test_text_that_merely_has_pipes_stays_unknown_format(text: str) -> None:
    assert refusal(judged(text)) == (Kind.UNKNOWN, Reason.UNKNOWN_FORMAT, None)


def test_a_flaw_never_quotes_the_payload() -> None:
    for text in (replaced(AN, 3, "1990-01-01"), replaced(AN, 0, "NGUYENVANAN1")):
        credential = judged(text)
        assert credential.flaw and "1990" not in credential.flaw
        assert "NGUYEN" not in credential.flaw


# --- A judge that fails: the log and `gate parse` (item 6) --------------------------------

SECRET = "Trần Thị Bí Mật 01011990"


def failing_parse(payload: bytes, **_context: object) -> Credential:
    """Raises, as the parser bugs did, with the payload in the message."""
    if payload.startswith(b"BOOM"):
        raise ValueError(f"cannot handle {SECRET!r} in {payload!r}")
    return parse(payload, **_context)  # type: ignore[arg-type]


PARSE = Parser.parse


def failing_parser(parser: Parser, payload: bytes, **context: object) -> Credential:
    """`Parser.parse` (which the judge calls), failing as `failing_parse` does."""
    if payload.startswith(b"BOOM"):
        failing_parse(payload)
    return PARSE(parser, payload, **context)  # type: ignore[arg-type]


def test_an_exception_summary_has_the_type_and_place_never_the_message() -> None:
    try:
        failing_parse(b"BOOM " + SECRET.encode())
    except ValueError as error:
        summary = internal_error_summary(error)
    assert summary.startswith("ValueError at test_credentials_hostile.py:")
    assert "failing_parse" in summary
    assert "Bí Mật" not in summary and "1990" not in summary and "BOOM" not in summary


def test_gate_parse_reports_a_failing_payload_on_its_line_and_goes_on(monkeypatch, capsys):
    monkeypatch.setattr("gate.credentials.Parser.parse", failing_parser)
    assert main(["parse", AN, "BOOM " + SECRET, KHA_HAN, "BOOM"]) == 1

    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [(line["kind"], line["reason"]) for line in lines] == [
        ("cccd", "ok"),
        ("unknown", "internal_error"),
        ("national_qr", "ok"),
        ("unknown", "internal_error"),
    ]
    assert lines[1]["decision"] == "refused" and lines[1]["error"].startswith("ValueError at ")
    assert "Bí Mật" not in captured.out.replace(AN, "").replace(KHA_HAN, "")
    assert "2 payload(s) failed" in captured.err


def test_gate_parse_prints_the_field_and_flaw_of_a_refusal(capsys):
    assert main(["parse", replaced(AN, 0, "00109012345A")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["kind"], line["reason"], line["field"], line["flaw"]) == (
        "cccd",
        "bad_id_number",
        "id_number",
        "has letters",
    )


def test_the_daemon_logs_a_judge_failure_without_the_payload(monkeypatch, mock_factory, caplog):
    monkeypatch.setattr("gate.credentials.Parser.parse", failing_parser)
    config = GateConfig.model_validate({"presentation": {"confirm_frames": 1}})
    sink = ListSink()
    signals = Signals(config.signals, mock_factory)
    pipeline = Pipeline.from_config(config, sink, signals)
    try:
        with caplog.at_level(logging.DEBUG, logger="gate.pipeline"):
            pipeline.process(qr_frame("BOOM " + SECRET, size=(320, 240), module_px=3))
    finally:
        signals.close()

    assert [checkin.decision.reason for checkin in sink.checkins] == [Reason.INTERNAL_ERROR]
    [record] = [r for r in caplog.records if "internal error" in r.getMessage()]
    message = record.getMessage()
    assert "ValueError at" in message and len(message) < 300
    assert "Bí Mật" not in message and "BOOM" not in message and record.exc_info is None
    assert pipeline.counters.errors == 1
