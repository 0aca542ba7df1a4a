"""How the state store scales with the number of completed runs.

For each size N it builds an experiment in a temp directory with N completed runs (minimal valid
run_result.json files, each recorded through StateStore), then measures:

  record   the time of one record_run (journal append + fsync), over --records calls at that size
  resume   StateStore.open with every key planned (snapshot + tail replay + reconcile + snapshot)
  rebuild  StateStore.open after checkpoint.json was deleted (whole-journal replay; informational)
  state    store.results.load_state, strict (what status and report read; informational)
  check    check_experiment: state + every run file + the whole journal (informational)
  scan     repair's scan of every run directory (parse + validate every run_result.json)
  repair   the whole repair_experiment (scan + backups + new checkpoint; informational)

Goals: record median at the largest size <= 2x the smallest; resume at 100k < 2 s; scan at 100k < 20 s.
Timings are with a warm page cache (the files were just written). Exit status 1 if a goal is missed.

    .venv/bin/python bench/checkpoint_scale.py [--sizes 1000 10000 100000] [--records 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tierbench.models import ExperimentStatus, RunKey, RunResult, RunStatus
from tierbench.store.layout import ExperimentLayout
from tierbench.store.repair import check_experiment, repair_experiment, scan_run_dirs
from tierbench.store.results import load_state
from tierbench.store.state import StateStore

TIERS = ("T0", "T1", "T2", "T3", "T4", "T5", "T6")
SUBTESTS_PER_TIER = 50


def plan(total: int) -> list[RunKey]:
    """`total` keys spread over 7 tiers x 50 subtests, the way a large experiment would be."""
    subtests = [(tier, f"{index:02d}") for tier in TIERS for index in range(SUBTESTS_PER_TIER)]
    keys = []
    for number in range(total):
        tier, subtest = subtests[number % len(subtests)]
        keys.append(RunKey(tier=tier, subtest=subtest, run=number // len(subtests) + 1))
    return keys


def write_results(layout: ExperimentLayout, keys: list[RunKey]) -> None:
    """Minimal valid results, written plainly (no fsync): this is set-up, not what is measured."""
    template = RunResult(tier="T0", subtest="00", run_number=1, status=RunStatus.PASSED).model_dump_json()
    for index, key in enumerate(keys):
        status = "passed" if index % 3 else "failed"
        text = (template.replace('"run_number":1', f'"run_number":{key.run}')
                .replace('"tier":"T0"', f'"tier":"{key.tier}"').replace('"subtest":"00"', f'"subtest":"{key.subtest}"')
                .replace('"status":"passed"', f'"status":"{status}"'))
        run_dir = layout.run_dir(key)
        os.makedirs(run_dir, exist_ok=True)
        with open(run_dir / "run_result.json", "w") as handle:
            handle.write(text)


def status_of(index: int) -> RunStatus:
    return RunStatus.PASSED if index % 3 else RunStatus.FAILED


def build(size: int, records: int, base: Path) -> tuple[ExperimentLayout, list[RunKey], StateStore, float]:
    """An open store with `size` runs recorded, plus `records` finished runs still to record."""
    layout = ExperimentLayout(base / f"exp_{size}")
    keys = plan(size + records)
    store, _ = StateStore.open(layout, experiment_id="bench", config_hash="h", planned=keys)
    write_results(layout, keys)  # after open, or it would adopt them all: the runs "finish" now
    # Real runs fsync their results as they go. Flush the set-up's unsynced files now, or ext4's
    # ordered mode makes the store's first fsyncs pay for writing them out.
    os.sync()
    started = time.perf_counter()
    for index, key in enumerate(keys[:size]):
        store.record_run(key, status_of(index))
    return layout, keys, store, (time.perf_counter() - started) / size


def time_records(built: dict[int, tuple], records: int, batch: int = 10) -> dict[int, list[float]]:
    """Time record_run at every size in alternating batches, so a burst of disk load from other
    processes hits all sizes alike instead of skewing one of them."""
    timings: dict[int, list[float]] = {size: [] for size in built}
    for start in range(0, records, batch):
        for size, (_, keys, store, _) in built.items():
            for index in range(size + start, size + min(start + batch, records)):
                started = time.perf_counter()
                store.record_run(keys[index], status_of(index))
                timings[size].append(time.perf_counter() - started)
    return timings


def measure_load(layout: ExperimentLayout, keys: list[RunKey]) -> dict[str, float]:
    started = time.perf_counter()
    store, notes = StateStore.open(layout, experiment_id="bench", config_hash="h", planned=keys)
    resume = time.perf_counter() - started
    assert len(store.completed) == len(keys) and not notes.fixed, notes.fixed
    store.close()

    layout.checkpoint.unlink()
    started = time.perf_counter()
    store, notes = StateStore.open(layout, experiment_id="bench", config_hash="h", planned=keys)
    rebuild = time.perf_counter() - started
    assert len(store.completed) == len(keys)
    store.close()

    started = time.perf_counter()
    state = load_state(layout)  # what status, report and the batch read: snapshot + tail + whole-journal check
    state_seconds = time.perf_counter() - started
    assert state.completed_count() == len(keys)
    started = time.perf_counter()
    problems = check_experiment(layout)
    check_seconds = time.perf_counter() - started
    assert not problems, problems[:3]

    started = time.perf_counter()
    scan = scan_run_dirs(layout)
    scan_seconds = time.perf_counter() - started
    assert len(scan.results) == len(keys)
    started = time.perf_counter()
    report = repair_experiment(layout.root)
    repair_seconds = time.perf_counter() - started
    assert report.rebuilt_count == report.original_count == len(keys)
    return {"resume": resume, "rebuild": rebuild, "state": state_seconds, "check": check_seconds,
            "scan": scan_seconds, "repair": repair_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--records", type=int, default=200, help="record_run calls timed at each size")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    base = Path(tempfile.mkdtemp(prefix="tierbench-bench-"))
    results: dict[int, dict[str, float]] = {}
    try:
        built = {}
        for size in sizes:
            print(f"building {size} completed runs ...", file=sys.stderr, flush=True)
            built[size] = build(size, args.records, base)
        print(f"timing {args.records} record_run calls at each size ...", file=sys.stderr, flush=True)
        for size, timings in time_records(built, args.records).items():
            timings.sort()
            results[size] = {"record_median": statistics.median(timings), "record_mean": statistics.fmean(timings),
                             "record_p99": timings[int(0.99 * (len(timings) - 1))], "bulk_per_record": built[size][3]}
        for size, (layout, keys, store, _) in built.items():
            store.close(ExperimentStatus.INTERRUPTED)
            print(f"timing resume and repair at {size} ...", file=sys.stderr, flush=True)
            results[size].update(measure_load(layout, keys))
            shutil.rmtree(layout.root)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    ms = 1000.0
    print(f"{'runs':>8} {'record med':>11} {'mean':>8} {'p99':>8} {'bulk/rec':>9} {'resume':>8} "
          f"{'rebuild':>8} {'state':>8} {'check':>8} {'scan':>8} {'repair':>8}")
    for size, r in results.items():
        print(f"{size:>8} {r['record_median'] * ms:>9.3f}ms {r['record_mean'] * ms:>6.3f}ms "
              f"{r['record_p99'] * ms:>6.3f}ms {r['bulk_per_record'] * ms:>7.3f}ms {r['resume']:>7.3f}s "
              f"{r['rebuild']:>7.3f}s {r['state']:>7.3f}s {r['check']:>7.3f}s {r['scan']:>7.3f}s "
              f"{r['repair']:>7.3f}s")
    small, large = results[sizes[0]], results[sizes[-1]]
    ratio = large["record_median"] / small["record_median"]
    print(f"record median ratio {sizes[-1]} / {sizes[0]}: {ratio:.2f}x")
    print(f"resume ratio {sizes[-1]} / {sizes[0]}: {large['resume'] / small['resume']:.1f}x; "
          f"scan ratio: {large['scan'] / small['scan']:.1f}x")
    goals = [(f"record median at {sizes[-1]} <= 2x at {sizes[0]}", ratio <= 2.0, f"{ratio:.2f}x")]
    if 100000 in results:
        goals.append(("resume at 100000 < 2 s", results[100000]["resume"] < 2.0, f"{results[100000]['resume']:.2f} s"))
        goals.append(("repair scan at 100000 < 20 s", results[100000]["scan"] < 20.0,
                      f"{results[100000]['scan']:.2f} s"))
    for name, ok, value in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({value})")
    return 0 if all(ok for _, ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
