"""The daemon's side of remote commands: checked, run and answered off the network thread.

The publisher calls `received` in its network thread for each message on `cmd/<name>`.
That looks at the size first (a payload over `commands.max_payload_bytes` is turned away
`oversized`, never queued or parsed), then only queues it: at most 32 commands and 4 MiB
(or one largest command) wait, beyond that it is turned away `busy`; once stopping,
`unavailable`. The `gate-commands` worker checks it (`envelope.check`, then the nonce book),
runs it while holding the daemon's gate lock (a SIGHUP reload holds it too, so a command
never meets a half-reloaded gate) and publishes one result, signed with the gate's device
key (`gate.commands.device`), with one log line. Refusals before a command runs (turned
away, or failing a check: unsigned, forged, replayed...) are answered and logged within a
token bucket (`gate.commands.budget`), so a flood fills neither the outgoing queue nor the
journal; a command that runs is always answered. A name that is not 1 to 64 of
`[A-Za-z0-9_-]` is logged but not answered: its result topic could carry control characters
that make a strict broker drop the gate. Commands still queued when the service stops are
turned away `unavailable`. Everything from outside is logged escaped and bounded
(`gate.logtext`).

What each command does: `open` pulses the relay once (bounded by `relay_max_s`), also when
locked (an operator's decision, like the exit button); `lock`, `emergency_open` and
`normal` set the gate's mode (kept across restarts); `reload` is SIGHUP's reload, and when
the new file changes what needs a restart the daemon exits to be restarted (the result is
sent first); `deny_list` and `trust_list` replace the remote list, then reload so it takes
effect; `status` answers with mode, counters, outbox, broker, clock and version.
"""

import collections
import functools
import logging
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from gate import __version__
from gate import remote_lists as remote
from gate.app_config import GateConfig
from gate.commands import device, lists
from gate.commands.budget import RefusalBudget
from gate.commands.envelope import (
    Checks,
    Command,
    CommandError,
    Name,
    Outcome,
    Refused,
    check,
    nonce_of,
    now_ms,
    operations_keys,
    result_payload,
)
from gate.commands.nonces import NonceBook
from gate.control import JOIN_TIMEOUT_S, GateControl, Mode
from gate.errors import GateError, TrustError
from gate.identity import clock_synced
from gate.logtext import printable
from gate.outbox.channel import ANY_COMMAND, CommandHandler
from gate.outbox.presence import outbox_section
from gate.outbox.store import OutboxStats
from gate.policy import DenyList
from gate.trust.store import TrustStore, load_trust

log = logging.getLogger(__name__)

QUEUE_MAX = 32
QUEUE_MAX_BYTES = 4 * 1_048_576
_ANSWERABLE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a command name a result topic is made of
_POLL_S = 0.25
_DETAIL_MAX = 300

Action = Callable[[Mapping[str, Any]], dict[str, Any]]


class Channel(Protocol):
    """What the service needs of the publisher."""

    @property
    def connected(self) -> bool: ...

    @property
    def root(self) -> str: ...

    def on_command(self, name: str, handler: CommandHandler) -> None: ...

    def publish(self, suffix: str, payload: bytes, qos: int = 1) -> bool: ...


class Inbox:
    """Commands waiting for the worker, bounded in number and in bytes."""

    def __init__(self, max_count: int) -> None:
        self._max_count = max_count
        self._items: collections.deque[tuple[str, bytes]] = collections.deque()
        self._bytes = 0
        self._ready = threading.Condition()

    def put(self, name: str, payload: bytes, max_bytes: int) -> bool:
        """Queue unless `max_count` commands or `max_bytes` bytes would then wait."""
        with self._ready:
            if len(self._items) >= self._max_count or self._bytes + len(payload) > max_bytes:
                return False
            self._items.append((name, payload))
            self._bytes += len(payload)
            self._ready.notify()
            return True

    def get(self, timeout: float) -> tuple[str, bytes] | None:
        """The oldest command, waiting up to `timeout`; None when there is none."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            if not self._items:
                return None
            name, payload = self._items.popleft()
            self._bytes -= len(payload)
            return name, payload


class OutboxState(Protocol):
    """What `status` reports of the outbox."""

    def stats(self) -> OutboxStats: ...


class CommandService:
    """Answers every command on `cmd/<name>/result`; runs the ones that pass every check."""

    def __init__(
        self,
        gate: GateControl,
        channel: Channel,
        *,
        lock: threading.Lock,
        restart: Callable[[], None],
        outbox: OutboxState | None = None,
    ) -> None:
        self._gate = gate
        self._channel = channel
        self._lock = lock
        self._restart = restart
        self._outbox = outbox
        self._inbox = Inbox(QUEUE_MAX)
        self._budget = RefusalBudget()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        state_dir = gate.config.site.state_dir
        self._nonces = NonceBook(state_dir)
        self._device_key = _device_key(state_dir)
        self._keys_of: GateConfig | None = None
        self._keys: dict[str, ed25519.Ed25519PublicKey] = {}
        self._actions: dict[Name, Action] = {
            Name.OPEN: self._open,
            Name.LOCK: functools.partial(self._set_mode, Mode.LOCKED),
            Name.EMERGENCY_OPEN: functools.partial(self._set_mode, Mode.EMERGENCY_OPEN),
            Name.NORMAL: functools.partial(self._set_mode, Mode.NORMAL),
            Name.RELOAD: self._reload,
            Name.DENY_LIST: self._deny_list,
            Name.TRUST_LIST: self._trust_list,
            Name.STATUS: self._status,
        }

    def start(self) -> None:
        """Start the worker, then subscribe to every command."""
        if self._thread is not None:
            raise RuntimeError("command service already started")
        keys = len(self._checks().keys)
        self._thread = threading.Thread(target=self._run, name="gate-commands", daemon=True)
        self._thread.start()
        self._channel.on_command(ANY_COMMAND, self.received)
        if keys:
            log.info("remote commands enabled: %d operations key(s)", keys)
        else:
            log.warning("remote commands disabled: no usable operations public key")

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Finish the command running now; answer the ones still waiting `unavailable`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("command worker did not stop within %s s", timeout)
                return
        while (waiting := self._inbox.get(0)) is not None:
            self._turn_away(*waiting, Outcome.UNAVAILABLE, "the gate is stopping")

    def received(self, name: str, payload: bytes) -> None:
        """In the publisher's network thread: size first, then queue and return."""
        limit = self._gate.config.commands.max_payload_bytes
        if len(payload) > limit:
            self._turn_away(name, None, Outcome.OVERSIZED, f"{len(payload)} bytes, at most {limit}")
        elif self._stop.is_set():
            self._turn_away(name, payload, Outcome.UNAVAILABLE, "the gate is stopping")
        elif not self._inbox.put(name, payload, max(QUEUE_MAX_BYTES, limit)):
            self._turn_away(name, payload, Outcome.BUSY, "too many commands already wait")

    def _turn_away(self, name: str, payload: bytes | None, reason: Outcome, detail: str) -> None:
        """Answer, within the budget, a command that will not be looked at, with its nonce
        when one can be read (`payload` None: oversized, never parsed)."""
        if self._budget.allow(reason):
            nonce = nonce_of(payload) if payload is not None else None
            self._answer(name, nonce, reason, detail, {})

    def _run(self) -> None:
        while not self._stop.is_set():
            summary = self._budget.summary()
            if summary is not None:
                log.warning("%s", summary)
            waiting = self._inbox.get(_POLL_S)
            if waiting is None:
                continue
            try:
                self._handle(*waiting)
            except Exception:  # the worker must outlive any command
                log.exception("command %s: answering failed", printable(waiting[0]))

    def _handle(self, name: str, payload: bytes) -> None:
        try:
            command = self._accept(name, payload)
        except Refused as refused:
            if self._budget.allow(refused.reason):
                self._answer(name, refused.nonce, refused.reason, refused.detail, {})
            return
        reason, detail, state = self._execute(command)
        self._answer(name, command.nonce, reason, detail, state, command.key_id)

    def _execute(self, command: Command) -> tuple[Outcome, str | None, dict[str, Any]]:
        """Run a checked command under the gate lock: its outcome, detail and state."""
        try:
            with self._lock:
                return Outcome.OK, None, self._actions[command.name](command.args)
        except Refused as refused:
            return refused.reason, refused.detail, {}
        except Exception as exc:
            log.exception("command %s failed", command.name)
            return Outcome.FAILED, f"{type(exc).__name__}: {exc}", {}

    def _accept(self, name: str, payload: bytes) -> Command:
        """The command, checked and its nonce claimed (on disk) before it runs."""
        at = now_ms()
        checks = self._checks()
        command = check(payload, name, checks, at)
        try:
            refusal = self._nonces.claim(command.nonce, command.issued_at, at, checks.max_skew_ms)
        except OSError as exc:
            detail = f"the nonce cannot be stored: {exc}"
            raise Refused(Outcome.FAILED, detail, command.nonce) from exc
        if refusal is not None:
            raise Refused(*refusal, command.nonce)
        return command

    def _checks(self) -> Checks:
        """The checks of the running config. Keys are read at start and after every reload
        (a rotated key file takes effect without a restart); an unusable one disables
        commands, and the gate keeps working."""
        config = self._gate.config
        commands = config.commands
        if config is not self._keys_of:
            self._keys_of = config
            try:
                self._keys = operations_keys(commands.public_keys)
            except TrustError as exc:
                log.error("operations keys unusable, remote commands disabled: %s", exc)
                self._keys = {}
        return Checks(
            keys=self._keys,
            gate=config.site.name,
            topic_root=self._channel.root,
            max_skew_ms=round(commands.max_skew_s * 1000),
            max_bytes=commands.max_payload_bytes,
        )

    def _answer(
        self,
        name: str,
        nonce: str | None,
        reason: Outcome,
        detail: str | None,
        state: Mapping[str, Any],
        key_id: str | None = None,
    ) -> None:
        """One signed result and one log line; `key_id` says who signed the command. The
        name (from the topic) and the detail (it may quote the command) are escaped."""
        detail = printable(detail, _DETAIL_MAX) if detail else None
        signer = f", key {key_id}" if key_id else ""
        shown = printable(name)
        if reason is Outcome.OK:
            log.info("command %s (nonce %s%s): done", shown, nonce, signer)
        else:
            log.warning(
                "command %s (nonce %s%s) refused: %s (%s)", shown, nonce, signer, reason, detail
            )
        if not _ANSWERABLE.fullmatch(name):
            return  # a result topic made of it could get the gate disconnected
        payload = result_payload(
            name,
            nonce,
            reason,
            gate=self._gate.config.site.name,
            at_ms=now_ms(),
            state={"mode": str(self._gate.mode), **state},
            detail=detail,
            device_key=self._device_key,
        )
        self._channel.publish(f"cmd/{name}/result", payload)

    # -- the commands, run under the gate lock -----------------------------------------------

    def _open(self, _args: Mapping[str, Any]) -> dict[str, Any]:
        if not self._gate.open_once():
            raise Refused(Outcome.UNAVAILABLE, "the relay is not set up (gate restarting)")
        return {}

    def _set_mode(self, mode: Mode, _args: Mapping[str, Any]) -> dict[str, Any]:
        self._gate.set_mode(mode)
        return {}

    def _reload(self, _args: Mapping[str, Any]) -> dict[str, Any]:
        """SIGHUP's reload; a change that needs a restart asks the daemon for one."""
        before = self._gate.config
        if self._gate.reload():
            self._restart()
            return {"restarting": True}
        if self._gate.config is before:
            raise Refused(
                Outcome.RELOAD_FAILED,
                "config not reloaded, the running one is kept (see the gate's log)",
            )
        return {}

    def _deny_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        deny = lists.replace_deny(self._gate.config.site.state_dir, args)
        sizes = _sizes(deny)
        log.warning("remote deny list replaced: %s", sizes)
        self._refresh_policy("the new deny list")
        return {"remote_deny": sizes}

    def _trust_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        pinned = _store_sizes(lists.replace_trust(self._gate.config, args))
        log.warning("remote trust list replaced; pinned now: %s", pinned)
        self._refresh_policy("the new trust list")
        return {"pinned": pinned}

    def _refresh_policy(self, what: str) -> None:
        """Swap in a judge built with the new list: camera, pins and a held relay stay as
        they are (a full reload would close the pins and drop an emergency hold)."""
        try:
            self._gate.refresh_policy()
        except GateError as exc:
            raise Refused(
                Outcome.RELOAD_FAILED, f"{what} is stored but not applied: {exc}"
            ) from exc

    def _status(self, _args: Mapping[str, Any]) -> dict[str, Any]:
        state_dir = self._gate.config.site.state_dir
        trust = remote.remote_trust(state_dir)
        return {
            "version": __version__,
            "clock_synced": clock_synced(),
            "broker": "connected" if self._channel.connected else "disconnected",
            "gate": self._gate.telemetry(),
            "outbox": outbox_section(self._outbox.stats()) if self._outbox is not None else None,
            "remote_deny": _sizes(remote.read_deny(state_dir)),
            "remote_trust": _store_sizes(load_trust([trust])) if trust is not None else None,
        }


def _device_key(state_dir: Path) -> ed25519.Ed25519PrivateKey | None:
    """The key results are signed with; without it results go unsigned (and their sender
    says it cannot verify them), but commands still run."""
    try:
        return device.load_or_create(state_dir)
    except CommandError as exc:
        log.error("results will be unsigned: %s", exc)
        return None


def _sizes(deny: DenyList) -> dict[str, int]:
    return {name: len(getattr(deny, name)) for name in DenyList.model_fields}


def _store_sizes(store: TrustStore) -> dict[str, int]:
    return {"signers": len(store.signers), "pass_keys": len(store.pass_keys)}
