"""The QR decoder against real libraries and real generated images.

Every backend importable here (zbar always, zxing where its wheel exists) and the `auto`
decoder must give the symbol's exact bytes, never a charset guess.
"""

import ctypes
import ctypes.util
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from imagegen import (
    VIETNAMESE_PAYLOADS,
    crumpled_frame,
    empty_frame,
    multi_frame,
    photo_like,
    qr_frame,
    qr_modules,
    save_png,
)

import gate.decode as decode
from gate.config.base import ValidationError
from gate.decode import (
    Code,
    Decoder,
    DecoderConfig,
    LadderDecoder,
    available_backends,
    decode_files,
    load_grey,
    make_decoder,
)
from gate.errors import DecoderError, ImageReadError

CCCD = VIETNAMESE_PAYLOADS[0]
HUYNH = "Huỳnh Hiếu Thuận"
DECODERS = [*available_backends(), "auto"]


@pytest.fixture(params=DECODERS, scope="module")
def decoder(request: pytest.FixtureRequest) -> Decoder:
    """Each backend on its own, then what the daemon gets by default."""
    return make_decoder(DecoderConfig(backend=request.param))


def payloads(codes: list[Code]) -> list[bytes]:
    """The bytes found, in a stable order for comparison."""
    return sorted(c.data for c in codes)


def damaged_frame(payload: str, fraction: float, seed: int = 1) -> np.ndarray:
    """A code whose finder patterns are intact but whose data modules are partly flipped."""
    modules = qr_modules(payload)
    n = modules.shape[0]
    inner = np.zeros_like(modules)
    inner[13 : n - 13, 13 : n - 13] = True  # away from the finders and format information
    modules ^= inner & (np.random.default_rng(seed).random(modules.shape) < fraction)
    code = np.where(modules, 0, 255).astype(np.uint8).repeat(4, 0).repeat(4, 1)
    frame = np.full((480, 640), 255, np.uint8)
    frame[10 : 10 + code.shape[0], 10 : 10 + code.shape[1]] = code
    return frame


# --- exact bytes and text -------------------------------------------------------------


@pytest.mark.parametrize("payload", [*VIETNAMESE_PAYLOADS, HUYNH], ids=lambda p: p[:16])
def test_utf8_without_eci_comes_out_byte_for_byte(decoder: Decoder, payload: str) -> None:
    codes = decoder.decode(qr_frame(payload))
    assert [c.data for c in codes] == [payload.encode("utf-8")]
    assert codes[0].text == payload
    assert codes[0].backend in {"zxing", "zbar"}


def test_pyzbar_default_call_garbles_what_our_zbar_reads_right() -> None:
    """Why the zbar backend sets ZBAR_CFG_BINARY: the library default guesses Shift-JIS."""
    from pyzbar import pyzbar

    frame = qr_frame(HUYNH)
    assert pyzbar.decode(frame)[0].data != HUYNH.encode("utf-8")
    assert make_decoder(DecoderConfig(backend="zbar")).decode(frame)[0].text == HUYNH


def test_bytes_that_are_not_utf8_are_kept_exactly(decoder: Decoder) -> None:
    payload = b"\xff\xfe\x00\x01binary\x80"
    [code] = decoder.decode(qr_frame(payload))
    assert code.data == payload
    assert isinstance(code.text, str) and code.text


# --- geometry and image quality -------------------------------------------------------


@pytest.mark.parametrize("angle", [15, 45, 90, 180])
def test_rotated_codes_are_read(decoder: Decoder, angle: float) -> None:
    assert payloads(decoder.decode(qr_frame(CCCD, angle=angle))) == [CCCD.encode()]


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("blurred, 4 px modules", {"blur": 1.2, "noise": 4.0}),
        ("blurred, 6 px modules", {"blur": 2.0, "noise": 4.0, "module_px": 6}),
        ("small, 2 px modules", {"module_px": 2}),
        ("large, 8 px modules", {"module_px": 8}),
        ("off centre on grey", {"center": (180, 150), "background": 140, "module_px": 3}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_imperfect_frames_are_read(decoder: Decoder, kind: str, kwargs: dict) -> None:
    assert payloads(decoder.decode(qr_frame(CCCD, **kwargs))) == [CCCD.encode()], kind


def test_a_mildly_photographed_code_is_read(decoder: Decoder) -> None:
    payload = VIETNAMESE_PAYLOADS[1].encode()
    assert payload in payloads(decoder.decode(photo_like(payload, seed=3, difficulty=0.1)))


def test_every_code_in_a_frame_is_found(decoder: Decoder) -> None:
    texts = ["GATE-PASS-0001", "GATE-PASS-0002", HUYNH, "https://example.vn/p/42"]
    assert payloads(decoder.decode(multi_frame(texts))) == sorted(t.encode() for t in texts)


@pytest.mark.parametrize("seed", range(4))
def test_empty_frames_give_nothing(decoder: Decoder, seed: int) -> None:
    assert decoder.decode(empty_frame(seed=seed)) == []


def test_a_flat_frame_gives_nothing(decoder: Decoder) -> None:
    assert decoder.decode(empty_frame(texture=False)) == []


# --- camera buffers: strided views ----------------------------------------------------


def test_a_padded_camera_row_view_reads_like_a_contiguous_frame(decoder: Decoder) -> None:
    """picamera2's Y plane sliced arr[:h, :w] has a row stride larger than the width."""
    frame = qr_frame(CCCD, angle=15)
    buffer = np.full((480, 704), 77, np.uint8)
    buffer[:, :640] = frame
    view = buffer[:, :640]
    assert not view.flags.c_contiguous
    assert decoder.decode(view) == decoder.decode(frame)


def test_zbar_reads_a_padded_camera_view_in_place() -> None:
    """No per-frame copy of the 300 KB frame: zbar is shown the stride and a crop."""
    zbar = make_decoder(DecoderConfig(backend="zbar"))
    view = np.full((480, 704), 255, np.uint8)[:, :640]
    zbar.decode(view)
    tracemalloc.start()
    try:
        zbar.decode(view)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_the_row_padding_is_not_part_of_the_frame(decoder: Decoder) -> None:
    buffer = np.full((480, 1280), 255, np.uint8)
    buffer[:, 640:] = qr_frame("only in the padding")
    assert decoder.decode(buffer[:, :640]) == []


def test_a_view_without_trailing_padding_memory_is_still_read(decoder: Decoder) -> None:
    """The last row's padding is not owned here, so zbar must not be shown it."""
    flat = np.zeros(704 * 479 + 640, np.uint8)
    view = np.lib.stride_tricks.as_strided(flat, (480, 640), (704, 1))
    view[:] = qr_frame(CCCD)
    assert payloads(decoder.decode(view)) == [CCCD.encode()]


@pytest.mark.parametrize("how", ["every other column", "flipped"])
def test_other_strided_views_are_read(decoder: Decoder, how: str) -> None:
    frame = qr_frame(CCCD)
    view = np.repeat(frame, 2, axis=1)[:, ::2] if how == "every other column" else frame[::-1, ::-1]
    assert payloads(decoder.decode(view)) == [CCCD.encode()]


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.zeros((480, 640), np.float32),
        np.zeros((0, 640), np.uint8),
    ],
    ids=["colour", "float", "empty"],
)
def test_frames_no_backend_can_read_are_refused_with_decoder_error(
    decoder: Decoder, frame: np.ndarray
) -> None:
    with pytest.raises(DecoderError, match="frame"):
        decoder.decode(frame)


# --- choosing a backend ---------------------------------------------------------------


def test_zbar_is_always_available() -> None:
    assert "zbar" in available_backends()


def test_auto_prefers_zxing_with_the_ladder() -> None:
    assert make_decoder(DecoderConfig()).name == "zxing+histogram+upscale+zbar+invert/16"
    assert make_decoder(DecoderConfig(rescue=(), invert_every=0)).name == "zxing"
    assert make_decoder(DecoderConfig(backend="zbar", invert_every=0)).name == "zbar"
    assert make_decoder(DecoderConfig(backend="zbar")).name == "zbar+invert/16"


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValidationError):
        DecoderConfig(backend="quirc")
    with pytest.raises(DecoderError, match="unknown decoder backend 'quirc'"):
        make_decoder(DecoderConfig().model_copy(update={"backend": "quirc"}))


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        DecoderConfig.model_validate({"backend": "zbar", "max_payload_bytes": 10})


@pytest.fixture
def without_zxing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a platform with no zxing-cpp wheel: importing zxingcpp fails."""
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    monkeypatch.delitem(sys.modules, "gate.decode.zxing", raising=False)
    decode._load.cache_clear()
    decode._why_unavailable.cache_clear()
    yield
    decode._load.cache_clear()
    decode._why_unavailable.cache_clear()


@pytest.mark.usefixtures("without_zxing")
def test_a_missing_zxing_wheel_is_named_and_auto_falls_back_to_zbar() -> None:
    assert available_backends() == ["zbar"]
    with pytest.raises(DecoderError, match=r"'zxing' is not available.*zxing-cpp"):
        make_decoder(DecoderConfig(backend="zxing"))
    auto = make_decoder(DecoderConfig())
    assert auto.name == "zbar+invert/16"
    assert auto.decode(qr_frame(HUYNH))[0].text == HUYNH


# --- the ladder -------------------------------------------------------------------


class CountingDecoder:
    """A fallback that records when it is consulted (our own protocol, not a library)."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, grey: np.ndarray) -> list[Code]:
        self.calls += 1
        return [Code(b"from the fallback", "from the fallback", "zbar")]


def test_rescue_rungs_run_only_when_zxing_located_an_unreadable_symbol() -> None:
    from gate.decode.zxing import ZxingDecoder

    fallback = CountingDecoder()
    chained = LadderDecoder(ZxingDecoder(), [("counting", fallback.decode)])
    assert chained.decode(empty_frame()) == []
    assert payloads(chained.decode(qr_frame(CCCD))) == [CCCD.encode()]
    assert fallback.calls == 0
    assert payloads(chained.decode(damaged_frame(CCCD, 0.05))) == [b"from the fallback"]
    assert fallback.calls == 1


# --- files, for `gate decode FILE...` -------------------------------------------------


def test_decode_files_reports_each_file_in_order_and_carries_on(
    decoder: Decoder, tmp_path: Path
) -> None:
    good = save_png(qr_frame(HUYNH), tmp_path / "good.png")
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n", encoding="utf-8")
    missing = tmp_path / "missing.png"
    folder = tmp_path / "folder"
    folder.mkdir()

    results = list(decode_files([str(good), str(missing), str(fake), str(folder)], decoder))

    assert [r["file"] for r in results] == [str(p) for p in (good, missing, fake, folder)]
    [code] = results[0]["codes"]
    assert code["text"] == HUYNH
    assert code["data_hex"] == HUYNH.encode().hex()
    assert code["backend"] in {"zxing", "zbar"}
    assert "no such file" in results[1]["error"]
    assert "not an image" in results[2]["error"]
    assert "directory" in results[3]["error"]
    assert all(r["file"] in r["error"] for r in results[1:])
    json.dumps(results)


def test_load_grey_converts_colour_files_to_grey(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "colour.jpg"
    Image.fromarray(np.stack([qr_frame(CCCD)] * 3, axis=-1), "RGB").save(path, quality=95)
    grey = load_grey(path)
    assert grey.dtype == np.uint8 and grey.shape == (480, 640)


def test_an_image_larger_than_any_camera_frame_is_refused_before_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "frame.png"
    save_png(qr_frame(CCCD), path)
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 640 * 480 - 1)
    with pytest.raises(ImageReadError, match=r"frame\.png: 640x480 is larger than any camera"):
        load_grey(path)


def test_a_jpeg_larger_than_any_camera_frame_is_read_at_half_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone's 48 MP photo: libjpeg decodes it at half its width and height, in grey."""
    from PIL import Image

    path = tmp_path / "photo.jpg"
    Image.fromarray(qr_frame(CCCD)).save(path, quality=95)
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 640 * 480 // 4)  # 1/2 of each side fits
    grey = load_grey(path)
    assert grey.shape == (240, 320)
    assert [c.text for c in make_decoder(DecoderConfig()).decode(grey)] == [CCCD]
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 640 * 480 // 4 - 1)  # beyond 1/2
    with pytest.raises(ImageReadError, match=r"photo\.jpg: 320x240 is larger than any camera"):
        load_grey(path)


def test_a_progressive_jpeg_larger_than_any_camera_frame_is_refused_before_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libjpeg keeps a progressive JPEG whole in memory, however small it is read."""
    from PIL import Image

    path = tmp_path / "photo.jpg"
    Image.fromarray(qr_frame(CCCD)).save(path, quality=95, progressive=True)
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 640 * 480 // 4)
    with pytest.raises(ImageReadError, match=r"640x480 .* a progressive JPEG is read at its full"):
        load_grey(path)
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 640 * 480)
    assert load_grey(path).shape == (480, 640)  # as large as a camera frame: read


def test_an_images_bytes_are_read_as_its_file_and_named_as_told(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    save_png(qr_frame(CCCD), path)
    assert np.array_equal(load_grey(path.read_bytes()), load_grey(path))
    with pytest.raises(ImageReadError, match=r"^a test case's PNG: not an image Pillow can"):
        load_grey(b"not a png", "a test case's PNG")


def test_load_grey_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"absent\.png"):
        load_grey(tmp_path / "absent.png")


# --- the ladder's schedule: light-on-dark codes on one frame in N ---------------------


def dark_mode(payload: str) -> np.ndarray:
    """A light-on-dark code, as a phone in dark mode shows it."""
    return np.invert(qr_frame(payload, blur=0.6, noise=3.0))


@pytest.mark.parametrize("backend", available_backends())
def test_a_held_light_on_dark_code_is_read_within_invert_every_frames(backend: str) -> None:
    decoder = make_decoder(DecoderConfig(backend=backend, invert_every=4))
    frame = dark_mode(CCCD)
    first = next(i for i in range(1, 9) if decoder.decode(frame))
    assert first <= 4
    assert all(payloads(decoder.decode(frame)) == [CCCD.encode()] for _ in range(6)), (
        "while a light-on-dark code is read, every next frame is read inverted too"
    )


def test_zxing_alone_never_reads_light_on_dark_but_the_schedule_does() -> None:
    frame = dark_mode(HUYNH)
    plain = make_decoder(DecoderConfig(backend="zxing", rescue=(), invert_every=0))
    scheduled = make_decoder(DecoderConfig(backend="zxing", rescue=(), invert_every=3))
    assert not any(plain.decode(frame) for _ in range(6))
    assert [bool(scheduled.decode(frame)) for _ in range(3)] == [False, False, True]


def test_normal_codes_are_read_on_every_frame_including_the_inverted_ones(
    decoder: Decoder,
) -> None:
    """A still image decoded once (gate decode, pass checks) is never read inverted only."""
    frame = qr_frame(CCCD, angle=15)
    assert all(payloads(decoder.decode(frame)) == [CCCD.encode()] for _ in range(40))


class RecordingScanner:
    """A backend that reads a fixed code (or nothing) and records which pass ran."""

    def __init__(self, name: str, log: list[str], reads: bool) -> None:
        self.name, self._log, self._reads = name, log, reads

    def scan(self, grey: np.ndarray) -> tuple[list[Code], tuple]:
        self._log.append(self.name)
        return ([Code(b"x", "x", self.name)] if self._reads else []), ()


def test_a_normal_code_in_view_does_not_hold_the_dearer_both_polarities_pass() -> None:
    passes: list[str] = []
    plain, both = RecordingScanner("plain", passes, True), RecordingScanner("both", passes, True)
    ladder = LadderDecoder(plain, [], both, invert_every=3)
    for _ in range(7):
        assert payloads(ladder.decode(empty_frame())) == [b"x"]
    assert passes == ["plain", "plain", "both", "plain", "plain", "both", "plain"]


def test_a_code_only_the_both_polarities_pass_reads_holds_it() -> None:
    passes: list[str] = []
    plain, both = RecordingScanner("plain", passes, False), RecordingScanner("both", passes, True)
    ladder = LadderDecoder(plain, [], both, invert_every=3)
    for _ in range(5):
        ladder.decode(empty_frame())
    assert passes == ["plain", "plain", "both", "both", "both"]


def test_the_inverted_frame_reuses_one_buffer() -> None:
    zbar = make_decoder(DecoderConfig(backend="zbar", invert_every=1))
    view = np.full((480, 704), 255, np.uint8)[:, :640]
    zbar.decode(view)
    tracemalloc.start()
    try:
        zbar.decode(view)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


# --- the ladder's rescue rungs -------------------------------------------------------


def test_a_crop_keeps_a_margin_inside_the_frame_and_refuses_what_cannot_hold_a_symbol() -> None:
    from gate.decode.base import Box
    from gate.decode.ladder import crop_around

    frame = qr_frame(CCCD)
    crop = crop_around(frame, Box(600, 440, 700, 520))
    assert crop is not None and crop.base is not None
    assert crop.shape == (480 - 440 + 18, 640 - 600 + 18)
    assert crop_around(frame, Box(630, 470, 639, 479)) is None


@pytest.mark.parametrize(("factor", "module_px"), [(2.0, 1), (0.5, 8)])
def test_a_rescaled_rung_reads_the_crop_at_its_scale(factor: float, module_px: int) -> None:
    from gate.decode.ladder import Rescaled, rescaled
    from gate.decode.zxing import ZxingDecoder

    frame = qr_frame(HUYNH, module_px=module_px, size=(420, 420))
    assert rescaled(frame, factor).shape == (round(420 * factor),) * 2
    assert payloads(Rescaled(ZxingDecoder(), factor)(frame)) == [HUYNH.encode()]


def test_each_rung_is_tried_in_order_until_one_reads() -> None:
    from gate.decode.zxing import ZxingDecoder

    first, second = CountingDecoder(), CountingDecoder()
    ladder = LadderDecoder(ZxingDecoder(), [("a", first.decode), ("b", second.decode)])
    assert payloads(ladder.decode(damaged_frame(CCCD, 0.05))) == [b"from the fallback"]
    assert (first.calls, second.calls) == (1, 0)


URL = "https://example.vn/p/0123456789"
HARD_FOR_ONE_PASS = {
    "upscale": (VIETNAMESE_PAYLOADS[1], {"module_px": 1.8, "blur": 0.4, "noise": 2, "shadow": 0.6}),
    "downscale": (
        VIETNAMESE_PAYLOADS[1],
        {"module_px": 6, "blur": 0.4, "noise": 8, "shadow": 0.85},
    ),
    "histogram": (VIETNAMESE_PAYLOADS[1], {"module_px": 9, "blur": 0.4, "noise": 2, "wave_px": 4}),
    "zbar": (URL, {"module_px": 3, "blur": 0.4, "noise": 2, "wave_px": 6, "seed": 2}),
}
"""Generated frames a single zxing pass locates but cannot decode, and the rung that reads it:
fractional 1.8 px modules under a shadow edge; 6 px modules, noisy, under a deep shadow;
9 px modules on wavy paper; 3 px modules on paper wavier still."""


@pytest.mark.parametrize("rung", list(HARD_FOR_ONE_PASS))
def test_a_rescue_rung_reads_a_code_the_single_pass_only_locates(rung: str) -> None:
    from gate.decode.zxing import ZxingDecoder

    payload, hardness = HARD_FOR_ONE_PASS[rung]
    frame = crumpled_frame(payload, **hardness)
    codes, located = ZxingDecoder().scan(frame)
    assert not codes and located, "the frame must be one the single pass locates but cannot read"
    alone = make_decoder(DecoderConfig(rescue=(rung,), invert_every=0))
    assert payloads(alone.decode(frame)) == [payload.encode()]
    assert payloads(make_decoder(DecoderConfig()).decode(frame)) == [payload.encode()]


def test_a_rung_named_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="repeated: zbar"):
        DecoderConfig(rescue=("zbar", "histogram", "zbar"))


# --- zbar, loaded when a rescue first needs it ----------------------------------------


def test_zbar_is_loaded_only_when_a_rescue_first_reaches_its_rung() -> None:
    program = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from imagegen import empty_frame, qr_frame
from gate.decode import DecoderConfig, ZbarOnFirstUse, make_decoder
decoder = make_decoder(DecoderConfig())
assert decoder.name == "zxing+histogram+upscale+zbar+invert/16"
for frame in [empty_frame(), qr_frame("read at the first pass")] * 20:
    decoder.decode(frame)
print("pyzbar" in sys.modules)
print([c.text for c in ZbarOnFirstUse()(qr_frame("read by zbar"))], "pyzbar" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == ["False", "['read by zbar'] True"]


def libzbar_that(loads: bool) -> Callable[[], object]:
    """pyzbar's loader of libzbar on a device where the library cannot be loaded, or is
    a library without zbar's functions (as an old or wrong libzbar would be)."""

    def load() -> object:
        if not loads:
            raise OSError("libzbar.so.0: invalid ELF header")
        return ctypes.CDLL(ctypes.util.find_library("c")), []

    return load


@pytest.mark.parametrize(
    ("why", "said"),
    [
        ("pyzbar is missing", "pyzbar"),
        ("libzbar fails to load", "OSError: libzbar.so.0: invalid ELF header"),
        ("libzbar lacks a function", "AttributeError: "),
    ],
)
def test_a_zbar_rung_that_cannot_load_turns_itself_off_and_says_so_once(
    why: str, said: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    decode._load.cache_clear()
    decode._why_unavailable.cache_clear()
    monkeypatch.delitem(sys.modules, "gate.decode.zbar", raising=False)
    if why == "pyzbar is missing":
        monkeypatch.setitem(sys.modules, "pyzbar", None)
    else:  # the real pyzbar, imported again over a libzbar that does not work
        import pyzbar
        from pyzbar import zbar_library

        monkeypatch.delitem(sys.modules, "pyzbar.wrapper")
        monkeypatch.delattr(pyzbar, "wrapper")
        monkeypatch.setattr(zbar_library, "load", libzbar_that(loads="lacks" in why))
        with pytest.raises(ImportError, match=said):  # whatever broke, the backend says
            import_module("gate.decode.zbar")  # "unavailable" the one way
    try:
        rung = decode.ZbarOnFirstUse()
        assert rung(qr_frame(HUYNH)) == []  # no exception reaches the capture loop
        assert rung(qr_frame(HUYNH)) == []
        if why == "pyzbar is missing":
            assert "zbar" not in make_decoder(DecoderConfig()).name  # not promised either
    finally:
        decode._why_unavailable.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "zbar rescue rung is off" in warnings[0]
    assert said in warnings[0]
