"""Issuing the site's own gate passes: the operator's side of `gate.credentials.gate_pass`.

The private key stays with the operator (a PEM file readable by its owner only); gates
hold the public half in their trust store. Passes are rendered as QR codes in alphanumeric
mode, which Base45 and the `GP1:` prefix were chosen for.
"""

import datetime
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.credentials.gate_pass import PassBody, signed_message, token
from gate.errors import PassError
from gate.trust.keys import ed25519_kid

PRIVATE_MODE = 0o600
PUBLIC_SUFFIX = ".pub"
#: Medium error correction: a printed or phone-screen pass survives a smudge or glare.
QR_ERROR = "m"


def public_path(private: Path) -> Path:
    """Where keygen puts the public half: beside the private key, `.pub` appended."""
    return private.with_name(private.name + PUBLIC_SUFFIX)


def keygen(private: Path) -> tuple[bytes, Path]:
    """A new Ed25519 key pair: the private key (mode 0600, never overwritten) and its public
    half beside it for the gates' trust stores. Returns the key id and the public file."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = public_path(private)
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        raise PassError(f"{private}: exists; a signing key is never overwritten") from None
    except OSError as exc:
        raise PassError(f"{private}: cannot create ({exc.strerror})") from exc
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    public_key = key.public_key()
    public.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ed25519_kid(public_key), public


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The operator's signing key; refused when others than its owner may read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise PassError(f"{path}: cannot read signing key ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PassError(f"{path}: signing key readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PassError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PassError(f"{path}: not an Ed25519 key")
    return key


def issue(
    key: ed25519.Ed25519PrivateKey,
    *,
    pass_id: str,
    holder: str,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    venue: str,
    gates: Sequence[str] = (),
) -> str:
    """The QR text of a new pass; PassError names the field that breaks the format."""
    body = PassBody(
        kid=ed25519_kid(key.public_key()),
        pass_id=pass_id,
        holder=holder,
        not_before=not_before.replace(microsecond=0),
        not_after=not_after.replace(microsecond=0),
        venue=venue,
        gates=tuple(gates),
    )
    problem = body.problem()
    if problem:
        raise PassError(problem)
    encoded = body.encode()
    return token(encoded, key.sign(signed_message(encoded)))


def render(payload: str, *, png: Path | None = None, svg: Path | None = None) -> int:
    """Save the pass as a QR code (alphanumeric mode); returns the QR version used.

    segno is imported here: only the issuing tool renders, never the running gate.
    """
    import segno

    try:
        code = segno.make(payload, mode="alphanumeric", error=QR_ERROR, micro=False)
        for path in (png, svg):
            if path is not None:
                code.save(str(path), scale=8, border=4)
    except ValueError as exc:  # segno.DataOverflowError included
        raise PassError(f"cannot render the pass as a QR code: {exc}") from exc
    except OSError as exc:
        raise PassError(f"cannot write the QR code: {exc}") from exc
    return int(code.version)
