"""sd_notify never blocks the thread that sends: a reader that stops reading costs drops."""

import socket
import threading
from pathlib import Path

from gate.notify import Notifier


def test_sends_to_a_socket_nobody_reads_return_and_count_the_drops(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    manager.bind(path)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    sends = 2000  # far beyond the datagram queue of an unread socket (about ten)

    def send_all() -> None:
        for i in range(sends):
            notifier.notify("WATCHDOG=1" if i % 2 else f"STATUS=frame {i}")

    sender = threading.Thread(target=send_all, name="test-notify-sender", daemon=True)
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "a send blocked on the unread socket"
    assert notifier.dropped > 0
    manager.setblocking(False)
    queued = 0
    try:
        while manager.recv(4096):
            queued += 1
    except BlockingIOError:
        pass
    assert queued + notifier.dropped == sends  # every message either queued or counted
    notifier.notify("READY=1")  # the reader caught up: sends go through again
    assert manager.recv(4096) == b"READY=1"
    assert queued + notifier.dropped == sends
    notifier.close()
    manager.close()


def test_a_missing_socket_is_a_counted_drop_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    notifier.notify("READY=1")
    assert notifier.dropped == 1
    assert Notifier({}).enabled is False
