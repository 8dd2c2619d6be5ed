"""The trust store: signer certificates and pass keys pinned on the device.

Loaded once, at start and on reload (`load_trust`), from files or directories of:
- certificates, PEM (`.pem`, `.crt`, `.cer`) or DER (`.der`, `.cer`, `.crt`): HC1 Document
  Signer Certificates, indexed by their EU `kid` (SHA-256 of the DER, first 8 bytes), and
  country signing CAs (a CA certificate: basic constraints `ca=true`) for VDS-NC. The two
  roles are kept apart: a CA verifies VDS-NC seal certificates only, never an HC1, and a
  document signer never anchors a chain;
- Ed25519 public keys, PEM `PUBLIC KEY` (`.pem`, `.pub`): gate-pass verification keys,
  indexed by the SHA-256 of the raw key, first 8 bytes;
- `kid -> certificate` JSON maps (`.json`): `{"<kid, base64>": "<DER certificate, base64,
  or PEM>"}`; the given kid is used as is (a national list may use its own). A kid map is a
  list of HC1 document signers: its entries are document signers even when self-signed with
  `ca=true` (the hcert specification allows a country's CSCA to be its DSC).
Other files (README, hidden files) are ignored. Never fetched or read at scan time: the
parsers get the loaded store through their context.

Certificates are parsed strictly (`cryptography`). Some real document signers carry DER that
strict parsing refuses though every verifier reads them (an explicitly encoded default in
BasicConstraints, an empty ExtendedKeyUsage): those are read leniently with `asn1crypto`, for
what an HC1 check needs (key, validity, usages), and only as document signers. A certificate
that neither reads (an X.509 version other than 1-3, a name that does not decode, a key that
is neither EC nor RSA) is a TrustError at load.
"""

import base64
import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gate.b64 import unbase64
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


class Role(StrEnum):
    """What a pinned certificate is trusted for; each role verifies only its own kind."""

    DOCUMENT_SIGNER = "document_signer"  # signs HC1 certificates
    COUNTRY_SIGNING_CA = "country_signing_ca"  # signs VDS-NC seal certificates


@dataclass(frozen=True, slots=True)
class DocumentSigner:
    """A pinned HC1 Document Signer: what verification needs of it, extracted once, at load."""

    public_key: PublicKey
    kid: bytes
    source: str
    subject: str
    der: bytes
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
class Signer(DocumentSigner):
    """A certificate parsed strictly: chains (VDS-NC) need the whole certificate."""

    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class PassKey:
    """A gate-pass verification key (the private half stays with the operator)."""

    public_key: ed25519.Ed25519PublicKey
    kid: bytes
    source: str


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Everything pinned, indexed for scan-time lookups. Immutable: a reload builds a new one.

    `signers` are the HC1 document signers by kid; `authorities` the country signing CAs by
    subject, for VDS-NC chains. A CA pinned as a certificate file is never in `signers`: its
    key signs certificates, not health certificates; a kid map can list it as a signer too.
    """

    signers: Mapping[bytes, DocumentSigner] = field(default_factory=dict)
    authorities: Mapping[x509.Name, tuple[Signer, ...]] = field(default_factory=dict)
    pass_keys: Mapping[bytes, PassKey] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        signers: Iterable[DocumentSigner] = (),
        pass_keys: Iterable[PassKey] = (),
        *,
        listed: Iterable[DocumentSigner] = (),
    ) -> "TrustStore":
        """A store of these entries: `signers` in the role their basic constraints give
        (a CA anchors VDS-NC chains, any other signs HC1), `listed` (kid maps) as document
        signers whatever their constraints. A kid given twice for different certificates is
        an error."""
        seen: dict[bytes, DocumentSigner] = {}
        documents: dict[bytes, DocumentSigner] = {}
        authorities: dict[x509.Name, tuple[Signer, ...]] = {}
        anchors: set[bytes] = set()
        for signer, is_listed in [*((s, False) for s in signers), *((s, True) for s in listed)]:
            known = seen.setdefault(signer.kid, signer)
            if known.der != signer.der:
                raise TrustError(
                    f"kid {_b64(signer.kid)} names two certificates: "
                    f"{known.source} and {signer.source}"
                )
            if is_listed or not signer.is_ca:
                documents.setdefault(signer.kid, signer)
            elif signer.kid in anchors:
                continue
            elif isinstance(signer, Signer):
                anchors.add(signer.kid)
                subject = signer.certificate.subject
                authorities[subject] = (*authorities.get(subject, ()), signer)
            else:
                raise TrustError(
                    f"{signer.source}: a CA certificate must parse strictly to anchor a chain"
                )
        keys: dict[bytes, PassKey] = {}
        for key in pass_keys:
            keys.setdefault(key.kid, key)
        return cls(documents, authorities, keys)

    def pinned(self) -> Iterator[tuple[Role, DocumentSigner]]:
        """Every pinned certificate with its role, document signers first, then CAs."""
        for signer in self.signers.values():
            yield Role.DOCUMENT_SIGNER, signer
        for group in self.authorities.values():
            for authority in group:
                yield Role.COUNTRY_SIGNING_CA, authority


def signer_from_certificate(
    certificate: x509.Certificate, source: str, kid: bytes | None = None
) -> Signer:
    """A Signer from a strictly parsed certificate; the kid defaults to the EU one (SHA-256
    of the DER, first 8 bytes).

    Every field verification reads is parsed here, once: cryptography parses lazily, and a
    broken name or extension must fail at load (TrustError), never at scan time.
    """
    try:
        public_key = certificate.public_key()
        usages = _usages(certificate)
        subject = certificate.subject.rfc4514_string()
        certificate.issuer.rfc4514_string()
        is_ca = _is_ca(certificate)
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    # KeyError: cryptography 45 (the tested floor) on a name attribute of an unknown type
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise TrustError(f"{source}: not a usable certificate ({exc})") from exc
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Signer(
        public_key=_signing_key(public_key, source),
        kid=kid if kid is not None else key_id(der),
        source=source,
        subject=subject,
        der=der,
        not_before=not_before,
        not_after=not_after,
        usages=usages,
        is_ca=is_ca,
        certificate=certificate,
    )


def signer_from_der(der: bytes, source: str, kid: bytes | None = None) -> DocumentSigner:
    """A pinned certificate from its DER: strictly parsed when cryptography can, else read
    leniently as a document signer (module docstring); TrustError when neither can."""
    try:
        return strict_signer_from_der(der, source, kid)
    except TrustError:
        lenient = _lenient_signer(der, source, kid)
        if lenient is None:
            raise
        return lenient


def strict_signer_from_der(der: bytes, source: str, kid: bytes | None = None) -> Signer:
    """A certificate that must parse strictly (a CA, a VDS-NC seal's own); TrustError
    otherwise."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise TrustError(f"{source}: not a PEM or DER certificate ({exc})") from exc
    return signer_from_certificate(certificate, source, kid)


#: What asn1crypto raises on DER it cannot read, found only when a field is first read.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
_X509_VERSIONS = frozenset({"v1", "v2", "v3"})


def _lenient_signer(der: bytes, source: str, kid: bytes | None) -> DocumentSigner | None:
    """A document signer read with asn1crypto, or None when the DER is not a certificate
    with an X.509 version, readable names, validity and an EC or RSA key."""
    try:
        parsed = asn1_x509.Certificate.load(der, strict=True)
        tbs = parsed["tbs_certificate"]
        if tbs["version"].native not in _X509_VERSIONS:
            return None
        subject = parsed.subject.human_friendly
        parsed.issuer.human_friendly  # noqa: B018 - a name that cannot be read fails here
        usage = parsed.extended_key_usage_value
        constraints = parsed.basic_constraints_value
        is_ca = bool(constraints is not None and constraints["ca"].native)
        not_before = tbs["validity"]["not_before"].native
        not_after = tbs["validity"]["not_after"].native
        spki = tbs["subject_public_key_info"].dump()
        usages = frozenset(usage.native) if usage is not None else frozenset()
    except _ASN1_ERRORS:
        return None
    try:
        public_key = serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        return None
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return None
    return DocumentSigner(
        public_key=public_key,
        kid=kid if kid is not None else key_id(der),
        source=source,
        subject=subject,
        der=der,
        not_before=not_before,
        not_after=not_after,
        usages=usages,
        is_ca=is_ca,
    )


def _signing_key(key: object, source: str) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TrustError(f"{source}: certificate key is neither EC nor RSA")
    return key


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


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
    signers: list[DocumentSigner] = []
    listed: list[DocumentSigner] = []
    pass_keys: list[PassKey] = []
    for file in _files(paths):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise TrustError(f"{file}: cannot read ({exc.strerror})") from exc
        if file.suffix.lower() == MAP_SUFFIX:
            listed.extend(_kid_map(data, str(file)))
            continue
        for entry in _entries(data, file):
            if isinstance(entry, DocumentSigner):
                signers.append(entry)
            else:
                pass_keys.append(entry)
    return TrustStore.of(signers, pass_keys, listed=listed)


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


def _entries(data: bytes, file: Path) -> list[DocumentSigner | PassKey]:
    """The certificates and public keys of one PEM or DER file."""
    source = str(file)
    if _PEM_PRIVATE in data:
        raise TrustError(f"{source}: holds a private key; gates hold public keys only")
    if _PEM_CERTIFICATE not in data and _PEM_PUBLIC_KEY not in data:
        return [signer_from_der(data, source)]
    entries: list[DocumentSigner | PassKey] = []
    for block in _pem_blocks(data):
        if block.startswith(_PEM_CERTIFICATE):
            entries.append(signer_from_der(_pem_der(block, source), source))
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


def _pem_der(block: bytes, where: str) -> bytes:
    """The DER inside one PEM certificate block."""
    try:
        kind, _, der = asn1_pem.unarmor(block)
    except ValueError as exc:
        raise TrustError(f"{where}: invalid PEM certificate ({exc})") from exc
    if kind != "CERTIFICATE":
        raise TrustError(f"{where}: invalid PEM certificate (a {kind} block)")
    return der


def _kid_map(data: bytes, source: str) -> list[DocumentSigner]:
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
        pem = _PEM_CERTIFICATE.decode() in cert_text
        der = _pem_der(cert_text.encode(), where) if pem else _unbase64(cert_text, where)
        signers.append(signer_from_der(der, where, kid))
    return signers


def _unbase64(text: str, where: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    try:
        return unbase64("".join(text.split()))
    except ValueError as exc:
        raise TrustError(f"{where}: invalid base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
