"""How fast each QR backend is on 640x480 grey frames, and how many hard photos it reads.

Run: .venv/bin/python bench/decode_backends.py   (about 20 s on 2 cores; prints, no asserts)

A gate mostly decodes empty frames, so their cost is the budget that matters; the
photo-like set (tests/imagegen.py, perspective + uneven light + blur + noise + JPEG, spread
from easy to unreadable) stands in for real photos since this machine has no camera.
"""

import importlib.metadata
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ctypes import byref, c_uint
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from imagegen import (  # noqa: E402 - needs the path set above
    VIETNAMESE_PAYLOADS,
    empty_frame,
    photo_set,
    qr_frame,
)
from pyzbar import pyzbar  # noqa: E402
from pyzbar import wrapper as zbar_wrapper  # noqa: E402

from gate.decode import DecoderConfig, available_backends, make_decoder  # noqa: E402

Frame = np.ndarray
Reader = Callable[[Frame], object]


def timings_ms(read: Reader, frames: Sequence[Frame], repeats: int) -> np.ndarray:
    """Per-call wall time in ms, after one warm-up pass."""
    for frame in frames[:3]:
        read(frame)
    out = []
    for _ in range(repeats):
        for frame in frames:
            start = time.perf_counter_ns()
            read(frame)
            out.append((time.perf_counter_ns() - start) / 1e6)
    return np.array(out)


def code_frames() -> list[Frame]:
    """Frames with one code: several payloads, sizes, angles, mild blur and noise."""
    payloads = [*VIETNAMESE_PAYLOADS, "GATE-PASS-0001", "https://example.vn/p/0123456789"]
    return [
        qr_frame(p, module_px=3 + i % 3, angle=(17 * i) % 90, blur=0.6, noise=3.0, seed=i)
        for i, p in enumerate(payloads * 4)
    ]


def call_overhead() -> None:
    """What a persistent scanner saves: the fixed cost per call, seen on a tiny frame."""
    tiny = np.full((16, 16), 128, np.uint8)
    ours = make_decoder(DecoderConfig(backend="zbar")).decode
    qr_only = [pyzbar.ZBarSymbol.QRCODE]
    per_call = {
        "pyzbar.decode(symbols=[QRCODE])": lambda f: pyzbar.decode(f, symbols=qr_only),
        "zbar (gate.decode)": ours,
    }
    print("\nfixed cost per call on a 16x16 frame (scanner set-up, copy, ctypes)")
    for name, read in per_call.items():
        print(f"  {name:44s} {float(np.median(timings_ms(read, [tiny], 3000))) * 1000:6.1f} us")


def zbar_version() -> str:
    """The libzbar actually loaded, not the one packaged."""
    major, minor = c_uint(), c_uint()
    zbar_wrapper.zbar_version(byref(major), byref(minor))
    return f"{major.value}.{minor.value}"


Row = tuple[Reader, list[Frame], list[Frame]]


def speed(rows: dict[str, Row]) -> dict[str, tuple[float, float]]:
    """Print p50/p99 per reader on empty frames and frames with a code; return the p50s."""
    print(f"\n{'reader':44s} {'empty p50':>9s} {'p99':>7s} {'code p50':>9s} {'p99':>7s}  (ms)")
    medians = {}
    for name, (read, empties, with_code) in rows.items():
        slow = name.startswith("pyzbar")
        e = timings_ms(read, empties, 2 if slow else 6)
        c = timings_ms(read, with_code, 2 if slow else 6)
        e50, e99, c50, c99 = (float(np.percentile(x, q)) for x in (e, c) for q in (50, 99))
        medians[name] = (e50, c50)
        print(f"{name:44s} {e50:9.2f} {e99:7.2f} {c50:9.2f} {c99:7.2f}")
    return medians


def ratio(medians: dict[str, tuple[float, float]], slow: str, fast: str) -> None:
    """How many times `fast` beats `slow` on empty frames and on frames with a code."""
    if slow in medians and fast in medians:
        (se, sc), (fe, fc) = medians[slow], medians[fast]
        print(f"  {slow}  /  {fast}:  empty {se / fe:5.1f}x   code {sc / fc:5.1f}x")


def photo_reads(photos: list[tuple[bytes, Frame]]) -> None:
    """How many photos each backend reads, which ones only one of them reads, and auto."""
    backends = available_backends()
    decoders = {
        b: make_decoder(DecoderConfig(backend=b, rescue=(), invert_every=0)) for b in backends
    }
    ok = {
        b: [any(c.data == p for c in d.decode(f)) for p, f in photos] for b, d in decoders.items()
    }
    n = len(photos)
    print(f"\nphoto-like set: {n} images, difficulty spread evenly from easy to unreadable")
    for b in backends:
        print(f"  {b:6s} reads {sum(ok[b]):4d}/{n}")
    if "zxing" in ok and "zbar" in ok:
        zx, zb = np.array(ok["zxing"]), np.array(ok["zbar"])
        print(
            f"  zxing only {int(np.sum(zx & ~zb))}, zbar only {int(np.sum(zb & ~zx))}, "
            f"both {int(np.sum(zx & zb))}, neither {int(np.sum(~zx & ~zb))}"
        )
        from gate.decode.zxing import ZxingDecoder

        zxing = ZxingDecoder()
        triggered = [i for i, (_, f) in enumerate(photos) if zxing.scan(f)[1]]
        rescued = [i for i in triggered if zb[i] and not zx[i]]
        print(
            f"  rescue trigger (zxing located a symbol it could not decode): "
            f"{len(triggered)} photos, of which zbar read {len(rescued)}"
        )
        missed_silently = [i for i in range(n) if zb[i] and not zx[i] and i not in triggered]
        print(
            f"  photos zbar reads that zxing missed without any detection: {len(missed_silently)}"
        )
    auto = make_decoder(DecoderConfig())
    auto_ok = sum(any(c.data == p for c in auto.decode(f)) for p, f in photos)
    print(f"  auto ({auto.name}) reads {auto_ok}/{n}")


def zxing_options(photos: list[tuple[bytes, Frame]], empties: list[Frame]) -> None:
    """The read options behind gate/decode/zxing.py's choice."""
    import zxingcpp

    qr = zxingcpp.BarcodeFormat.QRCode
    local, histogram = zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram
    print("\nzxing-cpp read options (empty-frame p50, photos read)")
    for label, options in {
        "chosen: LocalAverage, no downscale/invert": {"binarizer": local},
        "library defaults (downscale+invert+rotate)": {
            "binarizer": local,
            "try_downscale": True,
            "try_invert": True,
            "try_rotate": True,
        },
        "LocalAverage + downscale": {"binarizer": local, "try_downscale": True},
        "LocalAverage + invert": {"binarizer": local, "try_invert": True},
        "GlobalHistogram": {"binarizer": histogram},
    }.items():
        kw = {"try_downscale": False, "try_invert": False, "try_rotate": False, **options}

        def read(frame: Frame, kw: dict = kw) -> list:
            return zxingcpp.read_barcodes(frame, formats=qr, **kw)

        e50 = float(np.percentile(timings_ms(read, empties, 4), 50))
        ok = sum(any(b.bytes == p for b in read(f)) for p, f in photos)
        print(f"  {label:44s} {e50:6.2f} ms   {ok}/{len(photos)}")


SYSBENCH_SOURCE = "https://leoncode.co.uk/articles/raspberry-pi-benchmarks"
"""Published `sysbench cpu --threads=1` (1.0.20, primes to 10000) events/s per board."""
SYSBENCH_PI3B_PLUS = 687.45  # Cortex-A53 at 1.4 GHz
SYSBENCH_PI4 = 1477.83  # Cortex-A72 at 1.5 GHz
SYSBENCH_ZERO2W = SYSBENCH_PI3B_PLUS * 1.0 / 1.4
"""The Zero 2 W has the Pi 3's Cortex-A53 at 1.0 GHz: the 3B+ figure scaled by clock."""


def host_sysbench() -> float | None:
    """This machine's single-thread sysbench events per CPU second, run as the source ran it.

    sysbench divides by wall time, so a busy machine would score low; dividing its event
    count by the CPU time the child used (getrusage) gives the core's speed whatever the load.
    """
    if shutil.which("sysbench") is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["sysbench", "cpu", "--threads=1", "--time=5", "run"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"total number of events:\s*(\d+)", out)
    return int(found.group(1)) / cpu_s if found and cpu_s > 0 else None


def cpu_ms(read: Reader, frames: Sequence[Frame], repeats: int) -> float:
    """Process CPU time per call in ms (not wall time: other processes do not count)."""
    for frame in frames[:2]:
        read(frame)
    started = time.process_time_ns()
    for _ in range(repeats):
        for frame in frames:
            read(frame)
    return (time.process_time_ns() - started) / 1e6 / (repeats * len(frames))


DECODER_ALONE = """
import sys
from pathlib import Path
import numpy as np
from gate.decode import DecoderConfig, make_decoder
decoder = make_decoder(DecoderConfig())
frame = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(720, 1280)
for _ in range(50):
    decoder.decode(frame)
status = Path("/proc/self/status").read_text()
print(int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""
"""A fresh interpreter that imports only gate.decode and decodes 720p frames."""


def decoder_peak_rss_mb(frame: Frame) -> float:
    """Peak RSS (VmHWM) of a process that only decodes: the decoder's own footprint."""
    out = subprocess.run(
        [sys.executable, "-c", DECODER_ALONE],
        input=frame.tobytes(),
        capture_output=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return float(out)


def pi_estimate() -> None:
    """Per-frame CPU time of the gate's decoder here, and what it suggests on a Pi (estimate)."""
    decoder = make_decoder(DecoderConfig())
    payload = VIETNAMESE_PAYLOADS[0]
    sizes = {"640x480": ((640, 480), 4), "1280x720": ((1280, 720), 6)}
    measured = {}
    for label, (size, module_px) in sizes.items():
        empties = [empty_frame(size=size, seed=s) for s in range(12)]
        codes = [
            qr_frame(payload, size=size, module_px=module_px, angle=a, blur=0.6, noise=3.0, seed=a)
            for a in range(0, 48, 4)
        ]
        measured[label] = (cpu_ms(decoder.decode, empties, 20), cpu_ms(decoder.decode, codes, 20))
    peak = decoder_peak_rss_mb(codes[0])
    print(f"\nper-frame CPU time of the gate decoder ({decoder.name}), measured here:")
    print(f"  {'frame':10}{'empty ms':>10}{'with code ms':>14}")
    for label, (empty, code) in measured.items():
        print(f"  {label:10}{empty:>10.2f}{code:>14.2f}")
    print(f"  peak RSS of a process that only imports gate.decode and decodes: {peak:.1f} MB")
    host = host_sysbench()
    print("\nESTIMATE for a Raspberry Pi (not measured on one; single core, CPU time scaled by a")
    print(f"published sysbench single-thread ratio, source: {SYSBENCH_SOURCE})")
    if host is None:
        print("  sysbench is not installed here: `apt install sysbench` to print the estimate")
        return
    boards = {"Pi Zero 2 W (A53 1.0 GHz)": SYSBENCH_ZERO2W, "Pi 4 (A72 1.5 GHz)": SYSBENCH_PI4}
    print(
        f"  this machine: {host:.0f} events per CPU second; Pi 4 {SYSBENCH_PI4:.0f}; Pi 3B+ "
        f"{SYSBENCH_PI3B_PLUS:.0f}, Zero 2 W taken as 3B+ x 1.0/1.4 = {SYSBENCH_ZERO2W:.0f}"
    )
    print(
        f"  {'board':28}{'slower':>7}"
        + "".join(f"{label + ' empty/code ms':>28}" for label in sizes)
    )
    for board, score in boards.items():
        factor = host / score
        cells = "".join(f"{e * factor:>16.1f} / {c * factor:<9.1f}" for e, c in measured.values())
        print(f"  {board:28}{factor:>6.1f}x{cells}")
    print(
        "  sysbench's prime loop is integer arithmetic that fits in cache; zxing also streams"
        " the frame through memory, where the Pi's LPDDR2/4 is further behind, so treat these"
        " as optimistic until measured on the board."
    )


def main() -> None:
    """Generate the frames, then time and count."""
    versions = ", ".join(
        f"{p} {importlib.metadata.version(p)}" for p in ("pyzbar", "zxing-cpp", "numpy")
    )
    print(f"{platform.machine()} {platform.python_version()}, libzbar {zbar_version()}, {versions}")
    started = time.perf_counter()
    empties = [empty_frame(seed=s) for s in range(40)]
    with_code = code_frames()
    photos = list(photo_set(150, seed=1234))
    print(
        f"frames: {len(empties)} empty, {len(with_code)} with a code, {len(photos)} photo-like, "
        f"generated in {time.perf_counter() - started:.1f} s"
    )

    def camera_view(frame: Frame) -> Frame:
        """The frame as a slice of a buffer with 64 bytes of row padding, like picamera2's."""
        return np.pad(frame, ((0, 0), (0, 64)))[:, :640]

    views = ([camera_view(f) for f in empties], [camera_view(f) for f in with_code])
    rows: dict[str, Row] = {
        "pyzbar.decode(frame)  [library default]": (pyzbar.decode, empties, with_code),
        "pyzbar.decode(frame, symbols=[QRCODE])": (
            lambda f: pyzbar.decode(f, symbols=[pyzbar.ZBarSymbol.QRCODE]),
            empties,
            with_code,
        ),
    }
    for backend in available_backends():
        decoder = make_decoder(DecoderConfig(backend=backend, rescue=(), invert_every=0))
        rows[f"{backend} (gate.decode)"] = (decoder.decode, empties, with_code)
        rows[f"{backend} (gate.decode), padded camera view"] = (decoder.decode, *views)
    rows["auto (gate.decode, ladder)"] = (make_decoder(DecoderConfig()).decode, *views)

    medians = speed(rows)
    print("\nratios of p50 (higher = the second is faster)")
    ratio(medians, "pyzbar.decode(frame)  [library default]", "zbar (gate.decode)")
    ratio(medians, "pyzbar.decode(frame, symbols=[QRCODE])", "zbar (gate.decode)")
    ratio(medians, "zbar (gate.decode)", "zxing (gate.decode)")
    call_overhead()

    photo_reads(photos)
    if "zxing" in available_backends():
        zxing_options(photos, empties)
    pi_estimate()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
