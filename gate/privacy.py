"""Privacy at the edge: what of a subject's id and name may leave the device."""

import hashlib
import hmac
import logging
import os
import unicodedata
from pathlib import Path

from gate.config.site import SiteConfig
from gate.errors import ConfigError
from gate.files import warn_if_readable_by_others, write_atomically
from gate.outbox.config import NameMode, PrivacyConfig, SubjectMode

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 16
_VISIBLE_TAIL = 4


def subject_form(value: str, mode: SubjectMode, key: bytes | None) -> str:
    """The subject id as it may be published under `mode`."""
    if mode is SubjectMode.PLAIN:
        return value
    if mode is SubjectMode.MASKED:
        tail = _VISIBLE_TAIL if len(value) > 2 * _VISIBLE_TAIL else 0
        return "*" * (len(value) - tail) + value[len(value) - tail :]
    if not key:
        raise ValueError("hmac subject mode needs a key")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def name_form(value: str, mode: NameMode) -> str | None:
    """The name as it may be published under `mode` (initials keep diacritics: `Đ.V.A.`)."""
    if mode is NameMode.NONE:
        return None
    text = unicodedata.normalize("NFC", value).strip()
    if mode is NameMode.FULL:
        return text
    return "".join(f"{word[0].upper()}." for word in text.split()) or None


def secret_path(privacy: PrivacyConfig, site: SiteConfig) -> Path:
    """Where the HMAC key lives."""
    return privacy.secret_file or site.state_dir / "privacy.key"


def load_key(privacy: PrivacyConfig, site: SiteConfig) -> bytes | None:
    """The HMAC key for `hmac` mode (None otherwise).

    A configured file must exist; the default file is created with a random key
    on first use, which makes hashes unlinkable across gates: share one file
    between gates whose subjects should match.
    """
    if privacy.subject is not SubjectMode.HMAC:
        return None
    path = secret_path(privacy, site)
    if privacy.secret_file is None and not path.exists():
        try:
            _create_key(path)
        except OSError as exc:
            raise ConfigError(f"cannot create the privacy key {path}: {exc.strerror}") from exc
    warn_if_readable_by_others(path)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"privacy.secret_file {path}: cannot read ({exc.strerror})") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"privacy.secret_file {path}: key shorter than {MIN_KEY_BYTES} bytes")
    return key


def _create_key(path: Path) -> None:
    write_atomically(path, os.urandom(32).hex().encode() + b"\n", mode=0o600)
    log.warning("created a per-gate privacy key at %s: subject hashes match only here", path)
