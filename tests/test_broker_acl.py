"""The province's broker side (config/mosquitto/): a real mosquitto with the shipped ACL and
limits keeps each gate in its own topics, and drops a packet too big for a gate."""

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from broker import Broker, Watcher, wait_until
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

pytestmark = [pytest.mark.broker]

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "mosquitto"
GATE_1, GATE_2 = "hn/stadium/gate-1", "hn/stadium/gate-2"
USERS = {GATE_1: "pw1", GATE_2: "pw2", "operations": "pw3", "consumer": "pw4"}


def shipped_limits() -> tuple[str, ...]:
    """The limit lines of province.conf (its listener and TLS paths are the province's)."""
    lines = (SHIPPED / "province.conf").read_text().splitlines()
    return tuple(line for line in lines if line.startswith(("max_packet_size", "max_queued")))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    acl = (SHIPPED / "gate.acl").read_text()
    directory = tmp_path_factory.mktemp("province")
    with Broker(directory, users=USERS, acl=acl, settings=shipped_limits()) as running:
        yield running


class Client:
    """An MQTT v5 client under one user name: what the broker granted, acked and delivered."""

    def __init__(self, broker: Broker, user: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[list[ReasonCode]] = []
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=paho.MQTTv5
        )
        self._client.username_pw_set(user, USERS[user])
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = lambda *_: self.disconnected.set()
        connected = threading.Event()
        self._client.on_connect = lambda *_: connected.set()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert connected.wait(10)

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def _on_subscribe(
        self, _c: paho.Client, _u: object, _m: int, codes: list[ReasonCode], _p: Properties
    ) -> None:
        with self._lock:
            self.granted.append(codes)

    def subscribe(self, topic: str) -> str:
        """The broker's answer: "Granted QoS 1" or why not."""
        count = len(self.granted)
        self._client.subscribe(topic, qos=1)
        assert wait_until(lambda: len(self.granted) > count, 5)
        return str(self.granted[count][0])

    def publish(self, topic: str, payload: bytes = b"{}") -> str:
        """The broker's PUBACK reason: "Success" or why not."""
        acked: list[str] = []
        done = threading.Event()

        def on_publish(_c: object, _u: object, _m: int, code: ReasonCode, _p: object) -> None:
            acked.append(str(code))
            done.set()

        self._client.on_publish = on_publish
        self._client.publish(topic, payload, qos=1)
        assert done.wait(5) or self.disconnected.is_set()
        return acked[0] if acked else "disconnected"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def clients(broker: Broker) -> Iterator[dict[str, Client]]:
    made = {user: Client(broker, user) for user in USERS}
    yield made
    for client in made.values():
        client.close()


def test_a_gate_publishes_only_under_its_own_root(broker, clients):
    consumer = Watcher(
        broker,
        "checkin/#",
        client_id="province",
        persistent=False,
        username="consumer",
        password=USERS["consumer"],
    )
    gate = clients[GATE_1]
    try:
        assert gate.publish(f"checkin/{GATE_1}/event", b"mine") == "Success"
        assert gate.publish(f"checkin/{GATE_1}/cmd/open/result", b"answer") == "Success"
        for forged in (
            f"checkin/{GATE_2}/event",
            f"checkin/{GATE_2}/status",
            f"checkin/{GATE_2}/cmd/open",
            f"checkin/{GATE_2}/cmd/open/result",
            f"checkin/{GATE_1}/cmd/open",  # not even a command to itself
        ):
            assert gate.publish(forged, b"forged") == "Not authorized", forged
        assert wait_until(lambda: len(consumer.received()) == 2, 5)
        wait_until(lambda: len(consumer.received()) > 2, 0.5)
    finally:
        consumer.close()
    assert [(r.topic, r.payload) for r in consumer.received()] == [
        (f"checkin/{GATE_1}/event", b"mine"),
        (f"checkin/{GATE_1}/cmd/open/result", b"answer"),
    ]


def test_a_gate_reads_only_its_own_commands(clients):
    gate_1, gate_2, operations = clients[GATE_1], clients[GATE_2], clients["operations"]
    assert gate_1.subscribe(f"checkin/{GATE_1}/cmd/+") == "Granted QoS 1"
    assert gate_2.subscribe(f"checkin/{GATE_2}/cmd/+") == "Granted QoS 1"
    # mosquitto grants these, and then delivers nothing the ACL does not let gate-1 read
    gate_1.subscribe(f"checkin/{GATE_2}/cmd/+")
    gate_1.subscribe("checkin/#")
    assert operations.subscribe(f"checkin/{GATE_2}/cmd/+/result") == "Granted QoS 1"

    assert operations.publish(f"checkin/{GATE_2}/cmd/open", b"for gate-2") == "Success"
    assert operations.publish(f"checkin/{GATE_1}/cmd/lock", b"for gate-1") == "Success"
    assert gate_2.publish(f"checkin/{GATE_2}/cmd/open/result", b"done") == "Success"
    assert wait_until(lambda: operations.received, 5)
    wait_until(lambda: len(gate_1.received) > 1, 0.5)

    assert gate_2.received == [(f"checkin/{GATE_2}/cmd/open", b"for gate-2")]
    assert set(gate_1.received) == {(f"checkin/{GATE_1}/cmd/lock", b"for gate-1")}  # twice:
    # it matched both of gate-1's subscriptions
    assert operations.received == [(f"checkin/{GATE_2}/cmd/open/result", b"done")]


@pytest.mark.slow
def test_a_packet_over_the_shipped_limit_disconnects_its_sender_and_reaches_nobody(clients):
    gate, operations = clients[GATE_1], clients["operations"]
    assert gate.subscribe(f"checkin/{GATE_1}/cmd/+") == "Granted QoS 1"

    assert operations.publish(f"checkin/{GATE_1}/cmd/open", b" " * 2_000_000) == "disconnected"
    assert operations.disconnected.is_set()
    wait_until(lambda: gate.received, 0.5)
    assert gate.received == []
    assert not gate.disconnected.is_set()
