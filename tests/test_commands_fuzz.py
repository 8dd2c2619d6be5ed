"""The command envelope under fuzz: `check` answers every payload with a Command or a
Refused, never another exception, and accepts nothing but the signed document itself.

Derandomised, so a profile runs the same examples every time; `GATE_FUZZ_EXAMPLES` raises the
budget (tests/fuzzing.py): `GATE_FUZZ_EXAMPLES=100000 pytest tests/test_commands_fuzz.py`.
"""

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from fuzzing import fuzz
from hypothesis import given
from hypothesis import strategies as st

from gate.commands.envelope import Checks, Command, Name, Refused, check, encode, sign
from gate.trust.keys import ed25519_kid

KEY = ed25519.Ed25519PrivateKey.generate()
GATE = "hn/stadium/gate-1"
ROOT = "checkin/hn/stadium/gate-1"
AT = 1_767_225_600_000
NONCE = "B1cJ3u0p2mQ8yXvK4sLr9w"  # fixed, so that every example is the same each run
CHECKS = Checks(
    keys={ed25519_kid(KEY.public_key()).hex(): KEY.public_key()},
    gate=GATE,
    topic_root=ROOT,
    max_skew_ms=300_000,
    max_bytes=65_536,
)
FUZZ = fuzz(300)
MEMBERS = ["schema", "cmd", "target", "topic", "issued_at", "nonce", "key_id", "args", "sig"]

# JSON values as a hostile sender writes them: lone surrogates, huge and odd numbers, nesting
text = st.text(st.characters(codec=None), max_size=40) | st.sampled_from(["\ud800", "a\udfff"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def signed(name: str = "open", args: dict[str, Any] | None = None) -> dict[str, Any]:
    return sign(KEY, name, GATE, f"{ROOT}/cmd/{name}", args, issued_at=AT, nonce=NONCE)


def answer(payload: bytes, name: str = "open") -> Command | Refused:
    """What `check` says; anything but a Command or a Refused fails the test."""
    try:
        return check(payload, name, CHECKS, AT)
    except Refused as refused:
        return refused


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([*Name, "x", "open\n"]))
def test_any_bytes_are_refused_with_a_reason(payload, name):
    assert isinstance(answer(payload, name), Refused)


@FUZZ
@given(st.sampled_from(MEMBERS), values, st.sampled_from(list(Name)))
def test_a_member_replaced_by_any_json_value_is_never_accepted_unless_unchanged(
    member, value, name
):
    original = signed(name, {"pass_ids": []} if name in ("deny_list",) else None)
    mutated = original | {member: value}

    result = answer(encode(mutated), name) if _encodable(mutated) else None

    if isinstance(result, Command):
        assert mutated == original
    else:
        assert result is None or isinstance(result, Refused)


@FUZZ
@given(st.dictionaries(text, values, max_size=3), st.sampled_from(MEMBERS))
def test_members_added_or_removed_are_refused(extra, removed):
    original = signed()
    document = {k: v for k, v in original.items() if k != removed} | extra
    if not _encodable(document) or document == original:
        return
    assert isinstance(answer(encode(document)), Refused)


@FUZZ
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_a_flipped_byte_is_never_accepted(position, flip):
    payload = bytearray(encode(signed()))
    index = position % len(payload)
    payload[index] ^= flip
    result = answer(bytes(payload))
    if isinstance(result, Command):  # only a change JSON reads the same (e.g. a space)
        assert json.loads(payload) == signed()


def test_deep_nesting_and_lone_surrogates_are_refused_not_raised():
    deep = b'{"schema":"gate.command.v2","args":' + nested(100_000) + b"}"
    assert isinstance(answer(deep), Refused)
    args = json.loads(nested(900))
    payload = encode(signed("deny_list") | {"args": {"pass_ids": args}})
    assert isinstance(answer(payload, "deny_list"), Refused)
    surrogate = encode(signed()).replace(b'"args":{}', b'"args":{"\\ud800":1}')
    assert answer(surrogate).reason == "malformed"  # args to open
    lone = json.dumps(signed("deny_list") | {"args": {"pass_ids": ["\ud800"]}}).encode()
    assert isinstance(answer(lone, "deny_list"), Refused)


def test_the_signed_document_itself_is_accepted():
    assert isinstance(answer(encode(signed())), Command)


def _encodable(document: dict[str, Any]) -> bool:
    try:
        encode(document)
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def test_a_signature_written_another_way_is_not_the_signature():
    """The last base64url character of an Ed25519 signature has four unused bits: setting
    them must not give a second text that passes for the signed document."""
    document = signed()
    last = document["sig"][-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bits = alphabet[alphabet.index(last) ^ 1]
    result = answer(encode(document | {"sig": document["sig"][:-1] + same_bits}))
    assert isinstance(result, Refused)
    assert result.detail == "`sig` is not in canonical base64url (its unused bits are set)"
