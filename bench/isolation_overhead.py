"""What isolation costs per process and per run, measured side by side.

Per process (`run_process` of /bin/true, --count times each, interleaved so load drifts hit all):

  plain      no registry, no sandbox (the floor: fork/exec/wait and two log files)
  marked     with a ProcessRegistry: session marker, reaper bookkeeping, and the /proc scan for
             leftovers after the process ends
  bwrap      marked, under the bubblewrap sandbox (namespaces, bind mounts, a private /tmp)

Per run (`tierbench run` of the demo agent, --runs runs, whole command timed, once per mode):

  none       --sandbox none
  bwrap      --sandbox bwrap

Prints medians and the ratios to `plain` (process) or `none` (run). Goal: the sandbox adds less
than 100 ms to a process and less than 20% to a demo run; exit status 1 if missed.

    .venv/bin/python bench/isolation_overhead.py [--count 50] [--runs 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tierbench.process import ProcessRegistry, run_process
from tierbench.sandbox import SandboxPolicy, find_bwrap, probe_bwrap

ROOT = Path(__file__).resolve().parents[1]


def _time_process(mode: str, work: Path, registry: ProcessRegistry, bwrap: str | None) -> float:
    policy = None
    if mode == "bwrap":
        policy = SandboxPolicy(kind="bwrap", bwrap=bwrap, writable=(work,), private_tmp=work / "tmp")
    started = time.perf_counter()
    outcome = run_process(["/bin/true"], cwd=work, env=dict(os.environ), timeout=30,
                          stdout_path=work / "out.log", stderr_path=work / "err.log",
                          registry=None if mode == "plain" else registry, sandbox=policy)
    elapsed = time.perf_counter() - started
    if outcome.exit_code != 0:
        raise SystemExit(f"{mode}: /bin/true exited {outcome.exit_code}: {(work / 'err.log').read_text()}")
    return elapsed


def per_process(count: int, bwrap: str | None) -> dict[str, float]:
    modes = ["plain", "marked"] + (["bwrap"] if bwrap else [])
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    registry = ProcessRegistry()
    with tempfile.TemporaryDirectory(prefix="tierbench-bench-", dir=ROOT) as tmp:
        work = Path(tmp)
        (work / "tmp").mkdir()
        for mode in modes:  # warm-up
            _time_process(mode, work, registry, bwrap)
        for _ in range(count):
            for mode in modes:
                samples[mode].append(_time_process(mode, work, registry, bwrap))
    registry.shutdown()
    return {mode: statistics.median(values) for mode, values in samples.items()}


def per_run(runs: int, modes: list[str]) -> dict[str, float]:
    medians = {}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="tierbench-bench-", dir=ROOT) as tmp:
            cmd = [sys.executable, "-m", "tierbench.cli", "run", str(ROOT / "examples/tests/py-fizzbuzz"),
                   "--results-dir", tmp, "--agent", "demo", "--tiers", "T0", "--runs", str(runs),
                   "--max-subtests", "1", "--parallel", "1", "--no-report", "--quiet", "--sandbox", mode]
            started = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            medians[mode] = (time.perf_counter() - started) / runs
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    bwrap = find_bwrap()
    if (problem := probe_bwrap(bwrap)) is not None:
        print(f"bubblewrap unavailable ({problem}); measuring without it")
        bwrap = None
    ok = True
    process = per_process(args.count, bwrap)
    print(f"per process, median of {args.count} (/bin/true):")
    for mode, value in process.items():
        print(f"  {mode:8s} {value * 1000:8.1f} ms   x{value / process['plain']:.2f} of plain")
    if bwrap:
        added = process["bwrap"] - process["plain"]
        print(f"  sandbox + marker add {added * 1000:.1f} ms per process (goal < 100 ms)")
        ok &= added < 0.1
    run = per_run(args.runs, ["none", "bwrap"] if bwrap else ["none"])
    print(f"per demo run ({args.runs} runs, one at a time, whole command / runs):")
    for mode, value in run.items():
        print(f"  {mode:8s} {value:8.2f} s    x{value / run['none']:.2f} of none")
    if bwrap:
        ok &= run["bwrap"] <= 1.2 * run["none"]
    print("goals met" if ok else "goal missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
