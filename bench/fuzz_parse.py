"""A big fuzz budget for `gate.credentials.parse`: a million hostile inputs, two processes.

Run: .venv/bin/python bench/fuzz_parse.py [--inputs 1000000] [--workers 2] [--max-seconds 1800]

Every hostile generator of tests/credentialgen.py (the adversarial suite's) takes an equal
share of the inputs; input number i is made by `HOSTILE[name](random.Random(seed * 2**32 + i))`,
so any input the printout names can be made again. Each input is parsed as the daemon
would, with a trust store pinning the generators' signers. Prints, per generator and in
all: payloads tried, exceptions (type and place, never a payload), parse time per input
(mean, worst, and how many took over 1, 10 and 100 ms) and each process's peak memory.
Times are wall-clock on a shared machine, so a worst case includes whatever else ran
then; the worst input of each generator is therefore parsed again, alone, and the best
of those runs is printed as its own cost ("worst again"). No asserts: figures to read.
"""

import argparse
import collections
import multiprocessing
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from credentialgen import FUZZ_AT, FUZZ_MAX_BYTES, HOSTILE, fuzz_samples, fuzz_trust  # noqa: E402

from gate.credentials import Parser, internal_error_summary  # noqa: E402

CHUNK = 5000
SLOW_MS = (1, 10, 100)
RERUNS = 20


@dataclass
class Tally:
    """What one generator's inputs did, in one chunk or summed over all."""

    tried: int = 0
    parse_ns: int = 0
    worst_ns: int = 0
    worst_input: int = -1
    slow: list[int] = field(default_factory=lambda: [0] * len(SLOW_MS))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    first_error_input: dict[str, int] = field(default_factory=dict)

    def add(self, other: "Tally") -> None:
        self.tried += other.tried
        self.parse_ns += other.parse_ns
        if other.worst_ns > self.worst_ns:
            self.worst_ns, self.worst_input = other.worst_ns, other.worst_input
        self.slow = [mine + theirs for mine, theirs in zip(self.slow, other.slow, strict=True)]
        self.errors.update(other.errors)
        for error, index in other.first_error_input.items():
            self.first_error_input.setdefault(error, index)


_PARSER: Parser | None = None


def _start_worker() -> None:
    global _PARSER
    _PARSER = Parser(trust=fuzz_trust())  # built once, as the daemon's judge builds it
    fuzz_samples()


def hostile_input(seed: int, index: int) -> tuple[str, bytes]:
    """Input number `index` of the run: its generator's name and the payload."""
    names = sorted(HOSTILE)
    name = names[index % len(names)]
    return name, HOSTILE[name](random.Random(seed * 2**32 + index))


def parse_once(payload: bytes) -> None:
    """One parse as the daemon makes it; raises what parse raises."""
    assert _PARSER is not None, "the worker was not started"
    _PARSER.parse(payload, today=FUZZ_AT.date(), at=FUZZ_AT, max_bytes=FUZZ_MAX_BYTES)


def parsed_in_ns(payload: bytes) -> int:
    began = time.perf_counter_ns()
    parse_once(payload)
    return time.perf_counter_ns() - began


def run_chunk(job: tuple[int, int, int]) -> tuple[dict[str, Tally], int]:
    """Parse inputs [start, start + count) of the seed; returns tallies and peak RSS (KiB)."""
    seed, start, count = job
    tallies = {name: Tally() for name in HOSTILE}
    for index in range(start, start + count):
        name, payload = hostile_input(seed, index)
        tally = tallies[name]
        began = time.perf_counter_ns()
        try:
            parse_once(payload)
        except Exception as error:  # noqa: BLE001 -- counted and reported, the run goes on
            summary = internal_error_summary(error)
            tally.errors[summary] += 1
            tally.first_error_input.setdefault(summary, index)
        took = time.perf_counter_ns() - began
        tally.tried += 1
        tally.parse_ns += took
        if took > tally.worst_ns:
            tally.worst_ns, tally.worst_input = took, index
        for position, limit_ms in enumerate(SLOW_MS):
            tally.slow[position] += took > limit_ms * 1_000_000
    return tallies, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop handing out work")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    jobs = [
        (args.seed, start, min(CHUNK, args.inputs - start))
        for start in range(0, args.inputs, CHUNK)
    ]
    totals = {name: Tally() for name in sorted(HOSTILE)}
    peak_kib = 0
    began = time.monotonic()
    stopped_early = False
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_start_worker) as pool:
        for tallies, rss_kib in pool.imap_unordered(run_chunk, jobs):
            for name, tally in tallies.items():
                totals[name].add(tally)
            peak_kib = max(peak_kib, rss_kib)
            if time.monotonic() - began > args.max_seconds:
                stopped_early = True
                pool.terminate()
                break
    elapsed = time.monotonic() - began
    _start_worker()
    report(totals, peak_kib, elapsed, args, stopped_early)
    return 0


def report(
    totals: dict[str, Tally],
    peak_kib: int,
    elapsed: float,
    args: argparse.Namespace,
    stopped_early: bool,
) -> None:
    overall = Tally()
    header = f"{'generator':18} {'tried':>9} {'errors':>7} {'mean ms':>8} {'worst ms':>9}"
    slow_header = " ".join(f"{'>' + str(ms) + 'ms':>7}" for ms in SLOW_MS)
    print(f"{header} {slow_header} {'worst again':>12}  worst input")
    worst_again = 0.0
    for name, tally in sorted(totals.items()):
        overall.add(tally)
        again = _best_of_reruns(args.seed, tally.worst_input)
        worst_again = max(worst_again, again)
        print(_row(name, tally, again))
    print(_row("all", overall, worst_again))
    print()
    stop = "; stopped at --max-seconds" if stopped_early else ""
    print(
        f"payloads tried: {overall.tried:,} in {elapsed:.0f} s with {args.workers} processes"
        f" ({overall.tried / elapsed:,.0f}/s){stop}"
    )
    print(f"exceptions: {sum(overall.errors.values()):,}")
    for summary, count in overall.errors.most_common():
        print(f"  {count:>9,}  {summary}  (first: input {overall.first_error_input[summary]})")
    print(
        f"worst parse time per input: {overall.worst_ns / 1e6:.2f} ms during the run;"
        f" {worst_again:.2f} ms for the costliest worst input parsed again alone"
    )
    print(f"peak memory (max RSS of a fuzzing process): {peak_kib / 1024:.0f} MiB")
    print(f"inputs are HOSTILE[name](random.Random({args.seed} * 2**32 + input))")


def _best_of_reruns(seed: int, index: int) -> float:
    """The input's own parse time in ms: the best of RERUNS parses (NaN when it raises)."""
    if index < 0:
        return 0.0
    _name, payload = hostile_input(seed, index)
    try:
        return min(parsed_in_ns(payload) for _ in range(RERUNS)) / 1e6
    except Exception:  # noqa: BLE001 -- an input that raises is already counted
        return float("nan")


def _row(name: str, tally: Tally, again_ms: float) -> str:
    mean_ms = tally.parse_ns / tally.tried / 1e6 if tally.tried else 0.0
    slow = " ".join(f"{count:>7,}" for count in tally.slow)
    return (
        f"{name:18} {tally.tried:>9,} {sum(tally.errors.values()):>7,} {mean_ms:>8.3f}"
        f" {tally.worst_ns / 1e6:>9.2f} {slow} {again_ms:>12.2f}  {tally.worst_input}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
