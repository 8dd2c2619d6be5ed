"""The service unit is valid and hardened, as systemd itself judges it."""

import re
import subprocess
import sys
from pathlib import Path

from gate.errors import EXIT_CAMERA_WEDGED, EXIT_CONFIG, EXIT_RESTART, EXIT_START_FAILED

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "gate.service"
INSTALLED_GATE = "/opt/gate/venv/bin/gate"


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart at this checkout's `gate`: verify checks that it is executable."""
    here = Path(sys.executable).with_name("gate")
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_GATE in text
    copy = tmp_path / "gate.service"
    copy.write_text(text.replace(INSTALLED_GATE, str(here)), encoding="utf-8")
    return copy


def test_unit_verifies_cleanly(tmp_path):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_for_this_machine(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


def test_security_exposure_is_at_most_4(tmp_path):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    exposure = re.search(r"Overall exposure level for gate.service: (\d+\.\d)", result.stdout)
    assert exposure is not None, result.stdout + result.stderr
    assert float(exposure.group(1)) <= 4.0


def test_unit_is_a_notify_service_with_a_watchdog_and_the_gate_user():
    text = UNIT.read_text(encoding="utf-8")
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))

    assert settings["Type"] == "notify"
    assert int(settings["WatchdogSec"]) > 0
    assert settings["User"] == "gate"
    assert set(settings["SupplementaryGroups"].split()) == {"gpio", "video"}
    assert settings["StateDirectory"] == "gate" and settings["ConfigurationDirectory"] == "gate"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["Restart"] == "on-failure"


def test_only_failures_a_reboot_can_fix_reach_the_reboot_start_limit():
    """Statuses that no restart fixes are not restarted (so they never add up to the start
    limit's reboot); the wedged camera and the reload restart are."""
    text = UNIT.read_text(encoding="utf-8")
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    prevented = {int(status) for status in settings["RestartPreventExitStatus"].split()}

    assert settings["StartLimitAction"] == "reboot"
    assert prevented == {EXIT_CONFIG, EXIT_START_FAILED}
    assert EXIT_CAMERA_WEDGED not in prevented and EXIT_RESTART not in prevented
