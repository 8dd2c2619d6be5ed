"""The config file: typed, unknown keys refused, and every problem names file, key and line."""

import sys
from pathlib import Path

import pytest

from gate.app_config import GateConfig, load_config
from gate.cli import main
from gate.config.docs import config_example
from gate.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

INVALID = [
    (
        "unknown top-level key",
        "sight:\n  gate_id: a\n",
        "{f}:1: sight: unknown key; expected one of: camera, commands, decoder",
    ),
    (
        "unknown nested key",
        "camera:\n  source: replay\n  fsp: 30\n",
        "{f}:3: camera.fsp: unknown key; expected one of: analogue_gain, close_timeout_s",
    ),
    (
        "wrong type",
        "camera:\n  fps: fast\n",
        "{f}:2: camera.fps: expected a number (got 'fast')",
    ),
    (
        "out of range",
        "camera:\n  fps: 0\n",
        "{f}:2: camera.fps: should be > 0 (got 0)",
    ),
    (
        "bad choice",
        "camera:\n  source: webcam\n",
        "{f}:2: camera.source: expected one of 'picamera2', 'replay' (got 'webcam')",
    ),
    (
        "odd size",
        "camera:\n  width: 641\n",
        "{f}:2: camera.width: must be even (YUV420 needs it) (got 641)",
    ),
    (
        "unknown kind",
        "policy:\n  accept_kinds: [cccd, passport]\n",
        "{f}:2: policy.accept_kinds.1: expected one of 'cccd', 'national_qr'",
    ),
    (
        "pulse beyond bound",
        "signals:\n  relay_pulse_s: 30\n  relay_max_s: 10\n",
        "{f}:2: signals.relay_pulse_s: must not exceed relay_max_s (10.0) (got 30)",
    ),
    (
        "missing pin",
        "signals:\n  relay:\n    active_high: false\n",
        "{f}:3: signals.relay.pin: required key is missing",
    ),
    (
        "bad id characters",
        "site:\n  gate_id: 'gate 1/a'\n",
        "{f}:2: site.gate_id: should match ^[A-Za-z0-9_-]{{1,64}}$ (got 'gate 1/a')",
    ),
    (
        "unknown time zone",
        "site:\n  timezone: Mars/Olympus\n",
        "{f}:2: site.timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        "section is a scalar",
        "camera: 5\n",
        "{f}:1: camera: expected a section (keys and values) (got 5)",
    ),
    ("top level is a list", "- a\n- b\n", "{f}:1: (top level): expected a mapping of sections"),
    ("broken YAML", "camera:\n  fps: [30\n", "{f}:3: (top level): invalid YAML:"),
    (
        "duplicate key",
        "log:\n  level: info\nlog:\n  level: debug\n",
        "{f}:3: log: key appears more than once",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_invalid_config_names_file_line_key_and_expectation(tmp_path, text, expected):
    path = tmp_path / "gate.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value).startswith(expected.format(f=path)), str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("camera:\n  fps: 0\n  colour: red\nlog:\n  level: loud\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [line.split(": ")[1] for line in str(caught.value).splitlines()] == [
        "camera.fps",
        "camera.colour",
        "log.level",
    ]


def test_missing_and_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"gate.yaml: config file not found"):
        load_config(tmp_path / "gate.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary.yaml: cannot read config file"):
        load_config(binary)


def test_empty_file_is_all_defaults(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("", encoding="utf-8")

    assert load_config(path) == GateConfig()


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "etc" / "gate.yaml"
    path.parent.mkdir()
    path.write_text(
        "site:\n  state_dir: state\ncamera:\n  replay:\n    paths: [frames, '*.png']\n",
        encoding="utf-8",
    )

    config = load_config(path)

    assert config.site.state_dir == tmp_path / "etc" / "state"
    assert config.camera.replay.paths == [tmp_path / "etc" / "frames", tmp_path / "etc" / "*.png"]


def test_example_file_is_the_generated_one_and_valid():
    example = ROOT / "config" / "gate.example.yaml"

    assert example.read_text(encoding="utf-8") == config_example(GateConfig), (
        "config/gate.example.yaml is stale: regenerate with `gate config example`"
    )
    assert load_config(example) == GateConfig()


def test_demo_config_is_valid():
    config = load_config(ROOT / "config" / "demo.yaml")

    assert config.camera.source == "replay"
    assert config.signals.pin_factory == "mock"


def test_config_check_exits_non_zero_with_the_problems(tmp_path, capsys):
    path = tmp_path / "gate.yaml"
    path.write_text("camera:\n  fps: -1\n", encoding="utf-8")

    assert main(["config", "check", str(path)]) == 1
    assert f"{path}:2: camera.fps: should be > 0 (got -1)" in capsys.readouterr().err


def test_config_check_summarises_a_good_file(capsys):
    assert main(["config", "check", str(ROOT / "config" / "demo.yaml")]) == 0
    out = capsys.readouterr().out
    assert "demo.yaml: OK" in out
    assert "camera replay 640x480" in out


def test_the_documented_configuration_reference_is_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    from update_docs import with_reference

    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert reference == with_reference(reference), (
        "docs/configuration.md is stale: run scripts/update_docs.py"
    )


def test_a_number_with_an_exponent_is_a_number_as_in_yaml_1_2(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("presentation:\n  cooldown_s: 1e3\n  leave_after_s: 5E-1\n")
    presentation = load_config(path).presentation
    assert (presentation.cooldown_s, presentation.leave_after_s) == (1000.0, 0.5)


def test_a_leading_zero_is_decimal_as_in_yaml_1_2(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("mqtt:\n  keepalive: 030\n")
    assert load_config(path).mqtt.keepalive == 30  # YAML 1.1 read octal: 24
