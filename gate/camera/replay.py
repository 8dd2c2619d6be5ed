"""Replay source: image files played as camera frames, for tests, benchmarks and the demo."""

import glob
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from gate.camera.config import ReplayConfig
from gate.decode import load_grey
from gate.errors import CameraError, ImageReadError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
)


def expand_paths(patterns: Sequence[Path]) -> list[Path]:
    """Files, folders (their images, sorted) and globs, in order."""
    found: list[Path] = []
    for path in patterns:
        pattern = str(path)
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern))
            if not matches:
                raise CameraError(f"replay: no file matches {pattern!r}")
            found.extend(matches)
        elif path.is_dir():
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                raise CameraError(f"replay: folder {pattern!r} holds no images")
            found.extend(images)
        elif path.exists():
            found.append(path)
        else:
            raise CameraError(f"replay: {pattern!r} does not exist")
    return found


class ReplaySource:
    """Plays grey frames, paced to a frame rate or as fast as possible.

    Unpaced (benchmarks), images are decoded once, at open, and held, so that replay costs
    nothing per frame and benchmarks measure the pipeline, not the PNG decoder. Paced (the
    demo), each image is decoded when its turn comes and only it is held: a decode per
    image shown (`repeat_each` frames), not the whole set in memory (the demo's 11 images
    are 3.4 MB of frames). The first image is decoded at open either way, so an unreadable
    file is a camera error at open.
    """

    name = "replay"

    def __init__(
        self,
        frames: Sequence[np.ndarray] | None = None,
        *,
        paths: Sequence[Path] = (),
        fps: float | None = None,
        loop: bool = False,
        repeat_each: int = 1,
    ) -> None:
        self._given = list(frames) if frames is not None else None
        self._paths = list(paths)
        self._fps = fps
        self._loop = loop
        self._repeat_each = repeat_each
        self._frames: list[np.ndarray] = []

    @classmethod
    def from_config(cls, config: ReplayConfig) -> "ReplaySource":
        if not config.paths:
            raise CameraError("camera.replay.paths is empty: nothing to replay")
        return cls(
            paths=expand_paths(config.paths),
            fps=config.fps,
            loop=config.loop,
            repeat_each=config.repeat_each,
        )

    def open(self) -> None:
        if self._given is not None:
            self._frames = self._given
            return
        paths = self._paths if not self._fps else self._paths[:1]
        self._frames = [self._image(path) for path in paths]

    def _image(self, path: Path) -> np.ndarray:
        try:
            return load_grey(path)
        except ImageReadError as exc:
            raise CameraError(f"replay: {exc}") from exc

    def _images(self) -> Iterator[np.ndarray]:
        """One pass over the images: the held ones, or each file decoded in turn."""
        if self._given is not None or not self._fps:
            yield from self._frames
            return
        yield from self._frames  # the first, decoded at open
        for path in self._paths[1:]:
            yield self._image(path)

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        if not self._frames:
            raise CameraError("replay source is not open or has no frames")
        interval = 1.0 / self._fps if self._fps else 0.0
        deadline = time.monotonic() - interval  # the first frame at once, as a camera gives it
        while not stop.is_set():
            for frame in self._images():
                for _ in range(self._repeat_each):
                    if interval:
                        deadline += interval
                        delay = deadline - time.monotonic()
                        if stop.wait(max(delay, 0.0)):
                            return
                        if delay < -interval:
                            deadline = time.monotonic()
                    elif stop.is_set():
                        return
                    yield frame
            if not self._loop:
                return

    def close(self) -> None:
        self._frames = []
