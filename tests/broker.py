"""A real mosquitto for tests and benchmarks, on a free loopback port, with a generated config.

Not a conftest: import it (`from tests.broker import Broker, make_pki`). Plain or TLS
(server certificate and client certificates generated here with `cryptography`),
an optional password file and ACL file, and the process controls the tests need:
stop, kill, freeze (SIGSTOP), thaw (SIGCONT) and restart on the same port with the
same persistence file.
"""

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    """File paths of a throw-away CA, a server certificate and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if issuer_key is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_pki(directory: Path, client_cn: str = "gate") -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert("gate-test-ca", ca_key, None, None, ca=True)
    paths = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, cn, server in (
        (paths.server_cert, paths.server_key, "localhost", True),
        (paths.client_cert, paths.client_key, client_cn, False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, key, ca_cert.subject, ca_key, server=server)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
    return paths


def password_line(user: str, password: str) -> str:
    """A mosquitto 2 password-file line (PBKDF2-SHA512, 101 rounds, as mosquitto_passwd)."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"{user}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class Broker:
    """One mosquitto process under test control; its files live in `directory`."""

    host = "127.0.0.1"

    def __init__(
        self,
        directory: Path,
        *,
        pki: Pki | None = None,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        port: int | None = None,
        settings: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.pki = pki
        self.port = port or free_port()
        self.log_file = directory / "mosquitto.log"
        self.conf_file = directory / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {directory}/",
            "persistence_file mosquitto.db",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type debug",
            "connection_messages true",
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            "set_tcp_nodelay true",  # as config/mosquitto/province.conf: PUBACKs leave at once
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if pki is not None:
            lines += [
                f"cafile {pki.ca}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
                "require_certificate true",
            ]
        if users:
            pw = directory / "passwords"
            pw.write_text("".join(password_line(u, p) + "\n" for u, p in users.items()))
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = directory / "acl"
            acl_file.write_text(acl)
            lines.append(f"acl_file {acl_file}")
        lines += settings  # more mosquitto.conf lines, e.g. a shipped config's limits
        self.conf_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> "Broker":
        """Start and wait until the port accepts connections."""
        if self.running:
            raise RuntimeError("broker already running")
        self._proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self._proc.returncode}): {err}{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.thaw()
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: no persistence save."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self.stop()

    def freeze(self) -> None:
        """SIGSTOP: the sockets stay open but nothing answers."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its password and ACL files."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def restart(self) -> "Broker":
        """Stop, then start on the same port with the same persistence."""
        self.stop()
        return self.start()

    def log(self) -> str:
        """The broker's log so far (for assertion messages)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll `predicate` until it is truthy or `timeout` passes (correctness, not speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Watcher:
    """A real paho subscriber recording what arrives, as the provincial consumer would.

    Its session is persistent (clean_session false) so messages queued for it by the
    broker survive the broker's restart and the watcher's reconnects.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str = "#",
        *,
        client_id: str = "watcher",
        persistent: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._subscribed = threading.Event()
        self._topic = topic
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
        )
        client.max_inflight_messages_set(100)
        client.reconnect_delay_set(0.05, 0.5)
        if broker.pki is not None:
            ctx = ssl.create_default_context(cafile=broker.pki.ca)
            ctx.load_cert_chain(broker.pki.client_cert, broker.pki.client_key)
            client.tls_set_context(ctx)
        if username is not None:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        client.connect(broker.host, broker.port, keepalive=30)
        client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("watcher did not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_subscribe(self, *_: object) -> None:
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._received.append(Received(msg.topic, msg.payload, bool(msg.retain)))

    def received(self, suffix: str = "") -> list[Received]:
        """Everything so far (on topics ending with `suffix`), in arrival order."""
        with self._lock:
            return [r for r in self._received if r.topic.endswith(suffix)]

    def events(self) -> list[dict[str, object]]:
        """The check-in events so far, decoded, in arrival order (duplicates included)."""
        return [json.loads(r.payload) for r in self.received("/event")]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def retained(broker: Broker, topic: str, timeout: float = 5.0, **auth: str) -> bytes | None:
    """The retained message on `topic` right now, as a fresh subscriber gets it."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    if broker.pki is not None:
        ctx = ssl.create_default_context(cafile=broker.pki.ca)
        ctx.load_cert_chain(broker.pki.client_cert, broker.pki.client_key)
        client.tls_set_context(ctx)
    if auth:
        client.username_pw_set(auth["username"], auth.get("password"))

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(msg.payload)
            done.set()

    def on_subscribe(*_: object) -> None:
        # the broker sends retained messages before the SUBACK is processed here; give
        # it a moment, then there is none
        threading.Timer(0.3, done.set).start()

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return got[-1] if got else None


def delivery_problems(events: list[dict[str, object]], committed: set[str]) -> list[str]:
    """What breaks the promises in what a consumer received (empty when all is well).

    Every committed event_id arrived at least once (P2); first arrivals are in seq
    order within the backlog (`replayed`) and within the live events (P3); one seq
    per event_id.
    """
    problems: list[str] = []
    first: dict[object, dict[str, object]] = {}
    seq_of: dict[object, object] = {}
    for event in events:
        event_id = event["event_id"]
        if seq_of.setdefault(event_id, event["seq"]) != event["seq"]:
            problems.append(f"{event_id} arrived with two seqs")
        first.setdefault(event_id, event)
    missing = committed - set(first)
    if missing:
        problems.append(
            f"{len(missing)} committed events never arrived, e.g. {sorted(missing)[:3]}"
        )
    if len(set(seq_of.values())) != len(seq_of):
        problems.append("two event_ids share a seq")
    for replayed in (True, False):
        lane = [int(str(e["seq"])) for e in first.values() if e["replayed"] is replayed]
        if lane != sorted(lane):
            bad = next(i for i in range(1, len(lane)) if lane[i] < lane[i - 1])
            problems.append(
                f"{'backlog' if replayed else 'live'} first arrivals out of seq order at "
                f"{lane[bad - 1]} -> {lane[bad]}"
            )
    return problems
