"""Replay memory: the nonces of accepted commands, on disk so a restart does not forget them.

A command is accepted only within `max_skew_s` of its `issued_at`, so a nonce needs keeping
only until `issued_at + max_skew_s`: older entries are pruned, and the file
(`<state_dir>/commands/nonces.json`, `{"v": 1, "nonces": {"<nonce>": <issued_at ms>}}`) stays
small. It is written (atomically, synced) before the command runs. At most `capacity`
nonces are kept: more commands than that in one window are refused `busy`, never let
through by forgetting one. An unreadable file is logged and, since what it held is lost,
commands issued before the gate noticed are refused as possibly `replayed`.
"""

import json
import logging
from pathlib import Path

from gate.commands.envelope import Outcome
from gate.files import write_atomically

log = logging.getLogger(__name__)

VERSION = 1
CAPACITY = 4096
FILE = Path("commands") / "nonces.json"


class NonceBook:
    """Nonces seen within the window; used from one thread (the command worker)."""

    def __init__(self, state_dir: Path, now_ms: int, capacity: int = CAPACITY) -> None:
        self.path = state_dir / FILE
        self._capacity = capacity
        self._floor_ms = 0
        self._seen = self._load(now_ms)

    def _load(self, now_ms: int) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            seen = data["nonces"]
            if data["v"] != VERSION or not all(
                isinstance(k, str) and type(v) is int for k, v in seen.items()
            ):
                raise ValueError("not a nonce file")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error(
                "cannot read the command nonces %s (%s): refusing commands issued before now",
                self.path,
                exc,
            )
            self._floor_ms = now_ms
            return {}
        return dict(seen)

    def claim(self, nonce: str, issued_at: int, now_ms: int, window_ms: int) -> Outcome | None:
        """Remember a nonce before its command runs (accepted within `window_ms` of
        `issued_at`); the refusal reason when it must not run."""
        if issued_at < self._floor_ms or nonce in self._seen:
            return Outcome.REPLAYED
        oldest = now_ms - window_ms
        self._seen = {n: at for n, at in self._seen.items() if at >= oldest}
        if len(self._seen) >= self._capacity:
            return Outcome.BUSY
        self._seen[nonce] = issued_at
        write_atomically(
            self.path, json.dumps({"v": VERSION, "nonces": self._seen}).encode("utf-8")
        )
        return None
