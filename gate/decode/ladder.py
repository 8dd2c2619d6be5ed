"""The decoding ladder: one cheap pass on every frame, dearer attempts only where they pay.

A gate mostly decodes empty frames, and a held code is seen in many frames. So:

- every frame gets one pass of the primary backend;
- one frame in `invert_every` is read in both polarities (phones in dark mode show
  light-on-dark codes; zxing's inverted pass costs about half a pass); while such a frame
  reads a code, the next frame is read in both polarities too, so a dark-mode screen is
  confirmed as fast as a paper code. Normal codes are read on every frame, so a still image
  decoded once is never read inverted only;
- only when the pass located a QR symbol it could not decode do the rescue rungs run, in
  order, on a crop around that symbol, until one of them reads it.

Empty frames therefore cost one pass, plus half a pass every `invert_every` frames.
bench/decode_ladder.py measures every rung on public test images before it is chosen.
"""

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from gate.decode.base import Box, Code, Decoder

Rung = Literal["histogram", "upscale", "downscale", "zbar"]
Rescue = Callable[[np.ndarray], list[Code]]

MAX_RESCUED_SYMBOLS = 4
"""Located-but-unread symbols rescued per frame: bounds the time a crafted frame can take."""

_MIN_CROP_PX = 21
"""The smallest QR symbol (version 1) is 21 modules: a smaller crop cannot hold one."""


class Scanner(Decoder, Protocol):
    """A backend that also says where it located symbols it could not decode."""

    def scan(self, grey: np.ndarray) -> tuple[list[Code], tuple[Box, ...]]: ...


def rescaled(grey: np.ndarray, factor: float) -> np.ndarray:
    """The image scaled by `factor`: bilinear up, box-filtered down (a rescue path, not hot)."""
    height, width = grey.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resample = Image.Resampling.BILINEAR if factor > 1 else Image.Resampling.BOX
    image = Image.fromarray(np.ascontiguousarray(grey), "L").resize(size, resample)
    return np.asarray(image, dtype=np.uint8)


class Rescaled:
    """A rung: read the crop after rescaling it (small modules grow, blur and noise shrink)."""

    def __init__(self, reader: Decoder, factor: float) -> None:
        self._reader = reader
        self._factor = factor

    def __call__(self, crop: np.ndarray) -> list[Code]:
        return self._reader.decode(rescaled(crop, self._factor))


def crop_around(grey: np.ndarray, box: Box) -> np.ndarray | None:
    """A view of the symbol with a quiet-zone margin around it, or None when too small."""
    height, width = grey.shape
    margin = max(8, (box.right - box.left + box.bottom - box.top) // 10)
    top, bottom = max(0, box.top - margin), min(height, box.bottom + margin + 1)
    left, right = max(0, box.left - margin), min(width, box.right + margin + 1)
    if bottom - top < _MIN_CROP_PX or right - left < _MIN_CROP_PX:
        return None
    return grey[top:bottom, left:right]


class BothPolarities:
    """A backend that cannot invert by itself (zbar), read again on the inverted frame.

    The inverted frame goes to a buffer kept between calls: no allocation per frame.
    """

    def __init__(self, scanner: Scanner) -> None:
        self._scanner = scanner
        self._inverted = np.empty((0, 0), np.uint8)
        self.name = scanner.name

    def decode(self, grey: np.ndarray) -> list[Code]:
        return self.scan(grey)[0]

    def scan(self, grey: np.ndarray) -> tuple[list[Code], tuple[Box, ...]]:
        codes, located = self._scanner.scan(grey)
        if self._inverted.shape != grey.shape:
            self._inverted = np.empty(grey.shape, np.uint8)
        more, also_located = self._scanner.scan(np.invert(grey, out=self._inverted))
        seen = {c.data for c in codes}
        codes.extend(c for c in more if c.data not in seen)
        return codes, located + also_located


class LadderDecoder:
    """The primary pass on every frame, both polarities on a schedule, rescue on demand.

    Not thread-safe (it keeps a frame counter and backend state): one per thread.
    """

    def __init__(
        self,
        primary: Scanner,
        rungs: Sequence[tuple[str, Rescue]],
        both: Scanner | None = None,
        invert_every: int = 0,
    ) -> None:
        self._scan = primary.scan
        self._scan_both = both.scan if both is not None and invert_every else self._scan
        self._rungs = tuple(rescue for _, rescue in rungs)
        self._invert_every = invert_every if both is not None else 0
        self._until_both = self._invert_every
        self._hold_both = False
        self._plain_read = False
        parts = [primary.name, *(name for name, _ in rungs)]
        if self._invert_every:
            parts.append(f"invert/{self._invert_every}")
        self.name = "+".join(parts)

    def decode(self, grey: np.ndarray) -> list[Code]:
        """Every code read in this frame by its pass, and by the rungs where one was located."""
        self._until_both -= 1
        if self._hold_both or self._until_both == 0:
            self._until_both = self._invert_every
            codes, located = self._scan_both(grey)
            # held only for what the plain pass missed: a light-on-dark code, not any code
            self._hold_both = bool(codes) and not self._plain_read
        else:
            codes, located = self._scan(grey)
            self._plain_read = bool(codes)
        if located and self._rungs:
            self._rescue(grey, codes, located)
        return codes

    def _rescue(self, grey: np.ndarray, codes: list[Code], located: tuple[Box, ...]) -> None:
        """Climb the rungs on each located symbol until one reads it; add what is new."""
        seen = {c.data for c in codes}
        for box in located[:MAX_RESCUED_SYMBOLS]:
            crop = crop_around(grey, box)
            if crop is None:
                continue
            for rescue in self._rungs:
                found = [c for c in rescue(crop) if c.data not in seen]
                if found:
                    codes.extend(found)
                    seen.update(c.data for c in found)
                    break
