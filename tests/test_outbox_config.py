"""Config sections, device identity, the privacy key and `gate queue`."""

import argparse
import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from outbox_driver import KEY, make_checkin, make_site

from gate.cli import main
from gate.cli.queue import add_queue_arguments, run_queue
from gate.config.base import ValidationError
from gate.config.site import SiteConfig
from gate.errors import ConfigError
from gate.identity import boot_id, client_id, clock_synced, device_id, topic_root
from gate.outbox.config import MqttConfig, OutboxConfig, PrivacyConfig, SubjectMode
from gate.outbox.store import Outbox
from gate.privacy import load_key


def test_production_defaults() -> None:
    mqtt = MqttConfig()
    assert mqtt.transport == "tls" and mqtt.protocol == "v5" and mqtt.effective_port == 8883
    assert mqtt.max_inflight == 10
    assert MqttConfig(transport="plain").effective_port == 1883
    assert PrivacyConfig().subject == "hmac" and PrivacyConfig().name == "initials"
    for section in (MqttConfig, OutboxConfig, PrivacyConfig):
        assert all(f.description for f in section.model_fields.values()), section


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (MqttConfig, {"topic_root": "gate/{site}"}, "unknown placeholder"),
        (MqttConfig, {"topic_root": "gate/{}"}, "unknown placeholder"),
        (MqttConfig, {"topic_root": "gate/{0}"}, "unknown placeholder"),
        (MqttConfig, {"topic_root": "checkin/{province.upper}"}, "unknown placeholder"),
        (MqttConfig, {"topic_root": "checkin/{province[0]}"}, "unknown placeholder"),
        (MqttConfig, {"topic_root": "checkin/{province:d}"}, "must be bare"),
        (MqttConfig, {"topic_root": "checkin/{province:>200000000}"}, "must be bare"),
        (MqttConfig, {"topic_root": "checkin/{gate_id!r}"}, "must be bare"),
        (MqttConfig, {"topic_root": "checkin/{gate_id:{province}}"}, "must be bare"),
        (MqttConfig, {"topic_root": "checkin/{gate_id"}, "not a valid template"),
        (MqttConfig, {"topic_root": "checkin/gate_id}"}, "not a valid template"),
        (MqttConfig, {"max_packet_bytes": 100}, "should be >= 4096"),
        (MqttConfig, {"max_packet_bytes": 2**28}, "should be <= 268435455"),
        (MqttConfig, {"topic_root": "gate/#"}, "must not contain"),
        (MqttConfig, {"topic_root": "gate/{gate_id}/"}, "must not contain"),
        (MqttConfig, {"cert_file": "/c.pem"}, "cert_file and key_file go together"),
        (MqttConfig, {"password_file": "/pw"}, "password_file needs a username"),
        (MqttConfig, {"transport": "plain", "ca_file": "/ca.pem"}, "need transport: tls"),
        (MqttConfig, {"transport": "udp"}, "'tls', 'plain'"),
        (MqttConfig, {"protocol": "v3"}, "'v5', 'v311'"),
        (MqttConfig, {"port": 0}, "should be >= 1"),
        (MqttConfig, {"max_inflight": 0}, "should be >= 1"),
        (MqttConfig, {"reconnect_min_s": 10, "reconnect_max_s": 1}, "reconnect_max_s"),
        (MqttConfig, {"password": "secret"}, "unknown key"),
        (OutboxConfig, {"high_water": 1.5}, "should be <= 1"),
        (OutboxConfig, {"max_rows": 0}, "should be >= 1"),
        (OutboxConfig, {"max_rows": 10**12}, "should be <= 100000000"),
        (OutboxConfig, {"max_bytes": 2**60}, "should be <= 1125899906842624"),
        (PrivacyConfig, {"subject": "sha1"}, "'hmac', 'masked', 'plain'"),
        (PrivacyConfig, {"name": "last"}, "'initials', 'none', 'full'"),
    ],
)
def test_invalid_config_is_explained(
    section: type[MqttConfig | OutboxConfig | PrivacyConfig],
    values: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message):
        section(**values)


def test_every_valid_topic_template_fills_in(tmp_path: Path) -> None:
    """What passes the config check is what `gate run` can format (no crash, no huge string)."""
    site = make_site(tmp_path)
    template = "x/{{literal}}/{province}/{venue_id}/{gate_id}/{device_id}"
    assert MqttConfig(topic_root=template).topic_root == template
    assert topic_root(template, site, "dev1") == "x/{literal}/hn/stadium/gate-1/dev1"


def test_paths_are_paths() -> None:
    mqtt = MqttConfig(ca_file="ca.pem", cert_file="c.pem", key_file="k.pem")
    assert isinstance(mqtt.ca_file, Path) and isinstance(mqtt.key_file, Path)
    assert isinstance(OutboxConfig(path="x.sqlite3").path, Path)


def test_device_id_prefers_config_then_cpu_serial_then_machine_id(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000a1b2c3d4\n")
    dt = tmp_path / "serial-number"
    machine = tmp_path / "machine-id"
    machine.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    paths = {"cpuinfo": cpuinfo, "dt_serial": dt, "machine_id": machine}
    site = SiteConfig()
    assert device_id(SiteConfig(device_id="override"), **paths) == "override"
    assert device_id(site, **paths) == "10000000a1b2c3d4"
    cpuinfo.write_text("processor\t: 0\nSerial\t\t: 0000000000000000\n")  # zeros: no serial
    dt.write_bytes(b"00000000deadbeef\x00")
    assert device_id(site, **paths) == "00000000deadbeef"
    dt.unlink()
    assert device_id(site, **paths) == "3d1219c7c4c5404aaa1f6d2a48adfda4"
    machine.unlink()
    with pytest.raises(ConfigError, match="device_id"):
        device_id(site, **paths)
    assert client_id("abc") == "gate-abc"


def test_boot_id_clock_and_topic_root(tmp_path: Path) -> None:
    assert len(boot_id()) == 36
    assert len(boot_id(tmp_path / "missing")) == 36
    assert isinstance(clock_synced(), bool)
    site = make_site(tmp_path)
    assert topic_root(MqttConfig().topic_root, site, "d1") == "checkin/hn/stadium/gate-1"
    assert topic_root("x/{device_id}", site, "d1") == "x/d1"


def test_privacy_key(tmp_path: Path) -> None:
    site = make_site(tmp_path / "state")
    assert load_key(PrivacyConfig(subject=SubjectMode.MASKED), site) is None
    key = load_key(PrivacyConfig(), site)
    assert key is not None and len(key) >= 16
    created = tmp_path / "state" / "privacy.key"
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    assert load_key(PrivacyConfig(), site) == key  # stable across restarts
    shared = tmp_path / "venue.key"
    with pytest.raises(ConfigError, match="cannot read"):
        load_key(PrivacyConfig(secret_file=shared), site)
    shared.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter"):
        load_key(PrivacyConfig(secret_file=shared), site)
    shared.write_text("a venue-wide secret of some length\n")
    assert (
        load_key(PrivacyConfig(secret_file=shared), site) == b"a venue-wide secret of some length"
    )


@dataclass
class RootConfig:
    site: SiteConfig
    outbox: OutboxConfig


def queue(argv: list[str], config: RootConfig) -> int:
    parser = argparse.ArgumentParser()
    add_queue_arguments(parser)
    return run_queue(parser.parse_args(argv), config)


def test_gate_queue_on_a_running_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = RootConfig(make_site(tmp_path), OutboxConfig())
    box = Outbox(config.outbox, config.site, PrivacyConfig(), privacy_key=KEY)
    for i in range(5):
        box.commit(make_checkin(i))
    box.ack([1, 2])
    assert queue(["--json"], config) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["depth"] == 3 and info["first_unsent_seq"] == 3 and info["last_unsent_seq"] == 5
    assert info["last_acked_seq"] == 2 and info["last_acked_at"] is not None
    assert info["oldest_unsent_age_s"] >= 0
    export = tmp_path / "unsent.jsonl"
    assert queue(["--export", str(export)], config) == 0
    assert "depth" in capsys.readouterr().out
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [3, 4, 5] and all(e["replayed"] for e in lines)
    box.commit(make_checkin(9))  # the reader held no lock
    assert queue(["--export", "-", "--json"], config) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [3, 4, 5, 6]
    assert json.loads(err)["exported"] == 4
    box.close()


def test_gate_queue_on_a_stopped_gate_is_read_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = RootConfig(make_site(tmp_path), OutboxConfig())
    box = Outbox(config.outbox, config.site, PrivacyConfig(), privacy_key=KEY)
    box.commit(make_checkin(1))
    box.close()
    path = tmp_path / "outbox.sqlite3"
    before = path.read_bytes()
    assert queue([], config) == 0
    assert "depth" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert queue(["--db", str(tmp_path / "none.sqlite3")], config) == 1
    assert "no outbox" in capsys.readouterr().err
    garbage = tmp_path / "outbox.sqlite3.corrupt-x"
    garbage.write_bytes(os.urandom(4096))
    assert queue(["--db", str(garbage)], config) == 1
    assert "cannot read" in capsys.readouterr().err


def test_gate_queue_on_a_damaged_file_reports_what_it_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--db` reads files set aside as corrupt: counters that are no numbers, or no times,
    are shown as unknown, not a traceback."""
    config = RootConfig(make_site(tmp_path), OutboxConfig())
    box = Outbox(config.outbox, config.site, PrivacyConfig(), privacy_key=KEY)
    box.commit(make_checkin(1))
    box.close()
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 'x\x1b[2J' WHERE key = 'last_seq'")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_acked_ms', ?)", (2**62,)
        )
        conn.execute("UPDATE events SET committed_ms = 'soon'")
    assert queue(["--json", "--db", str(path)], None) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["depth"], info["last_seq"], info["last_acked_at"]) == (1, 1, None)  # the row's
    assert info["oldest_unsent_at"] is None


def test_gate_queue_reads_an_old_card_without_any_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path)
    box = Outbox(OutboxConfig(), site, PrivacyConfig(), privacy_key=KEY)
    box.commit(make_checkin(1))
    box.close()
    export = tmp_path / "salvaged.jsonl"

    assert main(["queue", "--db", str(tmp_path / "outbox.sqlite3"), "--export", str(export)]) == 0

    assert [json.loads(line)["seq"] for line in export.read_text().splitlines()] == [1]
    assert "depth" in capsys.readouterr().out
