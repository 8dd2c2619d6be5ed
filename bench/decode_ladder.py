"""The decoding ladder against zxing-cpp's and pyzbar's defaults on zxing-cpp's own test images.

Run: .venv/bin/python bench/decode_ladder.py SAMPLES   (about a minute on 2 cores; prints)

SAMPLES is a folder holding zxing-cpp's `test/samples/qrcode-*` and `falsepositives-*`
folders (not part of this repository; docs/benchmarks-decode.md shows how to extract them
from a clone with `git show`). Each image's expected text is the .txt (or .bin) beside it;
images without one (qrcode-7, structured append parts) are skipped and counted.

Prints, side by side in one run:
- codes read per set and false positives, for zxing-cpp with default options (all formats,
  try_rotate/downscale/invert), pyzbar.decode() defaults, the single zxing pass the gate
  makes on every frame, each rung of the ladder on its own, and the gate's decoder. The
  gate sees a held code in many frames, so it is shown one image as a presentation of
  `invert_every` frames (read when any frame reads it) and, separately, as a single frame;
- the empty-frame cost of each: CPU time per 640x480 grey frame without a code (synthetic
  textured scenes and the false-positive photos fitted to 640x480), in ms and as a ratio
  to the single zxing pass, timed paired (each frame to every reader in turn) so that all
  readers share the machine's load of the moment.
"""

import argparse
import importlib.metadata
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zxingcpp  # noqa: E402
from imagegen import empty_frame  # noqa: E402
from pyzbar import pyzbar  # noqa: E402

from gate.decode import DecoderConfig, load_grey, make_decoder  # noqa: E402

Frame = np.ndarray
Texts = list[tuple[bytes, str]]
"""What a reader found in one frame: (raw bytes, text) per symbol."""
Reader = Callable[[Frame], Texts]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm"}


@dataclass(frozen=True)
class Sample:
    group: str
    name: str
    frame: Frame
    expected: bytes | None
    """None for a false-positive image (nothing should be read) or an image without text."""


def load_samples(root: Path) -> tuple[list[Sample], int]:
    """qrcode-* and falsepositives-* images with their expected text; and how many skipped."""
    samples, skipped = [], 0
    groups = sorted(p for p in root.iterdir() if p.is_dir())
    for group in groups:
        negative = group.name.startswith("falsepositives")
        if not (negative or group.name.startswith("qrcode")):
            continue
        for path in sorted(group.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            text, binary = path.with_suffix(".txt"), path.with_suffix(".bin")
            expected = (
                None
                if negative
                else text.read_bytes()
                if text.exists()
                else binary.read_bytes()
                if binary.exists()
                else b""
            )
            if expected == b"":
                skipped += 1
                continue
            samples.append(Sample(group.name, path.name, load_grey(path), expected))
    return samples, skipped


def matches(found: Texts, expected: bytes) -> bool:
    """Read right: the symbol's bytes, or its text, equal the expected file's content."""
    expected_text = expected.decode("utf-8", "replace")
    return any(data == expected or text == expected_text for data, text in found)


def zxing_defaults(frame: Frame) -> Texts:
    """zxing-cpp exactly as a newcomer calls it: every format, every try_* on."""
    return [(b.bytes, b.text) for b in zxingcpp.read_barcodes(frame)]


def pyzbar_defaults(frame: Frame) -> Texts:
    """pyzbar.decode(frame); pyzbar 0.1.9 raises ValueError on an unknown orientation."""
    try:
        symbols = pyzbar.decode(frame)
    except ValueError:
        return [(b"", "<pyzbar raised ValueError>")]
    return [(s.data, s.data.decode("utf-8", "replace")) for s in symbols]


def gate_reader(config: DecoderConfig) -> Reader:
    """One decoder kept across calls, as on the capture thread."""
    decoder = make_decoder(config)

    def read(frame: Frame) -> Texts:
        return [(c.data, c.text) for c in decoder.decode(frame)]

    return read


def held(config: DecoderConfig, frames: int) -> Callable[[Frame], Texts]:
    """A fresh gate decoder shown the same image `frames` times: all it read, deduplicated."""

    def read(frame: Frame) -> Texts:
        decoder = make_decoder(config)
        found = {c.data: c.text for _ in range(frames) for c in decoder.decode(frame)}
        return list(found.items())

    return read


def first_frame(config: DecoderConfig) -> Callable[[Frame], Texts]:
    """A fresh gate decoder shown the image once."""
    return held(config, 1)


def counts(samples: list[Sample], read: Callable[[Frame], Texts]) -> tuple[dict[str, int], int]:
    """Codes read per qrcode set, and false-positive images with anything read."""
    per_group: dict[str, int] = {}
    false_positives = 0
    for s in samples:
        found = read(s.frame)
        if s.expected is None:
            false_positives += bool(found)
        else:
            per_group[s.group] = per_group.get(s.group, 0) + matches(found, s.expected)
    return per_group, false_positives


def fit_640x480(frame: Frame) -> Frame:
    """A photo scaled to cover 640x480 and centre-cropped: a camera-sized frame of a real scene."""
    height, width = frame.shape
    scale = max(640 / width, 480 / height)
    size = (max(640, round(width * scale)), max(480, round(height * scale)))
    big = np.asarray(Image.fromarray(frame, "L").resize(size, Image.Resampling.BILINEAR))
    top, left = (big.shape[0] - 480) // 2, (big.shape[1] - 640) // 2
    return np.ascontiguousarray(big[top : top + 480, left : left + 640])


CALLS_PER_ROUND = 240
"""Divisible by every usual invert_every (8, 10, 12, 16): each round holds whole cycles."""


def cpu_ms_per_frame(
    readers: dict[str, Callable[[Frame], object]],
    frames: Sequence[Frame],
    rounds: int,
    per_round: int = CALLS_PER_ROUND,
) -> dict[str, float]:
    """CPU ms per frame of each reader, paired: every frame goes to each reader in turn.

    On a shared machine the load changes from one millisecond to the next; timing the
    readers on the same frame one after the other (order rotating) lets them share it.
    The median over rounds is kept.
    """
    calls = [frames[i % len(frames)] for i in range(per_round)]
    names = list(readers)
    for name in names:
        readers[name](calls[0])
    per_round_ms: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0)
        for i, frame in enumerate(calls):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                started = time.process_time_ns()
                readers[name](frame)
                spent[name] += time.process_time_ns() - started
        for name in names:
            per_round_ms[name].append(spent[name] / 1e6 / len(calls))
    return {name: float(np.median(ms)) for name, ms in per_round_ms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", type=Path, help="folder with qrcode-* and falsepositives-*")
    parser.add_argument("--rounds", type=int, default=9, help="timing rounds (median kept)")
    args = parser.parse_args()

    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}" for p in ("zxing-cpp", "pyzbar", "numpy")
    )
    print(f"decode ladder bench: {versions}")
    samples, skipped = load_samples(args.samples)
    groups = sorted({s.group for s in samples if s.expected is not None})
    sizes = {g: sum(s.group == g for s in samples) for g in groups}
    negatives = [s for s in samples if s.expected is None]
    print(
        f"{len(samples) - len(negatives)} images with a code in {len(groups)} sets, "
        f"{len(negatives)} false-positive images; {skipped} skipped (no expected text)"
    )

    gate = DecoderConfig()
    n = gate.invert_every or 1
    single = DecoderConfig(rescue=(), invert_every=0)
    rows: dict[str, Callable[[Frame], Texts]] = {
        "zxing-cpp defaults": zxing_defaults,
        "pyzbar.decode defaults": pyzbar_defaults,
        "zxing single pass (every gate frame)": first_frame(single),
    }
    for rung in ("histogram", "upscale", "downscale", "zbar"):
        rows[f"  + rescue {rung} only"] = first_frame(single.model_copy(update={"rescue": (rung,)}))
    rows[f"  + invert 1 in {n} only, held {n} frames"] = held(
        single.model_copy(update={"invert_every": n}), n
    )
    rows[f"gate {make_decoder(gate).name}, 1 frame"] = first_frame(gate)
    rows[f"gate, code held {n} frames"] = held(gate, n)

    header = "".join(f"{g.removeprefix('qrcode-'):>6}" for g in groups)
    print(f"\n{'reader':52}{header}{'total':>7}{'false+':>7}   (qrcode-N sets)")
    print(f"{'images':52}{''.join(f'{sizes[g]:>6}' for g in groups)}{sum(sizes.values()):>7}")
    for name, read in rows.items():
        per_group, false_positives = counts(samples, read)
        cells = "".join(f"{per_group.get(g, 0):>6}" for g in groups)
        print(f"{name:52}{cells}{sum(per_group.values()):>7}{false_positives:>7}")

    synthetic = [empty_frame(seed=s) for s in range(24)]
    photos = [fit_640x480(s.frame) for s in negatives]
    decoders = {
        "zxing single pass": make_decoder(single).decode,
        "gate decoder": make_decoder(gate).decode,
    }
    print(f"\nempty-frame CPU cost, 640x480 grey, median of {args.rounds} rounds, paired per frame")
    print(f"{'reader':26}{'textured scenes':>20}{'no-QR photos':>20}")
    print(f"{'':26}{'ms':>10}{'ratio':>10}{'ms':>10}{'ratio':>10}")
    by_set = [cpu_ms_per_frame(decoders, frames, args.rounds) for frames in (synthetic, photos)]
    for name in decoders:
        cells = "".join(
            f"{ms[name]:>10.3f}{ms[name] / ms['zxing single pass']:>9.3f}x" for ms in by_set
        )
        print(f"{name:26}{cells}")
    slow = {"zxing-cpp defaults": zxing_defaults, "pyzbar.decode defaults": pyzbar.decode}
    for name, read in slow.items():
        cells = ""
        for frames, ms in zip((synthetic, photos), by_set, strict=True):
            cost = cpu_ms_per_frame({name: read}, frames, 1, per_round=24)[name]
            cells += f"{cost:>10.3f}{cost / ms['zxing single pass']:>9.2f}x"
        print(f"{name:26}{cells}")
    print(
        f"frames: {len(synthetic)} synthetic textured scenes, {len(photos)} false-positive "
        f"photos scaled to cover 640x480; {CALLS_PER_ROUND} calls per round (whole ladder "
        "cycles); ratio = to the single zxing pass. The library defaults: one round, alone."
    )


if __name__ == "__main__":
    main()
