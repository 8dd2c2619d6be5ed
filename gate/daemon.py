"""`gate run`: the process around the app: OS signals in, an exit status out.

SIGTERM/SIGINT stop, SIGHUP reloads (`gate.app.GateApp` does the work; its docstring has
the start and stop order). Exit statuses and what systemd does with them are in
`gate.errors`: 0 stopped, 75 restart to apply a reload, 78 a config or trust store that
cannot work, 71 a start failure the gate cannot name, 70 a wedged camera.
"""

import ctypes
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from gate.app import GateApp, Request
from gate.app_config import GateConfig
from gate.checkin import CheckinSink
from gate.errors import EXIT_CONFIG, EXIT_START_FAILED, ConfigError
from gate.outbox.service import open_outbox

log = logging.getLogger(__name__)

MALLOC_ARENAS = 2
"""glibc's malloc arenas for the whole process (its default: 8 per core)."""
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def share_malloc_arenas() -> None:
    """Have the gate's threads share `MALLOC_ARENAS` malloc arenas; call before any starts.

    glibc gives each thread that allocates an arena of its own, and memory freed in one stays
    resident with it: a dozen threads (capture, publisher, pins, timers) hold more memory
    than they use, on a Pi Zero 2 W whose 512 MB the camera shares. Python threads take
    turns anyway, so sharing costs no waiting worth measuring. An arena limit set in the
    environment (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`) wins;
    elsewhere than glibc, nothing is done.
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in tunables:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def run(
    config: GateConfig,
    config_path: Path | None,
    open_store: Callable[[GateConfig], CheckinSink] = open_outbox,
) -> int:
    """Run until SIGTERM/SIGINT (or a finite replay ends); SIGHUP reloads the config."""
    share_malloc_arenas()
    app = GateApp(config, config_path, open_store=open_store)

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        app.request(Request.STOP)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: app.request(Request.RELOAD))
    previous = signal.set_wakeup_fd(app.wakeup_fd, warn_on_full_buffer=False)
    try:
        status = _start(app)
        if status is None:
            status = app.serve()
    finally:
        signal.set_wakeup_fd(previous)  # before `stop` closes the socket behind it
        app.stop()
    log.info("stopped")
    return status


def _start(app: GateApp) -> int | None:
    """None once started (maybe degraded: faults say how); else the exit status."""
    try:
        app.start()
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_CONFIG
    except Exception:  # a bug: said once with its traceback, and not restarted in a loop
        log.exception("cannot start")
        return EXIT_START_FAILED
    return None
