"""What remote commands may do with the running gate, and the modes it can be set to.

Its own module so that the command service depends on this interface, not on the daemon
that implements it (`gate.door.Gate`).
"""

from enum import StrEnum
from typing import Protocol

from gate.app_config import GateConfig

JOIN_TIMEOUT_S = 5.0
"""How long a stopping thread is waited for before it is reported and left behind."""


class Mode(StrEnum):
    """What the operations team set the gate to; kept across restarts."""

    NORMAL = "normal"
    LOCKED = "locked"  # every scan refused with `gate_locked`; the exit button still opens
    EMERGENCY_OPEN = "emergency_open"  # relay held open (fire): scans still recorded


class GateControl(Protocol):
    """The running gate as remote commands see it."""

    config: GateConfig
    mode: Mode

    def set_mode(self, mode: Mode) -> None: ...

    def open_once(self) -> bool:
        """One bounded opening; False when the relay is not set up."""
        ...

    def reload(self) -> bool:
        """Re-read the config file; True when applying it needs a restart of the daemon."""
        ...

    def refresh_policy(self) -> None:
        """Rebuild the judge (new remote lists); GateError keeps the old one."""
        ...

    def telemetry(self) -> dict[str, object]: ...
