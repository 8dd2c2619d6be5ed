"""scripts/install.sh, run for real into a staging root (--root) with apt and pip skipped.

Every test installs a copy of this checkout's source (gate/, pyproject.toml, README.md, config/,
systemd/) into its own tmp_path root holding a minimal /etc/passwd and /etc/group, then checks
the tree, the modes, the owners (when the tests run as root), the config as the daemon loads it,
and what re-runs, upgrades, rollbacks, dry runs and uninstalls do and do not change.
"""

import fcntl
import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from gate import identity
from gate.app_config import GateConfig, load_config
from gate.config.site import SiteConfig
from gate.outbox.config import MqttConfig

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install.sh"
SOURCE_PARTS = ("gate", "pyproject.toml", "README.md", "config", "systemd")
FLAGS = (
    "--venue",
    "venue-7",
    "--gate",
    "north-1",
    "--province",
    "HN",
    "--broker",
    "broker.example.org:8883",
)
AS_ROOT = os.geteuid() == 0

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n"


# ----- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine_source(tmp_path_factory) -> Path:
    """A copy of what a release is made of (no .venv, no .git, no caches)."""
    source = tmp_path_factory.mktemp("source")
    for part in SOURCE_PARTS:
        origin = REPO / part
        if origin.is_dir():
            shutil.copytree(
                origin,
                source / part,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
            )
        else:
            shutil.copy2(origin, source / part)
    return source


@pytest.fixture
def source(pristine_source, tmp_path) -> Path:
    """This test's own copy of the source, free to modify (an upgrade)."""
    copy = tmp_path / "src"
    shutil.copytree(pristine_source, copy)
    return copy


@pytest.fixture
def root(tmp_path) -> Path:
    """A staging root with just enough of /etc for the installer to add its user and groups."""
    staged = tmp_path / "root"
    (staged / "etc").mkdir(parents=True)
    (staged / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n"
    )
    (staged / "etc" / "group").write_text("root:x:0:\nvideo:x:44:pi\npi:x:1000:\n")
    return staged


def install(
    root: Path,
    source: Path | None,
    *args: str,
    check: bool = True,
    skip_packages: bool = True,
    env: dict[str, str] | None = None,
    as_user: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """install.sh into `root` (stdin is not a terminal, as under CI or a pipe). Without a
    release venv (--skip-packages) the installer runs the source's `gate` with GATE_PYTHON:
    this interpreter, which has the gate's dependencies."""
    command = [*(as_user or []), "bash", str(SCRIPT), "--root", str(root)]
    if source is not None:
        command += ["--source", str(source)]
    if skip_packages:
        command.append("--skip-packages")
    result = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "GATE_PYTHON": sys.executable, **(env or {})},
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under `top`: type, mode, owner and content hash (or link target)."""
    tree: dict[str, tuple] = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(directory, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                content = "-> " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = "dir"
            tree[str(path.relative_to(top))] = (
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
                content,
            )
    return tree


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def account_ids(root: Path) -> tuple[int, int]:
    """uid and gid of `gate` in the staged passwd and group."""
    users = {
        f[0]: f
        for f in (line.split(":") for line in (root / "etc/passwd").read_text().splitlines())
    }
    groups = {
        f[0]: f for f in (line.split(":") for line in (root / "etc/group").read_text().splitlines())
    }
    return int(users["gate"][2]), int(groups["gate"][2])


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    raise AssertionError(f"no group {group} in the staged /etc/group")


def load_written(path: Path) -> tuple[SiteConfig, MqttConfig]:
    """The written config through the daemon's own loader.

    While GateConfig does not carry the `mqtt` section yet, the file is checked section by
    section with the same models instead (the rest through GateConfig).
    """
    if "mqtt" in GateConfig.model_fields:
        config = load_config(path)
        return config.site, config.mqtt  # type: ignore[attr-defined]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    GateConfig.model_validate({k: v for k, v in data.items() if k != "mqtt"})
    return SiteConfig.model_validate(data["site"]), MqttConfig.model_validate(data["mqtt"])


def releases(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "opt/gate/releases").iterdir())


def link(root: Path, name: str) -> str:
    return os.readlink(root / "opt/gate" / name)


def seed_outbox(root: Path) -> bytes:
    """An outbox with unsent events, as the daemon leaves it in /var/lib/gate."""
    path = root / "var/lib/gate/outbox.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload BLOB)")
        db.executemany(
            "INSERT INTO events (payload) VALUES (?)",
            [(f'{{"n": {n}}}'.encode(),) for n in range(50)],
        )
    db.close()
    return path.read_bytes()


def change_source(source: Path, marker: str) -> None:
    with (source / "gate" / "__init__.py").open("a", encoding="utf-8") as f:
        f.write(f"# {marker}\n")


# ----- first install -------------------------------------------------------------------------


def test_first_install_builds_the_tree(root, source):
    (root / "etc" / "machine-id").write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    result = install(root, source, *FLAGS)

    opt = root / "opt/gate"
    [release] = releases(root)
    assert release.startswith("0.1.0-")
    assert link(root, "current") == f"releases/{release}"
    assert not (opt / "previous").exists()
    assert link(root, "venv") == "current/venv" and link(root, "app") == "current/app"
    assert os.readlink(root / "usr/local/bin/gate") == "/opt/gate/venv/bin/gate"
    app = opt / "current" / "app"
    for part in SOURCE_PARTS:
        assert (app / part).exists(), part
    assert (app / "gate/__init__.py").read_bytes() == (source / "gate/__init__.py").read_bytes()
    stamp = dict(
        line.split("=", 1)
        for line in (opt / "releases" / release / "RELEASE").read_text().splitlines()
    )
    assert stamp["name"] == release and stamp["version"] == "0.1.0" and stamp["venv"] == "no"
    assert len(stamp["source_sha256"]) == 64

    unit = root / "etc/systemd/system/gate.service"
    assert unit.read_bytes() == (source / "systemd/gate.service").read_bytes()
    assert mode(unit) == 0o644
    wants = root / "etc/systemd/system/multi-user.target.wants/gate.service"
    assert os.readlink(wants) == "/etc/systemd/system/gate.service"

    etc = root / "etc/gate"
    assert mode(etc) == 0o750 and mode(etc / "gate.yaml") == 0o640
    example = etc / "gate.example.yaml"
    assert example.read_bytes() == (source / "config/gate.example.yaml").read_bytes()
    assert mode(root / "var/lib/gate") == 0o750
    assert list((root / "var/lib/gate").iterdir()) == []

    site, mqtt = load_written(etc / "gate.yaml")
    assert (site.province, site.venue_id, site.gate_id) == ("HN", "venue-7", "north-1")
    assert site.device_id is None
    assert str(site.state_dir) == "/var/lib/gate"
    assert (mqtt.host, mqtt.port, mqtt.transport) == ("broker.example.org", 8883, "tls")
    assert mqtt.ca_file is None and mqtt.cert_file is None and mqtt.username is None
    # the id the daemon will use: this machine's CPU serial on a Pi, else the root's machine-id
    expected = identity._cpu_serial() or "3d1219c7c4c5404aaa1f6d2a48adfda4"
    assert f"device id: {expected}" in result.stdout
    assert "systemctl not run" in result.stdout


def path_without(command: str, folder: Path) -> str:
    """A PATH of one folder linking every command of this PATH but `command` (a Pi OS Lite
    without git, say)."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name != command and not target.exists() and not target.is_symlink():
                target.symlink_to(entry.path)
    return str(folder)


@pytest.mark.parametrize("kind", ["git checkout", "copy without git", "checkout, no git here"])
def test_a_key_or_venv_lying_in_the_source_never_reaches_the_release(root, source, kind, tmp_path):
    env = (
        {"PATH": path_without("git", tmp_path / "bin")} if kind == "checkout, no git here" else None
    )
    if kind != "copy without git":
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(source)]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "source"], check=True)
    (source / "this-gate.key").write_text(KEY_PEM)
    (source / "this-gate.key").chmod(0o600)
    (source / ".venv-pi" / "bin").mkdir(parents=True)
    (source / ".venv-pi" / "bin" / "python").write_text("")

    install(root, source, *FLAGS, env=env)

    app = root / "opt/gate/current/app"
    assert (app / "gate/__init__.py").exists()
    assert not (app / "this-gate.key").exists() and not (app / ".venv-pi").exists()
    assert not (app / ".git").exists()  # nor the history, copied file by file without git


def test_first_install_adds_the_gate_user_and_groups(root, source):
    install(root, source, *FLAGS)

    uid, gid = account_ids(root)
    assert 100 <= uid < 1000 and uid == gid
    passwd = (root / "etc/passwd").read_text()
    assert f"gate:x:{uid}:{gid}:QR entrance gate:/var/lib/gate:/usr/sbin/nologin" in passwd
    assert group_members(root, "gpio") == ["gate"]
    assert group_members(root, "video") == ["pi", "gate"]
    if AS_ROOT:
        assert (root / "var/lib/gate").stat()[4:6] == (uid, gid)
        assert (root / "etc/gate").stat()[4:6] == (0, gid)
        assert (root / "etc/gate/gate.yaml").stat()[4:6] == (0, gid)
        assert (root / "etc/systemd/system/gate.service").stat()[4:6] == (0, 0)


def test_secrets_are_copied_0600_to_gate_and_referenced(root, source, tmp_path):
    (tmp_path / "ca.pem").write_text(CA_PEM)
    (tmp_path / "client.pem").write_text(CA_PEM.replace("fake", "client"))
    (tmp_path / "client.key").write_text(KEY_PEM)
    (tmp_path / "password").write_text("s3cret\n")
    install(
        root,
        source,
        *FLAGS,
        "--ca",
        str(tmp_path / "ca.pem"),
        "--cert",
        str(tmp_path / "client.pem"),
        "--key",
        str(tmp_path / "client.key"),
        "--username",
        "gate-HN-venue-7",
        "--password-file",
        str(tmp_path / "password"),
    )

    etc = root / "etc/gate"
    assert (etc / "mqtt-client.key").read_text() == KEY_PEM
    assert (etc / "mqtt-password").read_text() == "s3cret\n"
    assert mode(etc / "mqtt-client.key") == 0o600 and mode(etc / "mqtt-password") == 0o600
    assert mode(etc / "mqtt-ca.pem") == 0o640 and mode(etc / "mqtt-client.pem") == 0o640
    if AS_ROOT:
        uid, gid = account_ids(root)
        assert (etc / "mqtt-client.key").stat()[4:6] == (uid, gid)
        assert (etc / "mqtt-password").stat()[4:6] == (uid, gid)
    _, mqtt = load_written(etc / "gate.yaml")
    assert mqtt.ca_file == Path("/etc/gate/mqtt-ca.pem")
    assert mqtt.cert_file == Path("/etc/gate/mqtt-client.pem")
    assert mqtt.key_file == Path("/etc/gate/mqtt-client.key")
    assert mqtt.password_file == Path("/etc/gate/mqtt-password")
    assert mqtt.username == "gate-HN-venue-7"
    assert "s3cret" not in (etc / "gate.yaml").read_text()


def test_yaml_lookalike_ids_stay_strings_and_plain_needs_asking(root, source):
    install(
        root,
        source,
        "--venue",
        "0123",
        "--gate",
        "on",
        "--province",
        "null",
        "--device-id",
        "1e3",
        "--broker",
        "10.0.0.5",
        "--plain",
    )

    site, mqtt = load_written(root / "etc/gate/gate.yaml")
    assert (site.venue_id, site.gate_id, site.province, site.device_id) == (
        "0123",
        "on",
        "null",
        "1e3",
    )
    assert (mqtt.host, mqtt.port, mqtt.transport, mqtt.effective_port) == (
        "10.0.0.5",
        None,
        "plain",
        1883,
    )


def test_without_passwd_in_the_root_accounts_are_skipped_with_a_note(source, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    result = install(bare, source, *FLAGS)

    assert "the gate user and groups are not created" in result.stdout
    assert not (bare / "etc/passwd").exists()
    assert (bare / "etc/gate/gate.yaml").is_file()


# ----- re-runs -------------------------------------------------------------------------------


def test_a_second_run_changes_nothing(root, source, tmp_path):
    (tmp_path / "ca.pem").write_text(CA_PEM)
    (tmp_path / "password").write_text("s3cret\n")
    flags = (
        *FLAGS,
        "--ca",
        str(tmp_path / "ca.pem"),
        "--username",
        "u1",
        "--password-file",
        str(tmp_path / "password"),
    )
    install(root, source, *flags)
    before = snapshot(root)

    again = install(root, source, *flags)
    without_flags = install(root, source)

    assert snapshot(root) == before
    for result in (again, without_flags):
        assert "nothing to change" in result.stdout
        assert "+ " not in result.stdout


def test_flags_on_a_rerun_update_only_their_keys(root, source):
    install(root, source, *FLAGS)
    config = root / "etc/gate/gate.yaml"
    hand_edit = "\n# the relay board here is active-low\nlog:\n  level: debug\n"
    hand_edited = config.read_text() + hand_edit
    config.write_text(hand_edited)

    result = install(root, source, "--broker", "mqtt.hn.example:8884", "--gate", "south-2")

    site, mqtt = load_written(config)
    assert (site.gate_id, site.venue_id, site.province) == ("south-2", "venue-7", "HN")
    assert (mqtt.host, mqtt.port) == ("mqtt.hn.example", 8884)
    text = config.read_text()
    assert text.endswith(hand_edit)
    assert (root / "etc/gate/gate.yaml.bak").read_text() == hand_edited
    assert mode(root / "etc/gate/gate.yaml.bak") == 0o640
    assert '-  host: "broker.example.org"' in result.stdout
    assert '+  host: "mqtt.hn.example"' in result.stdout
    changed = [
        a for a, b in zip(hand_edited.splitlines(), text.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 3  # gate_id, host, port; every other line as it was


def test_missing_keys_and_sections_are_added_and_nothing_else_moves(root, source):
    install(root, source, *FLAGS)
    config = root / "etc/gate/gate.yaml"
    config.write_text(
        'site:\n  province: "HN"  # Ha Noi\n  venue_id: "venue-7"\n'
        '  gate_id: "north-1"\n\n\nlog:\n  level: debug\n'
    )

    install(root, source, "--device-id", "dev-9", "--broker", "b2.example", "--username", "u2")

    assert config.read_text() == (
        'site:\n  province: "HN"  # Ha Noi\n  venue_id: "venue-7"\n  gate_id: "north-1"\n'
        '  device_id: "dev-9"\n\n\nlog:\n  level: debug\n\n'
        'mqtt:\n  host: "b2.example"\n  port: null\n  transport: "tls"\n  username: "u2"\n'
    )
    site, mqtt = load_written(config)
    assert site.device_id == "dev-9" and (mqtt.host, mqtt.username) == ("b2.example", "u2")


def test_a_config_it_cannot_edit_safely_is_refused_and_kept(root, source):
    install(root, source, *FLAGS)
    config = root / "etc/gate/gate.yaml"
    config.write_text('site: {province: "HN", venue_id: "v", gate_id: "g"}\n')
    before = snapshot(root)

    result = install(root, source, "--venue", "other", check=False)

    assert result.returncode == 1
    assert f"cannot update {config}" in result.stderr
    assert "site: written in flow style" in result.stderr
    assert snapshot(root) == before


# ----- upgrade and rollback ------------------------------------------------------------------


def test_upgrade_keeps_config_and_outbox_and_rollback_returns(root, source):
    install(root, source, *FLAGS)
    [first] = releases(root)
    outbox = seed_outbox(root)
    config = (root / "etc/gate/gate.yaml").read_bytes()
    change_source(source, "upgrade 1")

    upgrade = install(root, source)

    second = link(root, "current").removeprefix("releases/")
    assert second != first and sorted([first, second]) == releases(root)
    assert link(root, "previous") == f"releases/{first}"
    assert "upgrade 1" in (root / "opt/gate/app/gate/__init__.py").read_text()
    assert (root / "etc/gate/gate.yaml").read_bytes() == config
    assert (root / "var/lib/gate/outbox.sqlite3").read_bytes() == outbox
    assert not (root / "etc/gate/gate.yaml.bak").exists()
    assert "copy " in upgrade.stdout

    rollback = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--rollback"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rollback.returncode == 0, rollback.stderr
    assert link(root, "current") == f"releases/{first}"
    assert link(root, "previous") == f"releases/{second}"
    assert "upgrade 1" not in (root / "opt/gate/app/gate/__init__.py").read_text()
    assert (root / "etc/gate/gate.yaml").read_bytes() == config
    assert (root / "var/lib/gate/outbox.sqlite3").read_bytes() == outbox

    # A re-run keeps the rollback; only --upgrade switches to the source again, without a rebuild.
    rolled_back = snapshot(root)
    again = install(root, source)
    assert snapshot(root) == rolled_back
    assert "rolled back to, kept" in again.stdout and "--upgrade" in again.stdout
    assert link(root, "current") == f"releases/{first}"

    forward = install(root, source, "--upgrade")
    assert link(root, "current") == f"releases/{second}"
    assert link(root, "previous") == f"releases/{first}"
    assert releases(root) == sorted([first, second])
    assert "holds this source already" in forward.stdout and "copy " not in forward.stdout
    assert (root / "var/lib/gate/outbox.sqlite3").read_bytes() == outbox
    assert not (root / "opt/gate/rolled-back").exists()
    assert "nothing to change" in install(root, source).stdout


def test_rollback_without_a_previous_release_fails_clearly(root, source):
    install(root, source, *FLAGS)
    before = snapshot(root)

    result = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--rollback"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "no previous release" in result.stderr
    assert snapshot(root) == before


def test_at_most_three_releases_are_kept(root, source):
    install(root, source, *FLAGS)
    [oldest] = releases(root)
    for n in range(3):
        change_source(source, f"upgrade {n}")
        install(root, source)

    kept = releases(root)
    assert len(kept) == 3 and oldest not in kept
    assert link(root, "current").removeprefix("releases/") in kept
    assert link(root, "previous").removeprefix("releases/") in kept


# ----- dry run -------------------------------------------------------------------------------


def test_dry_run_prints_every_action_and_changes_nothing(root, source):
    before = snapshot(root)
    first = install(root, source, *FLAGS, "--dry-run")
    assert snapshot(root) == before
    assert "would: add system user gate" in first.stdout
    assert f"would: write {root}/etc/gate/gate.yaml (0640 root:gate)" in first.stdout
    assert f"would: point {root}/opt/gate/current -> releases/0.1.0-" in first.stdout
    assert "would: write " + str(root / "etc/systemd/system/gate.service") in first.stdout
    assert "the gate.yaml it would write:" in first.stdout
    assert '    gate_id: "north-1"' in first.stdout
    assert "nothing was changed" in first.stdout and "+ " not in first.stdout

    install(root, source, *FLAGS)
    change_source(source, "upgrade")
    installed = snapshot(root)
    upgrade = install(root, source, "--gate", "other", "--dry-run")
    uninstall = install(root, source, "--uninstall", "--purge", "--dry-run")
    assert snapshot(root) == installed
    assert "would: copy " in upgrade.stdout and '+  gate_id: "other"' in upgrade.stdout
    assert f"would: remove {root}/var/lib/gate" in uninstall.stdout


# ----- uninstall -----------------------------------------------------------------------------


def test_uninstall_keeps_data_and_purge_removes_it(root, source):
    install(root, source, *FLAGS)
    outbox = seed_outbox(root)
    config = (root / "etc/gate/gate.yaml").read_bytes()

    result = install(root, source, "--uninstall")

    assert not (root / "opt/gate").exists()
    assert not (root / "etc/systemd/system/gate.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/gate.service").is_symlink()
    assert not (root / "usr/local/bin/gate").is_symlink()
    assert (root / "etc/gate/gate.yaml").read_bytes() == config
    assert (root / "var/lib/gate/outbox.sqlite3").read_bytes() == outbox
    assert "gate:" in (root / "etc/passwd").read_text()
    assert "kept" in result.stdout
    assert "nothing to change" in install(root, source, "--uninstall").stdout

    # A reinstall finds the kept config: no flags needed.
    install(root, source)
    assert (root / "etc/gate/gate.yaml").read_bytes() == config

    purge = install(root, source, "--uninstall", "--purge", "--yes")

    assert not (root / "etc/gate").exists() and not (root / "var/lib/gate").exists()
    assert "gate:" not in (root / "etc/passwd").read_text()
    assert not any(line.startswith("gate:") for line in (root / "etc/group").read_text().split())
    assert group_members(root, "video") == ["pi"]
    assert "not yet sent to the broker are lost" in purge.stderr


# ----- refusals ------------------------------------------------------------------------------


def without(flag: str) -> list[str]:
    args = list(FLAGS)
    i = args.index(flag)
    del args[i : i + 2]
    return args


def replaced(flag: str, value: str) -> list[str]:
    args = list(FLAGS)
    args[args.index(flag) + 1] = value
    return args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "first install (no "),
        (without("--venue"), "missing --venue"),
        (without("--broker"), "missing --broker"),
        (replaced("--venue", "venue 7"), "--venue 'venue 7': an id is 1 to 64 characters"),
        (replaced("--gate", "north/1"), "--gate 'north/1'"),
        (replaced("--province", 'HN"; x'), "--province"),
        (replaced("--venue", "v" * 65), "an id is 1 to 64"),
        ([*FLAGS, "--device-id", "a:b"], "--device-id 'a:b'"),
        (replaced("--broker", "host:70000"), "port must be 1-65535"),
        (replaced("--broker", "bad host"), "not a host name"),
        ([*FLAGS, "--plain", "--ca", "/etc/hostname"], "--plain excludes"),
        ([*without("--broker"), "--plain"], "--plain goes with --broker"),
        ([*FLAGS, "--cert", "/etc/hostname"], "--cert needs --key"),
        ([*FLAGS, "--password-file", "/etc/hostname"], "--password-file needs --username"),
        ([*FLAGS, "--ca", "/no/such.pem"], "no such readable file"),
        ([*FLAGS, "--username", "a b"], "--username"),
        ([*FLAGS, "--venue"], "--venue needs a value"),
        (["--purge"], "--purge goes with --uninstall"),
        (["--uninstall", "--venue", "x"], "takes no config flags"),
        (["--bogus"], "unknown option: --bogus"),
    ],
)
def test_bad_flags_fail_clearly_and_change_nothing(root, source, args, message):
    before = snapshot(root)

    result = install(root, source, *args, check=False)

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "--help" in result.stderr
    assert snapshot(root) == before


def test_help_states_the_decisions():
    result = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0
    for words in (
        "--venue ID",
        "--root DIR",
        "--skip-packages",
        "--dry-run",
        "--rollback",
        "--uninstall",
        "--purge",
        "update only their keys",
        "gate.yaml.bak",
        "--bundle FILE",
        "--upgrade",
        "--yes",
        "32-bit userland",
        "Exit status: 0 done, 1 failed",
    ):
        assert words in result.stdout, words


def test_shell_scripts_are_shellcheck_clean():
    names = ("bootstrap.sh", "demo", "test", "bundle", "pi-check")
    scripts = [SCRIPT, *(SCRIPT.parent / name for name in names)]
    result = subprocess.run(
        ["shellcheck", *map(str, scripts), str(SCRIPT.parent.parent / ".ci/run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


# ----- installer defects (issue 8) -----------------------------------------------------------


def test_a_copy_that_fails_fails_the_run(root, source, tmp_path):
    install(root, source, *FLAGS)
    (root / "etc/gate/mqtt-ca.pem").mkdir()  # in the way: the CA cannot be put there
    (tmp_path / "ca.pem").write_text(CA_PEM)
    before = snapshot(root)

    result = install(root, source, "--ca", str(tmp_path / "ca.pem"), check=False)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot copy" in result.stderr and "mqtt-ca.pem" in result.stderr
    assert "done:" not in result.stdout
    assert snapshot(root) == before


def test_a_run_waits_for_another_on_the_same_root(root, source):
    held = os.open(root, os.O_RDONLY)  # the lock another run holds: the root folder itself
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        before = snapshot(root)
        result = install(root, source, *FLAGS, check=False, env={"GATE_INSTALL_LOCK_WAIT_S": "1"})
        assert snapshot(root) == before
    finally:
        os.close(held)

    assert result.returncode == 1
    assert "waiting up to 1 s for another install.sh" in result.stdout
    assert "still running" in result.stderr


def test_parallel_runs_on_one_root_make_one_gate_user(root, source):
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: install(root, source, *FLAGS, check=False), range(2)))

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    passwd = (root / "etc/passwd").read_text().splitlines()
    assert len([line for line in passwd if line.startswith("gate:")]) == 1
    assert len(releases(root)) == 1


@pytest.mark.skipif(not AS_ROOT, reason="only root can run git on a checkout another user owns")
def test_the_release_stamp_names_the_commit_under_sudo(root, source):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(source)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "release"], check=True)
    commit = subprocess.run(
        [*git, "-c", f"safe.directory={source}", "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for path in [source, *source.rglob("*")]:
        os.chown(path, 1000, 1000, follow_symlinks=False)  # a checkout the technician cloned

    install(root, source, *FLAGS)

    [release] = releases(root)
    stamp = (root / "opt/gate/releases" / release / "RELEASE").read_text()
    assert f"git_describe={commit}\n" in stamp


def dpkg_status(root: Path, packages: list[str]) -> None:
    """A dpkg database in the staged root holding exactly these packages."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "".join(
            f"Package: {name}\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1\n\n"
            for name in packages
        )
    )


def test_missing_apt_packages_are_named_with_the_command_and_nothing_changes(root, source):
    dpkg_status(root, ["python3", "python3-venv", "python3-numpy", "python3-pil", "libzbar0"])
    before = snapshot(root)

    off_a_pi = {"GATE_DEVICE_MODEL": "/dev/null"}
    result = install(root, source, *FLAGS, check=False, skip_packages=False, env=off_a_pi)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "missing apt packages: ca-certificates tzdata. Install" in result.stderr
    assert "sudo apt-get install -y ca-certificates tzdata)" in result.stderr
    assert snapshot(root) == before


def test_on_a_raspberry_pi_the_camera_and_gpio_packages_are_required(root, source, tmp_path):
    """Off a Pi they are only wanted (the test above: not named missing)."""
    dpkg_status(root, ["python3", "python3-venv", "python3-numpy", "python3-pil", "libzbar0"])
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi Zero 2 W Rev 1.0\x00")

    result = install(
        root,
        source,
        *FLAGS,
        check=False,
        skip_packages=False,
        env={"GATE_DEVICE_MODEL": str(model)},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "missing apt packages: ca-certificates tzdata python3-picamera2 python3-lgpio"
        in result.stderr
    )


def test_root_without_skip_packages_is_refused_as_its_venv_would_not_run(root, source):
    before = snapshot(root)

    result = install(root, source, *FLAGS, check=False, skip_packages=False)

    assert result.returncode == 1
    assert "--root builds no venv" in result.stderr and "--skip-packages" in result.stderr
    assert snapshot(root) == before


def test_a_32_bit_userland_is_refused_before_anything_changes(root, source, tmp_path):
    # An interpreter answering as Raspberry Pi OS 32-bit does on a Pi 4, whose kernel is 64-bit.
    armhf_python = tmp_path / "python3"
    armhf_python.write_text("#!/bin/sh\necho 32 linux-armv7l\n")
    armhf_python.chmod(0o755)
    before = snapshot(root)

    result = install(root, source, *FLAGS, check=False, env={"GATE_PYTHON": str(armhf_python)})

    assert result.returncode == 1
    assert "32-bit userland (linux-armv7l)" in result.stderr
    assert "Flash Raspberry Pi OS Lite (64-bit)" in result.stderr
    assert snapshot(root) == before


def test_the_userland_check_asks_the_interpreter_not_the_kernel():
    script = SCRIPT.read_text()
    body = script[script.index("check_userland() {") :]
    body = body[: body.index("\n}\n")]
    assert "uname" not in body and "struct.calcsize" in body and "sysconfig.get_platform" in body


def test_purge_asks_before_deleting_unsent_check_ins(root, source):
    install(root, source, *FLAGS)
    outbox = seed_outbox(root)
    before = snapshot(root)

    refused = install(root, source, "--uninstall", "--purge", check=False)

    assert refused.returncode == 1
    assert "not yet sent to the broker" in refused.stderr and "--yes" in refused.stderr
    assert snapshot(root) == before
    assert (root / "var/lib/gate/outbox.sqlite3").read_bytes() == outbox

    install(root, source, "--uninstall", "--purge", "--yes")
    assert not (root / "var/lib/gate").exists()


def test_moving_to_plain_removes_the_tls_files(root, source, tmp_path):
    (tmp_path / "ca.pem").write_text(CA_PEM)
    (tmp_path / "client.pem").write_text(CA_PEM)
    (tmp_path / "client.key").write_text(KEY_PEM)
    tls = ("--ca", str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "client.pem"))
    install(root, source, *FLAGS, *tls, "--key", str(tmp_path / "client.key"))
    assert (root / "etc/gate/mqtt-client.key").exists()

    install(root, source, "--broker", "10.0.0.5", "--plain")

    etc = root / "etc/gate"
    for name in ("mqtt-client.key", "mqtt-client.pem", "mqtt-ca.pem"):
        assert not (etc / name).exists(), name
    _, mqtt = load_written(etc / "gate.yaml")
    assert mqtt.transport == "plain" and mqtt.key_file is None and mqtt.cert_file is None


def make_bundle(top: Path, source: Path, platform: str) -> Path:
    """A bundle folder as scripts/bundle lays it out (no wheels: pip is never reached here)."""
    bundle = top / "gate-test-bundle"
    shutil.copytree(source, bundle / "source")
    (bundle / "wheels").mkdir()
    (bundle / "BUNDLE").write_text(f"name=gate-test-bundle\nplatform={platform}\n")
    files = sorted(p for p in bundle.rglob("*") if p.is_file())
    (bundle / "SHA256SUMS").write_text(
        "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(bundle)}\n"
            for p in files
        )
    )
    return bundle


def test_a_bundle_that_fails_its_checksums_is_refused(root, pristine_source, tmp_path):
    bundle = make_bundle(tmp_path, pristine_source, sysconfig.get_platform())
    with (bundle / "source/gate/__init__.py").open("a") as f:
        f.write("# altered on the USB stick\n")
    before = snapshot(root)

    result = install(root, None, *FLAGS, "--bundle", str(bundle), check=False, skip_packages=False)

    assert result.returncode == 1
    assert "fails its checksums" in result.stderr and "gate/__init__.py" in result.stderr
    assert snapshot(root) == before


def test_a_link_added_to_a_bundle_is_refused(root, pristine_source, tmp_path):
    bundle = make_bundle(tmp_path, pristine_source, sysconfig.get_platform())
    (bundle / "source/gate/shadow").symlink_to("/etc/shadow")
    before = snapshot(root)

    result = install(root, None, *FLAGS, "--bundle", str(bundle), check=False, skip_packages=False)

    assert result.returncode == 1
    assert "holds files its SHA256SUMS does not list" in result.stderr
    assert snapshot(root) == before


def test_a_bundle_for_another_platform_is_refused(root, pristine_source, tmp_path):
    bundle = make_bundle(tmp_path, pristine_source, "linux-riscv64")
    tar = tmp_path / "gate-test-bundle.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(tmp_path), bundle.name], check=True)
    before = snapshot(root)

    result = install(root, None, *FLAGS, "--bundle", str(tar), check=False, skip_packages=False)

    assert result.returncode == 1
    here = sysconfig.get_platform()
    assert f"is for linux-riscv64, this system's Python is {here}" in result.stderr
    assert snapshot(root) == before
