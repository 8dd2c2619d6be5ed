"""Signature checks shared by the signed kinds (HC1, VDS-NC, gate passes): pure, no I/O."""

import hashlib
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

#: The public key types a trust store holds.
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_P256_HALF = 32
_SHA256 = hashes.SHA256()
#: COSE PS256 (RFC 8230): MGF1 with SHA-256 and a salt as long as the digest.
_PSS = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=_SHA256.digest_size)


class Algorithm(StrEnum):
    ES256 = "ES256"
    PS256 = "PS256"
    ED25519 = "Ed25519"


def key_id(data: bytes) -> bytes:
    """The 8-byte key id of a DER certificate or raw public key: its SHA-256, truncated.

    The EU DCC convention for `kid`; gate passes use it too, so keys need no naming.
    """
    return hashlib.sha256(data).digest()[:8]


def ed25519_kid(public_key: ed25519.Ed25519PublicKey) -> bytes:
    """The key id of a gate-pass key: key_id of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key_id(raw)


def raw_ecdsa_to_der(signature: bytes) -> bytes | None:
    """A P-256 signature as COSE carries it (r||s, 32 bytes each) in the DER that
    cryptography verifies; None for any other length."""
    if len(signature) != 2 * _P256_HALF:
        return None
    r = int.from_bytes(signature[:_P256_HALF], "big")
    s = int.from_bytes(signature[_P256_HALF:], "big")
    return encode_dss_signature(r, s)


def suits(key: PublicKey, algorithm: Algorithm) -> bool:
    """Whether `key` can sign under `algorithm`: ES256 is ECDSA on P-256 only (the hcert
    specification's primary algorithm), PS256 an RSA key, Ed25519 an Ed25519 key."""
    if algorithm is Algorithm.ES256:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    if algorithm is Algorithm.PS256:
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ed25519.Ed25519PublicKey)


def verify(key: PublicKey, algorithm: Algorithm, signature: bytes, message: bytes) -> bool:
    """True when `signature` over `message` verifies with `key` under `algorithm`.

    ES256 takes the DER form (see raw_ecdsa_to_der). A key that does not suit the algorithm
    (`suits`) never verifies.
    """
    if not suits(key, algorithm):
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(_SHA256))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, _PSS, _SHA256)
        else:
            key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
