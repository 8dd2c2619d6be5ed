"""Gate passes of our own (docs/formats.md "Gate pass"): issued by the site, verified offline.

    GP1:<Base45( CBOR [body, signature] )>
    body      = CBOR [1, kid, pass id, holder, not_before, not_after, venue, [gate, ...]]
    signature = Ed25519 over b"GP1:" + body (the prefix binds the format version)

Every character is in the QR alphanumeric set, so a pass of about 200 characters fits a
version 7-8 code. `kid` is the first 8 bytes of SHA-256 of the raw public key, so a gate
finds the key without a naming scheme. Times are Unix seconds, UTC; the pass is valid from
`not_before` (inclusive) to `not_after` (exclusive). An empty gate list means every gate of
the venue; the policy compares venue and gates with the site's. This module is the one
codec: `gate.trust.passes` issues with it and the gate parses with it.
"""

import datetime
import re
from dataclasses import dataclass

from gate.credentials import base45, cbor
from gate.credentials.fields import blank, text_refusal
from gate.credentials.model import Context, Credential, Kind, judged
from gate.credentials.signed import PASS_PREFIX as PREFIX
from gate.reasons import Reason
from gate.trust.keys import Algorithm, verify

VERSION = 1
SIGNATURE_BYTES = 64
KID_BYTES = 8
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
HOLDER_MAX = 64
_MAX_GATES = 32


@dataclass(frozen=True, slots=True)
class PassBody:
    """What a pass says; `problem` tells why a body cannot be issued or accepted."""

    kid: bytes
    pass_id: str
    holder: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    venue: str
    gates: tuple[str, ...] = ()

    def problem(self) -> str | None:
        """The first field that breaks the format's rules, described, or None."""
        if len(self.kid) != KID_BYTES:
            return f"key id must be {KID_BYTES} bytes"
        if not ID_PATTERN.fullmatch(self.pass_id):
            return "pass id must be 1-64 letters, digits, '_' or '-'"
        if blank(self.holder) or text_refusal("holder", self.holder, HOLDER_MAX):
            return (
                f"holder label must be 1-{HOLDER_MAX} printable characters, without control,"
                " bidi or line-separator characters"
            )
        if not ID_PATTERN.fullmatch(self.venue):
            return "venue must be 1-64 letters, digits, '_' or '-' (the site's venue_id)"
        if len(self.gates) > _MAX_GATES or not all(ID_PATTERN.fullmatch(g) for g in self.gates):
            return f"gates must be at most {_MAX_GATES} ids of 1-64 letters, digits, '_' or '-'"
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None:
            return "validity times must be timezone-aware"
        if self.not_after <= self.not_before:
            return "the pass must end after it starts"
        return None

    def encode(self) -> bytes:
        return cbor.dump(
            [
                VERSION,
                self.kid,
                self.pass_id,
                self.holder,
                int(self.not_before.timestamp()),
                int(self.not_after.timestamp()),
                self.venue,
                list(self.gates),
            ]
        )


def signed_message(body: bytes) -> bytes:
    return PREFIX.encode("ascii") + body


def token(body: bytes, signature: bytes) -> str:
    """The QR text of a signed body."""
    return PREFIX + base45.encode(cbor.dump([body, signature]))


def read_token(text: str) -> tuple[bytes, bytes] | Reason:
    """The signed body and its signature, as carried."""
    data = base45.decode(text.removeprefix(PREFIX))
    if data is None:
        return Reason.BAD_ENCODING
    item = cbor.load(data)
    if not (
        isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], bytes)
        and isinstance(item[1], bytes)
        and len(item[1]) == SIGNATURE_BYTES
    ):
        return Reason.MALFORMED
    return item[0], item[1]


def read_body(body: bytes) -> PassBody | Reason:
    item = cbor.load(body)
    if not (isinstance(item, list) and len(item) == 8 and item[0] == VERSION):
        return Reason.MALFORMED
    _, kid, pass_id, holder, start, end, venue, gates = item
    if not (
        isinstance(kid, bytes)
        and all(isinstance(v, str) for v in (pass_id, holder, venue))
        and all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
        and isinstance(gates, list)
        and all(isinstance(g, str) for g in gates)
    ):
        return Reason.MALFORMED
    try:
        window = [datetime.datetime.fromtimestamp(t, datetime.UTC) for t in (start, end)]
    except (OverflowError, OSError, ValueError):
        return Reason.SCHEMA_INVALID
    parsed = PassBody(kid, pass_id, holder, window[0], window[1], venue, tuple(gates))
    return Reason.SCHEMA_INVALID if parsed.problem() else parsed


def parse(text: str, context: Context) -> Credential | Reason:
    """A pass from a pinned key, or the first problem: signer, signature, then its window."""
    signed = read_token(text)
    if isinstance(signed, Reason):
        return signed
    body_bytes, signature = signed
    body = read_body(body_bytes)
    if isinstance(body, Reason):
        return body
    key = context.trust.pass_keys.get(body.kid)
    problems: list[Reason] = []
    if key is None:
        problems.append(Reason.SIGNER_UNKNOWN)
    elif not verify(key.public_key, Algorithm.ED25519, signature, signed_message(body_bytes)):
        problems.append(Reason.BAD_SIGNATURE)
    if Reason.BAD_SIGNATURE not in problems:
        problems += _window_problems(body, context.at)
    return judged(
        Kind.GATE_PASS,
        problems,
        verified=key is not None and Reason.BAD_SIGNATURE not in problems,
        subject_id=body.pass_id,
        name=body.holder,
        birth_date=None,
        details=details(body),
    )


def details(body: PassBody) -> dict[str, str]:
    """The pass as `gate parse` and `gate pass show` print it."""
    return {
        "pass_id": body.pass_id,
        "venue": body.venue,
        "gates": ",".join(body.gates),
        "not_before": body.not_before.isoformat(),
        "not_after": body.not_after.isoformat(),
        "kid": body.kid.hex(),
    }


def _window_problems(body: PassBody, at: datetime.datetime) -> list[Reason]:
    if at < body.not_before:
        return [Reason.NOT_YET_VALID]
    if at >= body.not_after:
        return [Reason.EXPIRED]
    return []
