"""Memory and boot time of `gate run`: peak RSS (VmHWM) and process start to READY=1.

Runs the real `gate run` twice, each as systemd would see it (a notify socket in
NOTIFY_SOCKET): on config/demo.yaml (replayed frames, mock pins) and on a full config
(every credential kind accepted, a pinned trust file, remote commands with an operations
key). READY is timed from just before the process is started to the datagram's arrival;
VmHWM is read from /proc after the gate has run for a few seconds, then it is stopped.
A first, uncounted run of each config compiles the bytecode, as installing the gate does.

    .venv/bin/python bench/footprint.py [--rounds N] [--run-s S] [--against DIR]

`--against DIR` runs another checkout of the gate (say `git worktree add DIR <commit>`)
with the same interpreter and packages, round for round beside this one, each tree first in
every other round, so that the two are measured under the same load.

Goals (issue 12): demo peak RSS <= 60 MB, READY <= 0.4 s on the development machine.
Figures are of this machine; a Pi Zero 2 W is slower (see the README's estimates).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = "import sys; from gate.cli import main; sys.exit(main())"
DEMO = ROOT / "config" / "demo.yaml"
SIGNED = ["eu_dcc", "vds_nc", "gate_pass"]


def demo_config(folder: Path) -> dict:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["site"]["state_dir"] = str(folder / "state")
    raw["camera"]["replay"]["paths"] = [str(ROOT / "config" / "demo-frames")]
    raw["log"] = {"level": "warning"}
    return raw


def gate(source: Path, *argv: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `gate ARGV` from the checkout at `source` (`-P`:
    the current folder does not shadow it).

    As installed: pip compiles a package's bytecode when it installs it, so each checkout's
    is written on its first run (to a cache of its own, never into the checkout) and read
    on the next, whatever PYTHONDONTWRITEBYTECODE says in the caller's environment.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cache = Path(tempfile.gettempdir()) / f"gate-footprint-pycache-{os.getuid()}"
    return [sys.executable, "-P", "-c", LAUNCH, *argv], env | {
        "PYTHONPATH": str(source),
        "PYTHONPYCACHEPREFIX": str(cache / str(source).strip("/").replace("/", "_")),
    }


def full_config(folder: Path) -> dict:
    """The demo plus every kind, a pinned trust file and remote commands."""
    pass_key, ops_key = folder / "pass.key", folder / "ops.key"
    for argv in (["pass", "keygen", str(pass_key)], ["cmd", "keygen", "--out", str(ops_key)]):
        command, env = gate(ROOT, *argv)
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    raw = demo_config(folder)
    raw["policy"] = {
        "accept_kinds": ["cccd", "national_qr", "bhyt", *SIGNED],
        "unverified": dict.fromkeys(SIGNED, "accept_expired_signer"),
    }
    raw["trust"] = {"paths": [str(pass_key) + ".pub"]}
    raw["commands"] = {"public_keys": [str(ops_key) + ".pub"]}
    return raw


def measure(source: Path, raw: dict, folder: Path, run_s: float) -> tuple[float, float]:
    """(seconds from start to READY=1, VmHWM in MB) of one `gate run` of `source`."""
    config = folder / "gate.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    notify = folder / "notify.sock"
    notify.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify))
    server.settimeout(30)
    command, env = gate(source, "run", "--config", str(config))
    env["NOTIFY_SOCKET"] = str(notify)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not server.recv(4096).startswith(b"READY=1"):
            pass
        ready_s = time.perf_counter() - started
        time.sleep(run_s)
        peak = _vm_hwm_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        server.close()
    return ready_s, peak


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run-s", type=float, default=5.0, help="seconds of running per round")
    parser.add_argument("--against", type=Path, help="another checkout, measured alongside")
    args = parser.parse_args()
    sources = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"gate run, {args.rounds} rounds each, {args.run_s:g} s of running; load {load}")
    ready_head, peak_head = "READY s (min, median, max)", "VmHWM MB (median, max)"
    print(f"{'tree':<8} {'config':<6} {ready_head:>27} {peak_head:>24}")
    for name, make in (("demo", demo_config), ("full", full_config)):
        ready: dict[str, list[float]] = {tree: [] for tree in sources}
        peak: dict[str, list[float]] = {tree: [] for tree in sources}
        for source in sources.values():  # not counted: compiles the bytecode, fills the caches
            with tempfile.TemporaryDirectory() as tmp:
                measure(source, make(Path(tmp)), Path(tmp), 0.0)
        for round_number in range(args.rounds):
            trees = list(sources.items())
            if round_number % 2:  # each tree goes first in every other round (as often, for
                trees.reverse()  # an even --rounds): the first run finds the other's page cache
            for tree, source in trees:
                with tempfile.TemporaryDirectory() as tmp:
                    r, p = measure(source, make(Path(tmp)), Path(tmp), args.run_s)
                ready[tree].append(r)
                peak[tree].append(p)
        for tree in sources:
            times = ready[tree]
            print(
                f"{tree:<8} {name:<6} {min(times):>11.3f}, {statistics.median(times):.3f}, "
                f"{max(times):.3f} {statistics.median(peak[tree]):>16.1f}, {max(peak[tree]):.1f}"
            )


if __name__ == "__main__":
    main()
