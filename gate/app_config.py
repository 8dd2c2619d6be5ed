"""The whole gate configuration: one section per feature, each owned by its feature's module."""

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from gate.camera.config import CameraConfig
from gate.commands.config import CommandsConfig
from gate.config.base import Field, Section
from gate.config.loader import load_model
from gate.config.site import SiteConfig
from gate.decode import DecoderConfig
from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.policy import PolicyConfig
from gate.presentation import PresentationConfig
from gate.signals import SignalsConfig
from gate.trust.config import TrustConfig

M = TypeVar("M", bound=Section)

DEFAULT_PATH = Path("/etc/gate/gate.yaml")


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level; `debug` adds detail, never per-frame lines."
    )
    status_interval_s: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="Seconds between the one-line status (fps, decode ms, check-ins) in the log.",
    )


class ServiceConfig(Section):
    stall_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="No frame processed for this long is a stall: the systemd watchdog pings "
        "stop, and systemd restarts the service once WatchdogSec passes.",
    )


RESTART_SECTIONS = ("site", "outbox", "mqtt", "privacy")
"""Sections the store and the publisher hold open: a reload that changes one restarts the daemon."""


class GateConfig(Section):
    site: SiteConfig = Field(default_factory=SiteConfig, description="Who this gate is.")
    camera: CameraConfig = Field(default_factory=CameraConfig, description="The frame source.")
    decoder: DecoderConfig = Field(default_factory=DecoderConfig, description="QR decoding.")
    presentation: PresentationConfig = Field(
        default_factory=PresentationConfig, description="One check-in per presentation."
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Who may pass.")
    trust: TrustConfig = Field(
        default_factory=TrustConfig,
        description="Signers pinned on the device (offline trust).",
    )
    signals: SignalsConfig = Field(
        default_factory=SignalsConfig,
        description="LEDs, buzzer, relay, exit button, door contact.",
    )
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig,
        description="The durable store of check-ins not yet sent.",
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="The provincial broker.")
    privacy: PrivacyConfig = Field(
        default_factory=PrivacyConfig, description="What of a person leaves the device."
    )
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    service: ServiceConfig = Field(
        default_factory=ServiceConfig, description="Supervision by systemd."
    )
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig,
        description="Remote commands over MQTT, signed by the operations team.",
    )


def load_config(path: Path, text: str | None = None) -> GateConfig:
    """Load and validate the config (or `text`, as that file's); relative paths in it are
    relative to its folder."""
    return _resolve_paths(load_model(path, GateConfig, text), path.parent.resolve())


def _resolve_paths(section: M, base: Path) -> M:
    """Every relative Path (alone or in a list) made absolute against `base`, recursively."""
    changes: dict[str, Any] = {}
    for name in type(section).model_fields:
        value = getattr(section, name)
        resolved: object
        if isinstance(value, Section):
            resolved = _resolve_paths(value, base)
        elif isinstance(value, Path):
            resolved = _absolute(base, value)
        elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
            resolved = [_absolute(base, v) for v in value]
        else:
            continue
        if resolved is not value:
            changes[name] = resolved
    return section.model_copy(update=changes) if changes else section


def _absolute(base: Path, path: Path) -> Path:
    """`base / path`, with `..` folded so that logs show where a file really is."""
    return Path(os.path.normpath(base / path))
