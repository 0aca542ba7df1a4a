"""Reading the experiment's state and results, and writing the files derived from them.

The one place that reads:
- the recorded state (`load_state`: checkpoint.json plus the journal events after it), used by
  `status`, `check`, the report and the batch;
- run results (`read_run_result`), written by the run itself (`run/attempt.py`);
and the one writer of the derived per-tier and per-experiment files:
- `T*/best_subtest.json` (`save_best_subtest`; the rule is `plan.choose_best`),
- `stats.json` (`save_stats`).

All writes are atomic; the coordinator calls them through its `StateStore`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from tierbench.errors import TierbenchError
from tierbench.models import RunKey, RunResult
from tierbench.plan import BestSubtest
from tierbench.store.atomic import atomic_write_json
from tierbench.store.checkpoint import Checkpoint
from tierbench.store.journal import iter_events
from tierbench.store.layout import RUN_RESULT_NAME, ExperimentLayout
from tierbench.store.repair import read_recorded_state


class StateCorrupt(TierbenchError):
    """checkpoint.json or journal.jsonl cannot be read as they are."""


def load_state(layout: ExperimentLayout, *, strict: bool = True) -> Checkpoint:
    """The recorded state: checkpoint.json plus the journal events after it, read-only.

    strict: a corrupt checkpoint.json or unreadable journal lines raise StateCorrupt (naming the
    file and `tierbench repair`). A torn last journal line is not corruption: a crash leaves one,
    and the next resume drops it. Not strict: the best state that can be read (for a live view
    that polls a running experiment). A missing state is an empty one."""
    checkpoint, _loaded, problems = read_recorded_state(layout, torn_tail=False)
    if not strict:
        return checkpoint
    details = [f"{p.path}: {p.detail}" for p in problems]
    details += [f"{layout.journal}: {line}" for line in unreadable_journal_lines(layout, checkpoint.journal_offset)]
    if details:
        more = f" (and {len(details) - 1} more problem(s))" if len(details) > 1 else ""
        raise StateCorrupt(details[0] + more, f"Rebuild the state with: tierbench repair {layout.root}")
    return checkpoint


def unreadable_journal_lines(layout: ExperimentLayout, end: int) -> list[str]:
    """Unreadable lines in the part of journal.jsonl a snapshot already covers (bytes [0, end)).
    They change nothing the state says, but the journal is the record: check and status name them."""
    bad: list[str] = []
    for _ in iter_events(layout.journal, 0, end, bad):
        pass
    return bad


def read_run_result(layout: ExperimentLayout, key: RunKey) -> RunResult | None:
    """A run's run_result.json, or None if it is missing or unreadable (repair reports those)."""
    try:
        return RunResult.model_validate_json(layout.run_result(key).read_bytes())
    except (OSError, ValueError):
        return None


def read_run_results(layout: ExperimentLayout, keys: Iterable[RunKey]) -> list[RunResult]:
    return [result for key in keys if (result := read_run_result(layout, key)) is not None]


def read_attempts(layout: ExperimentLayout, key: RunKey) -> list[RunResult]:
    """The archived non-result attempts of a run (attempts/NN/run_result.json), readable ones only."""
    found = []
    for path in sorted(layout.attempts_dir(key).glob(f"*/{RUN_RESULT_NAME}")):
        try:
            found.append(RunResult.model_validate_json(path.read_bytes()))
        except (OSError, ValueError):
            continue
    return found


def read_best_subtest(layout: ExperimentLayout, tier: str) -> BestSubtest | None:
    """T*/best_subtest.json, None if absent or unreadable (the caller recomputes it)."""
    try:
        return BestSubtest.model_validate_json(layout.best_subtest_file(tier).read_bytes())
    except (OSError, ValidationError):
        return None


def save_best_subtest(layout: ExperimentLayout, best: BestSubtest) -> None:
    atomic_write_json(layout.best_subtest_file(best.tier), best)


def read_stats(layout: ExperimentLayout) -> dict[str, Any]:
    try:
        data = json.loads(layout.stats_file.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_stats(layout: ExperimentLayout, stats: dict[str, Any]) -> None:
    atomic_write_json(Path(layout.stats_file), stats)
