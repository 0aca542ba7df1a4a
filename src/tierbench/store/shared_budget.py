"""A budget shared by the experiments of one batch (`tierbench batch --budget-usd`).

Each experiment keeps its own spend and commitments in its own journal and checkpoint (one writer
each). What they share is `<batch results dir>/.budget.lock`: a coordinator takes it (flock, held
for milliseconds) to read what its siblings have spent and committed, decide, and journal its own
commitment before letting the next one decide. A dead holder's flock is dropped by the OS.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tierbench.models import RunResult
from tierbench.store.layout import ExperimentLayout
from tierbench.store.results import load_state

LOCK_NAME = ".budget.lock"


@contextmanager
def budget_lock(scope: Path) -> Iterator[None]:
    """Hold the batch's budget lock (waits for another coordinator's decision, never long)."""
    scope = Path(scope)
    scope.mkdir(parents=True, exist_ok=True)
    fd = os.open(scope / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _files_cost(root: Path) -> tuple[float, int]:
    """Cost of every recorded attempt, and how many of them are results."""
    total, results = 0.0, 0
    for pattern in ("T[0-6]/*/run_*/run_result.json", "T[0-6]/*/run_*/attempts/*/run_result.json"):
        for path in root.glob(pattern):
            try:
                result = RunResult.model_validate_json(path.read_text())
            except (OSError, ValueError):
                continue
            total += result.cost_usd
            results += result.status.is_result
    return total, results


def sibling_spend(scope: Path, own_root: Path) -> tuple[float, float, int]:
    """(spent, committed, finished results) of every other experiment directory of the batch. An
    experiment that never ran under the budget has no spend in its journal: its files say it."""
    own = Path(own_root).resolve()
    spent = committed = 0.0
    results = 0
    for config in sorted(Path(scope).glob("*/config/experiment.json")):
        root = config.parent.parent
        if ".backup-" in root.name or root.resolve() == own:
            continue
        state = load_state(ExperimentLayout(root), strict=False)
        if state.budget_usd is not None:
            spent += state.spent_usd
            committed += sum(state.budget_commitments.values())
            results += state.completed_count()
        else:
            cost, count = _files_cost(root)
            spent += cost
            results += count
    return spent, committed, results
