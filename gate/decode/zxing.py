"""zxing-cpp: the fast path where its wheel exists.

read_barcodes() takes the numpy buffer with its strides (a camera view with row padding is
read in place, no copy) and releases the GIL while it works. Barcode.bytes is the raw
payload, so no charset guess stands between the symbol and the parsers.
"""

import numpy as np

from gate.decode.base import Code, check_frame, utf8_or_none
from gate.errors import DecoderError

try:
    import zxingcpp
except ImportError as exc:  # no wheel for this platform
    raise ImportError(f"zxing backend unavailable: {exc}") from exc

_OPTIONS = {
    "formats": zxingcpp.BarcodeFormat.QRCode,
    "binarizer": zxingcpp.Binarizer.LocalAverage,
    "try_downscale": False,
    "try_invert": False,
    "try_rotate": False,
    "text_mode": zxingcpp.TextMode.Plain,
}
"""Read options measured by bench/decode_backends.py on 640x480 grey frames.

LocalAverage reads about 7% more of the photo set than GlobalHistogram for 5x the (tiny)
empty-frame cost; downscaling read nothing more, even on large defocused close-ups, and
costs 25% per empty frame; inversion (light-on-dark codes) costs 60% and gates show dark on
light; rotation only concerns linear codes. Plain text mode: Barcode.text is only the
fallback for bytes that are not UTF-8, so it should be the ECI/charset reading.
"""


class ZxingDecoder:
    """QR-only zxing-cpp returning raw bytes. One decoder per thread, like every backend."""

    name = "zxing"

    def scan(self, grey: np.ndarray) -> tuple[list[Code], int]:
        """Decoded codes, and how many QR symbols were located but could not be decoded."""
        check_frame(grey)
        try:
            barcodes = zxingcpp.read_barcodes(grey, return_errors=True, **_OPTIONS)
        except Exception as exc:  # the contract: only DecoderError leaves a decoder
            raise DecoderError(f"zxing-cpp failed on a {grey.shape} frame: {exc}") from exc
        codes: list[Code] = []
        failed = 0
        for barcode in barcodes:
            if not barcode.valid:
                failed += 1
                continue
            data = barcode.bytes
            text = utf8_or_none(data)
            codes.append(Code(data, barcode.text if text is None else text, self.name))
        return codes, failed

    def decode(self, grey: np.ndarray) -> list[Code]:
        """Every QR code zxing-cpp reads in the frame."""
        return self.scan(grey)[0]
