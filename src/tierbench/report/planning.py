"""`tierbench plan`: how many runs per subtest a question needs, and what they will cost.

From a pilot (an existing experiment or batch directory) or a stated prior pass rate, for each test
and tier: the runs per subtest needed for a target confidence-interval half-width on a subtest's
pass rate, or to detect a target uplift of a subtest over a T0 subtest; then the forecast runs,
cost and wall time at the given parallelism. Pure reading and arithmetic: nothing is written.

Where a number comes from is part of the answer (`rate_source`, `cost_source`): the pilot's runs
of the same test and tier, else the pilot's runs of that tier over every test, else the pilot's
runs overall, else the prior (`--prior-pass-rate`, `--cost-per-run`, `--seconds-per-run`). With
no pilot and no prior the pass rate is taken as 0.5, the rate that needs the most runs. A pilot's
rate is (passes + 1) / (runs + 2), so a small pilot at 0% or 100% does not plan too few runs.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tierbench.errors import TierbenchError
from tierbench.models import RunResult, RunStatus
from tierbench.report import stats
from tierbench.report.aggregate import find_experiment_dirs, load_experiment_runs

WORST_CASE_RATE = 0.5


class PlanError(TierbenchError):
    """A plan asked for with a bad target, path or pilot."""


class PlanTier(BaseModel):
    test_id: str
    tier: str
    subtests: int
    pass_rate: float
    rate_source: str
    runs_per_subtest: int | None  # None: more than the search limit
    runs_recorded: int = 0  # result runs the pilot already holds for this test and tier
    runs_total: int | None = None  # subtests × runs_per_subtest
    cost_per_run: float | None = None
    cost_source: str = "unknown"
    seconds_per_run: float | None = None
    cost: float | None = None  # runs_total × cost_per_run
    run_seconds: float | None = None  # runs_total × seconds_per_run


class Plan(BaseModel):
    target: Literal["half_width", "uplift"]
    half_width: float | None = None
    uplift: float | None = None
    alpha: float = 0.05
    power: float = 0.8
    confidence: float = 0.95
    parallel: int = 2
    pilot: str | None = None
    prior_pass_rate: float | None = None
    rows: list[PlanTier] = Field(default_factory=list)
    recommended_runs: int | None = None  # the --runs that meets the target for every row
    total_runs: int | None = None  # every row at recommended_runs
    total_cost: float | None = None
    cost_complete: bool = False  # every row had a cost per run
    wall_seconds: float | None = None  # total run time / parallel
    method: str = ""


def find_tests(path: Path) -> list[Path]:
    """A test directory (holding test.yaml), or the test directories directly inside `path`."""
    path = Path(path)
    if (path / "test.yaml").is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if (p / "test.yaml").is_file())
        if found:
            return found
    raise PlanError(f"{path}: no test.yaml there or in its subdirectories. Fix: pass a test "
                     "directory or a directory of tests")


def _pilot_runs(pilot: Path) -> dict[str, list[RunResult]]:
    """test id -> result runs of an experiment dir, or of every experiment of a batch dir."""
    pilot = Path(pilot)
    if (pilot / "config" / "experiment.json").is_file():
        dirs = [pilot]
    elif pilot.is_dir() and find_experiment_dirs(pilot):
        dirs = find_experiment_dirs(pilot)
    else:
        raise PlanError(f"{pilot}: not an experiment directory (config/experiment.json) or a batch "
                         "of them. Fix: pass --pilot a results directory written by tierbench run "
                         "or batch")
    out: dict[str, list[RunResult]] = {}
    for exp in dirs:
        data = load_experiment_runs(exp)
        test_id = (data.config.test_id if data.config else None) or exp.name
        out.setdefault(test_id, []).extend(data.results)
    return out


def _pick(groups: list[tuple[str, list[RunResult]]]) -> tuple[str, list[RunResult]] | None:
    return next(((label, runs) for label, runs in groups if runs), None)


def make_plan(path: Path, *, half_width: float | None = None, uplift: float | None = None,
              pilot: Path | None = None, prior_pass_rate: float | None = None,
              tiers: list[str] | None = None, max_subtests: int | None = None, parallel: int = 2,
              alpha: float = 0.05, power: float = 0.8, confidence: float = 0.95,
              cost_per_run: float | None = None, seconds_per_run: float | None = None) -> Plan:
    """The runs per subtest each test and tier needs for the target, with forecast cost and time."""
    from tierbench.spec import load_test

    if (half_width is None) == (uplift is None):
        raise PlanError("give exactly one target: --half-width H or --uplift D")
    if half_width is not None and not 0 < half_width < 1:
        raise PlanError(f"--half-width {half_width}: must be between 0 and 1 (e.g. 0.1)")
    if uplift is not None and not 0 < abs(uplift) < 1:
        raise PlanError(f"--uplift {uplift}: must be between 0 and 1 (e.g. 0.2)")
    if prior_pass_rate is not None and not 0 <= prior_pass_rate <= 1:
        raise PlanError(f"--prior-pass-rate {prior_pass_rate}: must be between 0 and 1")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise PlanError(f"--alpha {alpha} / --power {power}: both must be between 0 and 1")
    for flag, value in (("--cost-per-run", cost_per_run), ("--seconds-per-run", seconds_per_run)):
        if value is not None and value < 0:
            raise PlanError(f"{flag} {value}: must not be negative")
    if parallel <= 0:
        raise PlanError(f"--parallel {parallel}: must be a positive whole number")
    plan = Plan(target="half_width" if half_width is not None else "uplift", half_width=half_width,
                uplift=uplift, alpha=alpha, power=power, confidence=confidence, parallel=parallel,
                pilot=str(pilot) if pilot else None, prior_pass_rate=prior_pass_rate)
    plan.method = (
        f"runs per subtest so that the expected {confidence:.0%} Wilson half-width of a subtest's "
        f"pass rate is at most {half_width}" if half_width is not None else
        f"runs per subtest (and per T0 subtest) to detect a pass-rate difference of {uplift} over "
        f"T0 with power {power} at two-sided alpha {alpha} (arcsine effect size, normal power)")
    by_test = _pilot_runs(pilot) if pilot is not None else {}
    every = [r for runs in by_test.values() for r in runs]
    for test_dir in find_tests(path):
        test = load_test(test_dir)
        test_id = test.spec.id
        selected = [t for t in test.spec.tiers if tiers is None or t in tiers]
        own = by_test.get(test_id, [])

        def source(tier: str) -> tuple[str, list[RunResult]] | None:
            return _pick([(f"pilot {test_id} {tier}", [r for r in own if r.tier == tier]),
                          (f"pilot {tier}, all tests", [r for r in every if r.tier == tier]),
                          ("pilot, all tiers", every)])

        def rate_of(tier: str) -> tuple[float, str]:
            if (found := source(tier)) is not None:
                label, runs = found
                # (passes + 1) / (runs + 2): a pilot of 3/3 does not promise a rate of 1.
                passes = sum(r.status == RunStatus.PASSED for r in runs)
                return (passes + 1) / (len(runs) + 2), f"{label} ({passes}/{len(runs)} passed)"
            if prior_pass_rate is not None:
                return prior_pass_rate, "prior"
            return WORST_CASE_RATE, "assumed 0.5, the worst case (no pilot, no prior)"

        base_rate, _ = rate_of("T0")
        for tier in selected:
            count = len(test.subtests.get(tier, []))
            if max_subtests is not None:
                count = min(count, max_subtests)
            rate, rate_source = rate_of(tier)
            if half_width is not None:
                n = stats.runs_for_half_width(rate, half_width, confidence)
            else:  # every arm is compared with T0 at T0's rate, so every tier needs the same n
                assert uplift is not None  # exactly one target was checked above
                n = stats.runs_for_uplift(base_rate, uplift, alpha, power)
                if n is None:  # T0's rate + uplift leaves [0, 1]: plan the detectable drop instead
                    n = stats.runs_for_uplift(base_rate, -uplift, alpha, power)
            row = PlanTier(test_id=test_id, tier=tier, subtests=count, pass_rate=rate,
                           rate_source=rate_source, runs_per_subtest=n,
                           runs_recorded=sum(r.tier == tier for r in own))
            found = source(tier)
            if found is not None:
                label, runs = found
                row.cost_per_run = statistics.fmean(r.cost_usd for r in runs)
                row.seconds_per_run = statistics.fmean(r.duration_seconds for r in runs)
                row.cost_source = f"{label} ({len(runs)} runs)"
            else:
                row.cost_per_run, row.seconds_per_run = cost_per_run, seconds_per_run
                row.cost_source = "--cost-per-run" if cost_per_run is not None else "unknown"
            plan.rows.append(row)
    needed = [r.runs_per_subtest for r in plan.rows if r.runs_per_subtest is not None]
    plan.recommended_runs = max(needed) if needed and len(needed) == len(plan.rows) else None
    if plan.recommended_runs is not None:
        plan.total_runs = 0
        plan.total_cost = 0.0
        seconds = 0.0
        for row in plan.rows:
            row.runs_total = row.subtests * plan.recommended_runs
            plan.total_runs += row.runs_total
            if row.cost_per_run is not None:
                row.cost = row.runs_total * row.cost_per_run
                plan.total_cost += row.cost
            if row.seconds_per_run is not None:
                row.run_seconds = row.runs_total * row.seconds_per_run
                seconds += row.run_seconds
        plan.cost_complete = all(r.cost_per_run is not None for r in plan.rows)
        has_time = any(r.seconds_per_run is not None for r in plan.rows)
        plan.wall_seconds = seconds / parallel if has_time else None
    return plan


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 3600:.1f}h" if seconds >= 3600 else f"{seconds / 60:.0f}m"


def render_plan(plan: Plan) -> str:
    """The plan as plain text: one line per test and tier, then the totals."""
    lines = [f"Plan: {plan.method}.",
             f"{'test':<20} {'tier':<4} {'subtests':>8} {'pass rate':>9} {'runs/subtest':>12} "
             f"{'runs':>6} {'cost/run':>9}  source"]
    for r in plan.rows:
        runs = "" if r.runs_per_subtest is None else str(r.runs_per_subtest)
        total = "" if r.runs_total is None else str(r.runs_total)
        cost = "?" if r.cost_per_run is None else f"${r.cost_per_run:.4f}"
        lines.append(f"{r.test_id:<20} {r.tier:<4} {r.subtests:>8} {r.pass_rate:>9.2f} "
                     f"{runs or '>100000':>12} {total:>6} {cost:>9}  {r.rate_source}")
    if plan.recommended_runs is None:
        lines.append("No run count reaches the target within 100000 runs per subtest; loosen it.")
        return "\n".join(lines) + "\n"
    cost = ("unknown (give --pilot or --cost-per-run)" if not plan.cost_complete
            else f"${plan.total_cost:.2f}")
    lines.append(f"Recommended: --runs {plan.recommended_runs} -> {plan.total_runs} runs, "
                 f"forecast cost {cost}, wall time {_hours(plan.wall_seconds)} at --parallel "
                 f"{plan.parallel}")
    return "\n".join(lines) + "\n"

