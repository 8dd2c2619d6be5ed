"""What keeps the gate from working fully, with a stable reason code for each.

The daemon does not die of a missing part: it comes up as far as it can and raises a
fault instead. Faults go into the retained `status` and into telemetry (`faults`, a list of
`{"code", "detail"}`), into systemd's STATUS line, and the red LED shows "out of service"
while one keeps scans from being handled. A reason code is part of the published schema:
never rename one, only add.
"""

import threading
from collections.abc import Callable
from enum import StrEnum

from gate.logtext import printable


class Fault(StrEnum):
    CAMERA_MISSING = "camera_missing"  # no frame source: not found, not installed, failed
    NO_DECODER = "no_decoder"  # no QR decoder backend imports here
    GPIO_UNAVAILABLE = "gpio_unavailable"  # no pin factory, or the pins cannot be claimed
    STORAGE_FULL = "storage_full"  # the outbox is full or cannot be opened: scans refused


_SUMMARY_CHARS = 1000  # of the summary line: every fault with a detail of some length

OUT_OF_SERVICE = frozenset({Fault.CAMERA_MISSING, Fault.NO_DECODER, Fault.GPIO_UNAVAILABLE})
"""Faults that stop scans from being read or answered at all."""


class Faults:
    """The faults raised now, each with a detail for people; any thread may raise or clear.

    `on_change` is called (outside the lock) whenever the set changes, so the publisher
    can send a new retained status.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._raised: dict[Fault, str] = {}
        self.on_change: Callable[[], None] = lambda: None

    def report(self, fault: Fault, detail: str) -> bool:
        """Raise `fault` (again); True when that changed what is raised."""
        with self._lock:
            changed = self._raised.get(fault) != detail
            self._raised[fault] = detail
        if changed:
            self.on_change()
        return changed

    def clear(self, fault: Fault) -> None:
        with self._lock:
            changed = self._raised.pop(fault, None) is not None
        if changed:
            self.on_change()

    def __contains__(self, fault: Fault) -> bool:
        return fault in self._raised

    @property
    def out_of_service(self) -> bool:
        return not OUT_OF_SERVICE.isdisjoint(self._raised)

    def listing(self) -> list[dict[str, str]]:
        """As published: `[{"code": ..., "detail": ...}]`, sorted by code."""
        with self._lock:
            raised = sorted(self._raised.items())
        return [{"code": str(fault), "detail": detail} for fault, detail in raised]

    def summary(self) -> str | None:
        """One line for systemd's STATUS and the log; None when nothing is wrong. A detail
        is an error's text (a path, what a driver said): escaped, so that a newline in it
        cannot add a field to the notify message (`WATCHDOG=1`) or a line to the log."""
        listing = self.listing()
        if not listing:
            return None
        line = "degraded: " + "; ".join(f"{f['code']} ({f['detail']})" for f in listing)
        return printable(line, _SUMMARY_CHARS)
