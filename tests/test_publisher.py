"""The publisher against a real mosquitto on loopback: TLS, auth, ACL, outages, callbacks.

Waits poll for correctness with generous timeouts; nothing here asserts speed.
"""

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import (
    Broker,
    Pki,
    Watcher,
    delivery_problems,
    make_pki,
    retained,
    wait_until,
)
from outbox_driver import KEY, make_checkin, make_site
from paho.mqtt.enums import CallbackAPIVersion

from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig
from gate.outbox.publisher import Publisher
from gate.outbox.store import Outbox

pytestmark = [
    pytest.mark.broker,
]

ROOT = "checkin/hn/stadium/gate-1"
FAST = {
    "host": "127.0.0.1",
    "keepalive": 2,
    "connect_timeout_s": 2,
    "reconnect_min_s": 0.05,
    "reconnect_max_s": 0.5,
    "ack_timeout_s": 3,
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(OutboxConfig(), make_site(tmp_path / "state"), PrivacyConfig(), privacy_key=KEY)
    yield box
    box.close()


class Publishers:
    """Makes publishers for a test and stops them all at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.site = make_site(tmp_path / "state")
        self.started: list[Publisher] = []

    def __call__(
        self,
        broker: Broker,
        outbox: Outbox,
        telemetry: Callable[[], dict[str, object]] = dict,
        **overrides: object,
    ) -> Publisher:
        config = MqttConfig(**{**FAST, "port": broker.port, "transport": "plain", **overrides})
        publisher = Publisher(
            config, self.site, outbox, telemetry, client_id="gate-dev1", boot_id="boot-1"
        )
        publisher.start()
        self.started.append(publisher)
        return publisher


@pytest.fixture
def publishers(tmp_path: Path) -> Iterator[Publishers]:
    made = Publishers(tmp_path)
    yield made
    for publisher in made.started:
        publisher.stop()
        assert not publisher.alive


def commit(outbox: Outbox, publisher: Publisher | None, n: int, start: int = 0) -> set[str]:
    ids = {outbox.commit(make_checkin(start + i)).event_id for i in range(n)}
    if publisher is not None:
        publisher.notify()
    return ids


def status(broker: Broker, **auth: str) -> dict[str, object] | None:
    payload = retained(broker, f"{ROOT}/status", **auth)
    return None if payload is None else json.loads(payload)


def test_plain_drain_presence_telemetry_and_clean_stop(
    broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    watcher = Watcher(broker)
    backlog = commit(outbox, None, 50)
    publisher = publishers(
        broker, outbox, lambda: {"scans": 7, "fps": 12.5}, telemetry_interval_s=0.3
    )
    assert wait_until(lambda: outbox.stats().depth == 0, 20)
    live = commit(outbox, publisher, 3, start=50)
    assert wait_until(lambda: len(watcher.events()) >= 53, 20)
    events = watcher.events()
    assert delivery_problems(events, backlog | live) == []
    assert [e["seq"] for e in events[:50]] == list(range(1, 51))
    assert all(e["replayed"] for e in events[:50])
    assert [e["replayed"] for e in events[50:]] == [False] * 3
    online = status(broker)
    assert online is not None and online["state"] == "online"
    assert (online["session"], online["connection"], online["boot_id"]) == (1, 1, "boot-1")
    assert online["client_id"] == "gate-dev1"
    assert wait_until(lambda: len(watcher.received("/telemetry")) >= 2, 10)
    sample = json.loads(watcher.received("/telemetry")[-1].payload)
    assert (sample["scans"], sample["fps"], sample["broker"]) == (7, 12.5, "connected")
    assert {"depth", "oldest_unsent_age_s", "high_water", "storage_full"} <= set(sample["outbox"])
    assert {"uptime_s", "disk_free_bytes", "publisher", "session", "boot_id"} <= set(sample)
    assert isinstance(sample["clock_synced"], bool)
    assert not any(r.retain for r in watcher.received("/telemetry"))
    publisher.stop()
    stopped = status(broker)
    assert stopped is not None and stopped["state"] == "stopped"
    assert outbox.stats().depth == 0
    watcher.close()


def tls_broker(tmp_path: Path, pki: Pki) -> Broker:
    return Broker(tmp_path / "tls-broker", pki=pki).start()


def test_tls_with_server_verification_and_client_certificate(
    tmp_path: Path, outbox: Outbox, publishers: Publishers
) -> None:
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(tmp_path, pki)
    try:
        watcher = Watcher(broker)
        ids = commit(outbox, None, 20)
        publisher = publishers(
            broker,
            outbox,
            transport="tls",
            ca_file=pki.ca,
            cert_file=pki.client_cert,
            key_file=pki.client_key,
        )
        assert wait_until(lambda: outbox.stats().depth == 0, 20)
        assert wait_until(lambda: len(watcher.events()) >= 20, 10)
        assert delivery_problems(watcher.events(), ids) == []
        assert publisher.connected
        watcher.close()
    finally:
        broker.stop()


def test_tls_refuses_an_unknown_server_and_keeps_the_rows(
    tmp_path: Path, outbox: Outbox, publishers: Publishers
) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other")  # a CA that did not sign the broker's certificate
    broker = tls_broker(tmp_path, pki)
    try:
        commit(outbox, None, 5)
        wrong_ca = publishers(
            broker,
            outbox,
            transport="tls",
            ca_file=other.ca,
            cert_file=pki.client_cert,
            key_file=pki.client_key,
        )
        assert wait_until(lambda: wrong_ca.stats()["connect_failures"] >= 2, 20)
        assert "CERTIFICATE_VERIFY_FAILED" in str(wrong_ca.stats()["last_connect_error"])
        wrong_ca.stop()
        no_cert = publishers(broker, outbox, transport="tls", ca_file=pki.ca)
        assert wait_until(lambda: no_cert.stats()["connect_failures"] >= 2, 20)
        assert not no_cert.connected
        assert no_cert.alive and time.monotonic() - no_cert.heartbeat < 5  # failing, not hung
        no_cert.stop()
        assert outbox.stats().depth == 5
    finally:
        broker.stop()


ACL_DENY_EVENTS = f"""user gate
topic readwrite {ROOT}/status
topic readwrite {ROOT}/telemetry
topic read {ROOT}/cmd/#
user watcher
topic read #
"""
ACL_ALLOW = ACL_DENY_EVENTS.replace("user watcher", f"topic write {ROOT}/event\nuser watcher")
USERS = {"gate": "gate-password", "watcher": "watch"}


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "acl-broker", users=USERS, acl=ACL_DENY_EVENTS) as running:
        yield running


def auth(tmp_path: Path, password: str = "gate-password") -> dict[str, object]:
    path = tmp_path / "mqtt-password"
    path.write_text(password + "\n")
    return {"username": "gate", "password_file": path}


def test_wrong_password_is_a_counted_connect_failure(
    tmp_path: Path, acl_broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    commit(outbox, None, 3)
    publisher = publishers(acl_broker, outbox, **auth(tmp_path, "wrong"))
    assert wait_until(lambda: publisher.stats()["connect_failures"] >= 2, 20)
    assert "CONNACK" in str(publisher.stats()["last_connect_error"])
    assert outbox.stats().depth == 3


def test_acl_refusal_v5_keeps_the_row_reports_and_retries(
    tmp_path: Path, acl_broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    watcher = Watcher(acl_broker, username="watcher", password="watch")
    ids = commit(outbox, None, 5)
    publisher = publishers(
        acl_broker, outbox, telemetry_interval_s=0.3, **auth(tmp_path), protocol="v5"
    )
    assert wait_until(lambda: publisher.stats()["refused"] >= 10, 20)
    assert outbox.stats().depth == 5  # P2: a refused publish deletes nothing
    assert watcher.events() == []
    assert "Not authorized" in str(publisher.stats()["last_refusal"])
    assert wait_until(
        lambda: any(
            json.loads(r.payload)["publisher"]["refused"] > 0
            for r in watcher.received("/telemetry")
        ),
        10,
    )
    assert publisher.connected  # a refusal is not a reason to drop the connection
    (acl_broker.directory / "acl").write_text(ACL_ALLOW)
    acl_broker.reload()
    assert wait_until(lambda: outbox.stats().depth == 0, 20)  # the backoff retried
    assert wait_until(lambda: len(watcher.events()) >= 5, 10)
    assert delivery_problems(watcher.events(), ids) == []
    watcher.close()


def test_acl_refusal_v311_is_acknowledged_and_the_event_lost(
    tmp_path: Path, acl_broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    """What actually happens with MQTT 3.1.1: mosquitto drops the publish and still PUBACKs.

    3.1.1 has no reason codes, so the gate cannot tell: the rows are deleted and the
    events never reach anyone. This is why v5 is the default.
    """
    watcher = Watcher(acl_broker, username="watcher", password="watch")
    commit(outbox, None, 5)
    publisher = publishers(acl_broker, outbox, **auth(tmp_path), protocol="v311")
    assert wait_until(lambda: outbox.stats().depth == 0, 20)
    assert publisher.stats()["refused"] == 0 and publisher.stats()["acked"] == 5
    time.sleep(0.5)
    assert watcher.events() == []
    assert "Denied PUBLISH" in acl_broker.log()
    watcher.close()


@pytest.mark.slow
def test_broker_stopped_and_restarted_mid_drain(
    broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    watcher = Watcher(broker)
    ids = commit(outbox, None, 5000)
    publisher = publishers(broker, outbox)
    assert wait_until(lambda: len(watcher.events()) >= 300, 30)
    broker.stop()
    assert outbox.stats().depth > 0  # really mid-drain
    assert wait_until(lambda: not publisher.connected, 10)
    ids |= commit(outbox, publisher, 20, start=5000)  # check-ins while the broker is away
    time.sleep(0.5)
    broker.start()
    ids |= commit(outbox, publisher, 20, start=5020)
    assert wait_until(lambda: outbox.stats().depth == 0, 60)
    assert wait_until(lambda: len({e["event_id"] for e in watcher.events()}) >= len(ids), 30)
    assert delivery_problems(watcher.events(), ids) == []
    assert publisher.stats()["connects"] >= 2
    watcher.close()


@pytest.mark.slow
def test_broker_frozen_then_thawed(broker: Broker, outbox: Outbox, publishers: Publishers) -> None:
    watcher = Watcher(broker)
    ids = commit(outbox, None, 5000)
    publisher = publishers(broker, outbox)
    assert wait_until(lambda: len(watcher.events()) >= 200, 30)
    broker.freeze()
    try:
        assert outbox.stats().depth > 0  # really mid-drain
        ids |= commit(outbox, publisher, 10, start=5000)
        # keepalive (2 s) or the ack timeout (3 s) notices the silence
        assert wait_until(lambda: not publisher.connected, 20)
    finally:
        broker.thaw()
    ids |= commit(outbox, publisher, 10, start=5010)
    assert wait_until(lambda: outbox.stats().depth == 0, 60)
    assert wait_until(lambda: len({e["event_id"] for e in watcher.events()}) >= len(ids), 30)
    assert delivery_problems(watcher.events(), ids) == []
    assert publisher.alive
    watcher.close()


@pytest.mark.slow
def test_live_check_ins_are_not_starved_by_a_backlog(
    broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    watcher = Watcher(broker)
    backlog = commit(outbox, None, 5000)
    publishers(broker, outbox)
    assert wait_until(lambda: len(watcher.events()) >= 100, 30)
    live = outbox.commit(make_checkin(9999))
    publishers.started[0].notify()
    assert wait_until(lambda: len(watcher.events()) >= 5001, 60)
    events = watcher.events()
    arrival = {e["event_id"]: i for i, e in reversed(list(enumerate(events)))}
    last_backlog = max(arrival[i] for i in backlog)
    assert arrival[live.event_id] < last_backlog  # it overtook the rest of the backlog
    assert events[arrival[live.event_id]]["replayed"] is False
    assert delivery_problems(events, backlog | {live.event_id}) == []
    watcher.close()


@pytest.mark.slow
def test_commands_are_routed_and_resubscribed_after_reconnect(
    broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    got: list[tuple[str, bytes]] = []
    publisher = publishers(broker, outbox)
    publisher.on_command("ping", lambda name, payload: got.append((name, payload)))
    with pytest.raises(ValueError):
        publisher.on_command("a/b", lambda name, payload: None)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect(broker.host, broker.port)
    sender.loop_start()

    def ping_until(count: int) -> bool:
        sender.publish(f"{ROOT}/cmd/ping", b"hello", qos=1)
        return wait_until(lambda: len(got) >= count, 1)

    assert wait_until(lambda: ping_until(1), 15)
    broker.restart()
    assert wait_until(lambda: publisher.stats()["connects"] >= 2, 15)
    assert wait_until(lambda: ping_until(len(got) + 1), 15)
    assert set(got) == {("ping", b"hello")}
    sender.disconnect()
    sender.loop_stop()


def test_an_oversized_command_is_counted_and_never_handed_on(
    broker: Broker, outbox: Outbox, publishers: Publishers
) -> None:
    """MQTT 3.1.1 has no Maximum Packet Size: the publisher refuses it on arrival."""
    got: list[tuple[str, int]] = []
    publisher = publishers(broker, outbox, protocol="v311", max_packet_bytes=8192)
    publisher.on_command("+", lambda name, payload: got.append((name, len(payload))))
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect(broker.host, broker.port)
    sender.loop_start()

    def ping_until(count: int) -> bool:
        sender.publish(f"{ROOT}/cmd/ping", b"x" * 8192, qos=1)  # at the limit: accepted
        return wait_until(lambda: len(got) >= count, 0.5)

    assert wait_until(lambda: ping_until(1), 15)
    sender.publish(f"{ROOT}/cmd/open", b"x" * 8193, qos=1)
    assert wait_until(lambda: publisher.stats()["oversized_commands"] == 1, 10)
    assert wait_until(lambda: ping_until(len(got) + 1), 10)
    assert {name for name, _ in got} == {"ping"}
    ids = commit(outbox, publisher, 3)
    assert wait_until(lambda: outbox.depth == 0, 10)
    sender.disconnect()
    sender.loop_stop()
    assert ids


CALLBACKS = ("_on_connect", "_on_disconnect", "_on_publish", "_on_message", "_on_subscribe")


@pytest.mark.slow
def test_exceptions_in_every_callback_leave_the_publisher_alive(
    broker: Broker, outbox: Outbox, publishers: Publishers, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = Watcher(broker)
    calls: dict[str, int] = dict.fromkeys(CALLBACKS, 0)
    lock = threading.Lock()

    def failing(name: str) -> Callable[..., None]:
        def boom(*args: object) -> None:
            with lock:
                calls[name] += 1
            raise RuntimeError(f"injected into {name}")

        return boom

    def broken_telemetry() -> dict[str, object]:
        raise RuntimeError("injected into the daemon's telemetry")

    publisher = publishers(broker, outbox, broken_telemetry, telemetry_interval_s=0.2)
    assert wait_until(lambda: publisher.connected, 10)
    for name in CALLBACKS:
        monkeypatch.setattr(publisher, name, failing(name))
    publisher.on_command("boom", lambda name, payload: None)  # SUBACK -> _on_subscribe
    assert wait_until(lambda: calls["_on_subscribe"] > 0, 10)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect(broker.host, broker.port)
    sender.loop_start()

    def command_arrived() -> bool:
        sender.publish(f"{ROOT}/cmd/boom", b"x", qos=1)  # -> _on_message
        return wait_until(lambda: calls["_on_message"] > 0, 0.5)

    assert wait_until(command_arrived, 10)
    sender.disconnect()
    sender.loop_stop()
    ids = commit(outbox, publisher, 5)  # PUBACK -> _on_publish
    assert wait_until(lambda: calls["_on_publish"] > 0, 10)
    broker.restart()  # -> _on_disconnect, then _on_connect on every reconnect
    assert wait_until(lambda: all(calls.values()), 20), calls
    assert publisher.alive
    assert publisher.stats()["callback_errors"] >= len(CALLBACKS)
    monkeypatch.undo()
    ids |= commit(outbox, publisher, 5, start=5)
    assert wait_until(lambda: outbox.stats().depth == 0, 30)  # lost PUBACKs: sent again
    assert wait_until(lambda: len({e["event_id"] for e in watcher.events()}) >= 10, 10)
    assert delivery_problems(watcher.events(), ids) == []
    assert publisher.stats()["telemetry_errors"] > 0
    assert wait_until(lambda: len(watcher.received("/telemetry")) > 0, 10)
    assert publisher.alive
    watcher.close()


def test_a_session_that_cannot_be_counted_does_not_stop_the_drain(
    broker: Broker, outbox: Outbox, publishers: Publishers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def damaged() -> int:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(outbox, "next_session", damaged)
    commit(outbox, None, 5)
    publisher = publishers(broker, outbox)
    assert wait_until(lambda: outbox.stats().depth == 0, 20)
    assert publisher.alive
    assert publisher.stats()["loop_errors"] == 1
