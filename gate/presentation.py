"""One check-in per presentation: a code held in view for many frames counts once.

Pure: time comes in as an argument, so the rules are testable without sleeping.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gate.config.base import Field, Section


class PresentationConfig(Section):
    confirm_frames: int = Field(
        default=1,
        ge=1,
        le=30,
        description="Frames a code must be read in before it counts; more than 1 trades a "
        "little latency for certainty on a shaky camera.",
    )
    cooldown_s: float = Field(
        default=10.0,
        ge=0,
        le=86_400,
        description="The same code presented again within this time of its last check-in "
        "is a duplicate: signalled, not re-opened, not published.",
    )
    leave_after_s: float = Field(
        default=0.7,
        gt=0,
        le=60,
        description="A code unseen for this long has left the view; showing it again is a "
        "new presentation.",
    )


class Sighting(NamedTuple):
    """A code that became a presentation in this frame."""

    payload: bytes
    duplicate: bool


@dataclass(slots=True)
class _InView:
    last_seen: float
    frames: int
    counted: bool


_NOTHING: tuple[Sighting, ...] = ()


class PresentationTracker:
    def __init__(self, config: PresentationConfig) -> None:
        self.config = config
        self._confirm = config.confirm_frames
        self._cooldown = config.cooldown_s
        self._leave_after = config.leave_after_s
        self._in_view: dict[bytes, _InView] = {}
        self._last_checkin: dict[bytes, float] = {}

    @property
    def watching(self) -> bool:
        """True while some code is in view: an empty frame then still has work to do."""
        return bool(self._in_view)

    def observe(self, payloads: Sequence[bytes], now: float) -> Sequence[Sighting]:
        """Feed the payloads read in one frame; return the presentations that start counting."""
        if self._in_view:
            self._forget_departed(now)
        if not payloads:
            return _NOTHING
        sightings: list[Sighting] = []
        for payload in payloads:
            seen = self._in_view.get(payload)
            if seen is None:
                seen = self._in_view[payload] = _InView(now, 0, False)
            elif seen.last_seen == now:
                continue
            seen.last_seen = now
            seen.frames += 1
            if not seen.counted and seen.frames >= self._confirm:
                seen.counted = True
                sightings.append(Sighting(payload, self._is_duplicate(payload, now)))
        return sightings

    def checked_in(self, payload: bytes, at: float) -> None:
        """The sighting at `at` became a stored check-in: the cooldown runs from now.

        Told by the caller once the check-in is stored, so that a scan that could not be
        stored (store full) is not a duplicate when the code is shown again.
        """
        if self._cooldown <= 0:
            return
        expired = [p for p, t in self._last_checkin.items() if at - t >= self._cooldown]
        for stale in expired:
            del self._last_checkin[stale]
        self._last_checkin[payload] = at

    def _is_duplicate(self, payload: bytes, now: float) -> bool:
        last = self._last_checkin.get(payload)
        return last is not None and now - last < self._cooldown

    def _forget_departed(self, now: float) -> None:
        departed = [
            p for p, seen in self._in_view.items() if now - seen.last_seen > self._leave_after
        ]
        for payload in departed:
            del self._in_view[payload]
