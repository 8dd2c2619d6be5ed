"""Replay memory: the nonces of accepted commands, on disk so a restart does not forget them.

A command is accepted only within `max_skew_s` of its `issued_at`, so a nonce needs keeping
only until `issued_at + max_skew_s`: older entries are pruned, and the file
(`<state_dir>/commands/nonces.json`, `{"v": 1, "nonces": {"<nonce>": <issued_at ms>}}`) stays
small. It is written (atomically, synced) before the command runs, and on the first start,
so that it is always there afterwards. At most `capacity` nonces are kept: more commands
than that in one window are refused `busy`, never let through by forgetting one.

The file can be lost (a replaced SD card, a deleted file), or be an old copy (a card
restored from an image), and then what it should hold is unknown. So, whatever the file
says, commands issued before the book was opened (the start of the command service) are
refused as possibly `replayed`: the floor. It is the start time as the clock says now (the
clock read at the claim, less the monotonic time since the start), so a clock stepped
forward after boot (NTP on a Pi without a real-time clock) moves the floor with it. The
file still matters while the clock is wrong at boot: a floor read from a clock that is
behind is too early, and the nonces kept are what refuses a replay then.
"""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from gate.commands.envelope import NONCE_MAX, Outcome
from gate.files import read_bounded, write_atomically

log = logging.getLogger(__name__)

VERSION = 1
CAPACITY = 4096
FILE = Path("commands") / "nonces.json"
ENTRY_BYTES = NONCE_MAX + 24
"""Room for one entry in the file: the longest nonce, its quotes, a time of up to 16 digits
and the separators. A file larger than `capacity` such entries (and the rest of the JSON)
is not the gate's and is not read."""


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
        self._seen: dict[str, int] = {}
        self._seen = self._load()

    def _load(self) -> dict[str, int]:
        try:
            text = read_bounded(self.path, (self._capacity + 1) * ENTRY_BYTES)
            if text is None:
                raise ValueError(f"larger than {self._capacity} nonces")
            data = json.loads(text)
            seen = data["nonces"]
            if data["v"] != VERSION or not all(
                isinstance(k, str) and type(v) is int for k, v in seen.items()
            ):
                raise ValueError("not a nonce file")
        except FileNotFoundError:
            log.warning("no command nonce file %s (first start, or lost): starting one", self.path)
            self._start_file()
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            log.error("cannot read the command nonces %s (%s): starting anew", self.path, exc)
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
            return Outcome.REPLAYED, "issued before the command service started"
        oldest = now_ms - window_ms
        self._seen = {n: at for n, at in self._seen.items() if at >= oldest}
        if len(self._seen) >= self._capacity:
            return Outcome.BUSY, "too many commands within the skew window"
        self._seen[nonce] = issued_at
        self._save()
        return None

    def floor_ms(self, now_ms: int) -> int:
        """Commands issued before this are refused: the start, as the clock says now."""
        return now_ms - round((self._monotonic() - self._opened) * 1000)

    def _save(self) -> None:
        data = {"v": VERSION, "nonces": self._seen}
        write_atomically(self.path, json.dumps(data).encode("utf-8"))

    def _start_file(self) -> None:
        """Write the empty book of a first start; a failure is logged (each claim writes
        again, and its command is refused `failed` if that fails too)."""
        try:
            self._save()
        except OSError as exc:
            log.error("cannot write the command nonces %s: %s", self.path, exc)
