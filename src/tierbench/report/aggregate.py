"""From the files of an experiment (or a batch) to the numbers of its report.

The report is computed from the run_result.json files themselves, never from the checkpoint's
bookkeeping, so a reader can recompute every number from what is on disk. Only passed/failed runs
are results; every other recorded run or attempt is listed under `exclusions` and kept out of every
rate. Output is deterministic: files are read in sorted order and the bootstrap is seeded.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tierbench.config import ExperimentConfig
from tierbench.plan import best_of
from tierbench.models import ALL_TIERS, TIER_NAMES, RunResult, RunStatus, grade_for
from tierbench.report import stats
from tierbench.report.schema import (
    GRADES, BatchReport, BatchTestRow, BatchTierCell, BatchUplift, CMHSummary, ExcludedRun,
    Exclusions, ExperimentReport, FlakySubtest, FlakyTest, GroupStats, Interval, JudgeAgreement,
    JudgeSummary, ModelSummary, PooledTier, SubtestSummary, TierSummary, TokenSummary,
    UpliftSummary,
)
from tierbench.store import results
from tierbench.store.layout import ExperimentLayout

BOOTSTRAP_SEED = 0
SEPARATED = 0.95  # a leader is named as such only when P(best) reaches this
PASS_K_VALUES = (1, 2, 3, 5, 10)
MIN_TESTS_BOOTSTRAP = 10  # percentile bootstrap over fewer clusters undercovers
MIN_TESTS_MODEL = 5  # sandwich errors from fewer clusters are not worth printing


class AttemptRecord(BaseModel):
    """An earlier attempt of a run, kept under attempts/NN/ (rate limited or errored)."""

    attempt: int
    path: str
    result: RunResult


class ExperimentData(BaseModel):
    """Everything the report reads from one experiment directory."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    exp_dir: Path
    config: ExperimentConfig | None = None  # None when experiment.json no longer validates
    config_raw: dict[str, Any] = Field(default_factory=dict)
    runs: list[RunResult] = Field(default_factory=list)  # every run_result.json, any status
    run_paths: list[str] = Field(default_factory=list)  # parallel to runs, relative to exp_dir
    attempts: list[AttemptRecord] = Field(default_factory=list)
    best_subtests: dict[str, str] = Field(default_factory=dict)
    checkpoint: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    unreadable: list[str] = Field(default_factory=list)

    @property
    def results(self) -> list[RunResult]:
        return [r for r in self.runs if r.status.is_result]


def _read_json(path: Path, unreadable: list[str], root: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        unreadable.append(str(path.relative_to(root)))
        return None


def load_experiment_runs(exp_dir: Path) -> ExperimentData:
    """Read config, every run_result.json and every archived attempt of an experiment directory.

    A file that cannot be parsed is not skipped silently: it is named in `unreadable`.
    """
    layout = ExperimentLayout(Path(exp_dir))
    root = layout.root
    data = ExperimentData(exp_dir=root)
    raw = _read_json(layout.config_file, data.unreadable, root)
    if isinstance(raw, dict):
        data.config_raw = raw
        try:
            data.config = ExperimentConfig.model_validate(raw)
        except ValueError:
            data.config = None
    for path in sorted(root.glob(layout.run_result_glob())):
        rel = str(path.relative_to(root))
        try:
            data.runs.append(RunResult.model_validate_json(path.read_text()))
            data.run_paths.append(rel)
        except (OSError, ValueError):
            data.unreadable.append(rel)
    for path in sorted(root.glob("T[0-6]/[0-9][0-9]/run_*/attempts/*/run_result.json")):
        rel = str(path.relative_to(root))
        try:
            result = RunResult.model_validate_json(path.read_text())
            number = int(path.parent.name) if path.parent.name.isdigit() else 0
            data.attempts.append(AttemptRecord(attempt=number, path=rel, result=result))
        except (OSError, ValueError):
            data.unreadable.append(rel)
    for tier in ALL_TIERS:  # the store's loaders; a file that exists but does not load is named
        if (path := layout.best_subtest_file(tier)).is_file():
            if (best := results.read_best_subtest(layout, tier)) is not None:
                data.best_subtests[tier] = best.subtest
            else:
                data.unreadable.append(str(path.relative_to(root)))
    if layout.checkpoint.is_file() or layout.journal.is_file():
        try:
            data.checkpoint = results.load_state(layout).model_dump(mode="json")
        except results.StateCorrupt:
            data.unreadable.append(str(layout.checkpoint.relative_to(root)))
            data.checkpoint = results.load_state(layout, strict=False).model_dump(mode="json")
    if layout.stats_file.is_file():
        data.stats = results.read_stats(layout)
        if not data.stats:
            data.unreadable.append(str(layout.stats_file.relative_to(root)))
    return data


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _grade(run: RunResult) -> str | None:
    if run.judge_grade in GRADES:
        return run.judge_grade
    return grade_for(run.judge_score) if run.judge_score is not None else None


def group_stats(runs: list[RunResult]) -> dict[str, Any]:
    """GroupStats fields for a list of result runs (callers pass passed/failed runs only)."""
    n = len(runs)
    passed = sum(r.status == RunStatus.PASSED for r in runs)
    scores = [r.judge_score for r in runs if r.judge_score is not None]
    costs = [r.cost_usd for r in runs]
    grades = {g: 0 for g in GRADES}
    for run in runs:
        if (letter := _grade(run)) is not None:
            grades[letter] += 1
    tokens = TokenSummary(
        input_tokens=sum(r.token_stats.input_tokens for r in runs),
        output_tokens=sum(r.token_stats.output_tokens for r in runs),
        cache_creation_tokens=sum(r.token_stats.cache_creation_tokens for r in runs),
        cache_read_tokens=sum(r.token_stats.cache_read_tokens for r in runs),
        total_tokens=sum(r.token_stats.total_tokens for r in runs),
    )
    tokens.mean_total_tokens = tokens.total_tokens / n if n else None
    pass_rate = passed / n if n else None
    cop = stats.cost_of_pass(statistics.fmean(costs), pass_rate) if pass_rate is not None else None
    lo, hi = stats.wilson_interval(passed, n)
    blo, bhi = stats.score_mean_interval(scores)
    return dict(
        n_runs=n, n_passed=passed, pass_rate=pass_rate,
        pass_rate_ci=Interval(low=lo, high=hi) if n else Interval(),
        n_scored=len(scores), score_mean=_mean(scores),
        score_median=statistics.median(scores) if scores else None,
        score_std=stats.sample_std(scores) if scores else None,
        score_mean_ci=Interval(low=_finite(blo), high=_finite(bhi)),
        consistency=_finite(stats.consistency(scores)), grades=grades,
        cost_mean=_mean(costs), cost_total=sum(costs), tokens=tokens,
        duration_mean=_mean([r.duration_seconds for r in runs]),
        agent_duration_mean=_mean([r.agent_duration_seconds for r in runs]),
        judge_duration_mean=_mean([r.judge_duration_seconds for r in runs]),
        duration_total=sum(r.duration_seconds for r in runs),
        cost_of_pass=_finite(cop), cost_of_pass_infinite=cop is not None and math.isinf(cop),
        pass_at_k={str(k): stats.pass_at_k(n, passed, k) for k in PASS_K_VALUES if k <= n},
        pass_hat_k={str(k): stats.pass_hat_k(n, passed, k) for k in PASS_K_VALUES if k <= n},
        agents=sorted({r.agent for r in runs if r.agent}),
        cost_sources=dict(sorted(Counter(r.agent_cost_source for r in runs).items())),
    )


def choose_best_subtest(subtests: list[SubtestSummary]) -> str | None:
    """The planner's best-subtest rule (`plan.best_of`) over the report's subtest summaries."""
    scored = [s for s in subtests if s.score_median is not None]
    return best_of({s.subtest: s.score_median for s in scored if s.score_median is not None},
                   {s.subtest: s.tokens.mean_total_tokens or 0.0 for s in scored})


def _cop_key(group: GroupStats) -> float:
    if group.cost_of_pass_infinite or group.cost_of_pass is None:
        return math.inf
    return group.cost_of_pass


def _summarize_tier(tier: str, runs: list[RunResult], data: ExperimentData) -> TierSummary:
    by_subtest: dict[str, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_subtest[run.subtest].append(run)
    subtests = [SubtestSummary(subtest=name, **group_stats(sorted(by_subtest[name],
                                                                  key=lambda r: r.run_number)))
                for name in sorted(by_subtest)]
    summary = TierSummary(tier=tier, name=TIER_NAMES.get(tier, tier), subtests=subtests,
                          **group_stats(runs))
    if tier in data.best_subtests:
        summary.best_subtest, summary.best_subtest_source = data.best_subtests[tier], "best_subtest.json"
    elif (best := choose_best_subtest(subtests)) is not None:
        summary.best_subtest, summary.best_subtest_source = best, "median_score"
    for sub in subtests:
        sub.is_best = sub.subtest == summary.best_subtest
    # A tier's pass@k / pass^k: the mean over its subtests that have at least k runs.
    for field in ("pass_at_k", "pass_hat_k"):
        keys = sorted({k for s in subtests for k in getattr(s, field)}, key=int)
        setattr(summary, field, {k: statistics.fmean(getattr(s, field)[k] for s in subtests
                                                     if k in getattr(s, field)) for k in keys})
    if len(subtests) > 1:
        probs = stats.prob_best([(s.n_passed, s.n_runs) for s in subtests], seed=BOOTSTRAP_SEED)
        for sub, prob in zip(subtests, probs):
            sub.prob_best = prob
        summary.subtests_separated = max(probs) >= SEPARATED
    return summary


def _add_uplifts(tiers: list[TierSummary]) -> None:
    base = next((t for t in tiers if t.tier == "T0" and t.n_runs), None)
    if base is None:
        return
    compared = [t for t in tiers if t.tier != "T0" and t.n_runs]
    m = len(compared)
    uplifts: list[UpliftSummary] = []
    scores: list[float] = []
    fishers: list[float] = []
    for tier in compared:
        counts = (tier.n_passed, tier.n_runs, base.n_passed, base.n_runs)
        diff, (lo, hi), p = stats.fisher_exact_uplift(*counts)
        slo, shi = stats.newcombe_interval(*counts, conf=1.0 - 0.05 / m)
        p_score = stats.newcombe_p_value(*counts)
        tier.uplift_vs_t0 = UpliftSummary(
            diff=_finite(diff), ci=Interval(low=lo, high=hi), p_score=p_score,
            ci_simultaneous=Interval(low=slo, high=shi), n_comparisons=m, p_value=p)
        uplifts.append(tier.uplift_vs_t0)
        scores.append(p_score)
        fishers.append(p)
    adjusted = stats.bonferroni_adjust(list(scores))
    for uplift, p_adj, p_holm in zip(uplifts, adjusted, stats.holm_adjust(fishers)):
        uplift.p_adjusted, uplift.p_holm = p_adj, p_holm


def _exclusions(data: ExperimentData) -> Exclusions:
    recorded: list[tuple[RunResult, int | None, str]] = [
        (r, None, p) for r, p in zip(data.runs, data.run_paths) if not r.status.is_result]
    recorded += [(a.result, a.attempt, a.path) for a in data.attempts]
    excluded = [ExcludedRun(tier=r.tier, subtest=r.subtest, run=r.run_number, attempt=attempt,
                            status=r.status.value, error=r.error, cost_usd=r.cost_usd,
                            duration_seconds=r.duration_seconds, path=path)
                for r, attempt, path in recorded]
    excluded.sort(key=lambda e: (e.tier, e.subtest, e.run, e.attempt or 10**6))
    counts = {s: sum(e.status == s for e in excluded) for s in ("rate_limited", "error", "interrupted")}
    pauses = {k: data.checkpoint.get(k, data.stats.get(k))
              for k in ("rate_limited_attempts", "pause_count", "total_pause_seconds")}
    return Exclusions(
        rate_limited_attempts=counts["rate_limited"],
        infrastructure_errors=counts["error"],
        interrupted=counts["interrupted"],
        excluded_cost=sum(e.cost_usd for e in excluded),
        excluded_duration=sum(e.duration_seconds for e in excluded),
        checkpoint_rate_limited_attempts=_as_int(pauses["rate_limited_attempts"]),
        pause_count=_as_int(pauses["pause_count"]),
        total_pause_seconds=_as_float(pauses["total_pause_seconds"]),
        unreadable_files=sorted(data.unreadable), runs=excluded,
    )


def _as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _judges(results: list[RunResult]) -> tuple[list[JudgeSummary], JudgeAgreement | None]:
    verdicts: dict[tuple[str, str], list] = defaultdict(list)
    for run in results:
        for judge in run.judges:
            verdicts[(judge.judge_id, judge.spec)].append(judge)
    summaries = []
    for (judge_id, spec), items in sorted(verdicts.items()):
        valid = [j for j in items if j.is_valid]
        scores = [j.score for j in valid if j.score is not None]
        verdict_flags = [j.passed for j in valid if j.passed is not None]
        summaries.append(JudgeSummary(
            judge_id=judge_id, spec=spec, n_verdicts=len(items), n_valid=len(valid),
            score_mean=_mean(scores), cost_total=sum(j.cost_usd for j in items),
            pass_rate=sum(verdict_flags) / len(verdict_flags) if verdict_flags else None,
            duration_mean=_mean([j.duration_seconds for j in items])))
    judge_ids = sorted({judge_id for judge_id, _ in verdicts})
    if len(judge_ids) < 2:
        return summaries, None
    score_rows: list[list[float | None]] = []
    pass_rows: list[list[bool | None]] = []
    for run in results:
        by_judge = {j.judge_id: j for j in run.judges if j.is_valid}
        score_rows.append([by_judge[i].score if i in by_judge else None for i in judge_ids])
        pass_rows.append([by_judge[i].passed if i in by_judge else None for i in judge_ids])
    agreement = JudgeAgreement(
        n_judges=len(judge_ids),
        n_items=sum(sum(v is not None for v in row) >= 2 for row in score_rows),
        krippendorff_alpha_interval=_finite(stats.krippendorff_alpha_interval(score_rows)),
        pairwise_pass_agreement=_finite(stats.pairwise_agreement(pass_rows)),
        krippendorff_alpha_pass=_finite(stats.krippendorff_alpha(
            [[None if v is None else float(v) for v in row] for row in pass_rows], metric="nominal")))
    return summaries, agreement


def _wall_clock(data: ExperimentData) -> float | None:
    every = data.runs + [a.result for a in data.attempts]
    starts = [r.started_at for r in every if r.started_at is not None]
    ends = [r.finished_at for r in every if r.finished_at is not None]
    if not starts or not ends:
        return None
    try:
        return max(0.0, (max(ends) - min(starts)).total_seconds())
    except TypeError:  # naive and aware timestamps mixed: no honest answer
        return None


def summarize_experiment(data: ExperimentData) -> ExperimentReport:
    """Every number of an experiment report, computed from the loaded files."""
    results = data.results
    cfg = data.config_raw
    by_tier: dict[str, list[RunResult]] = defaultdict(list)
    for run in results:
        by_tier[run.tier].append(run)
    tiers = [_summarize_tier(t, sorted(by_tier[t], key=lambda r: (r.subtest, r.run_number)), data)
             for t in sorted(by_tier)]
    _add_uplifts(tiers)
    exclusions = _exclusions(data)
    for tier in tiers:
        tier.n_excluded = sum(e.tier == tier.tier for e in exclusions.runs)
    judges, agreement = _judges(results)
    report = ExperimentReport(
        experiment_id=cfg.get("experiment_id"), test_id=cfg.get("test_id"), agent=cfg.get("agent"),
        model=cfg.get("model"), judge_specs=list(cfg.get("judges") or []),
        runs_per_subtest=_as_int(cfg.get("runs_per_subtest")),
        tiers_configured=list(cfg.get("tiers") or []),
        n_results=len(results), n_passed=sum(r.status == RunStatus.PASSED for r in results),
        result_cost=sum(r.cost_usd for r in results),
        result_duration=sum(r.duration_seconds for r in results),
        wall_clock_seconds=_wall_clock(data), tiers=tiers, exclusions=exclusions,
        judges=judges, judge_agreement=agreement)
    report.pass_rate = report.n_passed / report.n_results if report.n_results else None
    with_results = {t.tier for t in tiers}
    report.tiers_without_results = [t for t in report.tiers_configured if t not in with_results]
    report.flaky_subtests = [FlakySubtest(tier=t.tier, subtest=s.subtest, n_runs=s.n_runs,
                                          n_passed=s.n_passed)
                             for t in tiers for s in t.subtests if 0 < s.n_passed < s.n_runs]
    report.total_cost = report.result_cost + exclusions.excluded_cost
    report.total_duration = report.result_duration + exclusions.excluded_duration
    history = data.stats.get("judge_limiter_history")
    # stats.json keeps one history per judge provider: {provider: [{at, limit, reason}, ...]}
    if isinstance(history, dict):
        report.judge_limiter_events = sum(len(events) for events in history.values() if isinstance(events, list))
    else:
        report.judge_limiter_events = len(history) if isinstance(history, list) else None
    if tiers:
        probs = stats.prob_best([(t.n_passed, t.n_runs) for t in tiers], seed=BOOTSTRAP_SEED)
        for tier, prob in zip(tiers, probs):
            tier.prob_best = prob
        ranked = sorted(tiers, key=lambda t: (-(t.prob_best or 0.0), _cop_key(t), t.tier))
        best = ranked[0]
        report.best_tier, report.best_score = best.tier, best.score_mean
        report.best_tier_prob = best.prob_best
        if len(ranked) > 1:
            report.best_tier_separated = (best.prob_best or 0.0) >= SEPARATED
            report.best_tier_runner_up = ranked[1].tier
        frontier = min(tiers, key=lambda t: (_cop_key(t), t.tier))
        if math.isinf(_cop_key(frontier)):
            report.frontier_cop_infinite = True
        else:
            report.frontier_cop, report.frontier_tier = frontier.cost_of_pass, frontier.tier
    return report


def find_experiment_dirs(batch_dir: Path) -> list[Path]:
    """Direct subdirectories of a batch dir that hold config/experiment.json, sorted by name.
    Backups made by --fresh (`<id>.backup-<time>`) are old results, never part of the batch."""
    return sorted(p for p in Path(batch_dir).iterdir()
                  if p.is_dir() and ".backup-" not in p.name and (p / "config" / "experiment.json").is_file())


def load_batch(batch_dir: Path) -> list[tuple[ExperimentData, ExperimentReport]]:
    """Load and summarize every experiment of a batch dir, in directory-name order."""
    experiments = []
    for exp_dir in find_experiment_dirs(batch_dir):
        data = load_experiment_runs(exp_dir)
        experiments.append((data, summarize_experiment(data)))
    return experiments


def summarize_batch(batch_dir: Path,
                    experiments: list[tuple[ExperimentData, ExperimentReport]] | None = None
                    ) -> BatchReport:
    """Tests × tiers pass rates and per-tier rates pooled over tests.

    `experiments` (from `load_batch`) avoids reading the files twice when the caller has them.
    """
    batch_dir = Path(batch_dir)
    if experiments is None:
        experiments = load_batch(batch_dir)
    report = BatchReport(batch_summary_present=(batch_dir / "batch_summary.json").is_file())
    tier_names = sorted({t.tier for _, rep in experiments for t in rep.tiers})
    report.tiers = tier_names
    for data, rep in experiments:
        report.tests.append(BatchTestRow(
            test_id=rep.test_id or data.exp_dir.name, experiment_dir=data.exp_dir.name,
            best_tier=rep.best_tier, best_score=rep.best_score, frontier_cop=rep.frontier_cop,
            frontier_cop_infinite=rep.frontier_cop_infinite, total_cost=rep.total_cost,
            total_duration=rep.total_duration,
            rate_limited_attempts=rep.exclusions.rate_limited_attempts,
            infrastructure_errors=rep.exclusions.infrastructure_errors,
            tiers={t.tier: BatchTierCell(n_runs=t.n_runs, n_passed=t.n_passed, pass_rate=t.pass_rate,
                                         score_mean=t.score_mean) for t in rep.tiers},
            best_tier_separated=rep.best_tier_separated,
            tiers_without_results=list(rep.tiers_without_results),
            flaky_subtests=[f"{f.tier}/{f.subtest}" for f in rep.flaky_subtests]))
        if rep.flaky_subtests:
            report.flaky_tests.append(FlakyTest(
                test_id=rep.test_id or data.exp_dir.name,
                flaky_subtests=[f"{f.tier}/{f.subtest}" for f in rep.flaky_subtests],
                n_subtests=sum(s.n_runs >= 2 for t in rep.tiers for s in t.subtests)))
    for tier in tier_names:
        rows = [t for _, rep in experiments for t in rep.tiers if t.tier == tier and t.n_runs]
        n, k = sum(t.n_runs for t in rows), sum(t.n_passed for t in rows)
        cost = sum(t.cost_total for t in rows)
        cop = stats.cost_of_pass(cost / n, k / n) if n else None
        lo, hi = stats.wilson_interval(k, n)
        report.pooled.append(PooledTier(
            tier=tier, name=TIER_NAMES.get(tier, tier), n_tests=len(rows), n_runs=n, n_passed=k,
            pass_rate=k / n if n else None, pass_rate_ci=Interval(low=lo, high=hi) if n else Interval(),
            mean_of_test_pass_rates=_mean([t.pass_rate for t in rows if t.pass_rate is not None]),
            cost_total=cost, cost_of_pass=_finite(cop),
            cost_of_pass_infinite=cop is not None and math.isinf(cop)))
    report.uplift = batch_uplift(experiments)
    report.total_cost = sum(rep.total_cost for _, rep in experiments)
    report.total_duration = sum(rep.total_duration for _, rep in experiments)
    report.rate_limited_attempts = sum(r.rate_limited_attempts for r in report.tests)
    report.infrastructure_errors = sum(r.infrastructure_errors for r in report.tests)
    return report


def _pass_flags(data: ExperimentData, tier: str) -> list[int]:
    return [int(r.status == RunStatus.PASSED) for r in data.results if r.tier == tier]


def batch_uplift(experiments: list[tuple[ExperimentData, ExperimentReport]],
                 baseline: str = "T0") -> list[BatchUplift]:
    """Each tier against the baseline across the batch's tests: paired by test (the headline), a
    cluster bootstrap, a GEE logistic model and a CMH test. See BatchMethods for the texts."""
    names = [rep.test_id or data.exp_dir.name for data, rep in experiments]
    tiers = sorted({t.tier for _, rep in experiments for t in rep.tiers} - {baseline})
    out: list[BatchUplift] = []
    diffs_by_tier: dict[str, list[float]] = {}
    for tier in tiers:
        diffs: list[float] = []
        tables: list[list[list[int]]] = []
        y: list[int] = []
        x: list[int] = []
        groups: list[str] = []
        diffs_by_tier[tier] = diffs
        for name, (data, rep) in zip(names, experiments):
            base, other = _pass_flags(data, baseline), _pass_flags(data, tier)
            if not base or not other:
                continue
            diffs.append(sum(other) / len(other) - sum(base) / len(base))
            tables.append([[sum(other), len(other) - sum(other)], [sum(base), len(base) - sum(base)]])
            for flags, arm in ((base, 0), (other, 1)):
                y += flags
                x += [arm] * len(flags)
                groups += [name] * len(flags)
        row = BatchUplift(tier=tier, baseline=baseline, n_tests=len(diffs),
                          tests_better=sum(d > 0 for d in diffs), tests_worse=sum(d < 0 for d in diffs),
                          tests_equal=sum(d == 0 for d in diffs))
        if not diffs:
            row.note = f"no test has results in both {baseline} and {tier}"
            out.append(row)
            continue
        paired = stats.paired_t(diffs)
        row.mean_diff = paired.mean
        if math.isnan(paired.p_value):
            row.note = ("one test: no interval across tests" if len(diffs) < 2 else
                        "every test shows the same difference: no spread to estimate an error from")
        else:
            row.ci = Interval(low=paired.ci[0], high=paired.ci[1])
            row.p_value = paired.p_value
        if len(diffs) >= MIN_TESTS_BOOTSTRAP:
            lo, hi = stats.cluster_bootstrap_mean_ci(diffs, seed=BOOTSTRAP_SEED)
            row.bootstrap_ci = Interval(low=lo, high=hi)
        else:
            row.bootstrap_note = f"needs at least {MIN_TESTS_BOOTSTRAP} tests, has {len(diffs)}"
        if len(diffs) >= MIN_TESTS_MODEL:
            est = stats.gee_logistic(y, x, groups)
            row.gee = ModelSummary(
                odds_ratio=_finite(est.odds_ratio),
                odds_ratio_ci=Interval(low=_finite(est.odds_ratio_ci[0]), high=_finite(est.odds_ratio_ci[1])),
                diff=_finite(est.diff), diff_ci=Interval(low=_finite(est.diff_ci[0]), high=_finite(est.diff_ci[1])),
                p_value=_finite(est.p_value), note=est.note)
        else:
            row.gee = ModelSummary(note=f"needs at least {MIN_TESTS_MODEL} tests, has {len(diffs)}")
        cmh = stats.cmh_test(tables)
        row.cmh = CMHSummary(
            n_strata=cmh.n_strata, statistic=_finite(cmh.statistic), p_value=_finite(cmh.p_value),
            mh_odds_ratio=_finite(cmh.odds_ratio),
            mh_odds_ratio_infinite=math.isinf(cmh.odds_ratio),
            mh_odds_ratio_ci=Interval(low=_finite(cmh.odds_ratio_ci[0]), high=_finite(cmh.odds_ratio_ci[1])),
            note=None if not math.isnan(cmh.p_value) else "no test with both passes and failures")
        out.append(row)
    m = sum(r.p_value is not None for r in out)
    for row, p_adj in zip(out, stats.bonferroni_adjust([r.p_value for r in out])):
        row.p_adjusted, row.n_comparisons = p_adj, m
        if p_adj is not None:
            lo, hi = stats.paired_t(diffs_by_tier[row.tier], conf=1.0 - 0.05 / m).ci
            row.ci_simultaneous = Interval(low=lo, high=hi)
    for key in ("gee", "cmh"):
        present = [r for r in out if getattr(r, key).p_value is not None]
        for row, p_holm in zip(present, stats.holm_adjust([getattr(r, key).p_value for r in present])):
            getattr(row, key).p_holm = p_holm
    return out

