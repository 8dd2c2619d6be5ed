"""The outbox and its publisher as the daemon holds them: one sink, started and stopped together."""

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from gate.checkin import CheckIn
from gate.config.site import SiteConfig
from gate.identity import boot_id, client_id, device_id
from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.publisher import Publisher
from gate.outbox.store import Outbox


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

    def __init__(self, outbox: Outbox, publisher: Publisher) -> None:
        self.outbox = outbox
        self.publisher = publisher

    def commit(self, checkin: CheckIn) -> None:
        """Durable first (P1), then a nudge so the event leaves now."""
        self.outbox.commit(checkin)
        self.publisher.notify()

    def problem(self) -> str | None:
        """What the watchdog should know: a dead or stuck network thread (P6), else None."""
        publisher = self.publisher
        if not publisher.alive:
            return "the publisher thread is dead"
        age = time.monotonic() - publisher.heartbeat
        if age > 2 * publisher.connect_timeout_s + 5:
            return f"the publisher thread has not turned for {age:.0f} s"
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Retained `stopped`, disconnect, join; then close the outbox (after the publisher)."""
        try:
            self.publisher.stop(timeout)
        finally:
            self.outbox.close()


def open_outbox(
    config: OutboxRootConfig,
    telemetry: Callable[[], Mapping[str, object]] = dict,
) -> OutboxService:
    """Open the outbox and start its publisher; `publisher.telemetry` may be replaced later."""
    outbox = Outbox(config.outbox, config.site, config.privacy)
    try:
        publisher = Publisher(
            config.mqtt,
            config.site,
            outbox,
            telemetry,
            client_id=client_id(device_id(config.site)),
            boot_id=boot_id(),
        )
        publisher.start()
    except BaseException:
        outbox.close()
        raise
    return OutboxService(outbox, publisher)
