"""The site's policy: which credentials open this gate. Pure: no I/O, no clock."""

from collections.abc import Set
from dataclasses import dataclass

from pydantic import Field

from gate.config.base import Section
from gate.credentials.model import Credential, Kind
from gate.reasons import Reason


class PolicyConfig(Section):
    accept_kinds: frozenset[Kind] = Field(
        default=frozenset({Kind.CCCD, Kind.NATIONAL_QR}),
        description="Credential kinds that open this gate; every other kind is refused "
        "with reason `kind_not_accepted`.",
    )


@dataclass(frozen=True, slots=True)
class Decision:
    accepted: bool
    reason: Reason


def decide(credential: Credential, accept_kinds: Set[Kind]) -> Decision:
    """Refuse what the parser refused, then what the site does not accept."""
    if not credential.valid:
        return Decision(False, credential.reason)
    if credential.kind not in accept_kinds:
        return Decision(False, Reason.KIND_NOT_ACCEPTED)
    return Decision(True, Reason.OK)
