"""picamera2 source: the Y plane of a `lores` YUV420 stream, decoded in place.

Imported only on a Pi (Raspberry Pi OS installs picamera2 with apt); nothing else in
the package imports this module. docs/raspberry-pi.md (Camera) tells the hangs this guards against.
"""

import logging
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from gate.camera.config import CameraConfig
from gate.errors import CameraError, FrameTimeout

log = logging.getLogger(__name__)


class PicameraSource:
    name = "picamera2"

    def __init__(self, config: CameraConfig) -> None:
        self._config = config
        self._camera: Any = None
        self._size = (config.width, config.height)

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run "
                "`sudo apt install python3-picamera2` and use a venv made with "
                "--system-site-packages; elsewhere set camera.source: replay"
            ) from exc
        if not Picamera2.global_camera_info():
            raise CameraError(
                "no camera found: check the ribbon cable and `rpicam-hello --list-cameras`"
            )
        try:
            camera = Picamera2()
        except (RuntimeError, IndexError, OSError) as exc:
            raise CameraError(f"camera failed to open: {exc}") from exc
        try:
            main_size = (max(self._config.width, 1280), max(self._config.height, 960))
            video = camera.create_video_configuration(
                main={"size": main_size},
                lores={"size": self._size, "format": "YUV420"},
                buffer_count=4,
                controls=self._controls(camera),
            )
            camera.configure(video)
            self._size = tuple(camera.stream_configuration("lores")["size"])
            log.info(
                "camera: %s, lores %sx%s, sensor modes %s",
                camera.camera_properties.get("Model"),
                *self._size,
                [m.get("size") for m in camera.sensor_modes],
            )
            camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            camera.close()  # else it stays claimed and every restart finds it busy
            raise CameraError(f"camera failed to start: {exc}") from exc
        self._camera = camera

    def _controls(self, camera: Any) -> dict[str, Any]:
        frame_us = int(1_000_000 / self._config.fps)
        controls: dict[str, Any] = {"FrameDurationLimits": (frame_us, frame_us)}
        if self._config.exposure_us is not None:
            controls["ExposureTime"] = self._config.exposure_us
        if self._config.analogue_gain is not None:
            controls["AnalogueGain"] = self._config.analogue_gain
        if "AfMode" in camera.camera_controls:
            from libcamera import controls as lc

            if self._config.lens_position is None:
                controls["AfMode"] = lc.AfModeEnum.Continuous
                controls["AfRange"] = lc.AfRangeEnum.Macro
            else:
                controls["AfMode"] = lc.AfModeEnum.Manual
                controls["LensPosition"] = self._config.lens_position
        return controls

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        """Zero-copy: the yielded Y plane is a view into the camera's buffer, released on resume."""
        from picamera2 import MappedArray

        camera = self._camera
        if camera is None:
            raise CameraError("camera is not open")
        width, height = self._size
        wait = self._config.frame_timeout_s
        while not stop.is_set():
            try:
                request = camera.capture_request(wait=wait)
            except TimeoutError as exc:
                raise FrameTimeout(f"no frame from the camera within {wait} s") from exc
            except RuntimeError as exc:
                raise CameraError(f"camera capture failed: {exc}") from exc
            try:
                with MappedArray(request, "lores") as mapped:
                    yield mapped.array[:height, :width]
            finally:
                request.release()

    def describe(self) -> dict[str, float]:
        """Exposure (µs) and analogue gain of a current frame, from its metadata: what the
        camera chose in automatic mode, for `gate selftest`. Not for the capture loop."""
        camera = self._camera
        if camera is None:
            raise CameraError("camera is not open")
        try:
            metadata = camera.capture_metadata(wait=self._config.frame_timeout_s)
        except (TimeoutError, RuntimeError) as exc:
            raise CameraError(f"camera metadata: {exc}") from exc
        names = {"exposure_us": "ExposureTime", "analogue_gain": "AnalogueGain"}
        return {key: float(metadata[name]) for key, name in names.items() if name in metadata}

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()
