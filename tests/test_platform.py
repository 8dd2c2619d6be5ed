"""The self-test's platform row: what this machine's Python can run, and what to do if not.

The row reads the interpreter, never the kernel: a Raspberry Pi 4 running 32-bit Raspberry Pi
OS reports aarch64 from `uname -m` while its Python is armv7l. Other machines are shown to the
row through its Probe; this machine is checked as it is.
"""

import dataclasses
import platform
import sysconfig

import numpy as np
import PIL

from gate.app_config import GateConfig
from gate.selftest.platform import REFLASH, platform_row, this_machine
from gate.selftest.report import Status


def config(**sections: dict) -> GateConfig:
    return GateConfig.model_validate({"signals": {"pin_factory": "mock"}, **sections})


def missing(*modules: str):
    """A module check that finds everything here except these modules."""
    real = this_machine().why_not_importable

    def why_not(module: str) -> str | None:
        return f"No module named {module!r}" if module in modules else real(module)

    return why_not


def test_this_machine_passes_with_its_real_versions_and_both_decoders():
    row = platform_row(config())

    assert row.status is Status.PASS, row
    assert row.value == f"{sysconfig.get_platform()}, Python {platform.python_version()}"
    assert f"numpy {np.__version__}" in row.detail and f"pillow {PIL.__version__}" in row.detail
    assert "decoders zxing, zbar" in row.detail
    assert row.detail.endswith("pins mock")


def test_a_32_bit_userland_under_a_64_bit_kernel_fails_with_the_reflash():
    probe = dataclasses.replace(this_machine(), pointer_bits=32, userland="linux-armv7l")

    row = platform_row(config(), probe)

    assert row.status is Status.FAIL
    assert row.value.startswith("linux-armv7l")
    assert "32-bit userland" in row.detail
    assert REFLASH in row.action


def test_numpy_older_than_tested_warns_and_missing_pillow_fails():
    versions = {"numpy": "1.23.5", "pillow": "9.4.0"}
    older = dataclasses.replace(this_machine(), version_of=versions.get)

    row = platform_row(config(), older)
    assert row.status is Status.WARN
    assert "numpy 1.23.5 is older than the tested 1.24" in row.detail

    without_pillow = dataclasses.replace(this_machine(), version_of={"numpy": "1.24.2"}.get)
    row = platform_row(config(), without_pillow)
    assert row.status is Status.FAIL
    assert "pillow missing" in row.detail and "apt install python3-pil" in row.action


def test_decoders_say_why_not_and_none_at_all_fails():
    zbar_only = dataclasses.replace(this_machine(), why_not_importable=missing("gate.decode.zxing"))
    row = platform_row(config(), zbar_only)
    assert row.status is Status.WARN
    assert "decoders zbar" in row.detail
    assert "zxing: No module named 'gate.decode.zxing'" in row.detail

    row = platform_row(config(decoder={"backend": "zxing"}), zbar_only)
    assert row.status is Status.FAIL and "decoder.backend zxing unavailable" in row.detail

    none = dataclasses.replace(
        this_machine(), why_not_importable=missing("gate.decode.zxing", "gate.decode.zbar")
    )
    row = platform_row(config(), none)
    assert row.status is Status.FAIL
    assert "no QR decoder" in row.detail and "apt install libzbar0" in row.action


def test_a_zbar_that_cannot_load_warns_that_its_rescue_rung_is_off():
    """On a Pi without libzbar0 the gate runs on zxing; its zbar rung would wait for the first
    hard code to say so."""
    no_zbar = dataclasses.replace(this_machine(), why_not_importable=missing("gate.decode.zbar"))
    row = platform_row(config(), no_zbar)
    assert row.status is Status.WARN and "zbar rescue rung is off" in row.detail
    assert "apt install libzbar0" in row.action
    assert platform_row(config(decoder={"rescue": ["histogram"]}), no_zbar).status is Status.PASS


def test_a_missing_pyzbar_is_mended_by_reinstalling_the_gate_not_by_apt():
    machine = this_machine()
    no_pyzbar = dataclasses.replace(
        machine,
        why_not_importable=missing("gate.decode.zbar"),
        version_of=lambda name: None if name == "pyzbar" else machine.version_of(name),
    )
    row = platform_row(config(), no_pyzbar)
    assert row.status is Status.WARN and "zbar rescue rung is off" in row.detail
    assert "reinstall the gate (pyzbar)" in row.action and "libzbar0" not in row.action


def test_a_pin_factory_whose_library_is_missing_fails_with_how_to_get_it():
    probe = dataclasses.replace(this_machine(), why_not_importable=missing("lgpio"))

    row = platform_row(config(signals={"pin_factory": "lgpio"}), probe)

    assert row.status is Status.FAIL
    assert "pin factory lgpio: lgpio missing" in row.detail
    assert "apt install python3-lgpio" in row.action


def test_a_library_that_is_there_but_cannot_load_is_a_row_not_a_crash(tmp_path, monkeypatch):
    """RPi.GPIO raises RuntimeError on a board it does not know; a bad libzbar, OSError."""
    (tmp_path / "broken_pins.py").write_text(
        'raise RuntimeError("This module can only be run on a Raspberry Pi!")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = this_machine().why_not_importable("broken_pins")
    assert reason == "RuntimeError: This module can only be run on a Raspberry Pi!"
