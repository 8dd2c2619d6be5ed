"""Camera settings: which frame source, at what size and rate, with what exposure."""

from pathlib import Path
from typing import Literal

from gate.config.base import Field, Section, field_validator


class ReplayConfig(Section):
    paths: list[Path] = Field(
        default_factory=list,
        description="Image files, folders (every image inside, sorted) and glob patterns, "
        "played in order. Relative paths are resolved against the config file's folder.",
    )
    fps: float | None = Field(
        default=10.0,
        gt=0,
        le=240,
        description="Pace frames to this rate; null plays as fast as possible.",
    )
    loop: bool = Field(
        default=True, description="Start again after the last frame; false plays once."
    )
    repeat_each: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Show each image this many consecutive frames, "
        "as a code held in front of the camera would be.",
    )


class CameraConfig(Section):
    source: Literal["picamera2", "replay"] = Field(
        default="picamera2",
        description="`picamera2` on a Raspberry Pi; `replay` plays image files.",
    )
    width: int = Field(
        default=640, ge=64, le=4608, description="Width of the grey (lores) stream in pixels."
    )
    height: int = Field(
        default=480, ge=64, le=3472, description="Height of the grey (lores) stream in pixels."
    )
    fps: float = Field(default=30.0, gt=0, le=120, description="Camera frame rate.")
    frame_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="A capture that waits longer than this is a camera failure.",
    )
    exposure_us: int | None = Field(
        default=4000,
        ge=100,
        le=100_000,
        description="Fixed exposure time in microseconds (2-6 ms freezes a hand-held code); "
        "null for automatic exposure.",
    )
    analogue_gain: float | None = Field(
        default=None, ge=1.0, le=16.0, description="Fixed analogue gain; null for automatic."
    )
    lens_position: float | None = Field(
        default=None,
        ge=0.0,
        le=15.0,
        description="Camera Module 3 focus in dioptres (1/m; 5.0 is about 20 cm); "
        "null for continuous macro autofocus where the camera has it.",
    )
    restart_min_interval_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Wait at least this long between two camera restarts.",
    )
    close_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="A camera that does not close within this time is wedged in the driver: "
        "the daemon exits so that systemd restarts it.",
    )
    replay: ReplayConfig = Field(
        default_factory=ReplayConfig, description="Settings of the replay source."
    )

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even (YUV420 needs it)")
        return value
