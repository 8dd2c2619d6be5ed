"""Frames until a held code is read, when each frame alone is hard: zxing defaults vs the gate.

Run: .venv/bin/python bench/presentation.py   (about a minute on 2 cores; prints, no asserts)

Plays short synthetic presentations (tests/imagegen.py `presentation`: a code entering the
view with motion blur, glare, perspective, a dark-mode screen; seeded) through a decoder and
the real presentation tracker (gate.presentation, default config, 30 fps clock). Each run
starts after a seeded number of empty frames (0 to 15), since a gate's frame counter is at
any phase when a person arrives. Prints, per case, the frames from the code's first frame to
its first check-in (median and worst over the seeds; "-" = never within the presentation)
and how many of the presentation's frames read the code.
"""

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zxingcpp  # noqa: E402
from imagegen import PRESENTATIONS, VIETNAMESE_PAYLOADS, empty_frame, presentation  # noqa: E402

from gate.decode import DecoderConfig, make_decoder  # noqa: E402
from gate.presentation import PresentationConfig, PresentationTracker  # noqa: E402

FRAME_S = 1 / 30
FRAMES = 24
SEEDS = range(8)
Reads = Callable[[np.ndarray], list[bytes]]


def zxing_defaults() -> Reads:
    """zxing-cpp's read_barcodes with its default options, QR only."""
    return lambda f: [b.bytes for b in zxingcpp.read_barcodes(f, formats=zxingcpp.QRCode)]


def gate_decoder(config: DecoderConfig) -> Callable[[], Reads]:
    """A fresh gate decoder per presentation, as a restarted capture loop would have."""

    def make() -> Reads:
        decoder = make_decoder(config)
        return lambda f: [c.data for c in decoder.decode(f)]

    return make


def play(reads: Reads, lead_in: int, frames: list[np.ndarray]) -> tuple[int | None, int]:
    """Frames to the first check-in (1 = the code's first frame) and frames that read it."""
    tracker = PresentationTracker(PresentationConfig())
    now = 0.0
    for seed in range(lead_in):
        tracker.observe(reads(empty_frame(seed=seed)), now)
        now += FRAME_S
    first, read = None, 0
    for i, frame in enumerate(frames, 1):
        payloads = reads(frame)
        read += bool(payloads)
        if tracker.observe(payloads, now) and first is None:
            first = i
        now += FRAME_S
    return first, read


def main() -> None:
    payload = VIETNAMESE_PAYLOADS[0].encode()
    readers = {
        "zxing defaults": zxing_defaults,
        "zxing single pass": gate_decoder(DecoderConfig(rescue=(), invert_every=0)),
        "gate decoder": gate_decoder(DecoderConfig()),
    }
    print(f"gate decoder: {make_decoder(DecoderConfig()).name}")
    print(f"{FRAMES} frames per presentation at 30 fps, {len(SEEDS)} seeds, lead-in 0-15 frames")
    print(f"{'case':26}" + "".join(f"{name:>26}" for name in readers))
    print(f"{'':26}" + "".join(f"{'first read med/max':>20}{'reads':>6}" for _ in readers))
    lead_ins = np.random.default_rng(7).integers(0, 16, len(SEEDS))
    for kind in PRESENTATIONS:
        plays = {seed: presentation(kind, payload, frames=FRAMES, seed=seed) for seed in SEEDS}
        cells = []
        for make in readers.values():
            results = [play(make(), int(lead_ins[s]), plays[s]) for s in SEEDS]
            firsts = [f for f, _ in results]
            reads = sum(r for _, r in results) / len(results)
            known = [f for f in firsts if f is not None]
            median = f"{int(np.median(known))}" if known else "-"
            missed = len(firsts) - len(known)
            worst = f"-  ({missed} never)" if missed else f"{max(known):<3}"
            cells.append(f"{median}/{worst}".rjust(20) + f"{reads:>6.1f}")
        print(f"{kind:26}" + "".join(cells))
    print("reads = mean frames (of the presentation) in which the decoder read the code")


if __name__ == "__main__":
    main()
