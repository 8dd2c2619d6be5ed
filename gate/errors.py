"""One exception tree for the whole daemon, rooted at GateError.

Children also inherit the built-in they resemble (the gpiozero way), so callers
that only know Python's own exceptions still catch them sensibly.
"""


class GateError(Exception):
    """Root of every error the gate raises on purpose."""


# Exit statuses of `gate run`, and what systemd does with each (systemd/gate.service).

EXIT_CONFIG = 78
"""EX_CONFIG: a config (or trust store) that cannot work. Not restarted: it needs a person."""

EXIT_START_FAILED = 71
"""EX_OSERR: the daemon failed to start for a reason it cannot name (a bug). Not restarted:
a restart loop would not help, and a reboot loop would hide it; `systemctl status` shows it."""

EXIT_CAMERA_WEDGED = 70
"""EX_SOFTWARE: a camera wedged in the driver. Restarted; when that keeps happening the
start limit reboots the device, the one failure a reboot fixes."""

EXIT_RESTART = 75
"""EX_TEMPFAIL: asks systemd (Restart=on-failure) to start the daemon again, to apply a reload."""


class ConfigError(GateError, ValueError):
    """The configuration file is missing, unreadable or invalid."""


class CameraError(GateError, RuntimeError):
    """The frame source could not be opened or stopped producing frames."""


class CameraMissing(CameraError):
    """The frame source did not open: `camera_missing` is raised and it is tried again."""


class FrameTimeout(CameraError, TimeoutError):
    """No frame arrived within the configured wait."""


class DecoderError(GateError, RuntimeError):
    """A decoder backend is unavailable or failed on a frame."""


class ImageReadError(GateError, OSError):
    """An image file could not be read or is not an image."""


class SignalError(GateError, RuntimeError):
    """The signalling hardware (LEDs, buzzer, relay) could not be set up."""


class StorageError(GateError, OSError):
    """The durable check-in store failed."""


class StorageFull(StorageError):
    """The check-in store reached its cap or the disk is full: refuse new scans."""


# trust


class TrustError(ConfigError):
    """A trust-store file (certificate, public key, kid map) is missing, unreadable or invalid."""


class PassError(GateError, ValueError):
    """A gate pass could not be issued or shown: a bad field, or an unusable signing key."""


class DccTestDataError(GateError, ValueError):
    """An EU DCC test-case file is not in the dgc-testdata format."""
