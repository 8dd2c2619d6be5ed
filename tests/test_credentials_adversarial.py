"""The standing adversarial suite: whatever a QR code can carry, `parse` answers and never raises.

Every hostile generator of tests/credentialgen.py (mutants of valid payloads of every kind,
hostile text, lone surrogates, deep nesting, odd certificate encodings, CBOR and zlib bombs,
overlong fields, far-out CWT claims) runs under Hypothesis, derandomised, so every run meets
the same inputs. The Hypothesis profile sets the budget (tests/fuzzing.py); GATE_FUZZ_EXAMPLES=N
runs N examples per generator. Time and memory are measured, not asserted: bench/fuzz_parse.py
runs a million inputs and prints the worst time per input and the peak memory.
"""

import random

import pytest
from credentialgen import FUZZ_AT, FUZZ_MAX_BYTES, HOSTILE, fuzz_samples, fuzz_trust
from fuzzing import fuzz
from hypothesis import event, given
from hypothesis import strategies as st
from test_credentials_fuzz import assert_consistent

from gate.credentials import Credential, Kind, base45, parse
from gate.credentials.model import REFUSED_KINDS
from gate.reasons import Reason

TRUST = fuzz_trust()
#: A flaw describes a field's shape in a few words; it never carries the field's value.
MAX_FLAW = 80


def judged(payload: bytes) -> Credential:
    return parse(payload, today=FUZZ_AT.date(), at=FUZZ_AT, trust=TRUST, max_bytes=FUZZ_MAX_BYTES)


@pytest.mark.parametrize("generator", sorted(HOSTILE))
@fuzz(150)
@given(seed=st.integers(0, 2**64 - 1))
def test_parse_never_raises_on_hostile_payloads(generator: str, seed: int) -> None:
    """A failure names the seed: `HOSTILE[generator](random.Random(seed))` is the payload."""
    credential = judged(HOSTILE[generator](random.Random(seed)))
    event(f"{credential.kind}: {credential.reason}")
    assert_consistent(credential)
    assert credential.reason is not Reason.INTERNAL_ERROR
    assert credential.flaw is None or len(credential.flaw) <= MAX_FLAW
    if credential.field is not None or credential.flaw is not None:
        assert not credential.valid and credential.kind not in REFUSED_KINDS


def test_the_samples_the_mutants_start_from_are_valid() -> None:
    """Mutating a payload the gate refuses anyway would test only the first check."""
    for kind, samples in fuzz_samples().items():
        for sample in samples:
            credential = judged(sample.encode())
            if kind == "refused":
                assert credential.kind in REFUSED_KINDS
            else:
                assert (credential.kind, credential.valid) == (Kind(kind), True), credential
                assert credential.verified is (credential.kind in {"eu_dcc", "vds_nc", "gate_pass"})


@pytest.mark.parametrize(
    "item",
    ["c5821a3b9aca0001", "c48261616162"],
    ids=["decimal fraction whose exponent overflows", "big float of text parts"],
)
@pytest.mark.parametrize("prefix", ["HC1:", "GP1:"])
def test_cbor_number_tags_that_break_the_decimal_module_are_refused(prefix: str, item: str):
    """cbor2 5.6, the tested floor, lets decimal.Overflow and InvalidOperation out."""
    credential = judged((prefix + base45.encode(bytes.fromhex(item))).encode())
    assert not credential.valid
    assert_consistent(credential)
