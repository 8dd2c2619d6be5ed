"""The site's policy as a table: each rule, each reason code, in the order they are checked."""

import datetime
import re
from pathlib import Path
from typing import Any

import pytest

from gate.app_config import GateConfig, load_config
from gate.config.base import ValidationError
from gate.config.site import SiteConfig
from gate.credentials.model import Credential, Health, HealthType, Kind, judged
from gate.errors import ConfigError
from gate.judge import Judge, load_judge
from gate.outbox.config import SubjectMode
from gate.passages import Passages
from gate.policy import PolicyConfig, Rules
from gate.privacy import subject_form
from gate.reasons import Reason

UTC = datetime.UTC
ZONE = datetime.timezone(datetime.timedelta(hours=7))  # Asia/Ho_Chi_Minh has no DST
SITE = SiteConfig(venue_id="demo-venue", gate_id="gate-1")
#: Sunday 1 June 2025, 10:00 in Vietnam.
AT = datetime.datetime(2025, 6, 1, 10, tzinfo=ZONE)
KEY = b"0123456789abcdef0123456789abcdef"
ALL_KINDS = ["cccd", "national_qr", "eu_dcc", "vds_nc", "bhyt", "gate_pass"]
REPO = Path(__file__).resolve().parent.parent


def cred(
    kind: Kind = Kind.CCCD,
    problems: tuple[Reason, ...] = (),
    *,
    subject: str = "001090123456",
    details: dict[str, str] | None = None,
    health: Health | None = None,
) -> Credential:
    return judged(
        kind,
        list(problems),
        verified=kind in (Kind.EU_DCC, Kind.VDS_NC, Kind.GATE_PASS) and not problems,
        subject_id=subject,
        name="Nguyễn Văn An",
        birth_date="1990-01-01",
        details=details or {},
        health=health,
    )


def gate_pass(venue: str = "demo-venue", gates: str = "", pass_id: str = "p-1") -> Credential:
    return cred(
        Kind.GATE_PASS,
        subject=pass_id,
        details={"venue": venue, "gates": gates, "pass_id": pass_id},
    )


def vaccinated(
    dose: int = 2, doses: int | None = 2, on: str = "2025-01-01", next_due: bool = False
) -> Credential:
    health = Health(
        HealthType.VACCINATION,
        issued_at=datetime.datetime(2025, 1, 2, tzinfo=UTC),
        dose=dose,
        doses=doses,
        next_dose_due=next_due,
        vaccinated_on=datetime.date.fromisoformat(on),
    )
    return cred(
        Kind.EU_DCC,
        subject="URN:UVCI:01:VN:1",
        health=health,
        details={"certificate_id": "URN:UVCI:01:VN:1"},
    )


def swabbed(hours_ago: float, positive: bool = False) -> Credential:
    sampled = AT - datetime.timedelta(hours=hours_ago)
    return cred(Kind.VDS_NC, health=Health(HealthType.TEST, sampled_at=sampled, positive=positive))


def recovered(first: str = "2025-03-01", start: str = "2025-03-12", end: str = "2025-08-28"):
    health = Health(
        HealthType.RECOVERY,
        first_positive_on=datetime.date.fromisoformat(first),
        valid_from=datetime.date.fromisoformat(start),
        valid_until=datetime.date.fromisoformat(end),
    )
    return cred(Kind.EU_DCC, health=health)


def rules(**policy: Any) -> Rules:
    policy.setdefault("accept_kinds", ALL_KINDS)
    config = PolicyConfig(**policy)
    return Rules(config, SITE, KEY if config.uses_subject_hashes else None)


def hashed(subject: str) -> str:
    return subject_form(subject, SubjectMode.HMAC, KEY)


TABLE = [
    # What the parser found
    ("plain card accepted", {}, cred(), None),
    ("parser refusal passes through", {}, cred(problems=(Reason.BAD_DATE,)), Reason.BAD_DATE),
    (
        "signer unknown refused by default",
        {},
        cred(Kind.EU_DCC, (Reason.SIGNER_UNKNOWN,)),
        Reason.SIGNER_UNKNOWN,
    ),
    (
        "signer expired refused by default",
        {},
        cred(Kind.EU_DCC, (Reason.SIGNER_EXPIRED,)),
        Reason.SIGNER_EXPIRED,
    ),
    (
        "signer not yet valid refused",
        {},
        cred(Kind.VDS_NC, (Reason.SIGNER_NOT_YET_VALID,)),
        Reason.SIGNER_NOT_YET_VALID,
    ),
    (
        "expired signer tolerated",
        {"unverified": {"eu_dcc": "accept_expired_signer"}},
        cred(Kind.EU_DCC, (Reason.SIGNER_EXPIRED,)),
        None,
    ),
    (
        "unknown signer not tolerated by accept_expired_signer",
        {"unverified": {"eu_dcc": "accept_expired_signer"}},
        cred(Kind.EU_DCC, (Reason.SIGNER_UNKNOWN,)),
        Reason.SIGNER_UNKNOWN,
    ),
    (
        "unknown signer tolerated by accept",
        {"unverified": {"gate_pass": "accept"}},
        cred(Kind.GATE_PASS, (Reason.SIGNER_UNKNOWN,), details={"venue": "demo-venue"}),
        None,
    ),
    (
        "tolerated signer, then the credential's own expiry",
        {"unverified": {"eu_dcc": "accept"}},
        cred(Kind.EU_DCC, (Reason.SIGNER_UNKNOWN, Reason.EXPIRED)),
        Reason.EXPIRED,
    ),
    (
        "tolerance is per kind",
        {"unverified": {"vds_nc": "accept"}},
        cred(Kind.EU_DCC, (Reason.SIGNER_UNKNOWN,)),
        Reason.SIGNER_UNKNOWN,
    ),
    (
        "bad signature never tolerated",
        {"unverified": {"eu_dcc": "accept"}},
        cred(Kind.EU_DCC, (Reason.BAD_SIGNATURE,)),
        Reason.BAD_SIGNATURE,
    ),
    ("wrong key usage", {}, cred(Kind.EU_DCC, (Reason.WRONG_KEY_USAGE,)), Reason.WRONG_KEY_USAGE),
    (
        "twelve months",
        {},
        cred(Kind.EU_DCC, (Reason.OLDER_THAN_12_MONTHS,)),
        Reason.OLDER_THAN_12_MONTHS,
    ),
    # Kinds
    ("kind not accepted", {"accept_kinds": ["national_qr"]}, cred(), Reason.KIND_NOT_ACCEPTED),
    (
        "parser refusal before kind",
        {"accept_kinds": ["national_qr"]},
        cred(problems=(Reason.BAD_DATE,)),
        Reason.BAD_DATE,
    ),
    # Opening hours (AT is Sunday 10:00 local)
    (
        "inside opening hours",
        {"opening_hours": [{"open": "07:00", "close": "18:00"}]},
        cred(),
        None,
    ),
    (
        "before opening",
        {"opening_hours": [{"open": "10:30", "close": "18:00"}]},
        cred(),
        Reason.CLOSED,
    ),
    (
        "closing time is exclusive",
        {"opening_hours": [{"open": "07:00", "close": "10:00"}]},
        cred(),
        Reason.CLOSED,
    ),
    (
        "closed on sundays",
        {"opening_hours": [{"days": ["mon", "sat"], "open": "07:00", "close": "18:00"}]},
        cred(),
        Reason.CLOSED,
    ),
    (
        "any of several periods",
        {
            "opening_hours": [
                {"open": "06:00", "close": "08:00"},
                {"days": ["sun"], "open": "09:00", "close": "11:00"},
            ]
        },
        cred(),
        None,
    ),
    (
        "saturday night period runs into sunday",
        {"opening_hours": [{"days": ["sat"], "open": "20:00", "close": "10:30"}]},
        cred(),
        None,
    ),
    (
        "sunday night period has not begun",
        {"opening_hours": [{"days": ["sun"], "open": "20:00", "close": "10:30"}]},
        cred(),
        Reason.CLOSED,
    ),
    # Gate passes
    ("pass for all gates of the venue", {}, gate_pass(), None),
    ("pass for this gate", {}, gate_pass(gates="gate-2,gate-1"), None),
    ("pass for another venue", {}, gate_pass(venue="other-venue"), Reason.WRONG_VENUE),
    ("pass for other gates", {}, gate_pass(gates="gate-2"), Reason.WRONG_GATE),
    # Deny and allow lists
    ("revoked pass", {"deny": {"pass_ids": ["p-1"]}}, gate_pass(), Reason.REVOKED),
    (
        "revoked certificate",
        {"deny": {"certificate_ids": ["URN:UVCI:01:VN:1"]}},
        vaccinated(),
        Reason.REVOKED,
    ),
    (
        "denied subject by keyed hash",
        {"deny": {"subject_hashes": [hashed("001090123456")]}},
        cred(),
        Reason.DENIED,
    ),
    (
        "deny hashes compare in any case",
        {"deny": {"subject_hashes": [hashed("001090123456").upper()]}},
        cred(),
        Reason.DENIED,
    ),
    ("other subject not denied", {"deny": {"subject_hashes": [hashed("999")]}}, cred(), None),
    (
        "allow-list mode refuses the unlisted",
        {"allow": {"enabled": True}},
        cred(),
        Reason.NOT_ON_ALLOW_LIST,
    ),
    (
        "allow-list by keyed hash",
        {"allow": {"enabled": True, "subject_hashes": [hashed("001090123456")]}},
        cred(),
        None,
    ),
    ("allow-list by pass id", {"allow": {"enabled": True, "pass_ids": ["p-1"]}}, gate_pass(), None),
    (
        "deny beats allow",
        {"allow": {"enabled": True, "pass_ids": ["p-1"]}, "deny": {"pass_ids": ["p-1"]}},
        gate_pass(),
        Reason.REVOKED,
    ),
    # Health rules
    ("complete vaccination", {}, vaccinated(), None),
    (
        "certificate type not accepted",
        {"health": {"accept_types": ["test"]}},
        vaccinated(),
        Reason.CERTIFICATE_TYPE_NOT_ACCEPTED,
    ),
    ("one of two doses", {}, vaccinated(dose=1), Reason.VACCINATION_INCOMPLETE),
    ("incomplete allowed", {"health": {"doses_complete": False}}, vaccinated(dose=1), None),
    (
        "VDS-NC next dose due",
        {},
        vaccinated(doses=None, next_due=True),
        Reason.VACCINATION_INCOMPLETE,
    ),
    ("last dose 13 days ago", {}, vaccinated(on="2025-05-19"), Reason.VACCINATION_TOO_RECENT),
    ("last dose 14 days ago", {}, vaccinated(on="2025-05-18"), None),
    (
        "last dose too long ago",
        {"health": {"max_days_since_last_dose": 100}},
        vaccinated(),
        Reason.VACCINATION_TOO_OLD,
    ),
    (
        "certificate too old",
        {"health": {"max_certificate_age_days": 90}},
        vaccinated(),
        Reason.CERTIFICATE_TOO_OLD,
    ),
    ("fresh negative test", {}, swabbed(71), None),
    ("negative test too old", {}, swabbed(73), Reason.TEST_TOO_OLD),
    ("test age unlimited", {"health": {"test_max_hours": None}}, swabbed(500), None),
    ("positive test", {}, swabbed(1, positive=True), Reason.TEST_POSITIVE),
    ("recovery within its window", {}, recovered(), None),
    (
        "recovery before its window",
        {},
        recovered(start="2025-06-02"),
        Reason.RECOVERY_NOT_YET_VALID,
    ),
    ("recovery after its window", {}, recovered(end="2025-05-31"), Reason.RECOVERY_TOO_OLD),
    (
        "recovery beyond the site's limit",
        {"health": {"recovery_max_days": 60}},
        recovered(),
        Reason.RECOVERY_TOO_OLD,
    ),
]


@pytest.mark.parametrize(
    ("policy", "credential", "reason"),
    [pytest.param(p, c, r, id=name) for name, p, c, r in TABLE],
)
def test_policy_table(policy: dict, credential: Credential, reason: Reason | None) -> None:
    decision = rules(**policy).decide(credential, AT)
    assert decision.accepted is (reason is None)
    assert decision.reason is (reason or Reason.OK)


CARD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội|15042021".encode()
OTHER = "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Thái Bình|14082021".encode()


def credential_of(payload: bytes) -> Credential:
    return Judge(rules()).judge(payload, AT)[0]


def test_anti_passback_remembers_a_passage_for_the_window_only() -> None:
    passages = Passages(window_s=600)
    card, other = credential_of(CARD), credential_of(OTHER)
    passages.passed(card, 1000.0)
    assert passages.recent(card, 1599.0)
    assert not passages.recent(other, 1599.0)  # someone else
    assert not passages.recent(card, 1600.0)  # window over
    passages.passed(card, 1600.0)
    assert passages.recent(card, 2199.0)  # and it starts again


def test_anti_passback_keeps_only_the_last_passage_of_each_subject() -> None:
    passages = Passages(window_s=600)
    card, other = credential_of(CARD), credential_of(OTHER)
    passages.passed(card, 0.0)
    passages.passed(other, 100.0)
    passages.passed(card, 650.0)  # after its window: a new passage, newest in the memory
    assert passages.recent(card, 700.0) and not passages.recent(other, 700.0)


def test_anti_passback_off_remembers_nothing() -> None:
    passages = Passages(window_s=0)
    card = credential_of(CARD)
    passages.passed(card, 0.0)
    assert not passages.recent(card, 0.0)


def test_subject_hashes_use_the_privacy_key_of_published_events(tmp_path: Path) -> None:
    """A hash copied from an event denies that subject: same key file, same function."""
    (tmp_path / "privacy.key").write_bytes(KEY + b"\n")
    config = GateConfig(
        site={"state_dir": tmp_path},
        policy={"deny": {"subject_hashes": [hashed("001090123456")]}},
    )
    judge = load_judge(config)
    assert judge.judge(CARD, AT)[1].reason is Reason.DENIED
    assert judge.judge(OTHER, AT)[1].accepted


def test_rules_without_the_key_they_need_refuse_to_start() -> None:
    policy = PolicyConfig(deny={"subject_hashes": [hashed("x")]})
    with pytest.raises(ConfigError, match="no privacy key"):
        Rules(policy, SITE)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        pytest.param(
            {"accept_kinds": ["cccd", "payment"]}, "never identify a person", id="payment"
        ),
        pytest.param({"unverified": {"cccd": "accept"}}, "carry no signature", id="unsigned"),
        pytest.param({"unverified": {"eu_dcc": "maybe"}}, "expected one of", id="outcome"),
        pytest.param({"deny": {"subject_hashes": ["abc"]}}, "HMAC-SHA256", id="short-hash"),
        pytest.param(
            {"opening_hours": [{"open": "08:00", "close": "08:00"}]},
            "must differ",
            id="empty-period",
        ),
        pytest.param(
            {"opening_hours": [{"open": "07:00+07:00", "close": "18:00"}]},
            "without an offset",
            id="time-with-offset",
        ),
        pytest.param(
            {"opening_hours": [{"open": "60:00", "close": "18:00"}]},
            "expected a time of day",
            id="minutes-as-hours",
        ),
        pytest.param(
            {"opening_hours": [{"open": "08:00", "close": "18:00", "days": ["sonday"]}]},
            "expected one of 'mon'",
            id="bad-day",
        ),
        pytest.param(
            {"health": {"min_days_since_last_dose": 30, "max_days_since_last_dose": 10}},
            "max_days_since_last_dose",
            id="min-above-max",
        ),
    ],
)
def test_invalid_policy_is_refused(policy: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PolicyConfig(**policy)


def test_unquoted_yaml_times_mean_hours_and_minutes(tmp_path: Path) -> None:
    """YAML 1.1 would read `7:00` as 420 and `17:30:15` as 63015 (base 60); the gate reads
    YAML's numbers as 1.2 does, so they are times."""
    path = tmp_path / "gate.yaml"
    path.write_text("policy:\n  opening_hours:\n    - open: 7:00\n      close: 17:30:15\n")
    period = load_config(path).policy.opening_hours[0]
    assert (period.open, period.close) == (datetime.time(7), datetime.time(17, 30, 15))


def test_every_reason_code_is_documented() -> None:
    text = (REPO / "docs" / "reasons.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", text, re.MULTILINE)
    assert sorted(documented) == sorted(reason.value for reason in Reason)


def test_a_config_error_in_a_list_never_quotes_the_item(tmp_path: Path) -> None:
    """An id number written unquoted in a deny list is a YAML number, not text: the error
    places it (file, line, index) and does not repeat it."""
    path = tmp_path / "gate.yaml"
    path.write_text("policy:\n  deny:\n    subject_hashes:\n      - 1090123456\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == f"{path}:4: policy.deny.subject_hashes.0: expected text"

    path.write_text("policy:\n  deny:\n    pass_ids: '079123456789'\n")  # one, not a list
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == f"{path}:3: policy.deny.pass_ids: expected a list"


def test_a_raw_id_number_in_a_deny_list_is_refused_without_being_quoted() -> None:
    """A list is checked before use; its error reaches logs and command results, so it names
    how many entries are wrong, never what they are."""
    with pytest.raises(ValidationError) as refused:
        PolicyConfig(deny={"subject_hashes": [hashed("x"), "001090123456"]})
    message = refused.value.problems[0].message  # what config errors and command results say
    assert "1 of 2 entries are not HMAC-SHA256 hex digests" in message
    assert "001090123456" not in message
