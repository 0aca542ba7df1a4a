"""The coordinator's own time per completed run, as the plan grows: 1k, 10k and 100k planned runs.

A synthetic test (tiers T0..T4, 50 subtests each) is planned at each size and run by the real
Coordinator with an in-process no-op executor: a submitted run completes at once as `passed`
without touching git or spawning anything. Every millisecond measured is therefore the
coordinator's: choosing the next ready run, building its request, recording the result in the
journal (append + fsync), counting it, deciding tier completion, snapshotting the checkpoint.

At each size the first --sample runs to complete are timed (from the first launch to the
sample-th recorded result), then the experiment is stopped: what matters is the cost per run as a
function of the plan's size, which is what used to grow (every completion walked the whole plan).
Opening (plan, store, queues) is printed separately.

Goal: the per-run figure at 100k within 2x of the figure at 1k. Exit status 1 if missed.

Memory: one more pass at the largest size under tracemalloc prints the Python memory the
coordinator keeps per completed run (traced bytes after the sample minus before the first launch,
divided by the runs); a scheduler that forgets finished runs keeps it near zero. Timings are taken
without tracemalloc.

    .venv/bin/python bench/scheduler_scale.py [--sizes 1000 10000 100000] [--sample 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from pathlib import Path

import yaml

from tierbench.execute.coordinator import Coordinator
from tierbench.execute.executor import Completion, Executor
from tierbench.experiment import start_experiment
from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.plan import plan_runs
from tierbench.progress import QuietProgress
from tierbench.run.attempt import RunRequest
from tierbench.spec import load_test
from tierbench.store.state import StateStore

TIERS = ("T0", "T1", "T2", "T3", "T4")
SUBTESTS = 50


class NoopExecutor(Executor):
    """Every submitted run completes at once as passed. Stops the coordinator after `sample` runs."""

    name = "noop"

    def __init__(self, coordinator: Coordinator, sample: int):
        self.coordinator, self.sample = coordinator, sample
        self._pending: deque[RunKey] = deque()
        self.completed = 0
        self.first_submit: float | None = None
        self.sample_done: float | None = None
        self.memory_at_start = self.memory_at_sample = 0  # traced bytes, when tracemalloc runs

    def submit(self, request: RunRequest) -> None:
        if self.first_submit is None:
            self.memory_at_start = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
            self.first_submit = time.perf_counter()
        self._pending.append(request.key)

    def poll(self, timeout: float) -> list[Completion]:
        out = []
        while self._pending:
            key = self._pending.popleft()
            out.append(Completion(key, RunResult(tier=key.tier, subtest=key.subtest, run_number=key.run,
                                                 status=RunStatus.PASSED, judge_score=1.0)))
        # the coordinator records the previous batch before it polls again
        self.completed += len(out)
        if self.completed >= self.sample and self.sample_done is None:
            self.sample_done = time.perf_counter()
            self.memory_at_sample = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
            self.coordinator.request_stop()
        return out

    def cancel_queued(self) -> list[RunKey]:
        withdrawn = list(self._pending)
        self._pending.clear()
        return withdrawn

    def interrupt(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def make_test(root: Path) -> Path:
    test_dir = root / "scale"
    (test_dir / "repo").mkdir(parents=True)
    (test_dir / "repo" / "README.md").write_text("scale\n")
    (test_dir / "prompt.md").write_text("nothing\n")
    (test_dir / "rubric.yaml").write_text(yaml.safe_dump({"categories": {"c": {"weight": 1.0, "items": [
        {"id": "ok", "check": "ok", "points": 1, "command": "true"}]}}}))
    (test_dir / "test.yaml").write_text(yaml.safe_dump({
        "id": "scale", "name": "scale", "language": "python", "source": {"path": "repo/"},
        "task": {"prompt_file": "prompt.md", "timeout_seconds": 60},
        "validation": {"rubric_file": "rubric.yaml"}, "tiers": list(TIERS), "judges": ["command"]}))
    for tier in TIERS:
        (test_dir / "tiers" / tier).mkdir(parents=True)
        for index in range(SUBTESTS):
            (test_dir / "tiers" / tier / f"{index:02d}-s.yaml").write_text("description: s\n")
    return test_dir


def measure(size: int, sample: int, base: Path, test_dir: Path) -> tuple[float, float, float]:
    """(seconds to open, seconds per completed run over the first `sample` runs, traced bytes kept
    per completed run: 0 unless tracemalloc is tracing)."""
    test = load_test(test_dir)
    runs = max(1, size // (len(TIERS) * SUBTESTS))
    root = Path(tempfile.mkdtemp(prefix=f"exp{size}-", dir=base))
    opened_at = time.perf_counter()
    opened = start_experiment(test, root, {"runs_per_subtest": runs, "preflight": False, "parallel": 8,
                                           "agent": "demo"})
    config = opened.config
    store, _ = StateStore.open(opened.layout, experiment_id=config.experiment_id,
                               config_hash=config.config_hash(), planned=plan_runs(config, opened.test))
    holder: dict[str, NoopExecutor] = {}

    def factory(coordinator: Coordinator, _base: str) -> Executor:
        holder["x"] = NoopExecutor(coordinator, min(sample, size))
        return holder["x"]

    coordinator = Coordinator(opened.layout, config, opened.test, store, QuietProgress(), executor_factory=factory)
    open_seconds = time.perf_counter() - opened_at
    coordinator.run()
    store.close()
    executor = holder["x"]
    assert executor.first_submit is not None and executor.sample_done is not None
    return (open_seconds, (executor.sample_done - executor.first_submit) / executor.completed,
            (executor.memory_at_sample - executor.memory_at_start) / executor.completed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierbench-sched-") as tmp:
        base = Path(tmp)
        test_dir = make_test(base)
        per_run: dict[int, list[float]] = {size: [] for size in args.sizes}
        opening: dict[int, list[float]] = {size: [] for size in args.sizes}
        for _ in range(args.repeat):  # sizes interleaved, so machine noise hits them alike
            for size in args.sizes:
                open_s, run_s, _ = measure(size, args.sample, base, test_dir)
                opening[size].append(open_s)
                per_run[size].append(run_s)
        print(f"{'planned runs':>12} {'open (s)':>9} {'ms per completed run (median of ' + str(args.repeat) + ')':>40}")
        for size in args.sizes:
            print(f"{size:>12} {statistics.median(opening[size]):>9.2f} "
                  f"{statistics.median(per_run[size]) * 1000:>40.3f}")
        small, large = statistics.median(per_run[args.sizes[0]]), statistics.median(per_run[args.sizes[-1]])
        ratio = large / small
        ok = ratio <= 2.0
        print(f"ratio {args.sizes[-1]} / {args.sizes[0]}: {ratio:.2f} (goal <= 2.0): {'ok' if ok else 'MISSED'}")
        tracemalloc.start()
        _, _, kept = measure(args.sizes[-1], args.sample, base, test_dir)
        tracemalloc.stop()
        print(f"memory kept per completed run at {args.sizes[-1]} planned: {kept / 1024:.2f} KB (tracemalloc)")
        print(f"(journal on {base}; each completed run includes its fsync'd journal append)")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
