"""What a parser makes of a payload: a credential, valid or refused with a reason."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gate.reasons import Reason


class Kind(StrEnum):
    """Every kind of QR payload the gate recognises. Part of the event schema: only add."""

    CCCD = "cccd"
    NATIONAL_QR = "national_qr"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Credential:
    """The outcome of parsing one payload; parsers build these and never raise.

    `valid` says the structure and consistency checks passed; `verified` says a
    signature proved authenticity (only signed kinds can ever be verified).
    """

    kind: Kind
    valid: bool
    verified: bool
    reason: Reason
    subject_id: str | None = None
    name: str | None = None
    birth_date: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
