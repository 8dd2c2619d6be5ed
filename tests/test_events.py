"""The published event: pure building, privacy modes, and schema/event.v1.json."""

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from outbox_driver import KEY, make_checkin

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.credentials.model import Kind
from gate.outbox.config import NameMode, PrivacyConfig, SubjectMode
from gate.outbox.events import (
    SCHEMA,
    build_event,
    encode_event,
    utc_ms,
    uuid7,
    with_replayed,
)
from gate.privacy import name_form, subject_form
from gate.reasons import Reason

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema" / "event.v1.json"
SITE = SiteConfig(province="hn", venue_id="stadium", gate_id="gate-1")
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "string": str,
    "integer": int,
    "boolean": bool,
    "null": type(None),
    "array": list,
}


def check(instance: object, schema: dict[str, object], path: str = "$") -> list[str]:
    """A tiny JSON Schema checker for the keywords schema/event.v1.json uses."""
    problems: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(instance, _TYPES[n]) and not (n == "integer" and isinstance(instance, bool))
            for n in names
        )
        if not ok:
            return [f"{path}: {instance!r} is not {names}"]
    if "const" in schema and instance != schema["const"]:
        problems.append(f"{path}: {instance!r} != {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{path}: {instance!r} not in {schema['enum']}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and isinstance(instance, str) and not re.search(pattern, instance):
        problems.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and isinstance(instance, int) and instance < schema["minimum"]:
        problems.append(f"{path}: {instance} < {schema['minimum']}")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        assert isinstance(props, dict)
        for key in schema.get("required", []):
            if key not in instance:
                problems.append(f"{path}: missing {key}")
        for key, value in instance.items():
            if key in props:
                problems += check(value, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected {key}")
    return problems


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    return json.loads(SCHEMA_FILE.read_text())


def event_of(
    checkin: CheckIn,
    privacy: PrivacyConfig | None = None,
    *,
    clock_synced: bool = True,
    seq: int = 1,
    event_id: str | None = None,
) -> dict[str, object]:
    """The event built for `checkin` at the test gate, with the test privacy key."""
    return build_event(
        checkin,
        site=SITE,
        seq=seq,
        event_id=event_id or uuid7(0),
        clock_synced=clock_synced,
        privacy=privacy or PrivacyConfig(),
        privacy_key=KEY,
    )


def published(
    privacy: PrivacyConfig | None = None, *, replayed: bool = False, i: int = 7
) -> dict[str, object]:
    event = event_of(make_checkin(i), privacy, seq=42, event_id=uuid7(1_700_000_000_000))
    return json.loads(with_replayed(encode_event(event), replayed))


def test_uuid7_layout_and_time() -> None:
    ms = 1_700_000_000_123
    value = uuid.UUID(uuid7(ms))
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == ms
    assert uuid7(ms) != uuid7(ms)
    assert uuid7(ms, b"\xff" * 10) < uuid7(ms + 1, b"\x00" * 10)


def test_utc_ms_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 3, 1, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=7)))
    assert utc_ms(moment) == "2026-03-01T00:08:09.123Z"
    with pytest.raises(ValueError):
        utc_ms(datetime(2026, 3, 1))


@pytest.mark.parametrize("replayed", [False, True])
@pytest.mark.parametrize("subject", list(SubjectMode))
@pytest.mark.parametrize("name", list(NameMode))
def test_built_events_validate_against_the_schema(
    schema: dict[str, object], subject: SubjectMode, name: NameMode, replayed: bool
) -> None:
    event = published(PrivacyConfig(subject=subject, name=name), replayed=replayed)
    assert check(event, schema) == []
    assert event["replayed"] is replayed
    assert event["schema"] == SCHEMA


def test_event_fields(schema: dict[str, object]) -> None:
    event = published()
    assert list(event) == schema["required"]
    assert event["seq"] == 42
    assert (event["province"], event["venue_id"], event["gate_id"]) == ("hn", "stadium", "gate-1")
    assert event["kind"] == "cccd"
    assert event["decision"] == "accepted"
    assert event["reason"] == "ok"
    assert event["verified"] is False
    assert event["clock_synced"] is True
    assert "birth_date" not in json.dumps(event) and "1990" not in json.dumps(event)


def test_refused_event() -> None:
    checkin = make_checkin(1, accepted=False)
    event = event_of(checkin, clock_synced=False)
    assert (event["decision"], event["reason"]) == ("refused", "kind_not_accepted")


def test_subject_without_id_or_name(schema: dict[str, object]) -> None:
    checkin = make_checkin(1)
    bare = replace(checkin, credential=replace(checkin.credential, subject_id=None, name=None))
    event = event_of(bare, clock_synced=False)
    assert event["subject"] == {
        "id": None,
        "id_form": "hmac",
        "name": None,
        "name_form": "initials",
    }
    assert check(json.loads(with_replayed(encode_event(event), False)), schema) == []


def test_every_kind_and_reason_code_fits_the_schema(schema: dict[str, object]) -> None:
    props = schema["properties"]
    assert isinstance(props, dict)
    for kind in Kind:
        assert check(str(kind), props["kind"]) == []
    for reason in Reason:
        assert check(str(reason), props["reason"]) == []


def test_privacy_forms() -> None:
    number = "001099012345"
    hashed = subject_form(number, SubjectMode.HMAC, KEY)
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)
    assert hashed == subject_form(number, SubjectMode.HMAC, KEY)
    assert hashed != subject_form(number, SubjectMode.HMAC, KEY[::-1])
    assert number not in hashed
    assert subject_form(number, SubjectMode.MASKED, None) == "********2345"
    assert subject_form("12345678", SubjectMode.MASKED, None) == "********"
    assert subject_form(number, SubjectMode.PLAIN, None) == number
    with pytest.raises(ValueError):
        subject_form(number, SubjectMode.HMAC, None)
    assert name_form("Nguyễn Văn An", NameMode.INITIALS) == "N.V.A."
    assert name_form("đặng  thị   hoa", NameMode.INITIALS) == "Đ.T.H."
    decomposed = "Nguye\u0302\u0303n"  # NFD, as some cards carry it
    assert name_form(decomposed, NameMode.FULL) == "Nguyễn"
    assert name_form("Nguyễn Văn An", NameMode.NONE) is None
    assert name_form("   ", NameMode.INITIALS) is None


@given(name=st.text(max_size=60), number=st.text(min_size=1, max_size=40))
def test_any_text_gives_valid_json(name: str, number: str) -> None:
    checkin = make_checkin(1)
    odd = replace(checkin, credential=replace(checkin.credential, subject_id=number, name=name))
    for subject in SubjectMode:
        event = event_of(odd, PrivacyConfig(subject=subject, name=NameMode.FULL))
        decoded = json.loads(with_replayed(encode_event(event), True))
        assert decoded["replayed"] is True
        assert decoded["subject"]["name"] == event["subject"]["name"]


def test_captured_at_is_the_checkins_time() -> None:
    checkin = replace(make_checkin(1), captured_at=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    event = event_of(checkin)
    assert event["captured_at"] == "2026-01-02T03:04:05.006Z"
