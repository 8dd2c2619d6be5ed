"""`gate config set` and `gate device-id`, through the command line as the installer calls them.

config set changes only the lines of the keys it is given, keeps every comment, and replaces
the file only with a config that loads; device-id prints what the daemon would use.
"""

import os
import stat
from pathlib import Path

import pytest

from gate import identity
from gate.app_config import load_config
from gate.cli import main
from gate.config.loader import MAX_CONFIG_BYTES

COMMENTED = """\
# The gate at the north door. Ask Lan before changing the relay pins.
site:
  province: "HN"   # Ha Noi
  venue_id: "venue-7"
  gate_id: "north-1"

mqtt:
  host: "broker.example.org"
  # 8883 is the province's TLS port
  port: 8883
"""


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(COMMENTED)
    path.chmod(0o640)
    return path


def test_set_changes_only_the_given_lines_and_keeps_comments(config, capsys):
    assert main(["config", "set", str(config), "mqtt.port", "8884", "site.gate_id", "south-2"]) == 0

    assert capsys.readouterr().out == "changed\n"
    assert config.read_text() == COMMENTED.replace("port: 8883", "port: 8884").replace(
        'gate_id: "north-1"', 'gate_id: "south-2"'
    )
    loaded = load_config(config)
    assert (loaded.mqtt.port, loaded.site.gate_id) == (8884, "south-2")
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_set_keeps_the_files_owner_and_a_link_to_it(tmp_path, config):
    group = next(g for g in (*os.getgroups(), 1) if g != os.getegid())
    os.chown(config, -1, group)  # as /etc/gate/gate.yaml is root:gate, edited by root
    link = tmp_path / "current.yaml"
    link.symlink_to(config.name)

    assert main(["config", "set", str(link), "mqtt.port", "8884"]) == 0

    assert link.is_symlink() and load_config(link).mqtt.port == 8884
    assert (config.stat().st_gid, stat.S_IMODE(config.stat().st_mode)) == (group, 0o640)


def test_missing_keys_and_sections_are_added_in_block_style(config):
    pairs = ["camera.replay.fps", "5", "site.device_id", "d-9"]
    assert main(["config", "set", str(config), *pairs]) == 0

    text = config.read_text()
    assert '  gate_id: "north-1"\n  device_id: "d-9"\n\nmqtt:' in text
    assert text.endswith("  port: 8883\n\ncamera:\n  replay:\n    fps: 5\n")
    loaded = load_config(config)
    assert loaded.camera.replay.fps == 5 and loaded.site.device_id == "d-9"


def test_setting_what_is_there_changes_nothing(config, capsys):
    before = os.stat(config).st_mtime_ns

    assert main(["config", "set", str(config), "mqtt.port", "8883"]) == 0

    assert capsys.readouterr().out == "unchanged\n"
    assert config.read_text() == COMMENTED and os.stat(config).st_mtime_ns == before


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["mqtt.port", "eighty"], ":10: mqtt.port: expected a whole number"),
        (["mqtt.port", "2024-13-45"], ":10: mqtt.port: expected a whole number"),  # no date
        (["site.venue_id", "0123"], ":4: site.venue_id: expected text"),
        (["camera.nonsense", "1"], ":13: camera.nonsense: unknown key; expected one of:"),
        (["mqtt.host", "[a, b]"], "expected one value"),
        (["mqtt.host", "a\u2028b"], "expected a value on one line"),  # a line break too
    ],
)
def test_an_invalid_result_names_file_key_and_expectation_and_keeps_the_file(
    config, capsys, pairs, expected
):
    assert main(["config", "set", str(config), *pairs]) == 1

    err = capsys.readouterr().err
    assert expected in err
    if ":" in expected[:4]:
        assert f"{config}{expected}" in err
    assert config.read_text() == COMMENTED
    assert [p.name for p in config.parent.iterdir()] == ["gate.yaml"]


def test_layouts_it_cannot_edit_line_by_line_are_refused_by_key(tmp_path, capsys):
    flow = tmp_path / "flow.yaml"
    flow.write_text('site: {province: "HN", venue_id: "v", gate_id: "g"}\n')
    folded = tmp_path / "folded.yaml"
    folded.write_text("mqtt:\n  host: >\n    broker.example.org\n")

    assert main(["config", "set", str(flow), "site.venue_id", "w"]) == 1
    assert f"{flow}: cannot set site: written in flow style" in capsys.readouterr().err
    assert main(["config", "set", str(folded), "mqtt.host", "other"]) == 1
    assert "cannot set mqtt.host: its value spans several lines" in capsys.readouterr().err
    assert flow.read_text().startswith("site: {") and "    broker" in folded.read_text()


@pytest.mark.parametrize("line_break", ["\r", "\x85", "\u2028", "\u2029"])
def test_a_file_breaking_lines_otherwise_than_with_newlines_is_left_alone(
    tmp_path, capsys, line_break
):
    path = tmp_path / "gate.yaml"
    text = f"mqtt:\n  host: a{line_break}  port: 1884\n"  # YAML reads two keys here
    path.write_text(text, encoding="utf-8", newline="")
    assert main(["config", "set", str(path), "mqtt.host", "b"]) == 1
    assert "cannot set mqtt.host: the file breaks a line with" in capsys.readouterr().err
    assert path.read_bytes().decode() == text  # port was not dropped


def test_a_key_without_a_value_is_a_usage_error(config, capsys):
    assert main(["config", "set", str(config), "mqtt.port"]) == 2
    assert "'mqtt.port' has no VALUE" in capsys.readouterr().err


@pytest.fixture
def no_cpu_serial(monkeypatch):
    """As on a machine that is not a Raspberry Pi, whatever this one is."""
    monkeypatch.setattr(identity, "_cpu_serial", lambda *_paths: None)


@pytest.mark.usefixtures("no_cpu_serial")
def test_device_id_prints_the_override_else_the_machine_id(config, tmp_path, capsys):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")

    assert main(["device-id", "--config", str(config), "--machine-id", str(machine_id)]) == 0
    assert capsys.readouterr().out == "3d1219c7c4c5404aaa1f6d2a48adfda4\n"

    main(["config", "set", str(config), "site.device_id", "gate-north-1"])
    capsys.readouterr()
    assert main(["device-id", "--config", str(config), "--machine-id", str(machine_id)]) == 0
    assert capsys.readouterr().out == "gate-north-1\n"


@pytest.mark.usefixtures("no_cpu_serial")
def test_device_id_without_any_source_says_what_to_set(tmp_path, capsys):
    missing = tmp_path / "none"

    status = main(["device-id", "--config", str(missing), "--machine-id", str(missing)])

    assert status == 1 and "set site.device_id" in capsys.readouterr().err


def test_device_id_on_a_pi_is_its_cpu_serial(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(identity, "_cpu_serial", lambda *_paths: "10000000abcdef01")
    missing = tmp_path / "none"

    assert main(["device-id", "--config", str(missing), "--machine-id", str(missing)]) == 0
    assert capsys.readouterr().out == "10000000abcdef01\n"


def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("site:\n  venue_id: caf\xe9\n".encode("latin-1"))
    assert main(["config", "set", str(latin), "site.gate_id", "g"]) == 1
    assert (
        f"{latin}: cannot read config file: 'utf-8' codec can't decode" in capsys.readouterr().err
    )


def test_a_file_over_the_config_size_cap_is_not_read(tmp_path, capsys):
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    assert main(["config", "set", str(huge), "site.gate_id", "g"]) == 1
    assert f"{huge}: config file too large" in capsys.readouterr().err
