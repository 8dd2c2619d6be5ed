"""The EU dgc-testdata format, held against the gate's HC1 checks.

Two halves: every case of the EU's public test data (vendored under tests/data/dgc-testdata,
with its licence and source commit), where the gate must agree with at least 99% and every
difference must be the one docs/conformance.md explains; and cases made here in the same
format with our own signers, one per kind of check, so each check is seen to pass and fail.
"""

import base64
import datetime
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import segno
from credentialgen import (
    OID_TEST,
    PS256,
    certificate,
    cose,
    dgc_case,
    ec_key,
    hc1,
    kid_of,
    rsa_key,
    vaccination,
)

from gate.cli import main
from gate.cli.trust import _picture_decoder
from gate.errors import DccTestDataError
from gate.reasons import Reason
from gate.trust.dgc_testdata import Tally, evaluate, load_case, load_file

UTC = datetime.UTC
CLOCK = datetime.datetime(2025, 6, 1, 12, tzinfo=UTC)
EC_CERT = certificate(ec_key(30), subject="EC-Me")
RSA_CERT = certificate(rsa_key(30), subject="RSA-Me")
TEST_SIGNER = certificate(ec_key(32), subject="Test-only signer", usages=[OID_TEST])
HCERT = vaccination()
ALL_GOOD = {
    "EXPECTEDUNPREFIX": True,
    "EXPECTEDB45DECODE": True,
    "EXPECTEDCOMPRESSION": True,
    "EXPECTEDVERIFY": True,
    "EXPECTEDEXPIRATIONCHECK": True,
    "EXPECTEDKEYUSAGE": True,
    "EXPECTEDDECODE": True,
    "EXPECTEDVALIDJSON": True,
    "EXPECTEDSCHEMAVALIDATION": True,
}


def es256(**options) -> str:
    options.setdefault("kid", kid_of(EC_CERT))
    key = options.pop("key", ec_key(30))
    return hc1(cose(options.pop("hcert", HCERT), key, **options))


def case(prefixed: str, expected: dict, cert=EC_CERT, clock=CLOCK, **fields) -> str:
    raw = dgc_case(prefixed, cert, clock, expected, hcert=HCERT) | fields
    return json.dumps(raw, ensure_ascii=False)


def png(text: str) -> str:
    out = io.BytesIO()
    segno.make(text, mode="alphanumeric", error="q").save(out, kind="png", scale=4, border=4)
    return base64.b64encode(out.getvalue()).decode()


GOOD = es256()
CASES = [
    pytest.param(
        case(GOOD, ALL_GOOD | {"EXPECTEDPICTUREDECODE": True}, **{"2DCODE": png(GOOD)}),
        Reason.OK,
        id="valid-es256-with-picture",
    ),
    pytest.param(
        case(
            hc1(cose(HCERT, rsa_key(30), kid=kid_of(RSA_CERT), algorithm=PS256)),
            ALL_GOOD,
            cert=RSA_CERT,
        ),
        Reason.OK,
        id="valid-ps256",
    ),
    pytest.param(
        case(
            GOOD,
            {"EXPECTEDVERIFY": True, "EXPECTEDEXPIRATIONCHECK": False},
            clock=datetime.datetime(2026, 2, 1, tzinfo=UTC),
        ),
        Reason.EXPIRED,
        id="clock-after-exp",
    ),
    pytest.param(
        case(
            GOOD,
            {"EXPECTEDEXPIRATIONCHECK": False},
            clock=datetime.datetime(2025, 1, 1, tzinfo=UTC),
        ),
        Reason.NOT_YET_VALID,
        id="clock-before-iat",
    ),
    pytest.param(
        case(es256(key=ec_key(31)), {"EXPECTEDVERIFY": False}), Reason.BAD_SIGNATURE, id="wrong-key"
    ),
    pytest.param(
        case(es256(tamper=True), {"EXPECTEDVERIFY": False}), Reason.BAD_SIGNATURE, id="tampered"
    ),
    pytest.param(
        case(es256(kid=b"\x05" * 8, unprotected_kid=kid_of(EC_CERT)), {"EXPECTEDVERIFY": False}),
        Reason.SIGNER_UNKNOWN,
        id="protected-kid-wrong-unprotected-right",
    ),
    pytest.param(
        case(es256(kid=None, unprotected_kid=kid_of(EC_CERT)), {"EXPECTEDVERIFY": True}),
        Reason.OK,
        id="kid-only-unprotected",
    ),
    pytest.param(
        case(
            hc1(cose(HCERT, ec_key(32), kid=kid_of(TEST_SIGNER))),
            {"EXPECTEDVERIFY": True, "EXPECTEDKEYUSAGE": False},
            cert=TEST_SIGNER,
        ),
        Reason.WRONG_KEY_USAGE,
        id="test-usage-signs-vaccination",
    ),
    pytest.param(
        case(GOOD, {"EXPECTEDB45DECODE": False}, BASE45=GOOD[4:].lower()),
        Reason.OK,
        id="base45-invalid-characters",
    ),
    pytest.param(
        case(
            hc1(cose(HCERT, ec_key(30), kid=kid_of(EC_CERT)), compress=False),
            {"EXPECTEDCOMPRESSION": False, "EXPECTEDVERIFY": True},
        ),
        Reason.OK,
        id="not-compressed",
    ),
    pytest.param(
        case(GOOD, {"EXPECTEDUNPREFIX": False}, PREFIX="HC2:" + GOOD[4:]),
        None,
        id="unsupported-context-prefix",
    ),
    pytest.param(
        case(
            es256(hcert={**HCERT, "dob": "10.10.1983"}),
            {"EXPECTEDVERIFY": True, "EXPECTEDSCHEMAVALIDATION": False},
        ),
        Reason.SCHEMA_INVALID,
        id="schema-violation",
    ),
]


@pytest.mark.parametrize(("text", "gate_reason"), CASES)
def test_gate_meets_every_expected_result(text: str, gate_reason: Reason | None) -> None:
    outcome = evaluate(load_case(text), pictures=_picture_decoder())
    assert outcome.mismatches == {}
    checked = {name for name, got in outcome.checks.items() if got is not None}
    assert set(outcome.case.expected) <= checked
    if gate_reason is None:
        assert outcome.credential is not None and outcome.credential.kind == "unknown"
    else:
        assert outcome.credential is not None and outcome.credential.reason is gate_reason


def test_a_wrong_expectation_is_reported() -> None:
    outcome = evaluate(load_case(case(es256(tamper=True), {"EXPECTEDVERIFY": True})))
    assert outcome.mismatches == {"EXPECTEDVERIFY": (True, False)}


def test_checks_without_their_data_are_skipped() -> None:
    outcome = evaluate(load_case(json.dumps({"PREFIX": GOOD, "EXPECTEDRESULTS": {}})))
    assert outcome.checks["EXPECTEDB45DECODE"] is None
    assert outcome.checks["EXPECTEDVERIFY"] is False  # no certificate: nothing to verify with
    assert outcome.checks["EXPECTEDPICTUREDECODE"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{", "not JSON", id="not-json"),
        pytest.param("[]", "JSON object", id="not-object"),
        pytest.param('{"COSE": "zz"}', "COSE is not hex", id="bad-hex"),
        pytest.param('{"TESTCTX": {"CERTIFICATE": "AAAA"}}', "not a DER", id="bad-certificate"),
        pytest.param('{"TESTCTX": {"VALIDATIONCLOCK": "soon"}}', "not ISO 8601", id="bad-clock"),
        pytest.param('{"PREFIX": 5}', "must be a string", id="prefix-number"),
    ],
)
def test_malformed_case_files(text: str, message: str) -> None:
    with pytest.raises(DccTestDataError, match=message):
        load_case(text)


def test_command_runs_a_directory_of_cases(tmp_path: Path, capsys) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "1.json").write_text(case(GOOD, ALL_GOOD))
    (tmp_path / "raw" / "2.json").write_text(case(es256(key=ec_key(31)), {"EXPECTEDVERIFY": False}))
    assert main(["trust", "testdata", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["pass"] for row in rows] == [True, True]
    assert rows[1]["gate"]["reason"] == "bad_signature"
    (tmp_path / "raw" / "3.json").write_text(case(GOOD, {"EXPECTEDVERIFY": False}))
    assert main(["trust", "testdata", str(tmp_path / "raw" / "3.json")]) == 1
    row = json.loads(capsys.readouterr().out)
    assert row["checks"]["EXPECTEDVERIFY"] == {"expected": False, "got": True}


# --- The EU's public test data, all of it ---------------------------------------------------

EU_DATA = Path(__file__).parent / "data" / "dgc-testdata"
CONFORMANCE = Path(__file__).parent.parent / "docs" / "conformance.md"
#: A row of the verdict table: | `case path` | CHECK | gate reason | why |
VERDICT_ROW = re.compile(r"^\| `([^`]+)` \| (EXPECTED[A-Z]+) \| `([a-z_]+)` \|", re.M)
#: A row of the check table: | CHECK | expected | cases | why |
CHECK_ROW = re.compile(r"^\| (EXPECTED[A-Z]+) \| (true|false) \| (\d+) \|", re.M)


class EuRun:
    """The gate over every vendored case, once per test module (about two seconds)."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.verdicts: set[tuple[str, str, str]] = set()
        self.checks: Counter[tuple[str, bool]] = Counter()
        for path in sorted(EU_DATA.rglob("*.json")):
            outcome = evaluate(load_file(path))
            case = path.relative_to(EU_DATA).as_posix()
            reason = outcome.credential.reason if outcome.credential else "none"
            self.verdicts |= {(case, check, reason) for check in self.tally.add(outcome)}
            self.checks.update(
                (name, expected) for name, (expected, _) in outcome.mismatches.items()
            )


@pytest.fixture(scope="module")
def eu_run() -> EuRun:
    return EuRun()


def test_every_eu_case_is_read(eu_run: EuRun) -> None:
    assert eu_run.tally.cases == 577 and eu_run.tally.unreadable == 0


def test_the_gate_agrees_with_at_least_99_percent_of_the_eu_cases(eu_run: EuRun) -> None:
    """Agreement: `verified` is EXPECTEDVERIFY, and a case expected to fail decoding or the
    expiry check is not valid (the same rule as `gate trust testdata`'s summary line)."""
    assert eu_run.tally.agreeing / eu_run.tally.cases >= 0.99


def test_conformance_md_lists_exactly_the_cases_that_disagree(eu_run: EuRun) -> None:
    listed = set(VERDICT_ROW.findall(CONFORMANCE.read_text(encoding="utf-8")))
    assert listed == eu_run.verdicts


def test_conformance_md_counts_exactly_the_expected_results_that_differ(eu_run: EuRun) -> None:
    listed = {
        (check, expected == "true"): int(count)
        for check, expected, count in CHECK_ROW.findall(CONFORMANCE.read_text(encoding="utf-8"))
    }
    assert listed == dict(eu_run.checks)


def test_command_goes_on_past_a_case_it_cannot_read_and_sums_up(tmp_path: Path, capsys) -> None:
    (tmp_path / "1-broken.json").write_text("{")
    (tmp_path / "2-good.json").write_text(case(GOOD, ALL_GOOD))
    (tmp_path / "3-disagrees.json").write_text(case(GOOD, {"EXPECTEDVERIFY": False}))
    assert main(["trust", "testdata", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [row["pass"] for row in rows] == [False, True, False]
    assert "not JSON" in rows[0]["error"]
    assert rows[2]["verdict_disagreements"] == ["EXPECTEDVERIFY"]
    assert captured.err.strip() == (
        "3 cases: 1 agree with the expected verdict (33.3%), 1 disagree "
        "(by check: EXPECTEDVERIFY 1); expected results differing by check: "
        "EXPECTEDVERIFY 1; 1 unreadable"
    )
