"""The broker row: connect exactly as the daemon does, then a publish round trip."""

import secrets
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gate.app_config import GateConfig
from gate.identity import client_id, device_id, topic_root
from gate.outbox.publisher import connect, new_client
from gate.selftest.report import Row, Status


@dataclass
class _RoundTrip:
    """What the paho callbacks saw, for the loop in `broker_row`."""

    topic: str
    payload: bytes
    connack: ReasonCode | None = None
    suback: list[ReasonCode] | None = None
    puback: ReasonCode | None = None
    received_at: float | None = None
    lost: bool = False

    @property
    def refused(self) -> bool:
        """The broker answered the publish with a failure (MQTT v5: an ACL deny)."""
        return self.puback is not None and self.puback.is_failure

    def on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, *_: object
    ) -> None:
        self.connack = reason

    def on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], *_: object
    ) -> None:
        self.suback = reasons

    def on_publish(
        self, _c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode, *_: object
    ) -> None:
        self.puback = reason

    def on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topic and message.payload == self.payload:
            self.received_at = time.monotonic()

    def on_disconnect(self, *_: object) -> None:
        self.lost = True


def _loop_until(
    client: mqtt.Client, done: Callable[[], object], trip: _RoundTrip, s: float
) -> bool:
    deadline = time.monotonic() + s
    while not done():
        if trip.lost or time.monotonic() > deadline:
            return False
        if client.loop(0.02) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return bool(done())
    return True


def broker_row(config: GateConfig) -> Row:
    """Connect as the daemon does (TLS, credentials), then publish to a topic of our own
    below the root and wait for the message to come back: login, ACL and latency."""
    cfg = config.mqtt
    where = f"{cfg.host}:{cfg.effective_port} ({cfg.transport})"
    try:
        device = device_id(config.site)
    except RuntimeError as exc:
        return Row("broker", Status.FAIL, "no device id", str(exc), "set site.device_id")
    root = topic_root(cfg.topic_root, config.site, device)
    topic = f"{root}/selftest/{secrets.token_hex(6)}"
    acl = f"ask the operations team to let this device publish and subscribe to {root}/selftest/#"
    trip = _RoundTrip(topic, secrets.token_bytes(16))
    try:
        client = new_client(cfg, f"{client_id(device)}-selftest")
    except OSError as exc:
        return Row(
            "broker",
            Status.FAIL,
            "cannot set up",
            str(exc),
            "check mqtt.ca_file, cert_file, key_file and password_file exist and are readable "
            "(install.sh --ca/--cert/--key/--password-file)",
        )
    client.on_connect = trip.on_connect
    client.on_subscribe = trip.on_subscribe
    client.on_publish = trip.on_publish
    client.on_message = trip.on_message
    client.on_disconnect = trip.on_disconnect
    timeout = cfg.connect_timeout_s
    started = time.monotonic()
    try:
        connect(client, cfg)
    except (OSError, ValueError) as exc:
        return Row("broker", Status.FAIL, "no connection", f"{where}: {_why(exc)}", _reach(exc))
    try:
        if not _loop_until(client, lambda: trip.connack is not None, trip, timeout):
            return Row(
                "broker",
                Status.FAIL,
                "no MQTT answer",
                f"{where} accepted the connection but sent no CONNACK in {timeout:g} s",
                "check mqtt.port and mqtt.transport (TLS on a plain port, or the reverse) "
                "and the client certificate (install.sh --cert/--key)",
            )
        if trip.connack is not None and trip.connack.is_failure:
            return Row(
                "broker",
                Status.FAIL,
                "login refused",
                f"CONNACK: {trip.connack}",
                "check mqtt.username and password_file, or the client certificate "
                "(install.sh --username/--password-file, --cert/--key)",
            )
        connected_ms = (time.monotonic() - started) * 1000
        client.subscribe(topic, qos=1)
        if not _loop_until(client, lambda: trip.suback is not None, trip, timeout) or any(
            r.is_failure for r in trip.suback or []
        ):
            refused = ", ".join(str(r) for r in trip.suback or []) or "no SUBACK"
            return Row("broker", Status.FAIL, "subscribe refused", refused, acl)
        sent = time.monotonic()
        client.publish(topic, trip.payload, qos=1)
        back = _loop_until(client, lambda: trip.received_at or trip.refused, trip, timeout)
        if not back or trip.refused:
            return Row(
                "broker",
                Status.FAIL,
                "no round trip",
                f"PUBACK: {trip.puback}"
                if trip.refused
                else f"the message did not come back within {timeout:g} s",
                acl,
            )
        latency_ms = ((trip.received_at or sent) - sent) * 1000
        return Row(
            "broker",
            Status.PASS,
            f"round trip {latency_ms:.0f} ms",
            f"{where}, connected in {connected_ms:.0f} ms",
        )
    finally:
        client.disconnect()
        client.loop(0.05)
        sock = client.socket()
        if sock is not None:
            sock.close()


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _reach(exc: Exception) -> str:
    """What to do about a failed connect, by its cause."""
    if isinstance(exc, socket.gaierror):
        return "mqtt.host does not resolve: check the name (install.sh --broker) and DNS"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "the broker's certificate does not verify: check mqtt.ca_file (install.sh --ca) "
            "and the clock row (a wrong date fails TLS)"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            "TLS failed: check mqtt.transport and port (TLS on a plain port?) and the client "
            "certificate (install.sh --cert/--key)"
        )
    return (
        "check mqtt.host and port (install.sh --broker HOST:PORT), the network "
        "(`ip route`, cable or Wi-Fi) and any firewall between the gate and the broker"
    )
