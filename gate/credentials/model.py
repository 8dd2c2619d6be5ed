"""What a parser makes of a payload: a credential, valid or refused with a reason."""

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from gate.reasons import Reason

if TYPE_CHECKING:  # the store loads cryptography; a gate that verifies nothing never does
    from gate.trust.store import TrustStore


class Kind(StrEnum):
    """Every kind of QR payload the gate recognises. Part of the event schema: only add."""

    CCCD = "cccd"
    NATIONAL_QR = "national_qr"
    UNKNOWN = "unknown"
    EU_DCC = "eu_dcc"
    VDS_NC = "vds_nc"
    BHYT = "bhyt"
    GATE_PASS = "gate_pass"
    PAYMENT = "payment"
    VENUE_POSTER = "venue_poster"
    URL = "url"
    SMART_HEALTH_CARD = "smart_health_card"


#: Kinds whose authenticity a signature can prove.
SIGNED_KINDS = frozenset({Kind.EU_DCC, Kind.VDS_NC, Kind.GATE_PASS})
#: Kinds recognised only to be refused: they never identify a person.
REFUSED_KINDS = frozenset(
    {Kind.UNKNOWN, Kind.PAYMENT, Kind.VENUE_POSTER, Kind.URL, Kind.SMART_HEALTH_CARD}
)
#: Problems of the signer rather than of the credential: a credential whose only problem is
#: one of these is well-formed but unverified, and the policy says what it gets.
SIGNER_PROBLEMS = frozenset(
    {Reason.SIGNER_UNKNOWN, Reason.SIGNER_EXPIRED, Reason.SIGNER_NOT_YET_VALID}
)


class HealthType(StrEnum):
    VACCINATION = "vaccination"
    TEST = "test"
    RECOVERY = "recovery"


@dataclass(frozen=True, slots=True)
class Health:
    """What a health certificate (HC1, VDS-NC) states, as the site's health rules read it.

    Fields that the certificate's type does not carry, or that its format lacks, are None.
    """

    type: HealthType
    issued_at: datetime.datetime | None = None
    dose: int | None = None
    doses: int | None = None  # doses in the series; None when the format does not say
    next_dose_due: bool = False  # VDS-NC: a next dose date is given
    vaccinated_on: datetime.date | None = None
    sampled_at: datetime.datetime | None = None
    positive: bool | None = None
    first_positive_on: datetime.date | None = None
    valid_from: datetime.date | None = None
    valid_until: datetime.date | None = None


@dataclass(frozen=True, slots=True)
class Credential:
    """The outcome of parsing one payload; parsers build these and never raise.

    `valid` says the structure, consistency and the credential's own validity checks
    passed; `verified` says a signature proved authenticity (only signed kinds can ever be
    verified). `problems` lists every problem found, in the order checked, and `reason` is
    the first (`ok` when none). A signed credential whose only problem is its signer
    (SIGNER_PROBLEMS) is valid but unverified; the policy decides what it gets.
    """

    kind: Kind
    valid: bool
    verified: bool
    reason: Reason
    subject_id: str | None = None
    name: str | None = None
    birth_date: str | None = None
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)
    problems: tuple[Reason, ...] = ()
    health: Health | None = None
    field: str | None = None
    flaw: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a payload of a recognised kind is refused, precisely enough for a technician.

    `field` names the field at fault (None when the fault is the payload's layout), and
    `flaw` says what is wrong with it by its shape (`has letters`, `written YYYY-MM-DD,
    expected DDMMYYYY`), never by quoting its value: refusals carry no personal data.
    """

    reason: Reason
    field: str | None = None
    flaw: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a parser may know besides the text: no clock, no I/O, passed in.

    `today` is the site's local date (birth and card dates); `at` the instant for
    signatures and validity windows; `trust` the pinned signers, loaded before any scan.
    """

    today: datetime.date
    at: datetime.datetime
    trust: "TrustStore"


def judged(
    kind: Kind,
    problems: list[Reason],
    *,
    verified: bool,
    subject_id: str | None,
    name: str | None,
    birth_date: str | None,
    details: Mapping[str, str],
    health: Health | None = None,
) -> Credential:
    """A decoded signed (or dated) credential from its problems: `reason` is the first, and
    it is valid when every problem is the signer's (those leave it well-formed, unverified)."""
    return Credential(
        kind=kind,
        valid=all(problem in SIGNER_PROBLEMS for problem in problems),
        verified=verified,
        reason=problems[0] if problems else Reason.OK,
        subject_id=subject_id,
        name=name,
        birth_date=birth_date,
        details=details,
        problems=tuple(problems),
        health=health,
    )
