"""systemd's notify protocol (sd_notify), without a dependency: one datagram per message.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same
from a terminal, in tests and under the service manager. A send never blocks: when the
reader of the socket falls behind, the message is dropped and counted (`dropped`), so
the watchdog and status lines can never stall the thread that sends them.
"""

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s: float | None = int(usec) / 1e6 if usec.isdigit() and mine else None
        self._socket: socket.socket | None = None
        self.dropped = 0
        """Messages not sent because the socket's queue was full (or the send failed)."""

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> None:
        """Send one state line (READY=1, WATCHDOG=1, STATUS=...); returns at once, always."""
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._socket.sendto(message.encode("utf-8", "replace"), self._address)
        except BlockingIOError:
            self._drop(message, "the service manager is not reading")
        except OSError as exc:
            self._drop(message, str(exc))

    def _drop(self, message: str, why: str) -> None:
        """Count it; log the first drop and then every thousandth, not every one."""
        if self.dropped % 1000 == 0:
            log.warning(
                "sd_notify %s dropped (%s); %d dropped so far",
                message.split("=", 1)[0],
                why,
                self.dropped + 1,
            )
        self.dropped += 1

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
