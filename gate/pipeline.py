"""One frame through the gate: decode → confirm → parse → decide → commit → signal.

Runs on the capture thread. A frame without a code costs one decode call, three clock
reads and a few integer updates: nothing is allocated, logged or converted for it. The
clocks come in (`clock`: monotonic seconds, `wall_clock`: aware UTC), so tests drive
presentations and anti-passback windows without sleeping.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import numpy as np

from gate.app_config import GateConfig
from gate.checkin import CheckIn, CheckinSink
from gate.credentials import UNJUDGED, internal_error_summary
from gate.decision import INTERNAL_ERROR, Decision
from gate.decode import Decoder, make_decoder
from gate.errors import DecoderError, StorageFull
from gate.judge import Judge, load_judge
from gate.passages import Passages
from gate.presentation import PresentationTracker, Sighting
from gate.reasons import Reason
from gate.signals import Outcome, Signals

log = logging.getLogger(__name__)


LOCKED = Decision(False, Reason.GATE_LOCKED)
ANTI_PASSBACK = Decision(False, Reason.ANTI_PASSBACK)

utc_now = partial(datetime.now, UTC)


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
        passages: Passages,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._decode = decoder.decode
        self._decoder_name = decoder.name
        self._tracker = tracker
        self.use_judge(judge)
        self.locked = False
        self._sink = sink
        self._signals = signals
        self.counters = counters
        self._passages = passages
        self._clock = clock
        self._wall_clock = wall_clock

    def use_judge(self, judge: Judge) -> None:
        """Judge the next scans with `judge` (new deny or trust lists), between two frames;
        the presentation and anti-passback memories are not the judge's and stay."""
        self._judge = judge.judge

    @classmethod
    def from_config(
        cls,
        config: GateConfig,
        sink: CheckinSink,
        signals: Signals,
        *,
        decoder: Decoder | None = None,
        judge: Judge | None = None,
        counters: Counters | None = None,
        tracker: PresentationTracker | None = None,
        passages: Passages | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> "Pipeline":
        """The pipeline the daemon runs: the configured decoder, presentation rules and judge
        (signed kinds parsed only when the gate can use them). What the caller has built
        already (the door builds decoder and judge first, to raise their faults) and the
        memories it keeps across rebuilds come in; the rest is made here."""
        return cls(
            make_decoder(config.decoder) if decoder is None else decoder,
            PresentationTracker(config.presentation) if tracker is None else tracker,
            load_judge(config, every_kind=False) if judge is None else judge,
            sink,
            signals,
            Counters() if counters is None else counters,
            Passages(config.policy.anti_passback_minutes * 60) if passages is None else passages,
            clock=clock,
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
        now = self._clock()
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
        now = self._wall_clock()
        try:
            credential, decision = self._judge(sighting.payload, now)
        except Exception as exc:  # noqa: BLE001 -- logged without its message (payload data)
            log.error("internal error judging a scan: %s", internal_error_summary(exc))
            credential, decision = UNJUDGED, INTERNAL_ERROR
        if decision.accepted and self._passages.recent(credential, seen_at):
            decision = ANTI_PASSBACK
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
            self._passages.passed(credential, seen_at)
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
