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

SCHEMA_VERSION = 2
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
    # Unbiased estimators from the runs, keyed by k (as a string): for a subtest from its own n
    # runs; for a tier the mean over its subtests that have at least k runs.
    pass_at_k: dict[str, float] = Field(default_factory=dict)
    pass_hat_k: dict[str, float] = Field(default_factory=dict)
    agents: list[str] = Field(default_factory=list)  # the agents that produced these runs
    cost_sources: dict[str, int] = Field(default_factory=dict)  # runs by where the agent cost came from


class SubtestSummary(GroupStats):
    subtest: str
    is_best: bool = False
    prob_best: float | None = None  # P(highest pass rate among the tier's subtests), Beta-binomial


class UpliftSummary(BaseModel):
    """Pass-rate difference of a tier over the baseline tier.

    `ci` and `p_score` are dual (the 95% interval excludes 0 exactly when p_score < 0.05), and so
    are `ci_simultaneous` and `p_adjusted` (Bonferroni over the tiers compared). `p_value` and
    `p_holm` are the Fisher exact test, kept as a second, exact opinion.
    """

    baseline: str = "T0"
    diff: float | None = None
    ci: Interval = Field(default_factory=Interval)
    p_score: float | None = None
    ci_simultaneous: Interval = Field(default_factory=Interval)
    p_adjusted: float | None = None
    n_comparisons: int = 0
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
    prob_best: float | None = None  # P(highest pass rate among the experiment's tiers)
    subtests_separated: bool | None = None  # the best subtest's prob_best >= 0.95 (null: one subtest)


class FlakySubtest(BaseModel):
    """A subtest whose outcome flips between its runs: some passed, some failed."""

    tier: str
    subtest: str
    n_runs: int
    n_passed: int


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
    pairwise_pass_agreement: float | None = None  # raw share, not chance-corrected
    krippendorff_alpha_pass: float | None = None  # chance-corrected agreement on pass/fail verdicts


class Methods(BaseModel):
    """How each number was computed, stated once so the report can print it."""

    pass_rate_ci: str = "Wilson score interval, 95%"
    score_mean_ci: str = ("Clopper-Pearson (beta) interval on the sum of scores in [0, 1], 95%; "
                          "coverage at least nominal from n = 1, never zero width; conservative "
                          "when scores spread inside [0, 1]")
    uplift: str = ("pass-rate difference vs T0; 95% Newcombe hybrid score interval with its dual "
                   "p-value; simultaneous interval and p-value Bonferroni-adjusted over the tiers "
                   "compared (the simultaneous interval excludes 0 exactly when the adjusted p < "
                   "0.05); Fisher exact p, Holm-adjusted, as a second opinion. Runs of one "
                   "experiment are treated as independent")
    pass_at_k: str = ("unbiased estimators from n runs with c passes: pass@k = 1 - C(n-c,k)/C(n,k) "
                      "(Chen et al. 2021), pass^k = C(c,k)/C(n,k) (Yao et al. 2024); a tier's value "
                      "is the mean over its subtests with at least k runs")
    prob_best: str = ("probability of having the highest pass rate under independent Beta(1+passes, "
                      "1+fails) posteriors, 20000 seeded Monte Carlo draws; below 0.95 the data "
                      "cannot separate the leader from the rest")
    flaky: str = "a subtest is flaky when some of its runs passed and some failed"
    consistency: str = "1 - coefficient of variation of scores (sample std / mean), clamped to [0, 1]"
    cost_of_pass: str = "mean cost per result run / pass rate; infinite when nothing passed"
    best_subtest: str = ("best_subtest.json when present, else highest median score; medians within "
                         "0.05 tie, won by fewer mean total tokens")
    best_tier: str = ("highest probability of having the best pass rate (see prob_best); ties won "
                      "by lower cost-of-pass")
    judge_agreement: str = ("Krippendorff's alpha (interval metric) on valid judge scores; "
                            "chance-corrected agreement on pass/fail verdicts as Krippendorff's alpha "
                            "(nominal metric); the raw share of judge pairs agreeing on pass/fail")


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
    tiers_without_results: list[str] = Field(default_factory=list)  # configured, no result yet
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
    best_tier_prob: float | None = None  # P(best_tier has the highest pass rate)
    best_tier_separated: bool | None = None  # best_tier_prob >= 0.95; null with one tier
    best_tier_runner_up: str | None = None  # the tier with the next highest probability
    result_cost: float = 0.0
    result_duration: float = 0.0
    wall_clock_seconds: float | None = None  # first run start to last run finish, when recorded
    tiers: list[TierSummary] = Field(default_factory=list)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    judges: list[JudgeSummary] = Field(default_factory=list)
    judge_agreement: JudgeAgreement | None = None
    flaky_subtests: list[FlakySubtest] = Field(default_factory=list)
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
    best_tier_separated: bool | None = None
    tiers_without_results: list[str] = Field(default_factory=list)
    flaky_subtests: list[str] = Field(default_factory=list)  # "T0/01", ...


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


class ModelSummary(BaseModel):
    """GEE logistic estimate of a tier against T0 (null fields and a note when not estimable)."""

    odds_ratio: float | None = None
    odds_ratio_ci: Interval = Field(default_factory=Interval)
    diff: float | None = None
    diff_ci: Interval = Field(default_factory=Interval)
    p_value: float | None = None
    p_holm: float | None = None
    note: str | None = None


class CMHSummary(BaseModel):
    """Cochran–Mantel–Haenszel test of a tier against T0, stratified by test."""

    n_strata: int = 0
    statistic: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    mh_odds_ratio: float | None = None
    mh_odds_ratio_infinite: bool = False
    mh_odds_ratio_ci: Interval = Field(default_factory=Interval)
    note: str | None = None


class BatchUplift(BaseModel):
    """The batch headline: a tier's pass rate minus T0's, paired by test."""

    tier: str
    baseline: str = "T0"
    n_tests: int = 0  # tests with results in both tiers
    tests_better: int = 0
    tests_worse: int = 0
    tests_equal: int = 0
    mean_diff: float | None = None
    ci: Interval = Field(default_factory=Interval)  # t-interval, 95%, dual to p_value
    p_value: float | None = None
    ci_simultaneous: Interval = Field(default_factory=Interval)  # Bonferroni, dual to p_adjusted
    p_adjusted: float | None = None
    n_comparisons: int = 0
    bootstrap_ci: Interval = Field(default_factory=Interval)
    bootstrap_note: str | None = None
    note: str | None = None
    gee: ModelSummary = Field(default_factory=ModelSummary)
    cmh: CMHSummary = Field(default_factory=CMHSummary)


class FlakyTest(BaseModel):
    test_id: str
    flaky_subtests: list[str]  # "T0/01", ...
    n_subtests: int  # subtests with at least two result runs


class BatchMethods(BaseModel):
    uplift: str = ("headline: for each test, the tier's pass rate minus T0's; the mean over tests "
                   "with results in both, so each test counts once (no Simpson reversal from "
                   "unequal run counts); 95% t-interval over tests and its dual t-test p-value; "
                   "simultaneous interval and p-value Bonferroni-adjusted over the tiers compared "
                   "(the simultaneous interval excludes 0 exactly when the adjusted p < 0.05)")
    bootstrap: str = ("cluster bootstrap over tests (whole tests resampled), percentile 95%, 4000 "
                      "resamples, seed 0; only with at least 10 tests")
    gee: str = ("GEE logistic model pass ~ tier (T0 vs the tier, one model per tier) with the test "
                "as the cluster, exchangeable working correlation, Mancl-DeRouen bias-reduced "
                "sandwich covariance; odds ratio exp(beta) with 95% CI, difference of marginal "
                "pass rates with delta-method 95% CI; Holm-adjusted p over the tiers; only with at "
                "least 5 tests")
    cmh: str = ("Cochran-Mantel-Haenszel test (continuity-corrected) of each tier against T0 "
                "stratified by test, with the Mantel-Haenszel pooled odds ratio and its 95% CI; "
                "Holm-adjusted p over the tiers")
    pooled_pass_rate: str = ("descriptive only: passes / result runs pooled over tests; Wilson score "
                             "interval, 95%. Pooling ignores clustering within tests and weighs "
                             "tests by their run counts, so it can reverse the per-test comparison; "
                             "mean_of_test_pass_rates weighs each test equally")
    flaky: str = "a test is listed as flaky when some subtest of it both passed and failed"


class BatchReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["batch"] = "batch"
    tiers: list[str] = Field(default_factory=list)
    tests: list[BatchTestRow] = Field(default_factory=list)
    pooled: list[PooledTier] = Field(default_factory=list)
    uplift: list[BatchUplift] = Field(default_factory=list)
    flaky_tests: list[FlakyTest] = Field(default_factory=list)
    total_cost: float = 0.0
    total_duration: float = 0.0
    rate_limited_attempts: int = 0
    infrastructure_errors: int = 0
    batch_summary_present: bool = False
    exclusion_note: str = EXCLUSION_NOTE
    methods: BatchMethods = Field(default_factory=BatchMethods)
