"""The site's policy: which credentials open this gate.

`decide` is pure (no I/O, no clock). `Judge` is the one object the capture loop asks
about a payload: it parses, then decides, holding whatever state a policy needs.
"""

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import Field

from gate.config.base import Section
from gate.credentials import parse
from gate.credentials.model import Credential, Kind
from gate.reasons import Reason

if TYPE_CHECKING:
    from gate.config.model import GateConfig


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


class Judge:
    """Parse and decide one payload at a given time, as this gate's policy says."""

    def __init__(self, policy: PolicyConfig, zone: ZoneInfo) -> None:
        self._policy = policy
        self._zone = zone

    @classmethod
    def from_config(cls, config: "GateConfig") -> "Judge":
        return cls(config.policy, config.site.zone)

    def judge(self, payload: bytes, at: datetime) -> tuple[Credential, Decision]:
        """`at` is timezone-aware; local dates (birth dates, issue dates) use the site's zone."""
        credential = parse(payload, today=at.astimezone(self._zone).date())
        return credential, decide(credential, self._policy.accept_kinds)
