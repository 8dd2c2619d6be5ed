"""Config sections of the outbox, the publisher and privacy at the edge.

The root config holds them under `mqtt`, `outbox` and `privacy`, next to `site`.
Secrets are referenced by path and never stored in the config or logged.
"""

import string
from enum import StrEnum
from pathlib import Path
from typing import Self

from gate.config.base import Field, Section, field_validator, model_validator

TOPIC_FIELDS = frozenset({"province", "venue_id", "gate_id", "device_id"})
MQTT_PACKET_LIMIT = 268_435_455  # the largest packet MQTT can encode (remaining length)
DEFAULT_MAX_PACKET = 1024 * 1024 + 64 * 1024
"""A 1 MiB command payload (the commands' own cap) plus room for its topic and properties."""


class Transport(StrEnum):
    TLS = "tls"
    PLAIN = "plain"


class Protocol(StrEnum):
    V5 = "v5"
    V311 = "v311"


class SubjectMode(StrEnum):
    HMAC = "hmac"
    MASKED = "masked"
    PLAIN = "plain"


class NameMode(StrEnum):
    INITIALS = "initials"
    NONE = "none"
    FULL = "full"


class MqttConfig(Section):
    host: str = Field(
        default="localhost",
        min_length=1,
        description="Broker host name or address (the provincial broker).",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Broker TCP port; default 8883 with TLS, 1883 with plain TCP.",
    )
    transport: Transport = Field(
        default=Transport.TLS,
        description="`tls` (server verified, client certificate if given) or `plain` TCP; "
        "plain only when a config says so explicitly.",
    )
    protocol: Protocol = Field(
        default=Protocol.V5,
        description="MQTT `v5` (default: refused publishes are visible in PUBACK reason codes) "
        "or `v311` (a broker that drops a publish still acknowledges it).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the broker's certificate; "
        "default: the system's trusted CAs.",
    )
    cert_file: Path | None = Field(
        default=None,
        description="PEM client certificate presented to the broker (needs `key_file`).",
    )
    key_file: Path | None = Field(
        default=None,
        description="PEM private key of `cert_file`; read by the TLS library, never logged.",
    )
    username: str | None = Field(
        default=None, min_length=1, description="MQTT user name; none for certificate-only login."
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the MQTT password (first line); needs `username`. "
        "The password is never logged nor put in the config.",
    )
    keepalive: int = Field(
        default=30,
        ge=2,
        le=65535,
        description="MQTT keepalive in seconds; a silent broker is detected after about "
        "1.5 times this.",
    )
    connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Timeout of the TCP/TLS connect and of the wait for CONNACK.",
    )
    topic_root: str = Field(
        default="checkin/{province}/{venue_id}/{gate_id}",
        min_length=1,
        description="Topic root; `{province}`, `{venue_id}`, `{gate_id}` and `{device_id}` are "
        "filled in from `site` (bare: no format spec or conversion). Topics below it: `event`, "
        "`status`, `telemetry`, `cmd/<name>`.",
    )
    max_inflight: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Most events sent and not yet acknowledged; the rest wait in the outbox.",
    )
    reconnect_min_s: float = Field(
        default=1.0, gt=0, le=3600, description="First reconnect delay; doubles on each failure."
    )
    reconnect_max_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest reconnect delay (jitter of up to 50% below it).",
    )
    ack_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="An event unacknowledged this long means the connection is stuck: "
        "it is dropped and the events are sent again.",
    )
    telemetry_interval_s: float = Field(
        default=60.0, gt=0, le=86400, description="Seconds between `telemetry` messages."
    )
    max_packet_bytes: int = Field(
        default=DEFAULT_MAX_PACKET,
        ge=4096,
        le=MQTT_PACKET_LIMIT,
        description="Largest MQTT packet the gate accepts: sent as Maximum Packet Size in the "
        "v5 CONNECT (the broker drops bigger messages for this gate), and checked again on "
        "every command received, before it is queued. The default fits a 1 MiB command. "
        "A v3.1.1 gate has no such field: set the broker's `max_packet_size` instead.",
    )

    @field_validator("topic_root")
    @classmethod
    def _topic_root_is_a_template(cls, value: str) -> str:
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc}); write braces as {{{{ }}}}") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in TOPIC_FIELDS:
                raise ValueError(
                    f"unknown placeholder {{{name}}}; allowed: "
                    + ", ".join(f"{{{field}}}" for field in sorted(TOPIC_FIELDS))
                )
            if spec or conversion:
                raise ValueError(
                    f"placeholder {{{name}}} must be bare: no format spec or conversion "
                    f"(got {spec or ''}{'!' + conversion if conversion else ''})"
                )
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
            raise ValueError("must not contain '+', '#' or NUL, nor start or end with '/'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        if self.transport is Transport.PLAIN and (self.cert_file or self.ca_file):
            raise ValueError("ca_file/cert_file need transport: tls")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, or the protocol's well-known one."""
        if self.port is not None:
            return self.port
        return 8883 if self.transport is Transport.TLS else 1883


class OutboxConfig(Section):
    path: Path | None = Field(
        default=None,
        description="SQLite file of the outbox; default `<site.state_dir>/outbox.sqlite3`.",
    )
    max_rows: int = Field(
        default=200_000,
        ge=1,
        le=100_000_000,
        description="Most unsent events kept; beyond it new scans are refused with the "
        "storage-full signal (stored events are never overwritten).",
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=4096,
        le=2**50,
        description="Most bytes of unsent event payloads kept (the file is larger by "
        "SQLite's overhead); same effect as `max_rows`.",
    )
    high_water: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Fraction of either cap at which telemetry raises the high-water warning.",
    )


class PrivacyConfig(Section):
    subject: SubjectMode = Field(
        default=SubjectMode.HMAC,
        description="What leaves the device of the subject's id number: `hmac` (HMAC-SHA256 "
        "with the site secret, hex), `masked` (last 4 characters), or `plain`.",
    )
    name: NameMode = Field(
        default=NameMode.INITIALS,
        description="What leaves the device of the subject's name: `initials`, `none` or `full`.",
    )
    secret_file: Path | None = Field(
        default=None,
        description="File holding the HMAC key (at least 16 bytes). Share it between the gates "
        "whose subjects must match; default `<site.state_dir>/privacy.key`, created with a "
        "random key (so unlinkable across gates) on first start.",
    )
