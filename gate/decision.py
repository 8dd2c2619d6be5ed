"""What the gate decided about one credential: accepted, or refused with a reason.

Its own module because the policy makes decisions and the check-in carries them, and
neither should import the other for it.
"""

from dataclasses import dataclass

from gate.reasons import Reason


@dataclass(frozen=True, slots=True)
class Decision:
    accepted: bool
    reason: Reason


ACCEPT = Decision(True, Reason.OK)
INTERNAL_ERROR = Decision(False, Reason.INTERNAL_ERROR)
"""A scan the judge failed on: refused."""
