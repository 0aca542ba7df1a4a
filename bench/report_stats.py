"""How long the batch report's inference takes as a batch grows.

Builds synthetic batches in a temp directory (T tests x 7 tiers x 2 subtests x R runs, pass
probabilities from a logistic model with per-test difficulty), then times, median of --repeat:

  load     reading every run_result.json of the batch (load_batch; informational)
  infer    batch_uplift: paired t, cluster bootstrap, GEE and CMH for 6 tiers against T0
  report   the whole summarize_batch, given the loaded experiments

Goal: infer at 100 tests x 5 runs under 10 s, so a report never makes a user wait on statistics.

    .venv/bin/python bench/report_stats.py [--tests 10 30 100] [--runs 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tierbench.config import ExperimentConfig, save_config
from tierbench.models import RunResult, RunStatus
from tierbench.report.aggregate import batch_uplift, load_batch, summarize_batch
from tierbench.store.atomic import atomic_write_json

TIERS = ("T0", "T1", "T2", "T3", "T4", "T5", "T6")


def build(root: Path, tests: int, runs: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index in range(tests):
        test_id = f"t{index:03d}"
        exp = root / test_id
        save_config(ExperimentConfig(experiment_id=f"exp-{test_id}", test_id=test_id, test_dir="/x",
                                     tiers=TIERS, runs_per_subtest=runs, judges=("command",)),
                    exp / "config" / "experiment.json")
        difficulty = rng.normal(0.0, 1.5)
        for number, tier in enumerate(TIERS):
            for subtest in ("00", "01"):
                for run in range(1, runs + 1):
                    passed = rng.random() < 1 / (1 + np.exp(-(difficulty + 0.2 * number)))
                    atomic_write_json(exp / tier / subtest / f"run_{run:02d}" / "run_result.json",
                                      RunResult(tier=tier, subtest=subtest, run_number=run,
                                                status=RunStatus.PASSED if passed else RunStatus.FAILED,
                                                judge_score=0.9 if passed else 0.2, cost_usd=0.1))


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'tests':>6} {'runs':>6} {'load s':>8} {'infer s':>8} {'report s':>9}")
    worst = 0.0
    for tests in args.tests:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            build(root, tests, args.runs)
            experiments = load_batch(root)
            load = timed(lambda: load_batch(root), 1)
            infer = timed(lambda: batch_uplift(experiments), args.repeat)
            report = timed(lambda: summarize_batch(root, experiments), args.repeat)
            total = tests * len(TIERS) * 2 * args.runs
            print(f"{tests:>6} {total:>6} {load:>8.2f} {infer:>8.2f} {report:>9.2f}")
            if tests >= 100:
                worst = max(worst, infer)
    if worst > 10.0:
        print(f"goal missed: infer at 100 tests took {worst:.1f} s (goal < 10 s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
