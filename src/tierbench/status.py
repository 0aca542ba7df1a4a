"""`tierbench status`: progress of an experiment, read-only, safe while a coordinator runs.

Counts come from the run_result.json files of the planned runs (the durable truth); the pause and
rate-limit accounting comes from checkpoint.json; whether a process runs it now comes from the
OS lock, so a dead process never shows as running.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tierbench.config import load_config
from tierbench.experiment import ExperimentError
from tierbench.models import RunResult, RunStatus
from tierbench.plan import plan_runs
from tierbench.spec import SpecError, load_test
from tierbench.store.layout import ExperimentLayout
from tierbench.store.lock import ExperimentLock
from tierbench.store.state import peek_state
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
    pending = []
    for key in plan_runs(config, test):
        row = tiers.setdefault(key.tier, {"total": 0, "done": 0, "passed": 0, "failed": 0, "cost_usd": 0.0,
                                          "attempts_rate_limited": 0, "attempts_error": 0})
        row["total"] += 1
        result_path = layout.run_result(key)
        if result_path.exists():
            try:
                result = RunResult.model_validate_json(result_path.read_text())
            except (OSError, ValueError):
                result = None
            if result is not None and result.status.is_result:
                row["done"] += 1
                row["passed" if result.status is RunStatus.PASSED else "failed"] += 1
                row["cost_usd"] += result.cost_usd
                total_cost += result.cost_usd
                costs.add(key.tier, key.subtest, result.cost_usd)
            else:
                pending.append(key)
        else:
            pending.append(key)
        attempts = layout.attempts_dir(key)
        if attempts.is_dir():
            for attempt in attempts.glob("*/run_result.json"):
                status = json.loads(attempt.read_text()).get("status")
                if status == RunStatus.RATE_LIMITED.value:
                    row["attempts_rate_limited"] += 1
                elif status == RunStatus.ERROR.value:
                    row["attempts_error"] += 1
    checkpoint = _read_checkpoint(layout.checkpoint)
    lock = ExperimentLock(layout.lock_file)
    running = lock.is_held()
    until = checkpoint.get("rate_limit_until")
    return {
        "experiment_dir": str(layout.root),
        "experiment_id": config.experiment_id,
        "test_id": config.test_id,
        "agent": config.agent,
        "status": checkpoint.get("status", "not started"),
        "running": running,
        "pid": lock.holder_pid() if running else None,
        "tiers": tiers,
        "done": sum(t["done"] for t in tiers.values()),
        "total": sum(t["total"] for t in tiers.values()),
        "passed": sum(t["passed"] for t in tiers.values()),
        "cost_usd": round(total_cost, 6),
        "rate_limit_until": until,
        "rate_limit_active": bool(until) and datetime.fromisoformat(until) > datetime.now(timezone.utc),
        "rate_limit_source": checkpoint.get("rate_limit_source"),
        "pause_count": checkpoint.get("pause_count", 0),
        "total_pause_seconds": checkpoint.get("total_pause_seconds", 0.0),
        "rate_limited_attempts": sum(t["attempts_rate_limited"] for t in tiers.values()),
        "error_attempts": sum(t["attempts_error"] for t in tiers.values()),
        **_budget(layout, costs, pending),
    }


def _budget(layout: ExperimentLayout, costs: CostModel, pending: list) -> dict[str, Any]:
    """Budget, spent, committed (runs in flight) and the forecast of the whole plan: spent plus
    committed plus each pending run at the mean cost of its subtest. Read from the checkpoint and
    the journal after it, so a running coordinator's latest commitments show."""
    state = peek_state(layout)
    if state is None or state.budget_usd is None:
        return {"budget_usd": None}
    committed = sum(state.budget_commitments.values())
    in_flight = set(state.budget_commitments)
    rest = sum(costs.expected(k.tier, k.subtest) or 0.0 for k in pending
               if f"{k.tier}/{k.subtest}/{k.run}" not in in_flight)
    return {"budget_usd": state.budget_usd, "spent_usd": round(state.spent_usd, 6),
            "committed_usd": round(committed, 6),
            "forecast_usd": round(state.spent_usd + committed + rest, 6)}


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


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
