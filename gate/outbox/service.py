"""The outbox and its publisher as the daemon holds them: one sink, stopped together.

`OutboxService` is the typed interface the rest of the daemon uses: the check-in sink
(`commit`, `close`), the command channel (`connected`, `on_command`, `publish`), what the
watchdog asks (`problem`), what telemetry and the `storage_full` fault read (`stats`,
`full`), and what the publisher reads from the daemon (`report`, `status_changed`).

The store opens first (`open_outbox`): a gate keeps check-ins before it captures any. The
publisher starts later (`start_uplink`), once the door runs: loading paho and counting the
session are not on the way to a working door, and until then check-ins wait in the store.
"""

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.identity import boot_id, client_id, device_id
from gate.outbox.channel import CommandHandler
from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.store import Outbox, OutboxStats

if TYPE_CHECKING:  # loaded by start_uplink (paho)
    from gate.outbox.publisher import Publisher

Telemetry = Callable[[], Mapping[str, object]]
FaultListing = Callable[[], list[dict[str, str]]]


class OutboxRootConfig(Protocol):
    """The sections of the root config the outbox and publisher read."""

    @property
    def site(self) -> SiteConfig: ...

    @property
    def outbox(self) -> OutboxConfig: ...

    @property
    def privacy(self) -> PrivacyConfig: ...

    @property
    def mqtt(self) -> MqttConfig: ...


class OutboxService:
    """CheckinSink that also wakes the publisher; `close` stops the publisher, then the file."""

    def __init__(self, outbox: Outbox, config: OutboxRootConfig) -> None:
        self.outbox = outbox
        self._config = config
        self.publisher: Publisher | None = None
        self._telemetry: Telemetry = dict
        self._faults: FaultListing = list

    def start_uplink(self) -> None:
        """Start the publisher: it counts a session, connects and drains what is stored."""
        from gate.outbox.publisher import Publisher

        config = self._config
        publisher = Publisher(
            config.mqtt,
            config.site,
            self.outbox,
            self._telemetry,
            client_id=client_id(device_id(config.site)),
            boot_id=boot_id(),
        )
        publisher.faults = self._faults
        publisher.start()
        self.publisher = publisher

    def commit(self, checkin: CheckIn) -> None:
        """Durable first (P1), then a nudge so the event leaves now."""
        self.outbox.commit(checkin)
        if self.publisher is not None:
            self.publisher.notify()

    # -- the command channel ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.publisher is not None and self.publisher.connected

    @property
    def root(self) -> str:
        """The gate's topic root, which signed commands must name."""
        return self._started().root

    def on_command(self, name: str, handler: CommandHandler) -> None:
        self._started().on_command(name, handler)

    def publish(self, suffix: str, payload: bytes, qos: int = 1) -> bool:
        return self.publisher is not None and self.publisher.publish(suffix, payload, qos)

    def _started(self) -> "Publisher":
        if self.publisher is None:
            raise RuntimeError("the uplink has not started")
        return self.publisher

    # -- state for the daemon --------------------------------------------------------------

    def stats(self) -> OutboxStats:
        return self.outbox.stats()

    def full(self) -> str | None:
        """Why scans are refused `storage_full` now (at the cap or on a full disk), else None."""
        cause = self.outbox.storage_full
        if cause is None:
            return None
        return f"outbox full ({cause}, {self.outbox.depth} events stored): scans refused until sent"

    def problem(self) -> str | None:
        """What the watchdog should know: a dead or stuck network thread (P6), else None."""
        publisher = self.publisher
        if publisher is None:
            return None
        if not publisher.alive:
            return "the publisher thread is dead"
        age = time.monotonic() - publisher.heartbeat
        if age > 2 * publisher.connect_timeout_s + 5:
            return f"the publisher thread has not turned for {age:.0f} s"
        return None

    def report(self, telemetry: Telemetry, faults: FaultListing) -> None:
        """What the publisher reads from the daemon: counters for telemetry, and the faults
        for the retained status (and telemetry)."""
        self._telemetry, self._faults = telemetry, faults
        if self.publisher is not None:
            self.publisher.telemetry = telemetry
            self.publisher.faults = faults
            self.publisher.refresh_status()

    def status_changed(self) -> None:
        """The faults changed: send the retained status again (from the network thread)."""
        if self.publisher is not None:
            self.publisher.refresh_status()

    def close(self, timeout: float = 5.0) -> None:
        """Retained `stopped`, disconnect, join; then close the outbox (after the publisher)."""
        try:
            if self.publisher is not None:
                self.publisher.stop(timeout)
        finally:
            self.outbox.close()


def open_outbox(config: OutboxRootConfig) -> OutboxService:
    """Open the outbox; its publisher starts with `start_uplink`."""
    return OutboxService(Outbox(config.outbox, config.site, config.privacy), config)
