"""Who this gate is and where it keeps its state."""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gate.config.base import Field, Section, field_validator

_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class SiteConfig(Section):
    province: str = Field(
        default="dev",
        pattern=_ID_PATTERN,
        description="Province code, the first level of the topic root.",
    )
    venue_id: str = Field(
        default="demo-venue",
        pattern=_ID_PATTERN,
        description="The venue's id as registered with the province.",
    )
    gate_id: str = Field(
        default="gate-1",
        pattern=_ID_PATTERN,
        description="This entrance's id, unique within the venue.",
    )
    device_id: str | None = Field(
        default=None,
        pattern=_ID_PATTERN,
        description="Hardware id used for the MQTT client id; default: the CPU serial, "
        "else the machine id. Never copy it between devices.",
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh",
        description="The venue's time zone (IANA name): local dates for credential checks "
        "and opening hours. Events are always stamped in UTC.",
    )
    state_dir: Path = Field(
        default=Path("/var/lib/gate"),
        description="Writable directory for the outbox and other durable state.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {name!r} (expected an IANA name such as 'Asia/Ho_Chi_Minh')"
            ) from exc
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def name(self) -> str:
        """`province/venue_id/gate_id`: how the province names this gate, the one `target` its
        commands name, and how it signs its answers."""
        return f"{self.province}/{self.venue_id}/{self.gate_id}"
