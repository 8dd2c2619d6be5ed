"""What `gate run`'s memory and start time are made of: each package it loads, imported one
at a time in a fresh interpreter, with the resident memory and the time each adds.

    .venv/bin/python bench/import_rss.py [--rounds 3]

Prints, asserts nothing. The order is the one `gate run` meets them in; a package's share
includes what it loads that nothing before it did (OpenSSL's libcrypto comes with hashlib,
importlib.metadata with gpiozero). The gate's own modules, with their config sections, end
what loads before READY; after that total, paho (the uplink starts after READY) and pyzbar
(loaded only when a rescue first needs zbar).
bench/footprint.py measures the whole running gate beside these shares.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STEPS = [
    ("numpy", "numpy"),
    ("Pillow", "PIL.Image"),
    ("yaml", "yaml"),
    ("hashlib (libcrypto)", "hashlib"),
    ("gpiozero", "gpiozero"),
    ("zxing-cpp", "zxingcpp"),
    ("sqlite3", "sqlite3"),
    ("the gate's config sections", "gate.app_config"),
    ("the rest of the gate", "gate.daemon"),
]
LATER = [
    ("paho-mqtt, ssl (after READY)", "paho.mqtt.client"),
    ("pyzbar (a rescue's zbar rung)", "pyzbar.pyzbar"),
]

CHILD = """
import importlib, json, os, sys, time
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
out = [("the interpreter", rss_mb(), 0.0)]
for label, module in json.loads(sys.argv[1]):
    before, started = rss_mb(), time.perf_counter()
    importlib.import_module(module)
    out.append((label, rss_mb() - before, (time.perf_counter() - started) * 1000))
print(json.dumps(out))
"""


def one_round() -> list[tuple[str, float, float]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(STEPS + LATER)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return [tuple(row) for row in json.loads(done.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    print(f"import one at a time, median of {args.rounds} fresh interpreters:")
    print(f"  {'what':<29} {'RSS MB':>7} {'ms':>7}")
    total_mb = total_ms = 0.0
    for i, (label, _, _) in enumerate(rounds[0]):
        mb = statistics.median(r[i][1] for r in rounds)
        ms = statistics.median(r[i][2] for r in rounds)
        if i == len(STEPS) + 1:  # the interpreter's row comes first
            print(f"  {'gate run at start, in all':<29} {total_mb:7.1f} {total_ms:7.1f}")
        total_mb, total_ms = total_mb + mb, total_ms + ms
        print(f"  {label:<29} {mb:7.1f} {ms:7.1f}")


if __name__ == "__main__":
    main()
