"""The published check-in event (schema `gate.event.v1`, see schema/event.v1.json).

Pure: an event is a function of the check-in, the gate's identity, its seq and
id, the clock flag and the privacy settings. No I/O, no clock. The outbox assigns
seq and id; `EventRenderer.render` is the callback it fills them in with.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.outbox.config import PrivacyConfig
from gate.privacy import name_form, subject_form

SCHEMA = "gate.event.v1"


def uuid7(unix_ms: int, rand: bytes | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix ms, then 74 random bits; sorts by creation time."""
    tail = int.from_bytes(rand if rand is not None else os.urandom(10), "big")
    value = (unix_ms & (2**48 - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((tail >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # variant
    value |= tail & (2**62 - 1)  # rand_b: 62 bits
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a `Z`; refuses naive datetimes."""
    if moment.tzinfo is None:
        raise ValueError("captured_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    checkin: CheckIn,
    *,
    site: SiteConfig,
    seq: int,
    event_id: str,
    clock_synced: bool,
    privacy: PrivacyConfig,
    privacy_key: bytes | None,
) -> dict[str, object]:
    """The event as stored; `replayed` is added when it is sent (see `with_replayed`)."""
    cred = checkin.credential
    return {
        "schema": SCHEMA,
        "event_id": event_id,
        "seq": seq,
        "province": site.province,
        "venue_id": site.venue_id,
        "gate_id": site.gate_id,
        "captured_at": utc_ms(checkin.captured_at),
        "clock_synced": clock_synced,
        "kind": str(cred.kind),
        "decision": "accepted" if checkin.decision.accepted else "refused",
        "reason": str(checkin.decision.reason),
        "verified": cred.verified,
        "subject": {
            "id": None
            if cred.subject_id is None
            else subject_form(cred.subject_id, privacy.subject, privacy_key),
            "id_form": str(privacy.subject),
            "name": None if cred.name is None else name_form(cred.name, privacy.name),
            "name_form": str(privacy.name),
        },
    }


def encode_event(event: dict[str, object]) -> bytes:
    """Compact UTF-8 JSON; always ends with `}` so `with_replayed` can append a field."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def with_replayed(payload: bytes, replayed: bool) -> bytes:
    """The stored payload with `replayed` appended, without re-encoding the JSON."""
    return payload[:-1] + (b',"replayed":true}' if replayed else b',"replayed":false}')


@dataclass(frozen=True, slots=True)
class EventRenderer:
    """What an event needs besides the check-in and its (seq, id): fixed for a run."""

    site: SiteConfig
    privacy: PrivacyConfig
    privacy_key: bytes | None
    clock_synced: Callable[[], bool]

    def render(self, checkin: CheckIn) -> Callable[[int, str], bytes]:
        """The outbox's `render(seq, event_id)` callback for this check-in."""

        def payload(seq: int, event_id: str) -> bytes:
            return encode_event(
                build_event(
                    checkin,
                    site=self.site,
                    seq=seq,
                    event_id=event_id,
                    clock_synced=self.clock_synced(),
                    privacy=self.privacy,
                    privacy_key=self.privacy_key,
                )
            )

        return payload
