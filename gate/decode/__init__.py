"""QR decoding, the hot path: grey frame in, raw payload bytes out.

zxing-cpp is the fast path where its wheel exists; zbar (pyzbar's ctypes bindings) always
works. Both are restricted to QR and return the symbol's bytes, never a charset guess.
"""

import io
import logging
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from gate.config.base import Field, Section, field_validator
from gate.decode.base import Code, Decoder
from gate.decode.ladder import BothPolarities, LadderDecoder, Rescaled, Rescue, Rung, Scanner
from gate.errors import DecoderError, GateError, ImageReadError

if TYPE_CHECKING:
    from gate.decode.zxing import ZxingDecoder

log = logging.getLogger(__name__)

__all__ = [
    "Code",
    "Decoder",
    "DecoderConfig",
    "LadderDecoder",
    "available_backends",
    "decode_files",
    "load_grey",
    "make_decoder",
]

_BACKENDS = ("zxing", "zbar")
"""In order of preference for `auto`."""

DEFAULT_RESCUE: tuple[Rung, ...] = ("histogram", "upscale", "zbar")
DEFAULT_INVERT_EVERY = 16
"""Chosen by bench/decode_ladder.py and bench/presentation.py (docs/benchmarks-decode.md)."""


class DecoderConfig(Section):
    """Which QR decoder backend reads the frames, and the ladder of attempts around it."""

    backend: Literal["auto", "zxing", "zbar"] = Field(
        default="auto",
        description="QR decoder: zxing (zxing-cpp, fastest, reads more photos), zbar (pyzbar, "
        "always installed) or auto (zxing when its wheel is importable, else zbar).",
    )
    rescue: tuple[Rung, ...] = Field(
        default=DEFAULT_RESCUE,
        max_length=4,
        description="When zxing locates a QR symbol it cannot decode, these attempts run in "
        "order on a crop around it until one reads it: histogram (zxing with the "
        "GlobalHistogram binarizer), upscale (the crop scaled x2), downscale (x0.5), zbar. "
        "Frames without a located symbol cost nothing extra. [] turns the rescue off; no "
        "effect with zbar, which reports no located symbols.",
    )
    invert_every: int = Field(
        default=DEFAULT_INVERT_EVERY,
        ge=0,
        le=1000,
        description="Read one frame in this many in both polarities, for light-on-dark codes "
        "(phones in dark mode); while such a frame reads a code, the next one is read in both "
        "polarities too. A held code is seen in many frames. With zxing the inverted pass costs "
        "about half a pass, with zbar a whole one. 0: never.",
    )

    @field_validator("rescue")
    @classmethod
    def _each_rung_once(cls, rescue: tuple[Rung, ...]) -> tuple[Rung, ...]:
        """A rung named twice would only run twice on the same crop."""
        twice = sorted({r for r in rescue if rescue.count(r) > 1})
        if twice:
            raise ValueError(f"each rescue rung at most once; repeated: {', '.join(twice)}")
        return rescue


@cache
def _load(backend: str) -> Any:
    """Import a backend module once; ImportError says why it is unavailable."""
    return import_module(f"gate.decode.{backend}")


@cache
def _why_unavailable(backend: str) -> str | None:
    """None when the backend imports, else why not."""
    try:
        _load(backend)
    except ImportError as exc:  # a backend there but broken says so as an ImportError too
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


class ZbarOnFirstUse:
    """The zbar rescue rung, which loads pyzbar and libzbar when a rescue first reaches it.

    zxing reads nearly every code at its first pass, so most gates never get this far;
    loading zbar up front cost every gate 1.8 MB and 6 ms of start (bench/import_rss.py).
    The one load happens on a frame that is already being rescued (a slow path).
    A zbar that cannot load turns the rung off, said once in the log.
    """

    def __init__(self) -> None:
        self._decode: Rescue | None = None
        self._unavailable = False

    def __call__(self, crop: np.ndarray) -> list[Code]:
        if self._decode is None:
            if self._unavailable:
                return []
            try:
                self._decode = _backend("zbar").decode
            except DecoderError as exc:
                self._unavailable = True
                log.warning("the zbar rescue rung is off: %s", exc)
                return []
        return self._decode(crop)


def _rung(name: Rung, zxing: "ZxingDecoder") -> Rescue | None:
    """One rescue attempt, built over the primary zxing decoder; None for zbar when pyzbar
    is not installed (looked up, not imported)."""
    if name == "histogram":
        return _load("zxing").ZxingDecoder("global_histogram").decode
    if name == "zbar":
        return ZbarOnFirstUse() if find_spec("pyzbar") is not None else None
    return Rescaled(zxing, 2.0 if name == "upscale" else 0.5)


def make_decoder(config: DecoderConfig) -> Decoder:
    """The decoder the config asks for; DecoderError names a missing backend and the fix."""
    if config.backend == "auto":
        first = next((b for b in _BACKENDS if _why_unavailable(b) is None), None)
        if first is None:
            reasons = "; ".join(f"{b}: {_why_unavailable(b)}" for b in _BACKENDS)
            raise DecoderError(f"no QR decoder backend is available ({reasons})")
        name = first
    else:
        name = config.backend
    primary = _backend(name)
    if name == "zbar":
        both: Scanner = BothPolarities(primary)
        rungs: list[tuple[str, Rescue]] = []
    else:
        zxing = _load("zxing")
        both = zxing.ZxingDecoder(both_polarities=True)
        built = ((r, _rung(r, primary)) for r in config.rescue)
        rungs = [(r, rescue) for r, rescue in built if rescue is not None]
    if not rungs and not config.invert_every:
        return primary
    return LadderDecoder(primary, rungs, both, config.invert_every)


MAX_IMAGE_PIXELS = 4608 * 3472
"""The largest frame a camera gives (Camera Module 3, full resolution). A baseline JPEG up
to four times as large (a phone's 48 MP photo) is decoded at half its width and height,
which libjpeg does a few rows at a time; any other image beyond it is refused before it
is decoded, on a 512 MB Pi: a 150 MP PNG is 450 MB of pixels, and libjpeg keeps a whole
progressive JPEG in memory at its full size, however small it is read (a 541-byte file
claiming 168 MP took 527 MB)."""


def load_grey(source: str | Path | bytes, name: str = "image") -> np.ndarray:
    """An image file, or an image's bytes (`name` says which in errors), as a 2-D uint8 grey
    array; ImageReadError says which image and why."""
    opened: io.BytesIO | Path
    if isinstance(source, bytes):
        where, opened = name, io.BytesIO(source)
    else:
        where = str(source)
        if Path(source).is_dir():
            raise ImageReadError(f"{where}: is a directory, not an image file")
        opened = Path(source)
    try:
        with Image.open(opened) as img:
            progressive = bool(img.info.get("progressive"))
            scale = 2 if img.width * img.height > MAX_IMAGE_PIXELS and not progressive else 1
            img.draft("L", (img.width // scale, img.height // scale))  # a JPEG: grey, scaled
            if img.width * img.height > MAX_IMAGE_PIXELS:  # not a baseline JPEG, or over 4x
                raise ImageReadError(
                    f"{where}: {img.width}x{img.height} is larger than any camera frame "
                    f"({MAX_IMAGE_PIXELS} pixels)"
                    + (": a progressive JPEG is read at its full size" if progressive else "")
                )
            return np.asarray(img if img.mode == "L" else img.convert("L"))  # grey: no copy
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{where}: no such file") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{where}: not an image Pillow can read") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{where}: cannot read image: {exc}") from exc


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
