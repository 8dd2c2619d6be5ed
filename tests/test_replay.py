"""ReplaySource and expand_paths: image files played as camera frames.

Frames are real PNG/JPEG files written from tests/imagegen.py; the decoder that reads them
back is the real one.
"""

import threading
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from imagegen import empty_frame, qr_frame, save_png
from PIL import Image

from gate.camera.config import CameraConfig, ReplayConfig
from gate.camera.replay import ReplaySource, expand_paths
from gate.camera.source import make_source
from gate.decode import DecoderConfig, make_decoder
from gate.errors import CameraError

SMALL = (96, 64)


def tagged(n: int) -> list[np.ndarray]:
    """n small distinct frames: frame i is filled with the value i."""
    return [np.full((8, 8), i, dtype=np.uint8) for i in range(n)]


def values(frames) -> list[int]:
    return [int(f[0, 0]) for f in frames]


def play(source: ReplaySource, stop: threading.Event | None = None) -> list[np.ndarray]:
    source.open()
    try:
        return list(source.frames(stop or threading.Event()))
    finally:
        source.close()


@pytest.fixture
def folder(tmp_path) -> Path:
    """Three grey PNGs out of order on disk, plus files and a folder that are not images."""
    images = tmp_path / "frames"
    images.mkdir()
    for name, value in (("b.png", 20), ("a.png", 10), ("c.PNG", 30)):
        save_png(np.full((SMALL[1], SMALL[0]), value, dtype=np.uint8), images / name)
    (images / "notes.txt").write_text("not a frame")
    (images / "sub.png").mkdir()  # a folder named like an image is not an image
    (images / "sub.png" / "d.png").write_bytes(b"")
    return images


# --- expand_paths ---------------------------------------------------------------------


def test_a_folder_gives_its_images_sorted_by_name_and_nothing_else(folder):
    assert [p.name for p in expand_paths([folder])] == ["a.png", "b.png", "c.PNG"]


def test_files_are_kept_in_the_order_given(folder):
    paths = [folder / "c.PNG", folder / "a.png", folder / "c.PNG"]

    assert expand_paths(paths) == paths


def test_a_glob_gives_its_matches_sorted(folder):
    assert [p.name for p in expand_paths([folder / "[ab].png"])] == ["a.png", "b.png"]


def test_files_folders_and_globs_mix_in_order(folder, tmp_path):
    extra = save_png(np.zeros((8, 8), np.uint8), tmp_path / "extra.png")

    found = expand_paths([extra, folder, folder / "b*"])

    assert [p.name for p in found] == ["extra.png", "a.png", "b.png", "c.PNG", "b.png"]


def test_a_missing_path_is_a_camera_error_naming_it(tmp_path):
    missing = tmp_path / "nope.png"

    with pytest.raises(CameraError, match=f"replay: '{missing}' does not exist"):
        expand_paths([missing])


def test_a_glob_matching_nothing_is_a_camera_error_naming_it(tmp_path):
    with pytest.raises(CameraError, match=r"replay: no file matches '.*\*\.jpg'"):
        expand_paths([tmp_path / "*.jpg"])


def test_a_folder_without_images_is_a_camera_error_naming_it(tmp_path):
    (tmp_path / "readme.txt").write_text("x")

    with pytest.raises(CameraError, match=f"replay: folder '{tmp_path}' holds no images"):
        expand_paths([tmp_path])


# --- opening --------------------------------------------------------------------------


def test_image_files_play_as_2d_grey_uint8_frames(tmp_path):
    colour = tmp_path / "colour.jpg"
    Image.new("RGB", SMALL, (200, 40, 40)).save(colour)
    grey = save_png(np.full((SMALL[1], SMALL[0]), 77, np.uint8), tmp_path / "grey.png")

    frames = play(ReplaySource(paths=[colour, grey], fps=None))

    assert [f.shape for f in frames] == [(SMALL[1], SMALL[0])] * 2
    assert all(f.dtype == np.uint8 and f.ndim == 2 for f in frames)
    assert int(frames[1][0, 0]) == 77


def test_replayed_frames_decode_to_the_code_they_show(tmp_path):
    payload = "079201004567||Huỳnh Hiếu Thuận|30061992|Nam|TP. Hồ Chí Minh|02082022"
    path = save_png(qr_frame(payload, size=(320, 240), module_px=3), tmp_path / "code.png")
    decoder = make_decoder(DecoderConfig())

    (frame,) = play(ReplaySource(paths=[path], fps=None))

    assert [c.data for c in decoder.decode(frame)] == [payload.encode("utf-8")]


def test_a_file_that_is_not_an_image_is_a_camera_error_at_open(tmp_path):
    bogus = tmp_path / "frame.png"
    bogus.write_text("this is not a PNG")
    source = ReplaySource(paths=[bogus], fps=None)

    with pytest.raises(CameraError, match=r"replay: .*frame.png: not an image"):
        source.open()


def test_from_config_expands_the_configured_paths(folder):
    source = ReplaySource.from_config(ReplayConfig(paths=[folder], fps=None, loop=False))

    assert values(play(source)) == [10, 20, 30]


def test_from_config_without_paths_is_a_camera_error():
    with pytest.raises(CameraError, match=r"camera\.replay\.paths is empty"):
        ReplaySource.from_config(ReplayConfig())


def test_from_config_with_a_missing_path_fails_before_anything_plays(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        ReplaySource.from_config(ReplayConfig(paths=[tmp_path / "gone"]))


def test_frames_before_open_or_after_close_is_a_camera_error():
    source = ReplaySource(tagged(2), fps=None)
    with pytest.raises(CameraError, match="not open"):
        next(source.frames(threading.Event()))

    source.open()
    source.close()
    with pytest.raises(CameraError, match="not open"):
        next(source.frames(threading.Event()))


def test_a_source_can_be_opened_again_after_close(folder):
    source = ReplaySource(paths=expand_paths([folder]), fps=None)

    assert values(play(source)) == [10, 20, 30]
    assert values(play(source)) == [10, 20, 30]


# --- playing --------------------------------------------------------------------------


def test_played_once_every_frame_comes_once_in_order():
    assert values(play(ReplaySource(tagged(4), fps=None, loop=False))) == [0, 1, 2, 3]


def test_looping_starts_again_after_the_last_frame():
    source = ReplaySource(tagged(3), fps=None, loop=True)
    source.open()

    assert values(islice(source.frames(threading.Event()), 8)) == [0, 1, 2, 0, 1, 2, 0, 1]


def test_repeat_each_shows_each_image_for_consecutive_frames():
    source = ReplaySource(tagged(3), fps=None, repeat_each=3)

    assert values(play(source)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_repeat_each_applies_on_every_loop():
    source = ReplaySource(tagged(2), fps=None, loop=True, repeat_each=2)
    source.open()

    assert values(islice(source.frames(threading.Event()), 6)) == [0, 0, 1, 1, 0, 0]


def test_paced_replay_never_runs_ahead_of_its_frame_rate():
    fps = 50.0
    source = ReplaySource(tagged(3), fps=fps, loop=True)
    source.open()
    start = time.monotonic()
    arrivals = [time.monotonic() - start for _ in islice(source.frames(threading.Event()), 15)]

    # The first frame comes at once; frame k (from 0) is due k intervals after the start,
    # never earlier.
    for k, at in enumerate(arrivals):
        assert at >= k / fps - 0.002, (k, at)


def test_paced_replay_keeps_roughly_to_its_frame_rate():
    fps = 40.0
    source = ReplaySource(tagged(1), fps=fps, loop=True)
    source.open()
    start = time.monotonic()
    for _ in islice(source.frames(threading.Event()), 20):
        pass
    took = time.monotonic() - start

    assert (
        19 / fps - 0.01 <= took < 20 / fps * 4
    )  # the first at once; loose upper bound: a busy 2-core CI


def test_a_slow_consumer_is_not_made_to_catch_up_with_a_burst():
    fps = 100.0
    source = ReplaySource(tagged(1), fps=fps, loop=True)
    source.open()
    frames = source.frames(threading.Event())
    next(frames)
    time.sleep(0.2)  # the consumer stalls for 20 frame intervals
    next(frames)
    start = time.monotonic()
    for _ in islice(frames, 5):
        pass

    # After the stall the schedule restarts: 5 frames take about 5 intervals, not ~0 s.
    assert time.monotonic() - start >= 4 / fps


def test_unpaced_replay_does_not_wait():
    source = ReplaySource(tagged(2), fps=None, loop=True)
    source.open()

    assert len(list(islice(source.frames(threading.Event()), 2000))) == 2000


def test_setting_stop_while_waiting_for_the_next_frame_ends_iteration_promptly():
    source = ReplaySource(tagged(2), fps=0.2, loop=True)  # one frame every 5 s
    source.open()
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()

    assert values(list(source.frames(stop))) == [0]  # the first at once, then the wait
    assert time.monotonic() - start < 2.5


def test_stop_set_between_frames_ends_an_unpaced_replay_at_the_next_frame():
    source = ReplaySource(tagged(3), fps=None, loop=True)
    source.open()
    stop = threading.Event()
    frames = source.frames(stop)

    next(frames)
    stop.set()

    assert list(frames) == []


def test_stop_set_between_frames_ends_a_paced_replay_even_when_behind_schedule():
    source = ReplaySource(tagged(3), fps=100.0, loop=True)
    source.open()
    stop = threading.Event()
    frames = source.frames(stop)

    next(frames)
    time.sleep(0.05)  # the consumer is slower than the frame rate: the next frame is overdue
    stop.set()

    assert list(frames) == []


def test_a_stop_already_set_yields_nothing():
    stop = threading.Event()
    stop.set()
    source = ReplaySource(tagged(3), fps=10.0)
    source.open()

    assert list(source.frames(stop)) == []


def test_given_frames_are_played_without_copying():
    frames = tagged(2)

    played = play(ReplaySource(frames, fps=None))

    assert all(a is b for a, b in zip(played, frames, strict=True))


# --- make_source ----------------------------------------------------------------------


def test_make_source_gives_a_replay_source_for_replay(folder):
    source = make_source(
        CameraConfig(source="replay", replay=ReplayConfig(paths=[folder], fps=None, loop=False))
    )

    assert source.name == "replay"
    assert values(play(source)) == [10, 20, 30]


def test_picamera2_without_the_library_is_a_camera_error_at_open_with_the_fix():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    source = make_source(CameraConfig(source="picamera2"))

    assert source.name == "picamera2"
    with pytest.raises(CameraError, match=r"picamera2 is not installed.*camera\.source: replay"):
        source.open()


def test_an_empty_frame_file_plays_like_any_other(tmp_path):
    path = save_png(empty_frame(size=(160, 120), seed=5), tmp_path / "empty.png")

    (frame,) = play(ReplaySource(paths=[path], fps=None))

    assert frame.shape == (120, 160)
