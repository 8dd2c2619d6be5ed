"""The `gate` command as a technician and systemd use it: decode, config documents, run.

`gate decode` and `gate config` run in-process through gate.cli.main; `gate run` runs as a
real process (it installs signal handlers and configures logging) on a finite replay of
real QR frames with gpiozero's mock pins.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from imagegen import empty_frame, qr_frame, save_png
from PIL import Image

from gate.app_config import GateConfig
from gate.cli import main
from gate.config.base import Section
from gate.config.docs import config_example

CCCD = (
    "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
    "|15042021"
)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    return {
        "code": save_png(qr_frame(CCCD, size=(320, 240), module_px=3), tmp_path / "code.png"),
        "empty": save_png(empty_frame(size=(320, 240), seed=2), tmp_path / "empty.png"),
    }


# --- gate decode ------------------------------------------------------------------------


def test_decode_prints_one_json_line_per_file_with_the_text_and_exact_bytes(images, capsys):
    assert main(["decode", str(images["code"]), str(images["empty"])]) == 0

    out = capsys.readouterr().out
    code, empty = json_lines(out)
    assert code["file"] == str(images["code"])
    [found] = code["codes"]
    assert found["text"] == CCCD
    assert bytes.fromhex(found["data_hex"]) == CCCD.encode("utf-8")
    assert found["backend"] in {"zxing", "zbar"}
    assert empty == {"file": str(images["empty"]), "codes": []}
    assert "Nguyễn Văn An" in out  # UTF-8 as is, not \u escapes


@pytest.mark.parametrize("backend", ["zbar", "zxing"])
def test_decode_uses_the_backend_asked_for(images, capsys, backend):
    assert main(["decode", "--backend", backend, str(images["code"])]) == 0

    [result] = json_lines(capsys.readouterr().out)
    assert [c["backend"] for c in result["codes"]] == [backend]


def test_decode_reports_a_missing_file_carries_on_and_exits_1(images, tmp_path, capsys):
    missing = tmp_path / "missing.png"

    assert main(["decode", str(missing), str(images["code"])]) == 1

    first, second = json_lines(capsys.readouterr().out)
    assert first == {"file": str(missing), "error": f"{missing}: no such file"}
    assert [c["text"] for c in second["codes"]] == [CCCD]


def test_decode_reports_a_file_that_is_not_an_image_and_exits_1(tmp_path, capsys):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")

    assert main(["decode", str(notes)]) == 1

    [result] = json_lines(capsys.readouterr().out)
    assert result == {"file": str(notes), "error": f"{notes}: not an image Pillow can read"}


def test_decode_reads_colour_images_and_jpeg(tmp_path, capsys):
    grey = qr_frame(CCCD, size=(320, 240), module_px=3)
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB").save(path, quality=95)

    assert main(["decode", str(path)]) == 0

    [result] = json_lines(capsys.readouterr().out)
    assert [c["text"] for c in result["codes"]] == [CCCD]


def test_decode_needs_at_least_one_file(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["decode"])

    assert exited.value.code == 2
    assert "FILE" in capsys.readouterr().err


# --- gate config ------------------------------------------------------------------------


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The reference's rows by key: [type, default, description]."""
    lines = markdown.strip().splitlines()
    assert lines[:2] == ["| key | type | default | description |", "|---|---|---|---|"]
    rows = {}
    for line in lines[2:]:
        assert line.startswith("| `") and line.endswith(" |"), line
        cells = [cell.strip() for cell in line[1:-1].split(" | ")]
        assert len(cells) == 4, line
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def section_of(annotation: object) -> type[Section] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Section):
            return candidate
    return None


def every_key(model: type[Section], prefix: str = "") -> list[str]:
    """Every leaf key of the config, fully expanded."""
    keys = []
    for name, field in model.model_fields.items():
        nested = section_of(field.annotation)
        if nested is None:
            keys.append(prefix + name)
        else:
            keys.extend(every_key(nested, f"{prefix}{name}."))
    return keys


def documented(key: str, rows: dict[str, list[str]]) -> bool:
    """A key has its own row, or sits in a section whose row says `(keys as X)` for X's keys."""
    if key in rows:
        return True
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:cut])
        description = rows.get(section, [None, None, ""])[2]
        if "(keys as `" in description:
            like = description.split("(keys as `")[1].split("`")[0]
            return documented(".".join([like, *parts[cut:]]), rows)
    return False


def test_config_reference_is_a_markdown_table_documenting_every_key(capsys):
    assert main(["config", "reference"]) == 0

    rows = table_rows(capsys.readouterr().out)
    missing = [key for key in every_key(GateConfig) if not documented(key, rows)]
    assert missing == []
    for section in GateConfig.model_fields:
        assert any(key.startswith(section + ".") for key in rows), section


def test_config_reference_describes_every_row_with_a_type_and_a_default(capsys):
    main(["config", "reference"])

    for key, (kind, default, description) in table_rows(capsys.readouterr().out).items():
        assert kind and description, key
        assert default == "required" or default.startswith("`"), key


def test_config_reference_shows_defaults_as_the_config_file_writes_them(capsys):
    main(["config", "reference"])

    rows = table_rows(capsys.readouterr().out)
    assert rows["signals.relay_max_s"][1] == "`10.0`"
    assert rows["camera.analogue_gain"][1] == "`null`"
    assert rows["camera.replay.loop"][1] == "`true`"


def test_config_example_prints_the_generated_example(capsys):
    assert main(["config", "example"]) == 0

    text = capsys.readouterr().out
    assert text == config_example(GateConfig)
    assert GateConfig.model_validate(yaml.safe_load(text)) == GateConfig()


def test_config_check_of_a_missing_file_names_it_and_exits_1(tmp_path, capsys):
    missing = tmp_path / "gate.yaml"

    assert main(["config", "check", str(missing)]) == 1
    assert f"{missing}: config file not found" in capsys.readouterr().err


def test_gate_without_a_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


# --- gate run ---------------------------------------------------------------------------


def gate_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from gate.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_run_with_an_invalid_config_exits_78_without_starting(tmp_path, capsys):
    path = tmp_path / "gate.yaml"
    path.write_text("camera:\n  fps: 0\n", encoding="utf-8")

    assert main(["run", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert f"{path}:2: camera.fps" in err


@pytest.fixture
def finite_replay(tmp_path) -> Path:
    """A config that plays empty, an ID card held up, empty once, with mock pins."""
    frames = tmp_path / "frames"
    frames.mkdir()
    save_png(empty_frame(size=(320, 240), seed=1), frames / "0-empty.png")
    save_png(qr_frame(CCCD, size=(320, 240), module_px=3), frames / "1-cccd.png")
    save_png(empty_frame(size=(320, 240), seed=2), frames / "2-empty.png")
    config = {
        "site": {"state_dir": str(tmp_path / "state")},
        "camera": {
            "source": "replay",
            "replay": {"paths": ["frames"], "fps": 20, "repeat_each": 4, "loop": False},
        },
        "presentation": {"confirm_frames": 2},
        "signals": {"pin_factory": "mock", "relay_pulse_s": 0.3},
        "mqtt": {"host": "127.0.0.1", "port": 9, "transport": "plain"},  # nothing listens
        "log": {"level": "info"},
    }
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.slow
def test_run_on_a_finite_replay_checks_in_shows_the_pins_and_exits_0(finite_replay):
    done = gate_command("run", "--config", str(finite_replay))

    log = done.stderr
    assert done.returncode == 0, log
    lines = [" ".join(line.split()) for line in log.splitlines()]
    assert any("check-in accepted: kind=cccd reason=ok" in line for line in lines), log
    assert any(line.endswith("pin relay ON (GPIO23 high)") for line in lines), log
    assert any(line.endswith("pin relay off (GPIO23 low)") for line in lines), log
    assert any(line.endswith("pin green ON (GPIO17 high)") for line in lines), log
    assert any("frame source replay has no more frames" in line for line in lines), log
    assert lines[-1].endswith("stopped"), log


LOADED_GATE_MODULES = """
import sys
from gate.cli import _parser, _wanted
try:
    _parser(_wanted(sys.argv[1:])).parse_args(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(m for m in sys.modules if m.startswith("gate"))))
"""


def loaded_modules(*argv: str) -> set[str]:
    """The gate modules a fresh interpreter has loaded once `gate ARGV` has been parsed."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_GATE_MODULES, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.splitlines()[-1].split())  # after what `gate` itself printed


def test_a_subcommand_loads_only_its_own_module():
    loaded = loaded_modules("run", "--help")

    assert "gate.cli.run" in loaded and "gate.daemon" in loaded
    others = {"gate.cli.trust", "gate.cli.cmd", "gate.cli.parse", "gate.cli.selftest"}
    assert loaded.isdisjoint(others | {"gate.selftest", "gate.trust.passes"})


def test_gate_version_loads_no_subcommand():
    assert loaded_modules("--version") == {"gate", "gate.cli", "gate.errors"}
