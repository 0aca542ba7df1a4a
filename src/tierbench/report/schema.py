"""The models of `report.json`: what an experiment or batch report says, field by field.

Other modules read these (the batch runner fills `batch_summary.json` from `ExperimentReport`), so
the field names are a contract, documented in docs/report-schema.md. Bump SCHEMA_VERSION on any
incompatible change.

JSON cannot hold NaN or infinity. A quantity that is undefined (a mean over zero runs) is `null`; a
cost-of-pass that is infinite (nothing passed) is `null` *and* its `*_infinite` flag is true, so a
reader can always tell "no data" from "no pass at any price".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
GRADES: tuple[str, ...] = ("S", "A", "B", "C", "D", "F")

EXCLUSION_NOTE = (
    "Rate-limited attempts, infrastructure errors and interrupted runs are not results: they are "
    "excluded from every rate, mean, interval and cost-of-pass in this report and listed separately."
)


class Interval(BaseModel):
    """A confidence interval; both ends null when undefined (e.g. no scored runs)."""

    low: float | None = None
    high: float | None = None


class TokenSummary(BaseModel):
    """Token totals over the runs of a group, plus the mean total per run."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    total_tokens: int = 0
    mean_total_tokens: float | None = None


class GroupStats(BaseModel):
    """Statistics over a set of result runs (status passed or failed only)."""

    n_runs: int = 0
    n_passed: int = 0
    pass_rate: float | None = None
    pass_rate_ci: Interval = Field(default_factory=Interval)
    n_scored: int = 0
    score_mean: float | None = None
    score_median: float | None = None
    score_std: float | None = None
    score_mean_ci: Interval = Field(default_factory=Interval)
    consistency: float | None = None
    grades: dict[str, int] = Field(default_factory=lambda: {g: 0 for g in GRADES})
    cost_mean: float | None = None
    cost_total: float = 0.0
    tokens: TokenSummary = Field(default_factory=TokenSummary)
    duration_mean: float | None = None
    agent_duration_mean: float | None = None
    judge_duration_mean: float | None = None
    duration_total: float = 0.0
    cost_of_pass: float | None = None
    cost_of_pass_infinite: bool = False
    agents: list[str] = Field(default_factory=list)  # the agents that produced these runs
    cost_sources: dict[str, int] = Field(default_factory=dict)  # runs by where the agent cost came from


class SubtestSummary(GroupStats):
    subtest: str
    is_best: bool = False


class UpliftSummary(BaseModel):
    """Pass-rate difference of a tier over the baseline tier."""

    baseline: str = "T0"
    diff: float | None = None
    ci: Interval = Field(default_factory=Interval)
    p_value: float | None = None
    p_holm: float | None = None


class TierSummary(GroupStats):
    tier: str
    name: str
    subtests: list[SubtestSummary] = Field(default_factory=list)
    best_subtest: str | None = None
    best_subtest_source: Literal["best_subtest.json", "median_score"] | None = None
    uplift_vs_t0: UpliftSummary | None = None
    n_excluded: int = 0


class ExcludedRun(BaseModel):
    """A recorded run or attempt that is not a result."""

    tier: str
    subtest: str
    run: int
    attempt: int | None = None  # None: the run's own run_result.json; N: attempts/NN/
    status: str
    error: str | None = None
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    path: str


class Exclusions(BaseModel):
    note: str = EXCLUSION_NOTE
    rate_limited_attempts: int = 0  # counted from the files on disk
    infrastructure_errors: int = 0
    interrupted: int = 0
    excluded_cost: float = 0.0
    excluded_duration: float = 0.0
    checkpoint_rate_limited_attempts: int | None = None  # as recorded by the coordinator
    pause_count: int | None = None
    total_pause_seconds: float | None = None
    unreadable_files: list[str] = Field(default_factory=list)
    runs: list[ExcludedRun] = Field(default_factory=list)


class JudgeSummary(BaseModel):
    judge_id: str
    spec: str
    n_verdicts: int = 0
    n_valid: int = 0
    score_mean: float | None = None
    pass_rate: float | None = None  # share of valid verdicts that passed
    cost_total: float = 0.0
    duration_mean: float | None = None


class JudgeAgreement(BaseModel):
    n_judges: int
    n_items: int  # result runs with at least two valid verdicts
    krippendorff_alpha_interval: float | None = None
    pairwise_pass_agreement: float | None = None


class Methods(BaseModel):
    """How each number was computed, stated once so the report can print it."""

    pass_rate_ci: str = "Wilson score interval, 95%"
    score_mean_ci: str = "percentile bootstrap of the mean, 2000 resamples, seed 0, 95%"
    uplift: str = ("pass-rate difference vs T0; 95% Newcombe hybrid score interval (from Wilson "
                   "intervals); two-sided Fisher exact p-value; Holm-adjusted across tiers")
    consistency: str = "1 - coefficient of variation of scores (sample std / mean), clamped to [0, 1]"
    cost_of_pass: str = "mean cost per result run / pass rate; infinite when nothing passed"
    best_subtest: str = ("best_subtest.json when present, else highest median score; medians within "
                         "0.05 tie, won by fewer mean total tokens")
    best_tier: str = "highest pass rate; ties won by lower cost-of-pass"
    judge_agreement: str = ("Krippendorff's alpha (interval metric) on valid judge scores, and the "
                            "share of judge pairs agreeing on pass/fail")


class ExperimentReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["experiment"] = "experiment"
    experiment_id: str | None = None
    test_id: str | None = None
    agent: str | None = None
    model: str | None = None
    judge_specs: list[str] = Field(default_factory=list)
    runs_per_subtest: int | None = None
    tiers_configured: list[str] = Field(default_factory=list)
    n_results: int = 0
    n_passed: int = 0
    pass_rate: float | None = None
    # Read by the batch runner: keep these five names and types.
    best_tier: str | None = None
    best_score: float | None = None  # mean score of best_tier
    frontier_cop: float | None = None  # min cost-of-pass over tiers; null if none or all infinite
    total_cost: float = 0.0  # everything recorded: results plus excluded attempts
    total_duration: float = 0.0  # sum of duration_seconds over results plus excluded attempts
    frontier_cop_infinite: bool = False  # true when tiers have results but none ever passed
    frontier_tier: str | None = None
    result_cost: float = 0.0
    result_duration: float = 0.0
    wall_clock_seconds: float | None = None  # first run start to last run finish, when recorded
    tiers: list[TierSummary] = Field(default_factory=list)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    judges: list[JudgeSummary] = Field(default_factory=list)
    judge_agreement: JudgeAgreement | None = None
    judge_limiter_events: int | None = None  # entries in stats.json judge_limiter_history
    methods: Methods = Field(default_factory=Methods)


class BatchTierCell(BaseModel):
    n_runs: int = 0
    n_passed: int = 0
    pass_rate: float | None = None
    score_mean: float | None = None


class BatchTestRow(BaseModel):
    test_id: str
    experiment_dir: str  # relative to the batch dir
    best_tier: str | None = None
    best_score: float | None = None
    frontier_cop: float | None = None
    frontier_cop_infinite: bool = False
    total_cost: float = 0.0
    total_duration: float = 0.0
    rate_limited_attempts: int = 0
    infrastructure_errors: int = 0
    tiers: dict[str, BatchTierCell] = Field(default_factory=dict)


class PooledTier(BaseModel):
    """One tier's results pooled over every test in the batch."""

    tier: str
    name: str
    n_tests: int = 0
    n_runs: int = 0
    n_passed: int = 0
    pass_rate: float | None = None
    pass_rate_ci: Interval = Field(default_factory=Interval)
    mean_of_test_pass_rates: float | None = None
    cost_total: float = 0.0
    cost_of_pass: float | None = None
    cost_of_pass_infinite: bool = False


class BatchMethods(BaseModel):
    pooled_pass_rate: str = ("passes / result runs pooled over tests; Wilson score interval, 95%. "
                             "Pooling ignores clustering within tests, so the interval is optimistic "
                             "when tests differ; mean_of_test_pass_rates weighs each test equally")


class BatchReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["batch"] = "batch"
    tiers: list[str] = Field(default_factory=list)
    tests: list[BatchTestRow] = Field(default_factory=list)
    pooled: list[PooledTier] = Field(default_factory=list)
    total_cost: float = 0.0
    total_duration: float = 0.0
    rate_limited_attempts: int = 0
    infrastructure_errors: int = 0
    batch_summary_present: bool = False
    exclusion_note: str = EXCLUSION_NOTE
    methods: BatchMethods = Field(default_factory=BatchMethods)
