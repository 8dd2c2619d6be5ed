"""The frame source interface, and the factory that picks one from config."""

import threading
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from gate.camera.config import CameraConfig
from gate.camera.replay import ReplaySource


class FrameSource(Protocol):
    """Produces grey frames (2-D uint8, possibly a strided view).

    A yielded frame is valid only until the next one is requested: a camera hands
    out its own buffer and takes it back, so nothing may keep a reference.

    A source may also offer `describe() -> dict[str, float]` (picamera2: `exposure_us`,
    `analogue_gain`), called between two frames of `frames()`; `gate selftest` shows it.
    """

    name: str

    def open(self) -> None: ...

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        """Yield frames until `stop` is set; raise CameraError when the camera fails."""
        ...

    def close(self) -> None: ...


def make_source(config: CameraConfig) -> FrameSource:
    """The configured source; picamera2 is imported only when it is asked for."""
    if config.source == "picamera2":
        from gate.camera.picam import PicameraSource

        return PicameraSource(config)
    return ReplaySource.from_config(config.replay)
