"""Replay memory: the nonces of accepted commands, on disk so a restart does not forget them.

A command is accepted only within `max_skew_s` of its `issued_at`, so a nonce needs keeping
only until `issued_at + max_skew_s`: older entries are pruned, and the file
(`<state_dir>/commands/nonces.json`, `{"v": 1, "nonces": {"<nonce>": <issued_at ms>}}`) stays
small. It is written (atomically, synced) before the command runs, and on the first start,
so that it is always there afterwards. At most `capacity` nonces are kept: more commands
than that in one window are refused `busy`, never let through by forgetting one.

When the file is missing (the first start, a replaced SD card, a deleted file) or
unreadable, what it held is unknown, so commands issued before the book was opened are
refused as possibly `replayed`: the floor. It is the start time as the clock says now
(the clock read at the claim, less the monotonic time since the start), so a clock stepped
forward after boot (NTP on a Pi without a real-time clock) moves the floor with it.
"""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from gate.commands.envelope import Outcome
from gate.files import write_atomically

log = logging.getLogger(__name__)

VERSION = 1
CAPACITY = 4096
FILE = Path("commands") / "nonces.json"


class NonceBook:
    """Nonces seen within the window; used from one thread (the command worker)."""

    def __init__(
        self,
        state_dir: Path,
        capacity: int = CAPACITY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = state_dir / FILE
        self._capacity = capacity
        self._monotonic = monotonic
        self._opened = monotonic()
        self._floored = False
        self._seen = self._load()
        if self._floored:
            try:
                self._save()
            except OSError as exc:  # each claim will try again, and fail `failed` if need be
                log.error("cannot write the command nonces %s: %s", self.path, exc)

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            seen = data["nonces"]
            if data["v"] != VERSION or not all(
                isinstance(k, str) and type(v) is int for k, v in seen.items()
            ):
                raise ValueError("not a nonce file")
        except FileNotFoundError:
            log.warning(
                "no command nonce file %s (first start, or lost): commands issued before "
                "now are refused as possibly replayed",
                self.path,
            )
            self._floored = True
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error(
                "cannot read the command nonces %s (%s): refusing commands issued before now",
                self.path,
                exc,
            )
            self._floored = True
            return {}
        return dict(seen)

    def claim(
        self, nonce: str, issued_at: int, now_ms: int, window_ms: int
    ) -> tuple[Outcome, str] | None:
        """Remember a nonce before its command runs (accepted within `window_ms` of
        `issued_at`); the refusal reason and detail when it must not run."""
        if nonce in self._seen:
            return Outcome.REPLAYED, "nonce already accepted within the skew window"
        if issued_at < self.floor_ms(now_ms):
            return Outcome.REPLAYED, "issued before this gate's replay memory began"
        oldest = now_ms - window_ms
        self._seen = {n: at for n, at in self._seen.items() if at >= oldest}
        if len(self._seen) >= self._capacity:
            return Outcome.BUSY, "too many commands within the skew window"
        self._seen[nonce] = issued_at
        self._save()
        return None

    def floor_ms(self, now_ms: int) -> int:
        """Commands issued before this are refused (0: the memory is whole)."""
        if not self._floored:
            return 0
        return now_ms - round((self._monotonic() - self._opened) * 1000)

    def _save(self) -> None:
        write_atomically(
            self.path, json.dumps({"v": VERSION, "nonces": self._seen}).encode("utf-8")
        )
