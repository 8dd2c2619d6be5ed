"""Base64 as credentials, key files, trust lists and commands write it: one strict reader,
and the one writer of the unpadded URL-safe form that keys and signatures use."""

import base64

_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


def base64url(data: bytes) -> str:
    """`data` as URL-safe base64 without padding (RFC 7515's form)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unbase64(text: str) -> bytes:
    """The bytes of standard or URL-safe base64 `text`, its `=` padding optional.

    Raises ValueError (`binascii.Error` is one) for any other character, whitespace
    included: a lenient decoder drops what it does not know and reads another value than
    the one written. The URL-safe letters are translated first, not given as `altchars`:
    Python is deprecating standard letters read with another alphabet.
    """
    standard = text.rstrip("=").translate(_URL_SAFE_TO_STANDARD)
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
