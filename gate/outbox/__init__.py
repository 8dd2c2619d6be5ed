"""Every check-in reaches the broker: durable outbox, event format, MQTT publisher.

The daemon uses `Outbox` as its `CheckinSink` and runs one `Publisher` beside it.
"""

from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.identity import boot_id, client_id, clock_synced, device_id
from gate.outbox.publisher import Publisher
from gate.outbox.queue_command import add_queue_arguments, run_queue
from gate.outbox.service import OutboxService, open_outbox
from gate.outbox.store import FullCause, Outbox, OutboxStats, StoredEvent

__all__ = [
    "FullCause",
    "MqttConfig",
    "Outbox",
    "OutboxConfig",
    "OutboxService",
    "OutboxStats",
    "PrivacyConfig",
    "Publisher",
    "StoredEvent",
    "add_queue_arguments",
    "boot_id",
    "client_id",
    "clock_synced",
    "device_id",
    "open_outbox",
    "run_queue",
]
