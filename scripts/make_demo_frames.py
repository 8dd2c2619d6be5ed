"""Render the demo's replayed camera frames into config/demo-frames/ (committed; rerun to change).

Run: .venv/bin/python scripts/make_demo_frames.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from imagegen import empty_frame, qr_frame, save_png  # noqa: E402

SCENES: list[tuple[str, str | None]] = [
    ("empty", None),
    (
        "cccd-accepted",
        "001090123456|012345678|Nguyễn Văn An|01011990|Nam|"
        "Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|15042021",
    ),
    ("empty", None),
    (
        "national-qr-accepted",
        "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|1<GD4877*******<0943******",
    ),
    ("empty", None),
    (
        "payment-code-refused",
        "00020101021238570010A00000072701270006970403011300669911220208"
        "QRIBFTTA53037045802VN6304ABCD",
    ),
    ("empty", None),
    (
        "cccd-again-duplicate",
        "001090123456|012345678|Nguyễn Văn An|01011990|Nam|"
        "Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|15042021",
    ),
    ("empty", None),
    ("cccd-forged-refused", "001190123456|012345678|Nguyễn Văn Bình|01011990|Nam|Hà Nội|15042021"),
    ("empty", None),
]


def main() -> None:
    out = ROOT / "config" / "demo-frames"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    for index, (name, payload) in enumerate(SCENES):
        if payload is None:
            frame = empty_frame(seed=index)
        else:
            frame = qr_frame(
                payload, module_px=4, angle=(index * 7) % 25 - 12, blur=0.6, noise=6.0, seed=index
            )
        save_png(frame, out / f"{index:02d}-{name}.png")
    print(f"wrote {len(SCENES)} frames to {out}")


if __name__ == "__main__":
    main()
