"""`tierbench status`: progress of an experiment, read-only, safe while a coordinator runs.

Counts come from the run_result.json files of the planned runs (the durable truth); the pause and
rate-limit accounting comes from checkpoint.json; whether a process runs it now comes from the
OS lock, so a dead process never shows as running.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tierbench.config import load_config
from tierbench.experiment import ExperimentError
from tierbench.models import RunKey, RunStatus
from tierbench.store.checkpoint import Checkpoint
from tierbench.plan import plan_runs
from tierbench.spec import SpecError, load_test
from tierbench.store.layout import ExperimentLayout
from tierbench.store.lock import ExperimentLock
from tierbench.store.results import load_state, read_attempts, read_run_result
from tierbench.execute.budget import CostModel
from tierbench.progress import budget_line


def experiment_status(layout: ExperimentLayout) -> dict[str, Any]:
    if not layout.config_file.exists():
        raise ExperimentError(f"{layout.root} is not an experiment directory (no config/experiment.json)")
    config = load_config(layout.config_file)
    try:
        test = load_test(layout.test_snapshot)
    except SpecError as exc:
        raise ExperimentError(f"the experiment's test snapshot is invalid: {exc}") from None
    tiers: dict[str, dict[str, Any]] = {}
    total_cost = 0.0
    costs = CostModel()
    pending: list[RunKey] = []
    for key in plan_runs(config, test):
        row = tiers.setdefault(key.tier, {"total": 0, "done": 0, "passed": 0, "failed": 0, "cost_usd": 0.0,
                                          "attempts_rate_limited": 0, "attempts_error": 0})
        row["total"] += 1
        result = read_run_result(layout, key)
        if result is not None and result.status.is_result:
            row["done"] += 1
            row["passed" if result.status is RunStatus.PASSED else "failed"] += 1
            row["cost_usd"] += result.cost_usd
            total_cost += result.cost_usd
            costs.add(key.tier, key.subtest, result.cost_usd)
        else:
            pending.append(key)
        for attempt in read_attempts(layout, key):
            if attempt.status is RunStatus.RATE_LIMITED:
                row["attempts_rate_limited"] += 1
            elif attempt.status is RunStatus.ERROR:
                row["attempts_error"] += 1
    lock = ExperimentLock(layout.lock_file)
    running = lock.is_held()
    # While a coordinator runs, a half-written last journal line is expected; the snapshot is whole.
    checkpoint = load_state(layout, strict=not running)
    until = checkpoint.rate_limit_until
    return {
        "experiment_dir": str(layout.root),
        "experiment_id": config.experiment_id,
        "test_id": config.test_id,
        "agent": config.agent,
        "status": checkpoint.status.value if layout.checkpoint.exists() or layout.journal.exists() else "not started",
        "running": running,
        "pid": lock.holder_pid() if running else None,
        "tiers": tiers,
        "done": sum(t["done"] for t in tiers.values()),
        "total": sum(t["total"] for t in tiers.values()),
        "passed": sum(t["passed"] for t in tiers.values()),
        "cost_usd": round(total_cost, 6),
        "rate_limit_until": until.isoformat() if until is not None else None,
        "rate_limit_active": until is not None and until > datetime.now(timezone.utc),
        "rate_limit_source": checkpoint.rate_limit_source,
        "pause_count": checkpoint.pause_count,
        "total_pause_seconds": checkpoint.total_pause_seconds,
        "rate_limited_attempts": sum(t["attempts_rate_limited"] for t in tiers.values()),
        "error_attempts": sum(t["attempts_error"] for t in tiers.values()),
        **_budget(checkpoint, costs, pending),
    }


def _budget(state: Checkpoint, costs: CostModel, pending: list[RunKey]) -> dict[str, Any]:
    """Budget, spent, committed (runs in flight) and the forecast of the whole plan: spent plus
    committed plus each pending run at the mean cost of its subtest. From the recorded state
    (checkpoint plus journal), so a running coordinator's latest commitments show."""
    if state.budget_usd is None:
        return {"budget_usd": None}
    committed = sum(state.budget_commitments.values())
    in_flight = set(state.budget_commitments)
    rest = sum(costs.expected(k.tier, k.subtest) or 0.0 for k in pending
               if f"{k.tier}/{k.subtest}/{k.run}" not in in_flight)
    return {"budget_usd": state.budget_usd, "spent_usd": round(state.spent_usd, 6),
            "committed_usd": round(committed, 6),
            "forecast_usd": round(state.spent_usd + committed + rest, 6)}


def format_status(status: dict[str, Any]) -> str:
    running = f"running now (PID {status['pid']})" if status["running"] else "no process is running it"
    lines = [
        f"{status['test_id']}  [{status['status']}]  {running}",
        f"  {status['experiment_dir']}",
        f"  runs {status['done']}/{status['total']}  passed {status['passed']}  cost ${status['cost_usd']:.4f}",
        "",
        f"  {'tier':<5} {'done':>9} {'passed':>7} {'failed':>7} {'cost':>10} {'rate-limited':>13} {'errors':>7}",
    ]
    for tier, row in sorted(status["tiers"].items()):
        lines.append(f"  {tier:<5} {row['done']:>4}/{row['total']:<4} {row['passed']:>7} {row['failed']:>7} "
                     f"${row['cost_usd']:>9.4f} {row['attempts_rate_limited']:>13} {row['attempts_error']:>7}")
    lines.append("")
    lines.append(f"  rate-limited attempts {status['rate_limited_attempts']}, pauses {status['pause_count']} "
                 f"({status['total_pause_seconds']:.0f}s paused), infrastructure-error attempts "
                 f"{status['error_attempts']}")
    if status.get("budget_usd") is not None:
        lines.append("  " + budget_line(status["budget_usd"], status["spent_usd"], status["committed_usd"],
                                        status["forecast_usd"]))
    if status["rate_limit_active"]:
        lines.append(f"  rate limited until {status['rate_limit_until']} ({status['rate_limit_source']})")
    return "\n".join(lines)
