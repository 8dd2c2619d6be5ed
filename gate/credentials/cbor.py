"""Strict CBOR reading for the signed kinds: exactly one item, and no exception escapes."""

import io

import cbor2
from cbor2 import CBORTag

__all__ = ["CBORTag", "dump", "load"]

#: Everything cbor2 raises on hostile input: its own errors, those of the semantic tags it
#: decodes (dates, big numbers, sets, decimal fractions) on out-of-range or unhashable values
#: (ArithmeticError: the decimal module's Overflow and InvalidOperation, which the tested
#: floor, 5.6, lets out), and, before cbor2 5.7, RecursionError on deeply nested items.
_DECODE_ERRORS = (
    cbor2.CBORError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    RecursionError,
)


def load(data: bytes) -> object | None:
    """The single CBOR item that is all of `data`, or None (broken, or trailing bytes)."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except _DECODE_ERRORS:
        return None
    return value if stream.tell() == len(data) else None


def dump(value: object) -> bytes:
    """Deterministic encoding for what the gate itself signs (Sig_structure, gate passes)."""
    return cbor2.dumps(value, canonical=True)
