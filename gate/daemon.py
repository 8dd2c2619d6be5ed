"""`gate run`: the process around the app: OS signals in, an exit status out.

SIGTERM/SIGINT stop, SIGHUP reloads (`gate.app.GateApp` does the work; its docstring has
the start and stop order). Exit statuses and what systemd does with them are in
`gate.errors`: 0 stopped, 75 restart to apply a reload, 78 a config or trust store that
cannot work, 71 a start failure the gate cannot name, 70 a wedged camera.
"""

import logging
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


def run(
    config: GateConfig,
    config_path: Path | None,
    open_store: Callable[[GateConfig], CheckinSink] = open_outbox,
) -> int:
    """Run until SIGTERM/SIGINT (or a finite replay ends); SIGHUP reloads the config."""
    app = GateApp(config, config_path, open_store=open_store)

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        app.request(Request.STOP)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: app.request(Request.RELOAD))
    try:
        status = _start(app)
        if status is None:
            status = app.serve()
    finally:
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
