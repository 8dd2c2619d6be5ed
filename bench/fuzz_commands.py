"""The command envelope under a big fuzz budget: payloads tried, exceptions, worst time and
peak memory of `gate.commands.envelope.check` (CPU time per payload, so that other
processes on the machine do not count).

Run: .venv/bin/python bench/fuzz_commands.py [--count 1000000] [--seed 1]   (prints, no asserts)

Each payload is one of: random bytes; a signed envelope with bytes flipped, cut short or
spliced; a member replaced by a hostile JSON value (lone surrogates, huge numbers, nesting
up to 900 deep); members added or removed; a valid envelope on the wrong topic name. An
exception other than `Refused`, or an accepted payload that is not the signed document
itself, is counted and the first few are printed.
"""

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from gate.commands.envelope import Checks, Command, Name, Refused, check, encode, sign  # noqa: E402
from gate.trust.keys import ed25519_kid  # noqa: E402

KEY = ed25519.Ed25519PrivateKey.generate()
GATE, ROOT_TOPIC, AT = "hn/stadium/gate-1", "checkin/hn/stadium/gate-1", 1_767_225_600_000
CHECKS = Checks(
    keys={ed25519_kid(KEY.public_key()).hex(): KEY.public_key()},
    gate=GATE,
    topic_root=ROOT_TOPIC,
    max_skew_ms=300_000,
    max_bytes=65_536,
)
MEMBERS = ["schema", "cmd", "target", "topic", "issued_at", "nonce", "key_id", "args", "sig"]
NAMES = [str(name) for name in Name]


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False, 0, -1, 2**53, 2**64, 1e308, -0.0, 1.5])
    if pick == 2:
        return rng.choice(["", "\ud800", "a\udfff", "\u202e", "x" * 5000, "*", "hn/stadium/*"])
    if pick == 3:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(12)))
    if pick == 4:
        deep: Any = []
        for _ in range(rng.randrange(900)):
            deep = [deep]
        return deep
    if pick == 5:
        return rng.choice(NAMES)
    if pick == 6:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(hostile_value(rng, 3)): hostile_value(rng, depth + 1) for _ in range(3)}


def payload(rng: random.Random, signed: dict[str, Any], raw: bytes) -> tuple[bytes, str]:
    """A fuzzed payload and the topic name it arrives on."""
    name = signed["cmd"]
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randbytes(rng.randrange(300)), rng.choice(NAMES)
    if kind == 1:
        flipped = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
        return bytes(flipped), name
    if kind == 2:
        cut = rng.randrange(len(raw))
        return raw[:cut] + raw[rng.randrange(len(raw)) :], name
    if kind == 3:
        document = signed | {rng.choice(MEMBERS): hostile_value(rng)}
    elif kind == 4:
        dropped = rng.choice(MEMBERS)
        document = {k: v for k, v in signed.items() if k != dropped}
        document[str(hostile_value(rng, 3))] = hostile_value(rng)
    elif kind == 5:
        return raw, rng.choice(NAMES)
    else:
        document = dict(signed)
    try:
        return json.dumps(document).encode(), name
    except (ValueError, RecursionError):
        return raw[::-1], name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    envelopes = [sign(KEY, name, GATE, f"{ROOT_TOPIC}/cmd/{name}", issued_at=AT) for name in NAMES]
    raws = [encode(document) for document in envelopes]
    exceptions: dict[str, int] = {}
    accepted_wrongly = refused = accepted = 0
    worst_s, worst_payload = 0.0, b""
    started = time.perf_counter()
    for _ in range(options.count):
        index = rng.randrange(len(envelopes))
        data, name = payload(rng, envelopes[index], raws[index])
        began = time.thread_time()
        try:
            result = check(data, name, CHECKS, AT)
        except Refused:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - what the bench is looking for
            kind = type(exc).__name__
            if kind not in exceptions:
                print(f"exception {kind}: {exc!r} on {data[:120]!r}")
            exceptions[kind] = exceptions.get(kind, 0) + 1
        else:
            accepted += 1
            if not isinstance(result, Command) or json.loads(data) != envelopes[index]:
                accepted_wrongly += 1
        elapsed = time.thread_time() - began
        if elapsed > worst_s:
            worst_s, worst_payload = elapsed, data[:60]
    total_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"payloads tried       {options.count}")
    print(f"refused              {refused}")
    print(f"accepted (unchanged) {accepted - accepted_wrongly}")
    print(f"accepted wrongly     {accepted_wrongly}")
    print(f"exceptions           {sum(exceptions.values())} {exceptions or ''}")
    print(f"worst CPU time       {worst_s * 1000:.2f} ms (payload starting {worst_payload!r})")
    print(f"mean wall time       {total_s / options.count * 1e6:.1f} us")
    print(f"peak memory (RSS)    {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
