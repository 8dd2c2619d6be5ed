"""Base64 as credentials, key files, trust lists and commands write it: one strict reader."""

import base64


def unbase64(text: str) -> bytes:
    """The bytes of standard or URL-safe base64 `text`, its `=` padding optional.

    Raises ValueError (`binascii.Error` is one) for any other character, whitespace
    included: a lenient decoder drops what it does not know and reads another value than
    the one written.
    """
    stripped = text.rstrip("=")
    return base64.b64decode(stripped + "=" * (-len(stripped) % 4), altchars=b"-_", validate=True)
