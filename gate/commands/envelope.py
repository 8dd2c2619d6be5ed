"""The signed command envelope, its checks, and the signed result every command is answered with.

A command is published on `<topic root>/cmd/<name>` (QoS 1, not retained):

    {"schema": "gate.command.v2", "cmd": "lock", "target": "hn/stadium/gate-1",
     "topic": "checkin/hn/stadium/gate-1/cmd/lock", "issued_at": 1767225600000,
     "nonce": "B1cJ3u0p2mQ8yXvK4sLr9w", "key_id": "3f1c9a0b7d2e4f65", "args": {},
     "sig": "<base64url, no padding>"}

- `schema`: `gate.command.v2`. `cmd`: one of `Name`, the same as the topic's `<name>`.
- `target`: the one gate that is to act, `<province>/<venue_id>/<gate_id>` (no wildcard: a
  command for several gates is signed once per gate, each with its own nonce), and `topic`
  the exact topic it is delivered on. What is signed thus says who is to act and where:
  a command captured on one gate's topic and republished on another's is `wrong_target`.
- `issued_at`: Unix time in milliseconds. `nonce`: 16 to 64 of `[A-Za-z0-9_-]`, new each time.
- `key_id`: hex of the first 8 bytes of SHA-256 of the raw Ed25519 public key, as
  `gate cmd keygen` prints it.
- `args`: an object; `{}` except for `deny_list` and `trust_list` (see `gate.remote_lists`).
- `sig`: Ed25519 over the RFC 8785 canonical JSON (UTF-8) of every other member.

Checks, in order, with the reason each refusal carries: more than `max_payload_bytes`
(`oversized`, not parsed); no operations key configured (`commands_disabled`); not a JSON
object of exactly these members and types, or a repeated member (`malformed`); `cmd` not
known (`unknown_command`); a `cmd` other than the topic's, or args given to a command that
takes none (`malformed`); no `sig` or `key_id` (`unsigned`); a key this gate does not hold or a
signature that does not verify (`bad_signature`); a `target` other than this gate or a
`topic` other than the one it arrived on (`wrong_target`); `issued_at` more than
`max_skew_s` from the gate's clock, either way (`stale`); a nonce already accepted in that
window, or a command issued before the command service started (`replayed`,
`gate.commands.nonces`). Target and time are checked only once the signature holds, so what
they say can be trusted.

Every command gets one result on `<topic root>/cmd/<name>/result` (QoS 1, not retained),
signed by the gate's own device key (`gate.commands.device`):

    {"schema": "gate.command_result.v2", "cmd": "lock", "gate": "hn/stadium/gate-1",
     "nonce": "B1cJ3u0p2mQ8yXvK4sLr9w", "ok": true, "reason": "ok", "at": 1767225600123,
     "state": {"mode": "locked"}, "detail": null, "key_id": "9a0b...", "sig": "..."}

`gate` is who answers, `nonce` is echoed whenever it could be read (else null), `at` is the
gate's clock (Unix ms, so a `stale` refusal shows the skew), `state` the gate after the
command (the full status for `status`), `detail` a few words on a refusal, never a secret;
`key_id` and `sig` as in a command, made with the device key (null when the gate has none).
The sender believes a result only when `result_problem` finds it signed by the key
registered for that gate and answering that gate's nonce.
"""

import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.b64 import base64url, unbase64
from gate.credentials.vds_nc import canonical
from gate.errors import GateError, TrustError
from gate.trust.keys import Algorithm, ed25519_kid, verify
from gate.trust.store import load_trust

SCHEMA = "gate.command.v2"
RESULT_SCHEMA = "gate.command_result.v2"


class Name(StrEnum):
    OPEN = "open"  # one bounded relay pulse, whatever the mode
    LOCK = "lock"  # refuse every scan (`gate_locked`); the exit button still opens
    EMERGENCY_OPEN = "emergency_open"  # hold the relay open (fire)
    NORMAL = "normal"  # back from lock or emergency open
    RELOAD = "reload"  # re-read the config file, as SIGHUP does
    DENY_LIST = "deny_list"  # replace the remotely managed deny list
    TRUST_LIST = "trust_list"  # replace the remotely managed trust list
    STATUS = "status"  # mode, counters, outbox, broker, clock, version


TAKES_ARGS = frozenset({Name.DENY_LIST, Name.TRUST_LIST})


class Outcome(StrEnum):
    """The `reason` of a result: `ok`, or why the command was refused."""

    OK = "ok"
    OVERSIZED = "oversized"
    COMMANDS_DISABLED = "commands_disabled"
    MALFORMED = "malformed"
    UNKNOWN_COMMAND = "unknown_command"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    WRONG_TARGET = "wrong_target"
    STALE = "stale"
    REPLAYED = "replayed"
    BUSY = "busy"  # too many commands at once; nothing done, send again
    INVALID_LIST = "invalid_list"  # deny_list/trust_list args refused; the old list is kept
    RELOAD_FAILED = "reload_failed"  # the config did not reload; the running one is kept
    UNAVAILABLE = "unavailable"  # the relay is not up (the gate is restarting)
    FAILED = "failed"  # an unexpected error; the log says more


class CommandError(GateError, ValueError):
    """A remote command is refused, or cannot be signed or sent."""


class Refused(CommandError):
    """A refusal with its result reason; `detail` is for the operator and holds no secret."""

    def __init__(self, reason: Outcome, detail: str, nonce: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class Command:
    """A command whose signature, target and time have been checked."""

    name: Name
    target: str
    issued_at: int
    nonce: str
    key_id: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Checks:
    """What a command must satisfy at this gate."""

    keys: Mapping[str, ed25519.Ed25519PublicKey]  # by key_id
    gate: str  # province/venue_id/gate_id
    topic_root: str  # where this gate's commands arrive: `<topic_root>/cmd/<name>`
    max_skew_ms: int
    max_bytes: int


_MEMBERS = frozenset(
    {"schema", "cmd", "target", "topic", "issued_at", "nonce", "key_id", "args", "sig"}
)
_REQUIRED = _MEMBERS - {"key_id", "sig"}
_NAMES = frozenset(Name)
NONCE_MAX = 64
_NONCE = re.compile(rf"[A-Za-z0-9_-]{{16,{NONCE_MAX}}}")
_SIG = re.compile(r"[A-Za-z0-9_-]{86}")  # 64 bytes, base64url without padding
_PART = r"[A-Za-z0-9_-]{1,64}"
_TARGET = re.compile(rf"{_PART}/{_PART}/{_PART}")
_TOPIC_MAX = 1024
_MAX_MS = 2**53  # beyond this, JSON readers elsewhere lose precision


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check(payload: bytes, topic_name: str, checks: Checks, at_ms: int) -> Command:
    """The command in `payload`, received on `cmd/<topic_name>`; Refused, in the module
    docstring's order, when it must not run. Pure: keys and time come in."""
    if len(payload) > checks.max_bytes:
        raise Refused(Outcome.OVERSIZED, f"{len(payload)} bytes, at most {checks.max_bytes}")
    document = _document(payload)
    nonce = nonce_in(document)
    if not checks.keys:
        raise Refused(Outcome.COMMANDS_DISABLED, "no operations public key configured", nonce)
    if document is None:
        raise Refused(Outcome.MALFORMED, "not a JSON object (UTF-8, no repeated member)", nonce)
    problem = _shape_problem(document)
    if problem is not None:
        raise Refused(Outcome.MALFORMED, problem, nonce)
    name = document["cmd"]
    if name not in _NAMES:
        raise Refused(Outcome.UNKNOWN_COMMAND, "not a command this gate knows", nonce)
    if name != topic_name:
        raise Refused(Outcome.MALFORMED, f"`cmd` {name} sent on the topic of {topic_name}", nonce)
    if document["args"] and name not in TAKES_ARGS:
        raise Refused(Outcome.MALFORMED, f"{name} takes no args", nonce)
    key_id = _verified_key(document, checks.keys, nonce)
    if document["target"] != checks.gate:
        raise Refused(Outcome.WRONG_TARGET, f"for {document['target']}", nonce)
    if document["topic"] != f"{checks.topic_root}/cmd/{topic_name}":
        raise Refused(Outcome.WRONG_TARGET, f"signed for delivery on {document['topic']}", nonce)
    skew_ms = document["issued_at"] - at_ms
    if abs(skew_ms) > checks.max_skew_ms:
        when = "after" if skew_ms > 0 else "before"
        raise Refused(
            Outcome.STALE, f"issued {abs(skew_ms) / 1000:.0f} s {when} the gate's clock", nonce
        )
    return Command(
        name=Name(name),
        target=document["target"],
        issued_at=document["issued_at"],
        nonce=document["nonce"],
        key_id=key_id,
        args=document["args"],
    )


def _document(payload: bytes) -> dict[str, Any] | None:
    """The payload as a JSON object; None when it is not one (or repeats a member: the
    signer and the gate could read different values)."""
    try:
        value = json.loads(
            payload.decode("utf-8"), object_pairs_hook=_unique, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("repeated member")
    return members


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def nonce_of(payload: bytes) -> str | None:
    """The nonce to echo in a result, read as leniently as that allows."""
    return nonce_in(_document(payload))


def nonce_in(document: dict[str, Any] | None) -> str | None:
    """The nonce to echo in a result, when there is a well-formed one to echo."""
    nonce = document.get("nonce") if document is not None else None
    return nonce if isinstance(nonce, str) and _NONCE.fullmatch(nonce) else None


def _shape_problem(document: dict[str, Any]) -> str | None:
    extra = sorted(set(document) - _MEMBERS)
    if extra:
        return f"unknown member {extra[0]!r}"
    missing = sorted(_REQUIRED - set(document))
    if missing:
        return f"missing member {missing[0]!r}"
    if document["schema"] != SCHEMA:
        return f"schema {document['schema']!r} not supported (this gate reads {SCHEMA})"
    if not isinstance(document["cmd"], str):
        return "`cmd` must be a string"
    target = document["target"]
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        return "`target` must name one gate: province/venue_id/gate_id, no *"
    topic = document["topic"]
    if not isinstance(topic, str) or not 0 < len(topic) <= _TOPIC_MAX:
        return f"`topic` must be the topic it is sent on (at most {_TOPIC_MAX} characters)"
    issued = document["issued_at"]
    if type(issued) is not int or not 0 < issued < _MAX_MS:
        return "`issued_at` must be Unix time in milliseconds"
    if nonce_in(document) is None:
        return "`nonce` must be 16 to 64 characters of [A-Za-z0-9_-]"
    if not isinstance(document["args"], dict):
        return "`args` must be an object"
    return None


def _verified_key(
    document: dict[str, Any], keys: Mapping[str, ed25519.Ed25519PublicKey], nonce: str | None
) -> str:
    """The key_id whose key verifies `sig` over the other members; Refused otherwise."""
    sig, key_id = document.get("sig"), document.get("key_id")
    if sig in (None, "") or key_id in (None, ""):
        raise Refused(Outcome.UNSIGNED, "no `sig` and `key_id`", nonce)
    key = keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        raise Refused(Outcome.BAD_SIGNATURE, "`key_id` is not an operations key here", nonce)
    problem = signature_problem(document, key)
    if problem is not None:
        raise Refused(Outcome.BAD_SIGNATURE, problem, nonce)
    return key_id


def signature_problem(document: Mapping[str, Any], key: ed25519.Ed25519PublicKey) -> str | None:
    """Why `sig` is not `key`'s Ed25519 signature over the other members (a command's or a
    result's); None when it is."""
    sig = document.get("sig")
    if not isinstance(sig, str) or not _SIG.fullmatch(sig):
        return "`sig` is not a base64url Ed25519 signature"
    if document.get("key_id") != ed25519_kid(key).hex():
        return "`key_id` is not the key's"
    try:
        signed = canonical({k: v for k, v in document.items() if k != "sig"}).encode("utf-8")
    except ValueError:  # nested too deep, a lone surrogate, a non-finite number
        return "the members cannot be put in canonical form"
    signature = unbase64(sig)
    if base64url(signature) != sig:
        return "`sig` is not in canonical base64url (its unused bits are set)"
    if not verify(key, Algorithm.ED25519, signature, signed):
        return "the signature does not verify"
    return None


def _signed(key: ed25519.Ed25519PrivateKey, document: dict[str, Any]) -> dict[str, Any]:
    """`document` with `key_id` and `sig` added (see the module docstring)."""
    document = {**document, "key_id": ed25519_kid(key.public_key()).hex()}
    signature = key.sign(canonical(document).encode("utf-8"))
    document["sig"] = base64url(signature)
    return document


def sign(
    key: ed25519.Ed25519PrivateKey,
    name: str,
    target: str,
    topic: str,
    args: Mapping[str, Any] | None = None,
    *,
    issued_at: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A signed envelope for the gate `target`, delivered on `topic`; now and with a fresh
    nonce unless told otherwise (tests are)."""
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "cmd": name,
        "target": target,
        "topic": topic,
        "issued_at": now_ms() if issued_at is None else issued_at,
        "nonce": nonce or secrets.token_urlsafe(16),
        "args": dict(args or {}),
    }
    return _signed(key, document)


def encode(document: Mapping[str, Any]) -> bytes:
    """JSON as sent: compact, UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def result_payload(
    name: str,
    nonce: str | None,
    reason: Outcome,
    *,
    gate: str,
    at_ms: int,
    state: Mapping[str, Any],
    detail: str | None = None,
    device_key: ed25519.Ed25519PrivateKey | None = None,
) -> bytes:
    """The answer on `cmd/<name>/result` (module docstring), signed with `device_key`."""
    document: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "cmd": name,
        "gate": gate,
        "nonce": nonce,
        "ok": reason is Outcome.OK,
        "reason": str(reason),
        "at": at_ms,
        "state": dict(state),
        "detail": detail,
    }
    if device_key is None:
        return encode(document | {"key_id": None, "sig": None})
    return encode(_signed(device_key, document))


def result_problem(
    result: Mapping[str, Any],
    key: ed25519.Ed25519PublicKey | None,
    *,
    gate: str,
    name: str,
    nonce: str,
) -> str | None:
    """Why `result` is not the signed answer of `gate` (whose registered device key is
    `key`) to the command `name` with `nonce`; None when it is."""
    if key is None:
        return f"no device key registered for {gate}"
    if result.get("schema") != RESULT_SCHEMA:
        return f"not a {RESULT_SCHEMA}"
    if (result.get("gate"), result.get("cmd"), result.get("nonce")) != (gate, name, nonce):
        return "not this gate's answer to this command"
    if result.get("sig") is None:
        return "unsigned (the gate has no device key)"
    return signature_problem(result, key)


def operations_keys(paths: Iterable[Path]) -> dict[str, ed25519.Ed25519PublicKey]:
    """The operations public keys by key_id, read by the trust store's own loader (which
    refuses a private key); TrustError when a file is missing, bad or holds a certificate."""
    store = load_trust(paths)
    if store.signers or store.authorities:
        raise TrustError("operations keys must be Ed25519 public keys, not certificates")
    return {kid.hex(): key.public_key for kid, key in store.pass_keys.items()}
