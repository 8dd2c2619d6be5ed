"""Real QR images for tests and benchmarks, made with segno and Pillow.

There is no camera and no internet here, so every image a decoder sees in tests is drawn
by these helpers: clean frames for exact-byte checks, camera-like empty frames for the
cost that matters most (a gate mostly sees no code), and a synthetic "photo" set
(perspective, uneven light, blur, noise, JPEG) whose difficulty is spread so that some
images defeat one backend or both. Everything is deterministic for a given seed.

Codes are byte mode, UTF-8, without an ECI header: the way real CCCD codes are made.
Frames are 2-D uint8 grey numpy arrays of shape (height, width); sizes are (width, height).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter

Size = tuple[int, int]

QUIET_ZONE = 4
"""Modules of white border around every code, as the QR standard asks."""

VIETNAMESE_PAYLOADS: tuple[str, ...] = (
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
    "|15042021",
    "034303012345||Nguyễn Thị Hoa|21032003|Nữ|Xã Vũ Hội, Huyện Vũ Thư, Thái Bình|14082021",
    "079201004567||Huỳnh Hiếu Thuận|30061992|Nam|Phường Thảo Điền, TP. Thủ Đức, TP. Hồ Chí Minh"
    "|02082022",
)
"""CCCD-style lines (fabricated people) whose UTF-8 bytes zbar's charset guess gets wrong."""

_NAMES = (
    "Nguyễn Văn An",
    "Trần Thị Bích Ngọc",
    "Huỳnh Hiếu Thuận",
    "Lê Quang Đức",
    "Phạm Thu Hương",
    "Võ Minh Khôi",
    "Đặng Thị Mỹ Duyên",
    "Bùi Xuân Trường",
    "Đỗ Hoàng Yến",
    "Hồ Ngọc Ánh",
)
_PLACES = (
    "Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
    "Xã Vũ Hội, Huyện Vũ Thư, Thái Bình",
    "Phường Hàng Bạc, Quận Hoàn Kiếm, Hà Nội",
    "Phường Thạch Thang, Quận Hải Châu, Đà Nẵng",
    "Xã Ea Tu, TP. Buôn Ma Thuột, Đắk Lắk",
)
_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def as_bytes(payload: bytes | str) -> bytes:
    """The exact bytes put in the symbol: text is always UTF-8, never Latin-1 or ECI-tagged."""
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def qr_modules(payload: bytes | str, *, error: str = "m") -> np.ndarray:
    """Module matrix (True = dark) with the quiet zone, byte mode, no ECI segment."""
    qr = segno.make_qr(as_bytes(payload), mode="byte", error=error, eci=False, boost_error=False)
    matrix = np.array([list(row) for row in qr.matrix], dtype=bool)
    return np.pad(matrix, QUIET_ZONE, constant_values=False)


def qr_image(
    payload: bytes | str, *, module_px: int = 4, dark: int = 0, light: int = 255, error: str = "m"
) -> np.ndarray:
    """The code alone, quiet zone included, scaled to whole pixels per module."""
    if module_px < 1:
        raise ValueError("module_px must be at least 1")
    modules = qr_modules(payload, error=error)
    grey = np.where(modules, np.uint8(dark), np.uint8(light))
    return np.kron(grey, np.ones((module_px, module_px), dtype=np.uint8))


def _place(
    frame: Image.Image, code: np.ndarray, center: tuple[float, float], angle: float, light: int
) -> None:
    """Paste the code rotated about its centre; the rotated corners stay quiet-zone light."""
    tile = Image.fromarray(code, "L")
    if angle:
        tile = tile.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=light)
    x = round(center[0] - tile.width / 2)
    y = round(center[1] - tile.height / 2)
    frame.paste(tile, (x, y))


def _finish(img: Image.Image, *, blur: float, noise: float, seed: int) -> np.ndarray:
    """Blur then add gaussian noise: the order a lens and a sensor apply them."""
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(img, dtype=np.uint8)
    if noise > 0:
        rng = np.random.default_rng(seed)
        noisy = arr.astype(np.float32) + rng.normal(0.0, noise, arr.shape).astype(np.float32)
        arr = np.clip(noisy, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def qr_frame(
    payload: bytes | str,
    *,
    size: Size = (640, 480),
    module_px: int = 4,
    center: tuple[float, float] | None = None,
    angle: float = 0.0,
    blur: float = 0.0,
    background: int = 255,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A grey frame of `size` (w, h) with one code at `center`, rotated `angle` degrees."""
    frame = Image.new("L", size, background)
    cx, cy = center if center is not None else (size[0] / 2, size[1] / 2)
    _place(frame, qr_image(payload, module_px=module_px), (cx, cy), angle, 255)
    return _finish(frame, blur=blur, noise=noise, seed=seed)


def _texture(size: Size, rng: np.random.Generator, pyrng: random.Random) -> Image.Image:
    """A camera-like scene: smooth gradients, boxes, edges and text-like strokes, no code."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    base = rng.uniform(70, 170) + gx * xx + gy * yy
    base += rng.uniform(10, 30) * np.sin(xx / rng.uniform(40, 120) + rng.uniform(0, 6))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "L")
    draw = ImageDraw.Draw(img)
    for _ in range(pyrng.randint(6, 14)):
        x0, y0 = pyrng.randrange(w), pyrng.randrange(h)
        x1, y1 = x0 + pyrng.randint(20, w // 2), y0 + pyrng.randint(20, h // 2)
        draw.rectangle((x0, y0, x1, y1), fill=pyrng.randint(0, 255))
    for _ in range(pyrng.randint(4, 10)):
        pts = [(pyrng.randrange(w), pyrng.randrange(h)) for _ in range(2)]
        draw.line(pts, fill=pyrng.randint(0, 255), width=pyrng.randint(1, 6))
    for _ in range(pyrng.randint(3, 8)):
        text = "".join(pyrng.choice("ABCDEFGHKMNPQRSTUVWXYZ0123456789 ") for _ in range(12))
        draw.text(
            (pyrng.randrange(w - 60), pyrng.randrange(h - 12)), text, fill=pyrng.randint(0, 255)
        )
    return img


def empty_frame(size: Size = (640, 480), seed: int = 0, texture: bool = True) -> np.ndarray:
    """A frame with no code: textured so the decoder does the work a real empty scene costs."""
    rng = np.random.default_rng(seed)
    img = _texture(size, rng, random.Random(seed)) if texture else Image.new("L", size, 128)
    return _finish(img, blur=0.8 if texture else 0.0, noise=4.0, seed=seed + 1)


def multi_frame(
    payloads: Sequence[bytes | str],
    *,
    size: Size = (640, 480),
    module_px: int = 3,
    background: int = 255,
    blur: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Several codes side by side in one frame, each in its own cell of a grid."""
    if not payloads:
        raise ValueError("multi_frame needs at least one payload")
    cols = int(np.ceil(np.sqrt(len(payloads))))
    rows = int(np.ceil(len(payloads) / cols))
    cell_w, cell_h = size[0] / cols, size[1] / rows
    frame = Image.new("L", size, background)
    for i, payload in enumerate(payloads):
        code = qr_image(payload, module_px=module_px)
        if code.shape[0] > min(cell_w, cell_h):
            raise ValueError(f"code {i} ({code.shape[0]} px) does not fit a {cell_w:.0f} px cell")
        row, col = divmod(i, cols)
        _place(frame, code, ((col + 0.5) * cell_w, (row + 0.5) * cell_h), 0.0, 255)
    return _finish(frame, blur=blur, noise=noise, seed=seed)


def _perspective_coeffs(
    dst: Sequence[tuple[float, float]], src: Sequence[tuple[float, float]]
) -> tuple[float, ...]:
    """Pillow's PERSPECTIVE coefficients mapping output points `dst` back to input `src`."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.extend([u, v])
    return tuple(np.linalg.solve(np.array(a, dtype=float), np.array(b, dtype=float)).tolist())


def photo_like(payload: bytes | str, seed: int, difficulty: float | None = None) -> np.ndarray:
    """A camera-photo-like 640x480 frame of one code; `difficulty` 0..1, default from seed.

    Tilted phone screen or card (perspective), low contrast, uneven lighting, defocus,
    sensor noise and a JPEG round trip, each scaled by difficulty with some randomness.
    """
    pyrng = random.Random(seed)
    rng = np.random.default_rng(seed)
    d = pyrng.random() if difficulty is None else min(max(difficulty, 0.0), 1.0)
    size = (640, 480)

    scene = _texture(size, rng, pyrng)
    modules = qr_modules(payload).shape[0]
    target_px = pyrng.uniform(340 - 180 * d, 400 - 160 * d)
    module_px = max(1, round(target_px / modules))
    contrast = pyrng.uniform(1.0 - 0.7 * d, 1.0 - 0.5 * d)
    dark = round(128 - 110 * contrast)
    light = round(128 + 110 * contrast)
    code = Image.fromarray(qr_image(payload, module_px=module_px, dark=dark, light=light), "L")
    code = code.rotate(pyrng.uniform(-180, 180), Image.Resampling.BILINEAR, True, fillcolor=light)

    cw, ch = code.size
    side = min(size) * pyrng.uniform(0.55, 0.95)
    scale = min(1.0, side / max(cw, ch))
    cx = pyrng.uniform(side / 2, size[0] - side / 2)
    cy = pyrng.uniform(min(side / 2, size[1] / 2), max(size[1] - side / 2, size[1] / 2))
    half_w, half_h = cw * scale / 2, ch * scale / 2
    jitter = 0.28 * d * min(half_w, half_h)
    dst = [
        (
            cx + sx * half_w + pyrng.uniform(-jitter, jitter),
            cy + sy * half_h + pyrng.uniform(-jitter, jitter),
        )
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    src = [(0.0, 0.0), (float(cw), 0.0), (float(cw), float(ch)), (0.0, float(ch))]
    warped = code.transform(
        size, Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, src), Image.Resampling.BILINEAR
    )
    mask = Image.new("L", code.size, 255).transform(
        size, Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, src), Image.Resampling.BILINEAR
    )
    scene.paste(warped, (0, 0), mask)

    arr = np.asarray(scene, dtype=np.float32)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    angle = pyrng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / size[0] + np.sin(angle) * yy / size[1] + 1) / 2
    light_min = 1.0 - pyrng.uniform(0.3, 0.75) * d
    spot_x, spot_y = pyrng.uniform(0, size[0]), pyrng.uniform(0, size[1])
    spot = np.exp(-((xx - spot_x) ** 2 + (yy - spot_y) ** 2) / (2 * (size[0] / 3) ** 2))
    gain = light_min + (1 - light_min) * ramp
    arr = arr * gain + pyrng.uniform(0, 60) * d * spot
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")

    blur = pyrng.uniform(0.2, 0.4 + 1.6 * d)
    noisy = _finish(img, blur=blur, noise=pyrng.uniform(1.5, 2 + 10 * d), seed=seed + 7)
    buf = io.BytesIO()
    Image.fromarray(noisy, "L").save(buf, "JPEG", quality=round(pyrng.uniform(92 - 60 * d, 95)))
    buf.seek(0)
    with Image.open(buf) as jpeg:
        return np.asarray(jpeg.convert("L"), dtype=np.uint8).copy()


def _payload(pyrng: random.Random) -> str:
    """A payload of a kind a Vietnamese gate meets, so symbol sizes vary like in real life."""
    kind = pyrng.randrange(5)
    if kind <= 1:
        ident = "0" + "".join(pyrng.choice("0123456789") for _ in range(11))
        old = "".join(pyrng.choice("0123456789") for _ in range(9)) if kind == 0 else ""
        name, place = pyrng.choice(_NAMES), pyrng.choice(_PLACES)
        sex = pyrng.choice(("Nam", "Nữ"))
        born = f"{pyrng.randint(1, 28):02d}{pyrng.randint(1, 12):02d}19{pyrng.randint(50, 99)}"
        issued = f"{pyrng.randint(1, 28):02d}{pyrng.randint(1, 12):02d}202{pyrng.randint(1, 4)}"
        return f"{ident}|{old}|{name}|{born}|{sex}|{place}|{issued}"
    if kind == 2:
        return "HC1:" + "".join(pyrng.choice(_BASE45) for _ in range(pyrng.randint(180, 420)))
    if kind == 3:
        return "000201010212" + "".join(pyrng.choice("0123456789") for _ in range(60)) + "6304ABCD"
    return f"https://example.vn/p/{pyrng.getrandbits(64):016x}"


def photo_set(n: int = 120, seed: int = 1234) -> Iterator[tuple[bytes, np.ndarray]]:
    """`n` (payload bytes, frame) pairs with difficulty spread evenly from easy to unreadable."""
    pyrng = random.Random(seed)
    for i in range(n):
        payload = _payload(pyrng).encode("utf-8")
        difficulty = (i + pyrng.random()) / n
        yield payload, photo_like(payload, seed=seed * 1000 + i, difficulty=difficulty)


def save_png(frame: np.ndarray, path: str | Path) -> Path:
    """Write a grey frame as PNG (for the CLI, the replay source and looking at failures)."""
    out = Path(path)
    Image.fromarray(np.ascontiguousarray(frame), "L").save(out, "PNG")
    return out


PRESENTATIONS = ("enter with motion blur", "glare", "perspective", "dark-mode screen")
"""Short held-code presentations a gate camera sees, each hard frame by frame."""


def _motion_blur(arr: np.ndarray, length: int) -> np.ndarray:
    """Horizontal motion blur: the mean of `length` copies shifted one pixel apart."""
    if length <= 1:
        return arr
    out = np.zeros(arr.shape, np.float32)
    for shift in range(length):
        out += np.roll(arr, shift, axis=1)
    return out / length


def presentation(
    kind: str, payload: bytes | str, *, frames: int = 24, seed: int = 0
) -> list[np.ndarray]:
    """`frames` 640x480 frames of one code presented in the way `kind` (see PRESENTATIONS).

    - enter with motion blur: the code slides in from the left, fast and blurred, then slows;
    - glare: a held, low-contrast code under a moving specular highlight that clips it;
    - perspective: a card tilted far back that turns slowly towards the camera;
    - dark-mode screen: light modules on a dark phone screen in a darker bezel, moving in.
    Every frame has blur and sensor noise; everything is deterministic for a seed.
    """
    if kind not in PRESENTATIONS:
        raise ValueError(f"unknown presentation {kind!r}; known: {', '.join(PRESENTATIONS)}")
    pyrng = random.Random(seed)
    rng = np.random.default_rng(seed)
    size = (640, 480)
    scene = np.asarray(_texture(size, rng, pyrng), dtype=np.float32)
    dark_mode = kind == "dark-mode screen"
    tile = qr_image(
        payload,
        module_px=3 if kind != "perspective" else 4,
        dark=225 if dark_mode else 40,
        light=35 if dark_mode else 215,
    )
    th, tw = tile.shape
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        img = Image.fromarray(scene.astype(np.uint8), "L")
        if kind == "perspective":
            lean = 0.55 * (1 - t) + 0.1
            cx, cy, half = 320, 240, tw / 2
            dst = [
                (cx - half, cy - half * (1 - lean)),
                (cx + half * (1 - lean * 0.6), cy - half),
                (cx + half * (1 - lean * 0.6), cy + half),
                (cx - half, cy + half * (1 - lean)),
            ]
            src = [(0.0, 0.0), (float(tw), 0.0), (float(tw), float(th)), (0.0, float(th))]
            coeffs = _perspective_coeffs(dst, src)
            code = Image.fromarray(tile, "L")
            warped = code.transform(size, Image.Transform.PERSPECTIVE, coeffs)
            mask = Image.new("L", code.size, 255).transform(
                size, Image.Transform.PERSPECTIVE, coeffs
            )
            img.paste(warped, (0, 0), mask)
            speed = 0
        else:
            entering = kind in ("enter with motion blur", "dark-mode screen")
            arrive = 0.4 if entering else 0.0
            progress = min(1.0, t / arrive) if arrive else 1.0
            x = round(-tw + (320 - tw / 2 + tw) * (1 - (1 - progress) ** 2))
            speed = round(2 * (320 + tw / 2) * (1 - progress) / (arrive * frames)) if arrive else 0
            y = round(240 - th / 2 + pyrng.uniform(-3, 3))
            if dark_mode:
                bezel = Image.new("L", (tw + 60, th + 120), 12)
                img.paste(bezel, (x - 30, y - 60))
            img.paste(Image.fromarray(tile, "L"), (x, y))
        arr = _motion_blur(np.asarray(img, dtype=np.float32), max(1, speed // 2))
        if kind == "glare":
            yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
            gx = 320 - tw / 2 + tw * t
            spot = np.exp(-((xx - gx) ** 2 + (yy - 230) ** 2) / (2 * (tw / 5) ** 2))
            arr = arr * 0.8 + 300 * spot
        noisy = _finish(
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L"),
            blur=pyrng.uniform(0.6, 1.1),
            noise=pyrng.uniform(3, 6),
            seed=seed * 1000 + i,
        )
        out.append(noisy)
    return out


def crumpled_frame(
    payload: bytes | str,
    *,
    module_px: float,
    blur: float,
    noise: float,
    wave_px: float = 0.0,
    shadow: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A 640x480 frame of a hard code: a fractional module size (bilinear), rows shifted
    sideways in a wave (crumpled or curved paper), a hard shadow edge across the right half
    darkening it by `shadow` (0..1), then blur and noise. Zxing often locates such a symbol
    without decoding it: the ladder's rescue rungs are tested on these.
    """
    code = qr_image(payload, module_px=4)
    side = round(code.shape[0] * module_px / 4)
    tile = Image.fromarray(code, "L").resize((side, side), Image.Resampling.BILINEAR)
    frame = Image.new("L", (640, 480), 255)
    frame.paste(tile, (320 - side // 2, 240 - side // 2))
    arr = np.asarray(frame, np.float32)
    yy, xx = np.mgrid[0:480, 0:640]
    if wave_px:
        shift = (wave_px * np.sin(yy / 23.0 + seed)).astype(int)
        arr = arr[yy, np.clip(xx + shift, 0, 639)]
    if shadow:
        arr = arr * np.where(xx > 320 + seed * 5, 1 - shadow, 1.0)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    return _finish(img, blur=blur, noise=noise, seed=seed)
