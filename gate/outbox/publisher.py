"""The publisher: one named thread owns the paho client and drains the outbox (P2, P3, P5).

Per connection: a fresh paho client (so paho never carries messages over from
an old connection: the outbox is the only queue), the last will (retained
`offline`), CONNACK with reason 0 before anything is sent, retained `online`,
command subscriptions, then the drain: at most `max_inflight` events without a
PUBACK, a row deleted only on a PUBACK with a success reason code.

What to send, delete, rewind or give up on is decided by `drain.Drain`, a pure
object (two lanes, backlog and live, in one window; refusals with backoff); this
module is its I/O shell: the paho client, the outbox, the clock. MQTT 3.1.1 has
no reason codes: a broker that drops a publish (mosquitto on an ACL deny) still
acknowledges it and the row is deleted; use v5 where that matters.

Commands arrive on `<root>/cmd/<name>`; a message bigger than `max_packet_bytes`
is counted and refused before it reaches a handler (v5 brokers do not even send
it: the limit is the CONNECT's Maximum Packet Size).
"""

import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gate.config.site import SiteConfig
from gate.files import warn_if_readable_by_others
from gate.identity import clock_synced, topic_root
from gate.logtext import printable
from gate.outbox.channel import ANY_COMMAND, CommandHandler
from gate.outbox.config import MqttConfig, Protocol, Transport
from gate.outbox.drain import Action, Backoff, Delete, Drain, Fetch, Publish, Refused, Rewind, Stuck
from gate.outbox.presence import (
    Presence,
    disk_free,
    outbox_section,
    status_payload,
    telemetry_payload,
)
from gate.outbox.store import Outbox

log = logging.getLogger(__name__)

_TICK_S = 0.25  # longest network wait; `notify` and `stop` wake it at once
_OUTGOING_MAX = 256  # messages queued by `publish` and not yet handed to paho


def new_client(config: MqttConfig, client_id: str, userdata: object = None) -> mqtt.Client:
    """A paho client set up as the config says (protocol, TLS, credentials), not connected.

    Shared by the publisher and `gate selftest`, so the self-test proves the very setup
    the daemon uses. Raises OSError (password file) or ssl.SSLError (CA, key files).
    """
    v5 = config.protocol is Protocol.V5
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else True,
        userdata=userdata,
    )
    client.suppress_exceptions = True
    client.connect_timeout = config.connect_timeout_s
    if config.transport is Transport.TLS:
        client.tls_set_context(_tls_context(config))
    if config.username is not None:
        client.username_pw_set(config.username, _password(config))
    return client


def connect(client: mqtt.Client, config: MqttConfig) -> None:
    """Open the TCP (and TLS) connection; v5 starts a clean session. OSError when it fails."""
    if config.protocol is Protocol.V5:
        limits = Properties(PacketTypes.CONNECT)
        limits.MaximumPacketSize = config.max_packet_bytes  # the broker drops bigger messages
        client.connect(
            config.host,
            config.effective_port,
            config.keepalive,
            clean_start=True,
            properties=limits,
        )
    else:
        client.connect(config.host, config.effective_port, config.keepalive)


def _tls_context(config: MqttConfig) -> ssl.SSLContext:
    """Server verified against `ca_file` (or the system CAs), host name checked."""
    ctx = ssl.create_default_context(cafile=config.ca_file)
    if config.cert_file is not None and config.key_file is not None:
        ctx.load_cert_chain(config.cert_file, config.key_file)
    return ctx


def _password(config: MqttConfig) -> str | None:
    path = config.password_file
    if path is None:
        return None
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise OSError(f"cannot read password_file {path}: {exc.strerror}") from None
    return lines[0] if lines else ""


@dataclass(slots=True)
class _Link:
    """State of one broker connection; touched only by the publisher thread."""

    number: int
    connack: bool = False
    connack_ok: bool = False
    connack_reason: str = ""
    lost: bool = False
    status_mid: int | None = None
    status_acked: bool = False
    subscribed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Counters:
    connects: int = 0
    connect_failures: int = 0
    last_connect_error: str | None = None
    oversized_commands: int = 0
    callback_errors: int = 0
    loop_errors: int = 0
    telemetry_errors: int = 0


class Publisher:
    """Drains the outbox to the broker and keeps presence and telemetry."""

    def __init__(
        self,
        config: MqttConfig,
        site: SiteConfig,
        outbox: Outbox,
        telemetry: Callable[[], Mapping[str, object]],
        *,
        client_id: str,
        boot_id: str,
    ) -> None:
        self._config = config
        self._outbox = outbox
        for secret in (config.key_file, config.password_file):
            if secret is not None:
                warn_if_readable_by_others(secret)
        self.telemetry = telemetry
        """The daemon's counters, merged into each telemetry message; may be replaced."""
        self.faults: Callable[[], list[dict[str, str]]] = list
        """What keeps the daemon from working fully, in the retained `online` status."""
        self._status_changed = threading.Event()
        self._client_id = client_id
        self._boot_id = boot_id
        self.root = topic_root(config.topic_root, site, client_id.removeprefix("gate-"))
        self.event_topic = f"{self.root}/event"
        self.status_topic = f"{self.root}/status"
        self.telemetry_topic = f"{self.root}/telemetry"
        self._cmd_prefix = f"{self.root}/cmd/"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._resubscribe = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, CommandHandler] = {}
        self._handlers_lock = threading.Lock()
        self._outgoing: queue.Queue[tuple[str, bytes, int]] = queue.Queue(_OUTGOING_MAX)
        self._counters = _Counters()
        self._connected = False
        self._session = 0
        self._connection = 0
        self._started = time.monotonic()
        self._heartbeat = time.monotonic()
        self._stop_by = 0.0
        self._next_telemetry = 0.0
        self._drain = Drain(
            config.max_inflight,
            config.ack_timeout_s,
            Backoff(config.reconnect_min_s, config.reconnect_max_s),
        )

    # -- API for the daemon ----------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread (it counts a new session first, persisted)."""
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._started = time.monotonic()
        if self._config.protocol is Protocol.V311:
            log.warning(
                "MQTT 3.1.1: a broker that refuses a publish (ACL) still acknowledges it, "
                "so such events are lost unnoticed; use protocol v5"
            )
        self._thread = threading.Thread(target=self._run, name="gate-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish retained `stopped`, disconnect and join; within `timeout` seconds."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._stop_by = time.monotonic() + timeout * 0.8
        self._stop.set()
        self._poke()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("publisher thread did not stop within %.1fs", timeout)
            return
        self._wake_r.close()
        self._wake_w.close()

    def notify(self) -> None:
        """A check-in was committed: send it without waiting for the next poll."""
        self._wake.set()
        self._poke()

    def refresh_status(self) -> None:
        """The faults changed: publish the retained `online` status again when connected."""
        self._status_changed.set()
        self._poke()

    def _poke(self) -> None:
        """Wake the network thread out of its select."""
        # full of wake-ups: awake anyway; closed: stopped
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def on_command(self, name: str, handler: CommandHandler) -> None:
        """Route `<root>/cmd/<name>` to `handler`; subscribed on every (re)connect.

        `name` may be `+`: every command name no other handler takes (so that an
        unknown command still gets an answer).
        """
        if name != ANY_COMMAND and (not name or any(c in name for c in "/+#")):
            raise ValueError(f"bad command name {name!r}")
        with self._handlers_lock:
            self._handlers[name] = handler
        self._resubscribe.set()
        if self._thread is not None:
            self._poke()

    def publish(self, suffix: str, payload: bytes, qos: int = 1) -> bool:
        """Queue a message for `<root>/<suffix>` (not retained); any thread may call it.

        The network thread sends queued messages in order, while connected, ahead of the
        next events, and before `stopped` on a clean stop. Best effort, unlike events: a
        message in flight when a connection drops is not sent again, and when
        `_OUTGOING_MAX` are waiting (offline) a new one is dropped and False returned.
        """
        if not suffix or suffix.startswith("/") or any(c in suffix for c in "+#\0"):
            raise ValueError(f"bad topic suffix {suffix!r}")
        try:
            self._outgoing.put_nowait((f"{self.root}/{suffix}", payload, qos))
        except queue.Full:
            log.warning("%d messages wait for the broker: %s dropped", _OUTGOING_MAX, suffix)
            return False
        self._poke()
        return True

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the loss of that connection."""
        return self._connected

    @property
    def connect_timeout_s(self) -> float:
        return self._config.connect_timeout_s

    @property
    def alive(self) -> bool:
        """True while the network thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def heartbeat(self) -> float:
        """`time.monotonic()` of the thread's last sign of life, for the daemon's watchdog.

        Healthy, it is never older than twice `connect_timeout_s` (TCP, then TLS) plus a
        second.
        """
        return self._heartbeat

    def stats(self) -> dict[str, object]:
        """Our own counters, as telemetry shows them."""
        c, d = self._counters, self._drain.counters
        return {
            "client_id": self._client_id,
            "connected": self._connected,
            "published": d.published,
            "acked": d.acked,
            "refused": d.refused,
            "last_refusal": d.last_refusal,
            "connects": c.connects,
            "connect_failures": c.connect_failures,
            "last_connect_error": c.last_connect_error,
            "ack_timeouts": d.ack_timeouts,
            "oversized_commands": c.oversized_commands,
            "callback_errors": c.callback_errors,
            "loop_errors": c.loop_errors,
            "telemetry_errors": c.telemetry_errors,
        }

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._session = self._outbox.next_session()
        except Exception:  # the network thread must outlive any failure (P6): it still drains
            self._counters.loop_errors += 1
            log.exception("publisher session not counted")
        backoff = Backoff(self._config.reconnect_min_s, self._config.reconnect_max_s)
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            try:
                self._connection += 1
                self._session_once(_Link(self._connection), backoff)
            except Exception:  # the network thread must outlive any failure (P6)
                self._counters.loop_errors += 1
                log.exception("publisher loop failed; reconnecting")
            self._connected = False
            if self._stop.is_set():
                break
            delay = backoff.next()
            log.info("reconnecting to %s in %.1fs", self._config.host, delay)
            until = time.monotonic() + delay
            while not self._stop.wait(min(1.0, max(0.0, until - time.monotonic()))):
                self._heartbeat = time.monotonic()  # waiting is not hanging
                if self._heartbeat >= until:
                    break
        log.info("publisher stopped")

    def _session_once(self, link: _Link, backoff: Backoff) -> None:
        """One connection: connect, CONNACK, online, drain until lost or stopped."""
        cfg = self._config
        try:
            client = self._make_client(link)
            connect(client, cfg)
            sock = client.socket()
            if isinstance(sock, socket.socket):  # a lone check-in must not wait for Nagle
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, ValueError) as exc:
            self._connect_failed(f"{type(exc).__name__}: {exc}")
            return
        try:
            if not self._await_connack(client, link):
                return
            backoff.reset()
            self._counters.connects += 1
            self._connected = True
            log.info("connected to %s:%d as %s", cfg.host, cfg.effective_port, self._client_id)
            self._begin(client, link)
            while not self._stop.is_set() and not link.lost:
                self._outbox.give_way()
                rc = self._turn(client, _TICK_S)
                self._heartbeat = time.monotonic()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    log.warning("connection to broker lost (%s)", mqtt.error_string(rc))
                    break
                if not self._service(client, link):
                    break
            if self._stop.is_set() and not link.lost and client.is_connected():
                self._goodbye(client, link)
        finally:
            self._connected = False
            self._close(client)
            self._outbox.ack(self._drain.take_deletions())

    def _turn(self, client: mqtt.Client, timeout: float) -> MQTTErrorCode:
        """One network turn: our own select over paho's socket and the wake socket.

        Not `client.loop()`: that makes paho write a wake-up byte to its own socket
        pair on every publish, one extra syscall and select per event.
        """
        sock = client.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        wanted = [sock] if client.want_write() else []
        try:
            readable, writable, _ = select.select(
                [sock, self._wake_r], wanted, [], 0.0 if pending else timeout
            )
        except (OSError, ValueError):
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        if sock in readable or pending:
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
                return rc or MQTTErrorCode.MQTT_ERR_CONN_LOST
        if writable:
            rc = client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        return client.loop_misc()

    def _connect_failed(self, why: str) -> None:
        self._counters.connect_failures += 1
        self._counters.last_connect_error = why
        log.warning("cannot connect to %s: %s", self._config.host, why)

    def _await_connack(self, client: mqtt.Client, link: _Link) -> bool:
        """Nothing is published before a successful CONNACK (it could be reordered)."""
        deadline = time.monotonic() + self._config.connect_timeout_s
        while not link.connack and time.monotonic() < deadline and not self._stop.is_set():
            if self._turn(client, _TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            self._heartbeat = time.monotonic()
        if link.connack_ok:
            return True
        if self._stop.is_set():
            return False
        self._connect_failed(f"CONNACK {link.connack_reason or 'not received'}")
        return False

    def _make_client(self, link: _Link) -> mqtt.Client:
        client = new_client(self._config, self._client_id, link)
        client.max_inflight_messages_set(self._config.max_inflight + 1)  # + the status message
        client.will_set(self.status_topic, self._status(Presence.OFFLINE, link), qos=1, retain=True)
        client.on_connect = self._guarded("_on_connect")
        client.on_disconnect = self._guarded("_on_disconnect")
        client.on_publish = self._guarded("_on_publish")
        client.on_message = self._guarded("_on_message")
        client.on_subscribe = self._guarded("_on_subscribe")
        return client

    def _status(self, state: Presence, link: _Link) -> bytes:
        return status_payload(
            state,
            client_id=self._client_id,
            boot_id=self._boot_id,
            session=self._session,
            connection=link.number,
            faults=self.faults() if state is Presence.ONLINE else None,
        )

    def _begin(self, client: mqtt.Client, link: _Link) -> None:
        """Presence, subscriptions, lanes and a first telemetry right after CONNACK."""
        self._status_changed.clear()
        info = client.publish(
            self.status_topic, self._status(Presence.ONLINE, link), qos=1, retain=True
        )
        link.status_mid = info.mid
        self._subscribe(client, link)
        self._drain.begin()
        self._next_telemetry = 0.0

    def _subscribe(self, client: mqtt.Client, link: _Link) -> None:
        with self._handlers_lock:
            names = [n for n in self._handlers if n not in link.subscribed]
        for name in names:
            client.subscribe(f"{self._cmd_prefix}{name}", qos=1)
            link.subscribed.add(name)

    def _service(self, client: mqtt.Client, link: _Link) -> bool:
        """One turn after the network loop: queued messages, the drain, subscriptions,
        telemetry. Returns False when the connection must be dropped."""
        now = time.monotonic()
        if self._status_changed.is_set():
            self._status_changed.clear()
            status = self._status(Presence.ONLINE, link)
            client.publish(self.status_topic, status, qos=1, retain=True)
        self._send_outgoing(client)
        if not self._drive(client, now):
            return False
        if self._resubscribe.is_set():
            self._resubscribe.clear()
            self._subscribe(client, link)
        if now >= self._next_telemetry:
            self._next_telemetry = now + self._config.telemetry_interval_s
            self._publish_telemetry(client)
        return True

    def _drive(self, client: mqtt.Client, now: float) -> bool:
        """Do what the drain asks until it waits for the network; False: drop the link."""
        drain = self._drain
        if self._wake.is_set():
            self._wake.clear()
            drain.wake()
        while (action := drain.next_action(now, self._outbox.pending_acks)) is not None:
            if not self._do(client, action, now):
                return False
            self._outbox.give_way()  # a check-in being committed goes first
        return True

    def _do(self, client: mqtt.Client, action: Action, now: float) -> bool:
        match action:
            case Fetch(lane, after, upto, limit):
                self._drain.fetched(lane, self._outbox.fetch(after, limit, upto))
            case Publish():
                return self._publish_events(client, action, now)
            case Delete(seqs):
                self._outbox.ack(seqs)
            case Rewind():
                self._drain.reset(self._outbox.last_seq)
            case Refused(count, first_seq, reason, delay_s):
                log.warning(
                    "broker refused %d event(s) (first seq %d: %s): kept, retrying in %.1fs",
                    count,
                    first_seq,
                    reason,
                    delay_s,
                )
            case Stuck(waited_s, inflight):
                log.warning(
                    "no PUBACK for %.0fs (%d in flight): dropping the connection",
                    waited_s,
                    inflight,
                )
                return False
        return True

    def _publish_events(self, client: mqtt.Client, action: Publish, now: float) -> bool:
        """Hand a `Publish`'s events to paho back to back; False: drop the connection."""
        mids: list[int] = []
        for payload in action.payloads:
            info = client.publish(self.event_topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning("publish failed (%s): reconnecting", mqtt.error_string(info.rc))
                break
            mids.append(info.mid)
            self._outbox.give_way()
        self._drain.sent(action, mids, now)
        return len(mids) == len(action.payloads)

    def _send_outgoing(self, client: mqtt.Client) -> None:
        """Hand what `publish` queued to paho."""
        while True:
            try:
                topic, payload, qos = self._outgoing.get_nowait()
            except queue.Empty:
                return
            info = client.publish(topic, payload, qos=qos, retain=False)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning(
                    "publish to %s failed (%s): dropped",
                    printable(topic),
                    mqtt.error_string(info.rc),
                )

    def _publish_telemetry(self, client: mqtt.Client) -> None:
        """QoS 0, not retained: a sample lost while offline is not worth a slot in the window."""
        try:
            app = self.telemetry()
        except Exception:  # the daemon's counters must not stop ours
            self._counters.telemetry_errors += 1
            log.exception("telemetry callable failed")
            app = {}
        stats = self._outbox.stats()
        payload = telemetry_payload(
            app,
            boot_id=self._boot_id,
            session=self._session,
            uptime_s=time.monotonic() - self._started,
            broker="connected" if self._connected else "disconnected",
            outbox=outbox_section(stats),
            publisher=self.stats(),
            disk_free_bytes=disk_free(self._outbox.path.parent),
            clock_synced=clock_synced(),
        )
        client.publish(self.telemetry_topic, payload, qos=0, retain=False)

    def _goodbye(self, client: mqtt.Client, link: _Link) -> None:
        """Clean stop: what `publish` queued, retained `stopped` (acknowledged if the broker
        answers), then DISCONNECT."""
        self._send_outgoing(client)
        info = client.publish(
            self.status_topic, self._status(Presence.STOPPED, link), qos=1, retain=True
        )
        link.status_mid, link.status_acked = info.mid, False
        deadline = max(self._stop_by, time.monotonic() + 0.2)
        while not link.status_acked and not link.lost and time.monotonic() < deadline:
            if self._turn(client, _TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        client.disconnect()
        while client.is_connected() and time.monotonic() < deadline:
            self._turn(client, _TICK_S)

    def _close(self, client: mqtt.Client) -> None:
        """Drop the socket of a finished connection; its client object is not reused."""
        sock = client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError as exc:
                log.debug("closing socket: %s", exc)

    # -- callbacks: tiny, in the publisher thread, each guarded ----------------------------

    def _guarded(self, name: str) -> Callable[..., None]:
        def callback(*args: object) -> None:
            try:
                getattr(self, name)(*args)
            except Exception:  # an exception here would kill the network loop
                self._counters.callback_errors += 1
                log.exception("publisher callback %s failed", name)

        return callback

    def _on_connect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        link.connack = True
        link.connack_ok = reason == 0
        link.connack_reason = str(reason)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        link: _Link,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        link.lost = True
        self._connected = False

    def _on_publish(
        self,
        client: mqtt.Client,
        link: _Link,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        is_event = self._drain.puback(mid, str(reason) if reason.is_failure else None)
        if not is_event and mid == link.status_mid:
            link.status_acked = True
        self._outbox.give_way()  # one network read can hold many PUBACKs

    def _on_subscribe(
        self,
        client: mqtt.Client,
        link: _Link,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.warning("command subscription refused: %s", ", ".join(refused))

    def _on_message(self, client: mqtt.Client, link: _Link, message: mqtt.MQTTMessage) -> None:
        """Route a command; an oversized one is counted and dropped before anything else."""
        size = len(message.payload)  # the length of paho's buffer: nothing is copied
        if size > self._config.max_packet_bytes:
            self._counters.oversized_commands += 1
            if self._counters.oversized_commands % 100 == 1:  # a flood is not a log flood
                log.warning(
                    "command message of %d bytes refused (max_packet_bytes %d); %d so far",
                    size,
                    self._config.max_packet_bytes,
                    self._counters.oversized_commands,
                )
            return
        name = message.topic.removeprefix(self._cmd_prefix)
        if not message.topic.startswith(self._cmd_prefix) or not name or "/" in name:
            return
        with self._handlers_lock:
            handler = self._handlers.get(name) or self._handlers.get(ANY_COMMAND)
        if handler is not None:
            handler(name, bytes(message.payload))
