"""A hostile config file gets a clear error, not minutes of work or all the memory."""

import re
import threading

import pytest

from gate.app_config import load_config
from gate.cli import main
from gate.config.loader import MAX_CONFIG_BYTES, MAX_CONFIG_VALUES
from gate.errors import ConfigError


def billion_laughs(levels: int) -> str:
    """Each level an alias list of nine of the one before: 9**levels strings when expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    lines.append(f"policy: {{deny: {{subject_hashes: *a{levels - 1}}}}}")
    lines.append(f"trust: {{paths: *a{levels - 1}}}")
    return "\n".join(lines) + "\n"


def test_nested_aliases_are_walked_once_and_the_problems_are_reported(tmp_path, capsys):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(12))  # 9**12 strings; the old walk visited every one
    assert len(path.read_bytes()) < 700
    codes: list[int] = []

    checking = threading.Thread(
        target=lambda: codes.append(main(["config", "check", str(path)])),
        name="config-check",
        daemon=True,
    )
    checking.start()
    checking.join(120)  # a liveness guard: before the fix this ran for days

    assert codes == [1]
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: (top level): more than {MAX_CONFIG_VALUES} values once its aliases are expanded"
    ]


def test_aliases_that_repeat_a_section_are_counted_as_they_expand(tmp_path):
    """A period of 2,000 keys named 50 times: 100,000 values to check from a 20 KB file."""
    keys = ", ".join(f"k{i}: 1" for i in range(2000))
    path = tmp_path / "gate.yaml"
    path.write_text(f"x: &h {{{keys}}}\npolicy:\n  opening_hours: [{', '.join(['*h'] * 50)}]\n")
    with pytest.raises(ConfigError, match=f"more than {MAX_CONFIG_VALUES} values"):
        load_config(path)


def test_a_repeated_key_is_still_found_behind_an_alias(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("base: &b {fps: 10, fps: 12}\ncamera: *b\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert f"{path}:1: base.fps: key appears more than once" in str(raised.value)


def test_a_config_file_over_the_size_limit_is_refused_by_name(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (
        f"{path}: config file too large (more than {MAX_CONFIG_BYTES} bytes)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 30, "2: .*invalid YAML: a whole number larger than 9223372036854775807"),
        ("9" * 5000, "2: .*invalid YAML: a number of more than 70 characters"),  # not built
        ("0x" + "f" * 4000, "2: .*invalid YAML: a number of more than 70 characters"),
        ("1" + ":1" * 100_000, "camera.fps: expected a number"),  # YAML 1.1 base 60: text now
        ("1e300", "camera.fps: should be <= 120"),
        ("2024-13-45", "camera.fps: expected a number"),  # YAML 1.1 date: text now
        ("!!timestamp 2024-01-01", "invalid YAML: tag:yaml.org,2002:timestamp is not used"),
        ("!!bool maybe", "invalid YAML: cannot read a value: KeyError"),
        ("!!int ''", "invalid YAML: cannot read a value: ValueError"),
    ],
    ids=[
        "beyond 63 bits",
        "too long to build",
        "too long in hex",
        "base 60",
        "huge float",
        "not a date",
        "unused tag",
        "bad bool tag",
        "empty int tag",
    ],
)
def test_a_value_yaml_or_the_section_cannot_take_is_a_config_error(tmp_path, value, message):
    path = tmp_path / "gate.yaml"
    path.write_text(f"camera:\n  fps: {value}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: &a [1, *a]\n", f"more than {MAX_CONFIG_VALUES} values"),  # endless
        (  # aliases inside a tag the value count cannot see into
            "policy:\n  accept_kinds: !!omap [a: &b [1, 2], c: *b]\n",
            "omap is not used in a gate config",
        ),
        ("signals:\n  relay:\n    pin: 1e300\n", "relay.pin: expected a whole number or text"),
        (  # PyYAML 6.0-6.0.3 (Debian's) built this in 75 s and 1.7 GB, before any count
            "a0: &a0 {x: 1}\n"
            + "".join(
                f"a{n}: &a{n} {{<<: [{', '.join([f'*a{n - 1}'] * 10)}]}}\n" for n in range(1, 9)
            ),
            "2: .*a merge key \\(<<\\) is not used in a gate config",
        ),
    ],
    ids=["alias inside itself", "ordered map", "whole number as a float", "merge keys"],
)
def test_a_config_standing_for_more_than_it_says_is_refused(tmp_path, text, message):
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_what_a_config_error_repeats_of_the_file_cannot_write_on_the_terminal(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text(
        'camera:\n  "fps\\e[31m\\nFAKE: ok": 1\n  fps: "\\e[2J\\u202e' + "x" * 300 + '"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    shown = str(raised.value)
    assert "\x1b" not in shown and "\u202e" not in shown and "\nFAKE" not in shown
    assert "camera.fps\\x1b[31m\\x0aFAKE: ok: unknown key" in shown  # escaped, still named
    assert re.search(r"\(got '\\x1b\[2J\\u202ex{75}\.\.\.\(\+225 characters\)'\)", shown)


@pytest.mark.parametrize(
    "text",
    [
        'mqtt:\n  topic_root: "gate/{\\e]0;pwned\\a\\u202eevil}"\n',  # a message built from it
        "site:\n  timezone: " + "x" * 3000 + "\n",  # a message that repeats it
        "camera: !<tag:" + "a" * 3000 + "> 1\n",  # what PyYAML says of it
    ],
    ids=["placeholder", "time zone", "yaml tag"],
)
def test_every_part_of_a_config_error_line_is_escaped_and_cut(tmp_path, text):
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    for line in str(raised.value).splitlines():
        assert not any(ch in line for ch in "\x1b\x07\u202e"), line
        assert len(line) < 1200, line[:200]
