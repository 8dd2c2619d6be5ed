"""The gate's own Ed25519 key, with which it signs every command result.

Made on first start (or by `gate cmd device-key`, which the installer can run as the gate's
user) at `<state_dir>/commands/device.key`, 0600, never replaced once there. Its public half
is registered with the province (`gate cmd device-key` prints the line to add to the
registry), and `gate cmd send --device-keys REGISTRY` believes a result only when that key
signed it. The registry is the lines `gate cmd device-key` printed, one JSON object per
line, `{"gate": "<province>/<venue_id>/<gate_id>", "public_key": "<base64url raw key>", ...}`;
a later line for the same gate replaces an earlier one (a replaced SD card).
"""

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.b64 import base64url, unbase64
from gate.commands.envelope import CommandError
from gate.files import create_exclusively, read_bounded, warn_if_readable_by_others
from gate.trust.keys import ed25519_kid

FILE = Path("commands") / "device.key"
_RAW_KEY_BYTES = 32
_REGISTRY_MAX_BYTES = 16 * 1_048_576


def load_or_create(state_dir: Path) -> ed25519.Ed25519PrivateKey:
    """This gate's device key, made the first time; CommandError when it cannot be read
    or made (the key that was registered must not be silently replaced)."""
    path = state_dir / FILE
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        create_exclusively(path, pem)
        warn_if_readable_by_others(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise CommandError(f"{path}: cannot read or create the device key ({exc})") from exc
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise CommandError(f"{path}: not an Ed25519 key")
    return key


def check_owner(state_dir: Path, uid: int) -> None:
    """CommandError when `uid` does not own an existing state directory: a key it made
    there (as root, say) would be unreadable to the daemon, and is never replaced."""
    try:
        owner = state_dir.stat().st_uid
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CommandError(f"{state_dir}: cannot examine the state directory ({exc})") from exc
    if owner != uid:
        raise CommandError(
            f"{state_dir} belongs to user {owner}: run this as that user "
            "(sudo -u <user> gate cmd device-key ...), so that the daemon can read the key"
        )


def public_text(key: ed25519.Ed25519PublicKey) -> str:
    """The raw public key, base64url without padding, as the registry holds it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64url(raw)


def registration(gate: str, key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    """The registry line of a gate (what `gate cmd device-key` prints)."""
    public = key.public_key()
    return {"gate": gate, "public_key": public_text(public), "key_id": ed25519_kid(public).hex()}


def read_registry(path: Path) -> dict[str, ed25519.Ed25519PublicKey]:
    """The registered device keys by gate; CommandError naming the line that is wrong."""
    try:
        data = read_bounded(path, _REGISTRY_MAX_BYTES)
    except OSError as exc:
        raise CommandError(f"{path}: cannot read the device key registry ({exc})") from exc
    if data is None:
        raise CommandError(f"{path}: more than {_REGISTRY_MAX_BYTES} bytes")
    keys: dict[str, ed25519.Ed25519PublicKey] = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            gate, text = entry["gate"], entry["public_key"]
            if not isinstance(gate, str) or not isinstance(text, str):
                raise ValueError("not a gate and a base64 public key")
            raw = unbase64(text)
            if len(raw) != _RAW_KEY_BYTES:
                raise ValueError("not a 32-byte public key")
            keys[gate] = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, KeyError, TypeError) as exc:  # binascii.Error is a ValueError
            raise CommandError(
                f'{path}:{number}: expected {{"gate": "p/v/g", "public_key": "..."}} ({exc})'
            ) from exc
    return keys
