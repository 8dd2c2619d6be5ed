"""What every decoder backend returns and promises: raw bytes first, text second."""

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from gate.errors import DecoderError


@dataclass(frozen=True, slots=True)
class Code:
    """One decoded QR symbol.

    `data` is authoritative: parsers work from bytes because charset guesses are wrong for
    UTF-8 Vietnamese without ECI (docs/formats.md, Character set). `text` is a convenience
    for display.
    """

    data: bytes
    text: str
    backend: str


class Box(NamedTuple):
    """Pixel bounds of a symbol a backend located but could not decode (corners inclusive)."""

    left: int
    top: int
    right: int
    bottom: int


class Decoder(Protocol):
    """Finds and decodes every QR code in one grey frame.

    `grey` is a 2-D uint8 array and may be a non-contiguous view (a camera buffer whose
    row stride exceeds its width). Implementations raise only DecoderError and are not
    thread-safe: one decoder per thread.
    """

    name: str

    def decode(self, grey: np.ndarray) -> list[Code]:
        """Every readable QR code in the frame; [] when there is none."""
        ...


def utf8_or_none(data: bytes) -> str | None:
    """The text when the bytes are valid UTF-8 (real CCCD codes are, without ECI), else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_frame(grey: np.ndarray) -> None:
    """Refuse what no backend can read safely, before any pointer reaches C."""
    if not isinstance(grey, np.ndarray) or grey.dtype != np.uint8 or grey.ndim != 2:
        kind = (
            f"{grey.dtype} array of shape {grey.shape}"
            if isinstance(grey, np.ndarray)
            else (type(grey).__name__)
        )
        raise DecoderError(f"a frame must be a 2-D uint8 grey array, got {kind}")
    if grey.size == 0:
        raise DecoderError(f"empty frame of shape {grey.shape}")
