"""The trust store: signer certificates and pass keys pinned on the device.

Loaded once, at start and on reload (`load_trust`), from files or directories of:
- certificates, PEM (`.pem`, `.crt`, `.cer`) or DER (`.der`, `.cer`, `.crt`): HC1 Document
  Signer Certificates, indexed by their EU `kid` (SHA-256 of the DER, first 8 bytes), and
  country signing CAs (a CA certificate: basic constraints `ca=true`) for VDS-NC;
- Ed25519 public keys, PEM `PUBLIC KEY` (`.pem`, `.pub`): gate-pass verification keys,
  indexed by the SHA-256 of the raw key, first 8 bytes;
- `kid -> certificate` JSON maps (`.json`): `{"<kid, base64>": "<DER certificate, base64,
  or PEM>"}`; the given kid is used as is (a national list may use its own).
Other files (README, hidden files) are ignored. Never fetched or read at scan time: the
parsers get the loaded store through their context.
"""

import base64
import binascii
import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import Field

from gate.config.base import Section
from gate.errors import TrustError
from gate.reasons import Reason
from gate.trust.keys import PublicKey, ed25519_kid, key_id

CERTIFICATE_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
KEY_SUFFIXES = frozenset({".pem", ".pub"})
MAP_SUFFIX = ".json"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_PUBLIC_KEY = b"-----BEGIN PUBLIC KEY-----"
_PEM_END = b"-----END "
_PEM_PRIVATE = b"PRIVATE KEY-----"


class TrustConfig(Section):
    paths: list[Path] = Field(
        default_factory=list,
        description="Files or directories (read recursively) of pinned signers: certificates "
        "(PEM/DER: HC1 document signers, VDS-NC country signing CAs), gate-pass Ed25519 public "
        "keys (PEM) and `kid -> certificate` JSON maps. Read at start and on reload, never at "
        "scan time; `gate trust list` shows them. Empty: nothing signed can verify.",
    )


@dataclass(frozen=True, slots=True)
class Signer:
    """A pinned certificate, with what verification needs of it extracted once, at load."""

    certificate: x509.Certificate
    public_key: PublicKey
    kid: bytes
    source: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    usages: frozenset[str]  # extended key usage OIDs, dotted; empty when absent
    is_ca: bool

    def window_problem(self, at: datetime.datetime) -> Reason | None:
        """Why the certificate is not valid at `at`, or None inside its validity window."""
        if at > self.not_after:
            return Reason.SIGNER_EXPIRED
        if at < self.not_before:
            return Reason.SIGNER_NOT_YET_VALID
        return None


@dataclass(frozen=True, slots=True)
class PassKey:
    """A gate-pass verification key (the private half stays with the operator)."""

    public_key: ed25519.Ed25519PublicKey
    kid: bytes
    source: str


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Everything pinned, indexed for scan-time lookups. Immutable: a reload builds a new one."""

    signers: Mapping[bytes, Signer] = field(default_factory=dict)
    authorities: Mapping[x509.Name, tuple[Signer, ...]] = field(default_factory=dict)
    pass_keys: Mapping[bytes, PassKey] = field(default_factory=dict)

    @classmethod
    def of(cls, signers: Iterable[Signer] = (), pass_keys: Iterable[PassKey] = ()) -> "TrustStore":
        """A store of these entries; a kid given twice for different keys is an error."""
        by_kid: dict[bytes, Signer] = {}
        authorities: dict[x509.Name, tuple[Signer, ...]] = {}
        for signer in signers:
            known = by_kid.get(signer.kid)
            if known is not None:
                if known.certificate != signer.certificate:
                    raise TrustError(
                        f"kid {_b64(signer.kid)} names two certificates: "
                        f"{known.source} and {signer.source}"
                    )
                continue
            by_kid[signer.kid] = signer
            if signer.is_ca:
                subject = signer.certificate.subject
                authorities[subject] = (*authorities.get(subject, ()), signer)
        keys: dict[bytes, PassKey] = {}
        for key in pass_keys:
            keys.setdefault(key.kid, key)
        return cls(by_kid, authorities, keys)


def signer_from_certificate(
    certificate: x509.Certificate, source: str, kid: bytes | None = None
) -> Signer:
    """A Signer from a certificate; the kid defaults to the EU one (SHA-256 of the DER).

    Every field verification reads is parsed here, once: cryptography parses lazily, and a
    broken name or extension must fail at load (TrustError), never at scan time.
    """
    try:
        public_key = certificate.public_key()
        usages = _usages(certificate)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise TrustError(f"{source}: unusable certificate ({exc})") from exc
    try:
        certificate.subject.rfc4514_string()
        certificate.issuer.rfc4514_string()
    except ValueError as exc:
        raise TrustError(f"{source}: certificate names do not parse ({exc})") from exc
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TrustError(f"{source}: certificate key is neither EC nor RSA")
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Signer(
        certificate=certificate,
        public_key=public_key,
        kid=kid if kid is not None else key_id(der),
        source=source,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        usages=usages,
        is_ca=is_ca,
    )


def _usages(certificate: x509.Certificate) -> frozenset[str]:
    """Extended key usage OIDs, dotted; empty when the certificate has none."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(oid.dotted_string for oid in usage)


def pass_key_from_public_key(public_key: ed25519.Ed25519PublicKey, source: str) -> PassKey:
    return PassKey(public_key=public_key, kid=ed25519_kid(public_key), source=source)


def load_trust(paths: Iterable[Path]) -> TrustStore:
    """Read every trust file under `paths` (files or directories); TrustError on any problem."""
    signers: list[Signer] = []
    pass_keys: list[PassKey] = []
    for file in _files(paths):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise TrustError(f"{file}: cannot read ({exc.strerror})") from exc
        if file.suffix.lower() == MAP_SUFFIX:
            signers.extend(_kid_map(data, str(file)))
            continue
        for entry in _entries(data, file):
            if isinstance(entry, Signer):
                signers.append(entry)
            else:
                pass_keys.append(entry)
    return TrustStore.of(signers, pass_keys)


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    suffixes = CERTIFICATE_SUFFIXES | KEY_SUFFIXES | {MAP_SUFFIX}
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
            yield from (
                p
                for p in candidates
                if p.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            yield path
        else:
            raise TrustError(f"{path}: no such trust file or directory")


def _entries(data: bytes, file: Path) -> list[Signer | PassKey]:
    """The certificates and public keys of one PEM or DER file."""
    source = str(file)
    if _PEM_PRIVATE in data:
        raise TrustError(f"{source}: holds a private key; gates hold public keys only")
    if _PEM_CERTIFICATE not in data and _PEM_PUBLIC_KEY not in data:
        return [signer_from_certificate(_der_certificate(data, source), source)]
    entries: list[Signer | PassKey] = []
    for block in _pem_blocks(data):
        if block.startswith(_PEM_CERTIFICATE):
            try:
                certificate = x509.load_pem_x509_certificate(block)
            except ValueError as exc:
                raise TrustError(f"{source}: invalid PEM certificate ({exc})") from exc
            entries.append(signer_from_certificate(certificate, source))
        elif block.startswith(_PEM_PUBLIC_KEY):
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError as exc:
                raise TrustError(f"{source}: invalid PEM public key ({exc})") from exc
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise TrustError(f"{source}: a bare public key must be Ed25519 (gate passes)")
            entries.append(pass_key_from_public_key(key, source))
    return entries


def _pem_blocks(data: bytes) -> Iterator[bytes]:
    """Each `-----BEGIN X----- ... -----END X-----` block; other PEM types are skipped."""
    for marker in (_PEM_CERTIFICATE, _PEM_PUBLIC_KEY):
        start = data.find(marker)
        while start >= 0:
            end = data.find(_PEM_END, start)
            stop = data.find(b"-----", end + len(_PEM_END)) if end >= 0 else -1
            if stop < 0:
                raise TrustError("unterminated PEM block")
            yield data[start : stop + 5]
            start = data.find(marker, stop)


def _der_certificate(data: bytes, source: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TrustError(f"{source}: not a PEM or DER certificate ({exc})") from exc


def _kid_map(data: bytes, source: str) -> list[Signer]:
    try:
        mapping = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(f"{source}: invalid JSON ({exc})") from exc
    if not isinstance(mapping, dict):
        raise TrustError(f'{source}: expected {{"<kid>": "<certificate>", ...}}')
    signers = []
    for kid_text, cert_text in mapping.items():
        where = f"{source}: kid {kid_text!r}"
        if not isinstance(cert_text, str):
            raise TrustError(f"{where}: certificate must be a base64 DER or PEM string")
        kid = _unbase64(kid_text, where)
        if _PEM_CERTIFICATE.decode() in cert_text:
            try:
                certificate = x509.load_pem_x509_certificate(cert_text.encode())
            except ValueError as exc:
                raise TrustError(f"{where}: invalid PEM certificate ({exc})") from exc
        else:
            certificate = _der_certificate(_unbase64(cert_text, where), where)
        signers.append(signer_from_certificate(certificate, source, kid))
    return signers


def _unbase64(text: str, where: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except binascii.Error as exc:
        raise TrustError(f"{where}: invalid base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
