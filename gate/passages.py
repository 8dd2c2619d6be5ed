"""Anti-passback memory: who went through this gate recently, on the monotonic clock.

The running gate owns it, like the presentation tracker, so that rebuilding the judge (a
`deny_list` or `trust_list` command, a reload) keeps it. A restart forgets it.
"""

from collections import OrderedDict

from gate.credentials.model import Credential, Kind


class Passages:
    """The last passage of each (kind, subject id) within `window_s` seconds (0: off)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._passed: OrderedDict[tuple[Kind, str], float] = OrderedDict()

    def recent(self, credential: Credential, now: float) -> bool:
        """Whether this subject went through within the window; older passages are dropped."""
        while self._passed:
            oldest_key, oldest = next(iter(self._passed.items()))
            if now - oldest < self.window_s:
                break
            del self._passed[oldest_key]
        if credential.subject_id is None:
            return False
        return (credential.kind, credential.subject_id) in self._passed

    def passed(self, credential: Credential, now: float) -> None:
        """The subject went through (stored, relay opened).

        Told by the caller once the passage happened, so that a refusal for any later
        reason (store full, gate locked) never counts as a passage.
        """
        if self.window_s and credential.subject_id is not None:
            key = (credential.kind, credential.subject_id)
            self._passed[key] = now
            self._passed.move_to_end(key)
