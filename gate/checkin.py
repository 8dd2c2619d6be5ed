"""The one hand-off point between deciding and publishing: a check-in and where it goes."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gate.credentials.model import Credential
from gate.decision import Decision


@dataclass(frozen=True, slots=True)
class CheckIn:
    """One presentation of one code at this gate, decided. `captured_at` is timezone-aware UTC."""

    captured_at: datetime
    credential: Credential
    decision: Decision


class CheckinSink(Protocol):
    """Where decided check-ins go. `commit` returns only once the check-in is durable.

    Raises `gate.errors.StorageFull` when it cannot store more; the daemon then
    refuses the scan with the storage-full signal instead of opening.
    """

    def commit(self, checkin: CheckIn) -> None: ...

    def close(self) -> None:
        """Release the store; called once, after the last commit."""
