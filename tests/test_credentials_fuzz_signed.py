"""Properties of the signed and newer parsers (HC1, VDS-NC, gate pass, BHYT, refused kinds).

Mutations act on the layer under the transport encoding (the COSE bytes inside Base45 and
zlib, the CBOR inside a pass, the JSON of a seal), so that they reach the deep parsers and
the signature checks instead of stopping at a broken Base45 character. The trust store
holds the generators' keys, so well-formed mutants are verified, or refused as forged.
Derandomised, like the rest of the fuzzing; the samples are the same bytes in every run
(deterministic keys and ECDSA), which is why PS256 (random salts) is covered by the VN
sample's structure here and by tests/test_dcc.py for its signatures.
"""

import datetime
import json
import zlib
from collections.abc import Callable
from pathlib import Path

from credentialgen import (
    bhyt,
    certificate,
    cose,
    ec_key,
    ed_key,
    hc1,
    hexed,
    kid_of,
    lab_test,
    recovery,
    vaccination,
    vds_seal,
    vds_test,
    vds_vaccination,
)
from fuzzing import fuzz
from hypothesis import event, given
from hypothesis import strategies as st
from test_credentials_fuzz import assert_consistent, flip_byte, truncate

from gate.credentials import Kind, base45, parse
from gate.credentials.fields import blank
from gate.reasons import Reason
from gate.trust import passes
from gate.trust.store import TrustStore, pass_key_from_public_key, signer_from_certificate

UTC = datetime.UTC
AT = datetime.datetime(2025, 6, 1, 10, tzinfo=UTC)
EC_CERT = certificate(ec_key(40), subject="Fuzz ES256")
CSCA = certificate(ec_key(41), subject="Fuzz CSCA", ca=True)
SEAL_CERT = certificate(ec_key(42), subject="Fuzz VDS", issuer=(CSCA.subject, ec_key(41)))
TRUST = TrustStore.of(
    [signer_from_certificate(c, "fuzz") for c in (EC_CERT, CSCA)],
    [pass_key_from_public_key(ed_key(40).public_key(), "fuzz")],
)
VN_SAMPLE = (Path(__file__).parent / "data" / "dcc-vn-test-sample.txt").read_text().strip()
HC1_SAMPLES = [
    VN_SAMPLE,
    hc1(cose(vaccination(), ec_key(40), kid=kid_of(EC_CERT))),
    hc1(cose(lab_test(), ec_key(40), kid=kid_of(EC_CERT))),
    hc1(cose(recovery(), ec_key(40), kid=None, unprotected_kid=kid_of(EC_CERT), tag=None)),
]
PASS_SAMPLES = [
    passes.issue(
        ed_key(40),
        pass_id="fuzz-1",
        holder="Khách mời",
        not_before=datetime.datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime.datetime(2026, 1, 1, tzinfo=UTC),
        venue="demo-venue",
        gates=["gate-1"],
    )
]
SEAL_SAMPLES = [
    vds_seal(vds_vaccination(), ec_key(42), SEAL_CERT),
    vds_seal(vds_test(), ec_key(42), SEAL_CERT),
]
BHYT_SAMPLES = [
    bhyt(),
    bhyt(valid_to="31/12/2025", extra=["79", hexed("Nguyễn Văn Bố"), "4", "01/01/2024", "AB"]),
]


def check(payload: bytes) -> None:
    credential = parse(payload, today=AT.date(), at=AT, trust=TRUST)
    event(f"{credential.kind}: {credential.reason}")
    assert_consistent(credential)


# --- Arbitrary text after each recognised prefix --------------------------------------------

PREFIXES = ["HC1:", "GP1:", '{"data":', '{"sig":', "000201", "shc:/", "https://", "www."]


@fuzz(2000)
@given(
    st.sampled_from(PREFIXES),
    st.text(st.sampled_from(base45.ALPHABET), max_size=120) | st.text(max_size=120),
)
def test_arbitrary_text_after_a_prefix_never_raises(prefix: str, rest: str) -> None:
    check((prefix + rest).encode("utf-8", "surrogatepass"))


@fuzz(1000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_a_signed_body_never_raise(body: bytes) -> None:
    """Random bytes behind valid transport layers: straight into COSE and pass decoding."""
    check(("HC1:" + base45.encode(zlib.compress(body))).encode())
    check(("HC1:" + base45.encode(body)).encode())
    check(("GP1:" + base45.encode(body)).encode())


# --- Valid payloads, mutated under their transport encoding ---------------------------------

Layer = Callable[[st.DrawFn, str], str]


def mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        data = draw(st.sampled_from([flip_byte, truncate, duplicate_slice]))(draw, data)
    return data


def duplicate_slice(draw: st.DrawFn, data: bytes) -> bytes:
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, min(len(data), start + 16)))
    return data[:end] + data[start:end] + data[end:]


def hc1_layer(draw: st.DrawFn, text: str) -> str:
    raw = base45.decode(text[4:]) or b""
    cose_bytes = mutate_bytes(draw, zlib.decompress(raw))
    return "HC1:" + base45.encode(zlib.compress(cose_bytes) if draw(st.booleans()) else cose_bytes)


def pass_layer(draw: st.DrawFn, text: str) -> str:
    return "GP1:" + base45.encode(mutate_bytes(draw, base45.decode(text[4:]) or b""))


def seal_layer(draw: st.DrawFn, text: str) -> str:
    """Change one value somewhere in the seal, keeping valid JSON."""
    seal = json.loads(text)
    path = draw(st.sampled_from([("data", "msg"), ("data", "hdr"), ("sig",)]))
    node = seal
    for key in path:
        node = node[key]
    key = draw(st.sampled_from(sorted(node)))
    node[key] = draw(
        st.none() | st.integers(-5, 5) | st.text(max_size=8) | st.just(node[key]) | st.just({})
    )
    return json.dumps(seal, ensure_ascii=draw(st.booleans()))


def text_layer(draw: st.DrawFn, text: str) -> str:
    data = mutate_bytes(draw, text.encode())
    return data.decode("utf-8", "replace")


LAYERS: list[tuple[list[str], Layer]] = [
    (HC1_SAMPLES, hc1_layer),
    (HC1_SAMPLES + PASS_SAMPLES + SEAL_SAMPLES + BHYT_SAMPLES, text_layer),
    (PASS_SAMPLES, pass_layer),
    (SEAL_SAMPLES, seal_layer),
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    samples, layer = draw(st.sampled_from(LAYERS))
    return layer(draw, draw(st.sampled_from(samples)))


@fuzz(3500)
@given(mutated())
def test_mutated_signed_payloads_never_raise(text: str) -> None:
    check(text.encode())


def test_unmutated_samples_are_what_they_claim() -> None:
    """The fuzz starts from good payloads: each verifies (the VN sample's signer is unknown)."""
    for text in HC1_SAMPLES[1:] + PASS_SAMPLES + SEAL_SAMPLES:
        credential = parse(text.encode(), today=AT.date(), at=AT, trust=TRUST)
        assert credential.verified and credential.valid, credential
    sample = parse(VN_SAMPLE.encode(), today=AT.date(), at=AT, trust=TRUST)
    assert sample.reason is Reason.SIGNER_UNKNOWN
    for text in BHYT_SAMPLES:
        assert parse(text.encode(), today=AT.date()).kind is Kind.BHYT


# --- BHYT, generated ------------------------------------------------------------------------

FIELD_CHARS = st.characters(
    exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp"), exclude_characters="|"
)


@st.composite
def cards(draw: st.DrawFn) -> str:
    birth = draw(st.dates(datetime.date(1920, 1, 1), AT.date()))
    start = draw(st.dates(birth, AT.date()))
    end = draw(st.none() | st.dates(AT.date(), datetime.date(2035, 1, 1)))
    number = draw(
        st.from_regex(r"\A[A-Z]{2}[0-9]{13}\Z", fullmatch=True)
        | st.from_regex(r"\A[0-9]{10}\Z", fullmatch=True)
    )
    name = draw(st.text(FIELD_CHARS, min_size=1, max_size=100).filter(lambda t: not blank(t)))
    return bhyt(
        card=number,
        holder=name,
        birth=birth.strftime("%d/%m/%Y"),
        sex=draw(st.sampled_from("12")),
        valid_from=start.strftime("%d/%m/%Y"),
        valid_to=end.strftime("%d/%m/%Y") if end else "-",
        issued=start.strftime("%d/%m/%Y"),
        extra=[
            draw(st.text(FIELD_CHARS, max_size=8)),  # management code
            draw(st.just("-") | st.text(FIELD_CHARS, max_size=20).map(hexed)),  # parents' names
            draw(st.text(FIELD_CHARS, max_size=8)),  # benefit code
        ][: draw(st.integers(0, 3))],
    )


@fuzz(1000)
@given(cards())
def test_well_formed_bhyt_cards_are_valid(text: str) -> None:
    credential = parse(text.encode("utf-8", "surrogatepass"), today=AT.date())
    assert_consistent(credential)
    assert (credential.kind, credential.reason) == (Kind.BHYT, Reason.OK), text
