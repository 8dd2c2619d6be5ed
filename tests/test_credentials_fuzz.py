"""Properties of `gate.credentials.parse` over generated and mutated payloads.

`parse` runs on whatever a camera decodes, so it must never raise and its answer must
always be self-consistent. Each @fuzz(N) is the CI budget (tests/fuzzing.py).
"""

import datetime
import unicodedata
from collections.abc import Callable

from fuzzing import fuzz
from hypothesis import event, given
from hypothesis import strategies as st

from gate.credentials import Credential, Kind, parse
from gate.credentials.fields import blank
from gate.credentials.model import REFUSED_KINDS, SIGNED_KINDS, SIGNER_PROBLEMS
from gate.reasons import Reason

TODAY = datetime.date(2025, 6, 1)
CHIP_CARDS_FROM = datetime.date(2021, 1, 1)


def assert_consistent(credential: Credential) -> None:
    """What every answer promises, whatever the payload (see Credential's docstring)."""
    assert isinstance(credential, Credential)
    assert isinstance(credential.kind, Kind)
    assert all(isinstance(problem, Reason) for problem in credential.problems)
    assert Reason.OK not in credential.problems
    assert credential.reason is (credential.problems[0] if credential.problems else Reason.OK)
    assert credential.valid == all(p in SIGNER_PROBLEMS for p in credential.problems)
    assert not credential.verified or credential.kind in SIGNED_KINDS
    assert not (credential.verified and set(credential.problems) & SIGNER_PROBLEMS)
    if credential.kind in REFUSED_KINDS:
        assert not credential.valid
    if credential.subject_id is None:
        # Refused before anything was decoded: nobody is identified.
        assert not credential.valid and credential.problems == (credential.reason,)
        assert (credential.name, credential.birth_date) == (None, None)
        assert not credential.details and credential.health is None
    else:
        assert credential.subject_id and credential.name


# Text without `|`, controls, separators or format characters: what fields are made of.
field_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp"), exclude_characters="|"),
    max_size=30,
)
name_text = field_text.filter(lambda text: not blank(text))


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=size, max_size=size)


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A consistent CCCD payload and the fields a parser must report for it."""
    birth = draw(st.dates(datetime.date(1900, 1, 1), TODAY - datetime.timedelta(days=1)))
    issued = draw(st.dates(max(birth + datetime.timedelta(days=1), CHIP_CARDS_FROM), TODAY))
    gender = draw(st.sampled_from(["Nam", "Nữ"]))
    # A province (001-096) or, with a first digit other than 0, a foreign country.
    region = f"{draw(st.integers(1, 96) | st.integers(100, 999)):03d}"
    century_and_gender = (birth.year // 100 - 19) * 2 + (gender == "Nữ")
    id_no = f"{region}{century_and_gender}{birth.year % 100:02d}{draw(digits(6))}"
    old_id = draw(st.just("") | digits(9) | digits(12))
    name, address = draw(name_text), draw(field_text)
    extras = draw(st.lists(field_text, max_size=4))
    fields = [id_no, old_id, name, birth.strftime("%d%m%Y"), gender, address]
    payload = "|".join([*fields, issued.strftime("%d%m%Y"), *extras])
    nfc = unicodedata.normalize
    expected = {
        "subject_id": id_no,
        "name": nfc("NFC", name),
        "birth_date": birth.isoformat(),
        "address": nfc("NFC", address),
        "issue_date": issued.isoformat(),
    }
    return payload, expected


@st.composite
def national_qrs(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A well-formed national personal QR payload and the fields a parser must report for it."""
    shown = draw(st.text(st.sampled_from("0123456789ABCZ"), min_size=1, max_size=12))
    masked = draw(st.integers(max(0, 6 - len(shown)), 12 - len(shown)))
    document_no = "*" * masked + shown
    birth = draw(st.dates(datetime.date(1900, 1, 1), TODAY))
    year, month, day = birth.isoformat().split("-")
    birth_text = (
        f"{year}-{draw(st.sampled_from([month, '**']))}-{draw(st.sampled_from([day, '**']))}"
    )
    qid = draw(st.text(st.sampled_from("0123456789"), min_size=1, max_size=20))
    ext = draw(field_text)
    name = draw(name_text)
    declaration = draw(st.sampled_from("01"))
    payload = "|".join([document_no, name, birth_text, declaration, qid, ext])
    expected = {
        "subject_id": qid,
        "name": unicodedata.normalize("NFC", name),
        "birth_date": birth_text,
    }
    return payload, expected


# --- Arbitrary input ------------------------------------------------------------------------


@fuzz(3000)
@given(st.binary(max_size=400), st.integers(0, 500))
def test_arbitrary_bytes_never_raise(payload: bytes, max_bytes: int) -> None:
    credential = parse(payload, today=TODAY, max_bytes=max_bytes)
    assert_consistent(credential)
    assert (credential.reason is Reason.OVERSIZED) == (len(payload) > max_bytes)


@fuzz(2000)
@given(st.lists(st.text(max_size=14), min_size=1, max_size=10).map("|".join))
def test_arbitrary_pipe_separated_text_never_raises(text: str) -> None:
    assert_consistent(parse(text.encode(), today=TODAY))


# --- Valid payloads, generated --------------------------------------------------------------


@fuzz(1500)
@given(cards())
def test_consistent_cards_are_valid_in_nfc_and_nfd(card: tuple[str, dict[str, str]]) -> None:
    payload, expected = card
    credential = parse(payload.encode(), today=TODAY)
    assert_consistent(credential)
    assert credential.kind is Kind.CCCD
    assert credential.reason is Reason.OK
    assert (credential.subject_id, credential.name, credential.birth_date) == (
        expected["subject_id"],
        expected["name"],
        expected["birth_date"],
    )
    assert credential.details["address"] == expected["address"]
    assert credential.details["issue_date"] == expected["issue_date"]
    assert parse(unicodedata.normalize("NFD", payload).encode(), today=TODAY) == credential


@fuzz(1000)
@given(national_qrs())
def test_well_formed_national_qrs_are_valid(qr: tuple[str, dict[str, str]]) -> None:
    payload, expected = qr
    credential = parse(payload.encode(), today=TODAY)
    assert_consistent(credential)
    assert credential.kind is Kind.NATIONAL_QR
    assert credential.reason is Reason.OK
    assert (credential.subject_id, credential.name, credential.birth_date) == (
        expected["subject_id"],
        expected["name"],
        expected["birth_date"],
    )


# --- Valid payloads, mutated ----------------------------------------------------------------

Mutation = Callable[[st.DrawFn, bytes], bytes]


def swap_fields(draw: st.DrawFn, payload: bytes) -> bytes:
    fields = payload.split(b"|")
    i, j = (draw(st.integers(0, len(fields) - 1)) for _ in range(2))
    fields[i], fields[j] = fields[j], fields[i]
    return b"|".join(fields)


def flip_byte(draw: st.DrawFn, payload: bytes) -> bytes:
    if not payload:
        return payload
    at = draw(st.integers(0, len(payload) - 1))
    return payload[:at] + bytes([payload[at] ^ draw(st.integers(1, 255))]) + payload[at + 1 :]


def truncate(draw: st.DrawFn, payload: bytes) -> bytes:
    return payload[: draw(st.integers(0, len(payload)))]


def insert_pipe(draw: st.DrawFn, payload: bytes) -> bytes:
    at = draw(st.integers(0, len(payload)))
    return payload[:at] + b"|" + payload[at:]


def drop_field(draw: st.DrawFn, payload: bytes) -> bytes:
    fields = payload.split(b"|")
    del fields[draw(st.integers(0, len(fields) - 1))]
    return b"|".join(fields)


MUTATIONS: list[Mutation] = [swap_fields, flip_byte, truncate, insert_pipe, drop_field]
SAMPLES = [
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1|15042021",
    "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Xã Vũ Hội, Huyện Vũ Thư, Thái Bình|14082021",
    "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Thái Bình|14082021|21032043||Trần Văn Bố",
    "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|1<GD4877*******<0943******",
    "******029317|NGUYEN LE KHA HAN|1987-**-**|1|162979388586171100|",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload (sample or generated) after one to four random mutations."""
    valid = (
        st.sampled_from(SAMPLES) | cards().map(lambda c: c[0]) | national_qrs().map(lambda q: q[0])
    )
    payload = draw(valid).encode()
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        payload = mutation(draw, payload)
    return payload


@fuzz(3000)
@given(mutated())
def test_mutated_valid_payloads_never_raise(payload: bytes) -> None:
    credential = parse(payload, today=TODAY)
    event(f"{credential.kind}: {credential.reason}")  # coverage, see --hypothesis-show-statistics
    assert_consistent(credential)
    if credential.valid and credential.kind is Kind.CCCD:
        assert credential.subject_id is not None and len(credential.subject_id) == 12
        assert datetime.date.fromisoformat(credential.birth_date or "") <= TODAY
