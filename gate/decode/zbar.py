"""zbar through pyzbar's ctypes bindings, with one scanner and one image kept per decoder.

What makes zbar fit the gate is configuration, not the binding: the scanner is restricted to
QR (empty 640x480 frames about 3x cheaper than pyzbar.decode()'s all-symbologies default)
and ZBAR_CFG_BINARY is set so zbar hands back the symbol's bytes instead of guessing
Shift-JIS/Big5 for UTF-8 text without ECI. Keeping the scanner and image, and reading a
padded camera view in place instead of pyzbar's tobytes() copy, trims the fixed cost per
call from about 27 us to 4 us (bench/decode_backends.py): small next to a 7 ms scan.
"""

import ctypes
import weakref
from ctypes import POINTER, c_uint

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds  # numpy 2
except ImportError:  # numpy 1.x, as Debian bookworm and Raspberry Pi OS ship it (1.24)
    # the installed stubs are numpy 2's, which has no numpy.byte_bounds
    from numpy import byte_bounds  # type: ignore[attr-defined,no-redef]

from gate.decode.base import Box, Code, check_frame, utf8_or_none
from gate.errors import DecoderError

try:
    from pyzbar import wrapper as _zw

    _set_crop = _zw.zbar_function(
        "zbar_image_set_crop", None, POINTER(_zw.zbar_image), c_uint, c_uint, c_uint, c_uint
    )
except ModuleNotFoundError as exc:
    raise ImportError(f"zbar backend unavailable: the pyzbar package is missing ({exc})") from exc
except (ImportError, OSError, AttributeError) as exc:  # pyzbar is there, libzbar is not
    # usable: not found, not loadable (a bad file, another architecture) or too old for a
    # function this module calls; every caller needs to know only "unavailable, and why"
    raise ImportError(
        f"zbar backend unavailable: libzbar cannot be loaded ({type(exc).__name__}: {exc})"
    ) from exc

_ZBAR_NONE = 0
_ZBAR_QRCODE = 64
_CFG_ENABLE = 0
# zbar.h (0.23): ENABLE=0, ADD_CHECK=1, EMIT_CHECK=2, ASCII=3, BINARY=4, NUM=5.
# pyzbar 0.1.9's ZBarConfig enum predates BINARY and calls 4 "CFG_NUM": do not use it.
_CFG_BINARY = 4
_Y800 = 0x30303859  # fourcc("Y", "8", "0", "0"): 8-bit grey, no conversion inside zbar


def _destroy(scanner: object, image: object) -> None:
    """Free the C objects; the frame memory is never zbar's (NULL cleanup handler)."""
    _zw.zbar_image_destroy(image)
    _zw.zbar_image_scanner_destroy(scanner)


def _padded_rows_readable(grey: np.ndarray) -> bool:
    """Whether the row padding of a strided view lies inside memory its array owns.

    zbar's QR binariser reads the whole width*height image, padding included, so the
    padding after the last row must exist: it does for a slice of a camera buffer.
    """
    owner = grey
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    low, high = byte_bounds(owner)
    start = grey.ctypes.data
    return low <= start and start + grey.strides[0] * grey.shape[0] <= high


class ZbarDecoder:
    """QR-only zbar returning raw bytes. Not thread-safe: one decoder per thread."""

    name = "zbar"

    def __init__(self) -> None:
        scanner = _zw.zbar_image_scanner_create()
        image = _zw.zbar_image_create()
        if not scanner or not image:
            raise DecoderError("zbar could not allocate a scanner or an image")
        self._scanner = scanner
        self._image = image
        self._finalizer = weakref.finalize(self, _destroy, scanner, image)
        for symbology, config, value in (
            (_ZBAR_NONE, _CFG_ENABLE, 0),
            (_ZBAR_QRCODE, _CFG_ENABLE, 1),
            (_ZBAR_QRCODE, _CFG_BINARY, 1),
        ):
            if _zw.zbar_image_scanner_set_config(scanner, symbology, config, value) != 0:
                self.close()
                raise DecoderError(
                    f"this libzbar refused config {config}={value} on symbology {symbology};"
                    " zbar >= 0.23 is needed for raw bytes (ZBAR_CFG_BINARY)"
                )
        _zw.zbar_image_set_format(image, _Y800)
        self._geometry = (0, 0, 0)

    def close(self) -> None:
        """Free the zbar objects now rather than at garbage collection."""
        self._finalizer()

    def scan(self, grey: np.ndarray) -> tuple[list[Code], tuple[Box, ...]]:
        """The codes read; zbar never reports a symbol it located but could not decode."""
        return self.decode(grey), ()

    def decode(self, grey: np.ndarray) -> list[Code]:
        """Every QR code zbar reads in the frame, as raw bytes."""
        check_frame(grey)
        if not self._finalizer.alive:
            raise DecoderError("zbar decoder used after close()")
        height, width = grey.shape
        row_stride, pixel_stride = grey.strides
        if (
            pixel_stride != 1
            or row_stride < width
            or (row_stride != width and not _padded_rows_readable(grey))
        ):
            grey = np.ascontiguousarray(grey)
            row_stride = width
        image = self._image
        if self._geometry != (width, height, row_stride):
            _zw.zbar_image_set_size(image, row_stride, height)
            _set_crop(image, 0, 0, width, height)
            self._geometry = (width, height, row_stride)
        # `grey` stays referenced by this frame for the whole scan; zbar never frees it.
        _zw.zbar_image_set_data(image, grey.ctypes.data, row_stride * height, None)
        found = _zw.zbar_scan_image(self._scanner, image)
        if found < 0:
            raise DecoderError(f"zbar failed to scan a {width}x{height} frame")
        codes: list[Code] = []
        symbol = _zw.zbar_image_first_symbol(image) if found else None
        while symbol:
            data = ctypes.string_at(
                _zw.zbar_symbol_get_data(symbol), _zw.zbar_symbol_get_data_length(symbol)
            )
            text = utf8_or_none(data)
            codes.append(Code(data, data.decode("latin-1") if text is None else text, self.name))
            symbol = _zw.zbar_symbol_next(symbol)
        return codes
