"""Base45 (RFC 9285): binary data in the QR alphanumeric character set, as HC1 and gate
passes carry it. Small enough to own rather than depend on."""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {char: value for value, char in enumerate(ALPHABET)}
_PAIR_MAX = 0xFFFF
_BYTE_MAX = 0xFF


def encode(data: bytes) -> str:
    """Two bytes to three characters, a last odd byte to two; least significant first."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] << 8 | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        e, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[e])
    return "".join(out)


def decode(text: str) -> bytes | None:
    """The bytes, or None when `text` is not Base45: a character outside the alphabet,
    a dangling single character, or a group whose value does not fit its bytes."""
    try:
        values = [_VALUE[char] for char in text]
    except KeyError:
        return None
    full, rest = divmod(len(values), 3)
    if rest == 1:
        return None
    out = bytearray()
    for i in range(0, 3 * full, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025
        if n > _PAIR_MAX:
            return None
        out.extend((n >> 8, n & 0xFF))
    if rest:
        n = values[-2] + values[-1] * 45
        if n > _BYTE_MAX:
            return None
        out.append(n)
    return bytes(out)
