"""How many refused commands are answered and logged: a token bucket, so that a flood of
unsigned, forged or replayed commands costs neither the outgoing queue nor the journal.

Each refusal before a command runs takes a token; `burst` are there at the start and
`per_second` come back. A refusal with no token left is neither answered nor logged, only
counted, and the counts are logged as one summary line at most every `summary_every_s`.
A signed command that runs is always answered (it never asks the budget).
"""

import threading
import time
from collections import Counter
from collections.abc import Callable

BURST = 20
PER_SECOND = 1.0
SUMMARY_EVERY_S = 10.0


class RefusalBudget:
    """Token bucket shared by the network thread (turned away) and the worker (refused)."""

    def __init__(
        self,
        burst: int = BURST,
        per_second: float = PER_SECOND,
        summary_every_s: float = SUMMARY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._per_second = per_second
        self._summary_every_s = summary_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._filled_at = clock()
        self._suppressed: Counter[str] = Counter()
        self._since = self._filled_at

    def allow(self, reason: str) -> bool:
        """True: answer and log this refusal. False: it was counted for the summary."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._filled_at
            self._tokens = min(self._burst, self._tokens + elapsed * self._per_second)
            self._filled_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            if not self._suppressed:
                self._since = now
            self._suppressed[reason] += 1
            return False

    def summary(self) -> str | None:
        """The counts suppressed since the last summary, once `summary_every_s` passed
        since the first of them; None when there is nothing to say yet."""
        with self._lock:
            now = self._clock()
            if not self._suppressed or now - self._since < self._summary_every_s:
                return None
            counts = ", ".join(f"{reason} {n}" for reason, n in self._suppressed.most_common())
            total = sum(self._suppressed.values())
            seconds = now - self._since
            self._suppressed.clear()
            return (
                f"{total} refused commands in the last {seconds:.0f} s neither answered nor "
                f"logged (too many): {counts}"
            )
