"""One frame through the gate: decode → confirm → parse → decide → commit → signal.

Runs on the capture thread. A frame without a code costs one decode call, three clock
reads and a few integer updates: nothing is allocated, logged or converted for it.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from gate.checkin import CheckIn, CheckinSink
from gate.credentials.model import Credential, Kind
from gate.decode import Decoder, make_decoder
from gate.errors import DecoderError, StorageFull
from gate.policy import Decision, Judge
from gate.presentation import PresentationTracker, Sighting
from gate.reasons import Reason
from gate.signals import Outcome, Signals

if TYPE_CHECKING:
    from gate.app_config import GateConfig

log = logging.getLogger(__name__)


LOCKED = Decision(False, Reason.GATE_LOCKED)
INTERNAL_ERROR = Decision(False, Reason.INTERNAL_ERROR)
UNJUDGED = Credential(kind=Kind.UNKNOWN, valid=False, verified=False, reason=Reason.INTERNAL_ERROR)
"""What a scan the judge failed on is stored as: refused, seen by operations, no personal data."""


@dataclass(slots=True)
class Counters:
    """Written by the capture thread only; other threads read them for status and telemetry."""

    frames: int = 0
    decode_ns: int = 0
    decode_ns_max: int = 0
    scans: int = 0
    accepted: int = 0
    refused: int = 0
    duplicates: int = 0
    storage_full: int = 0
    errors: int = 0
    bad_frames: int = 0
    camera_restarts: int = 0
    last_frame_at: float = 0.0


class Pipeline:
    def __init__(
        self,
        decoder: Decoder,
        tracker: PresentationTracker,
        judge: Judge,
        sink: CheckinSink,
        signals: Signals,
        counters: Counters,
    ) -> None:
        self._decode = decoder.decode
        self._decoder_name = decoder.name
        self._tracker = tracker
        self.use_judge(judge)
        self.locked = False
        self._sink = sink
        self._signals = signals
        self.counters = counters

    def use_judge(self, judge: Judge) -> None:
        """Judge the next scans with `judge` (new deny or trust lists), between two frames."""
        self._judge = judge.judge
        self._passed = judge.passed

    @classmethod
    def from_config(
        cls,
        config: "GateConfig",
        sink: CheckinSink,
        signals: Signals,
        *,
        counters: Counters | None = None,
        tracker: PresentationTracker | None = None,
    ) -> "Pipeline":
        """The daemon's pipeline: the configured decoder, presentation rules and judge."""
        return cls(
            make_decoder(config.decoder),
            tracker or PresentationTracker(config.presentation),
            Judge.from_config(config),
            sink,
            signals,
            counters or Counters(),
        )

    @property
    def decoder_name(self) -> str:
        return self._decoder_name

    def process(self, frame: np.ndarray) -> None:
        counters = self.counters
        started = time.perf_counter_ns()
        try:
            codes = self._decode(frame)
        except DecoderError as exc:
            self._bad_frame(exc)
            return
        took = time.perf_counter_ns() - started
        counters.frames += 1
        counters.decode_ns += took
        if took > counters.decode_ns_max:
            counters.decode_ns_max = took
        now = time.monotonic()
        counters.last_frame_at = now
        if codes or self._tracker.watching:
            for sighting in self._tracker.observe([code.data for code in codes], now):
                self._check_in(sighting, now)

    def _bad_frame(self, exc: DecoderError) -> None:
        """Skip a frame the decoder cannot take; log the 1st, 2nd, 4th, 8th... of them."""
        counters = self.counters
        counters.bad_frames += 1
        if counters.bad_frames & (counters.bad_frames - 1) == 0:
            log.warning("frame skipped (%d so far): %s", counters.bad_frames, exc)

    def _check_in(self, sighting: Sighting, seen_at: float) -> None:
        """Everything after a code becomes a presentation; no failure here stops the loop.

        The cooldown and anti-passback memories are told only of what happened: a stored
        check-in, a person who went through.
        """
        counters = self.counters
        counters.scans += 1
        if sighting.duplicate:
            counters.duplicates += 1
            self._signals.show(Outcome.DUPLICATE)
            log.info("scan not opened: reason=%s (same code within the cooldown)", Reason.DUPLICATE)
            return
        now = datetime.now(UTC)
        try:
            credential, decision = self._judge(sighting.payload, now)
        except Exception as exc:
            log.error(
                "internal error judging a scan: %r", exc, exc_info=log.isEnabledFor(logging.DEBUG)
            )
            credential, decision = UNJUDGED, INTERNAL_ERROR
        if self.locked and decision.accepted:
            decision = LOCKED
        try:
            self._sink.commit(CheckIn(now, credential, decision))
        except StorageFull as exc:
            counters.storage_full += 1
            self._signals.show(Outcome.STORAGE_FULL)
            log.warning("scan refused: reason=%s (%s)", Reason.STORAGE_FULL, exc)
            return
        except Exception as exc:
            counters.errors += 1
            self._signals.show(Outcome.ERROR)
            log.error("check-in not stored: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return
        self._tracker.checked_in(sighting.payload, seen_at)
        if decision is INTERNAL_ERROR:
            counters.errors += 1
            self._signals.show(Outcome.ERROR)
            return
        if decision.accepted:
            self._signals.open_relay()
            self._passed(credential, now)
            self._signals.show(Outcome.ACCEPTED)
            counters.accepted += 1
        else:
            self._signals.show(Outcome.REFUSED)
            counters.refused += 1
        log.info(
            "check-in %s: kind=%s reason=%s verified=%s",
            "accepted" if decision.accepted else "refused",
            credential.kind,
            decision.reason,
            credential.verified,
        )
