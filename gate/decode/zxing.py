"""zxing-cpp: the fast path where its wheel exists.

read_barcodes() takes the numpy buffer with its strides (a camera view with row padding is
read in place, no copy) and releases the GIL while it works. Barcode.bytes is the raw
payload, so no charset guess stands between the symbol and the parsers.

Needs zxing-cpp 3.0 or later (`try_invert`, which 2.x lacks: it read both polarities in
every pass, at that cost on every empty frame).
"""

import functools
from typing import Literal

import numpy as np

from gate.decode.base import Box, Code, check_frame, utf8_or_none
from gate.errors import DecoderError

try:
    import zxingcpp
except ImportError as exc:  # no wheel for this platform
    raise ImportError(f"zxing backend unavailable: {exc}") from exc


_READ = functools.partial(
    zxingcpp.read_barcodes,
    # The stubs want BarcodeFormats; the binding converts a single BarcodeFormat implicitly.
    formats=zxingcpp.BarcodeFormat.QRCode,  # type: ignore[arg-type]
    try_downscale=False,
    try_rotate=False,
    text_mode=zxingcpp.TextMode.Plain,
    return_errors=True,
)
"""read_barcodes with the options measured by bench/decode_backends.py and decode_ladder.py.

LocalAverage reads more of the photo sets than GlobalHistogram for about 5x the (tiny)
empty-frame cost, so it reads every frame and GlobalHistogram is a rescue rung;
downscaling read nothing more and costs 25% per empty frame; inversion costs 50% per
frame, so light-on-dark codes are looked for on one frame in N (gate.decode.ladder);
rotation only concerns linear codes. Plain text mode: Barcode.text is only the fallback
for bytes that are not UTF-8, so it should be the ECI/charset reading. return_errors
reports symbols located but not decoded, with their position: the ladder's trigger.
"""

_BINARIZERS = {
    "local_average": zxingcpp.Binarizer.LocalAverage,
    "global_histogram": zxingcpp.Binarizer.GlobalHistogram,
}

_NOTHING_LOCATED: tuple[Box, ...] = ()


def _box(position: "zxingcpp.Position") -> Box:
    """The axis-aligned bounds of a located symbol's four corners."""
    corners = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    xs = [p.x for p in corners]
    ys = [p.y for p in corners]
    return Box(min(xs), min(ys), max(xs), max(ys))


class ZxingDecoder:
    """QR-only zxing-cpp returning raw bytes. One decoder per thread, like every backend."""

    name = "zxing"

    def __init__(
        self,
        binarizer: Literal["local_average", "global_histogram"] = "local_average",
        both_polarities: bool = False,
    ) -> None:
        self._read = functools.partial(
            _READ, binarizer=_BINARIZERS[binarizer], try_invert=both_polarities
        )

    def scan(self, grey: np.ndarray) -> tuple[list[Code], tuple[Box, ...]]:
        """Decoded codes, and the bounds of QR symbols located but not decoded."""
        check_frame(grey)
        try:
            barcodes = self._read(grey)
        except Exception as exc:  # the contract: only DecoderError leaves a decoder
            raise DecoderError(f"zxing-cpp failed on a {grey.shape} frame: {exc}") from exc
        codes: list[Code] = []
        located = _NOTHING_LOCATED
        for barcode in barcodes:
            if not barcode.valid:
                located = (*located, _box(barcode.position))
                continue
            data = barcode.bytes
            text = utf8_or_none(data)
            codes.append(Code(data, barcode.text if text is None else text, self.name))
        return codes, located

    def decode(self, grey: np.ndarray) -> list[Code]:
        """Every QR code zxing-cpp reads in the frame."""
        return self.scan(grey)[0]
