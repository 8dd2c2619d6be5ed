"""QR decoding, the hot path: grey frame in, raw payload bytes out.

zxing-cpp is the fast path where its wheel exists; zbar (pyzbar's ctypes bindings) always
works. Both are restricted to QR and return the symbol's bytes, never a charset guess.
"""

from collections.abc import Iterable, Iterator
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from gate.config.base import Section
from gate.decode.base import Code, Decoder
from gate.errors import DecoderError, GateError, ImageReadError

if TYPE_CHECKING:
    from gate.decode.zxing import ZxingDecoder

__all__ = [
    "Code",
    "Decoder",
    "DecoderConfig",
    "SecondTryDecoder",
    "available_backends",
    "decode_files",
    "load_grey",
    "make_decoder",
]

_BACKENDS = ("zxing", "zbar")
"""In order of preference for `auto`."""


class DecoderConfig(Section):
    """Which QR decoder backend reads the frames."""

    backend: Literal["auto", "zxing", "zbar"] = Field(
        "auto",
        description="QR decoder: zxing (zxing-cpp, fastest, reads more photos), zbar (pyzbar, "
        "always installed) or auto (zxing when its wheel is importable, else zbar).",
    )
    second_try: bool = Field(
        True,
        description="When zxing locates a QR symbol it cannot decode, run zbar on the same "
        "frame as well. Frames without any symbol cost nothing extra. No effect with zbar.",
    )


@cache
def _load(backend: str) -> Any:
    """Import a backend module once; ImportError says why it is unavailable."""
    return import_module(f"gate.decode.{backend}")


@cache
def _why_unavailable(backend: str) -> str | None:
    """None when the backend imports, else the import error's message."""
    try:
        _load(backend)
    except ImportError as exc:
        return str(exc)
    return None


def available_backends() -> list[str]:
    """Backends importable here, fastest first."""
    return [b for b in _BACKENDS if _why_unavailable(b) is None]


def _backend(name: str) -> Any:  # ZxingDecoder or ZbarDecoder, imported lazily
    """A new decoder of one backend, or DecoderError naming what is missing."""
    if name not in _BACKENDS:
        raise DecoderError(f"unknown decoder backend {name!r}; known: {', '.join(_BACKENDS)}")
    reason = _why_unavailable(name)
    if reason is not None:
        hint = "pip install zxing-cpp" if name == "zxing" else "apt install libzbar0"
        raise DecoderError(f"decoder backend {name!r} is not available ({reason}); {hint}")
    module = _load(name)
    return module.ZxingDecoder() if name == "zxing" else module.ZbarDecoder()


class SecondTryDecoder:
    """zxing first; zbar only on frames where zxing located a symbol it could not decode.

    Empty frames, the common case at a gate, cost exactly one zxing pass. Not
    thread-safe (it owns a zbar scanner): one decoder per thread.
    """

    name = "zxing+zbar"

    def __init__(self, primary: "ZxingDecoder", fallback: Decoder) -> None:
        self._primary = primary
        self._fallback = fallback

    def decode(self, grey: np.ndarray) -> list[Code]:
        """zxing's codes plus any zbar adds when zxing saw an unreadable symbol."""
        codes, failed = self._primary.scan(grey)
        if not failed:
            return codes
        seen = {c.data for c in codes}
        codes.extend(c for c in self._fallback.decode(grey) if c.data not in seen)
        return codes


def make_decoder(config: DecoderConfig) -> Decoder:
    """The decoder the config asks for; DecoderError names a missing backend and the fix."""
    if config.backend == "auto":
        available = available_backends()
        if not available:
            reasons = "; ".join(f"{b}: {_why_unavailable(b)}" for b in _BACKENDS)
            raise DecoderError(f"no QR decoder backend is available ({reasons})")
        name = available[0]
    else:
        name = config.backend
    decoder = _backend(name)
    if name == "zxing" and config.second_try and "zbar" in available_backends():
        return SecondTryDecoder(decoder, _backend("zbar"))
    return decoder


def load_grey(path: str | Path) -> np.ndarray:
    """An image file as a 2-D uint8 grey array; ImageReadError says which file and why."""
    p = Path(path)
    if p.is_dir():
        raise ImageReadError(f"{p}: is a directory, not an image file")
    try:
        with Image.open(p) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except FileNotFoundError as exc:
        raise ImageReadError(f"{p}: no such file") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{p}: not an image Pillow can read") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{p}: cannot read image: {exc}") from exc


def decode_files(paths: Iterable[str | Path], decoder: Decoder) -> Iterator[dict[str, Any]]:
    """One JSON-able result per file, in order; a bad file gives an error entry, not a stop."""
    for path in paths:
        try:
            codes = decoder.decode(load_grey(path))
        except GateError as exc:
            yield {"file": str(path), "error": str(exc)}
            continue
        yield {
            "file": str(path),
            "codes": [
                {"text": c.text, "data_hex": c.data.hex(), "backend": c.backend} for c in codes
            ],
        }
