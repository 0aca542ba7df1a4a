"""Statistics for the reports: pure functions over plain numbers (numpy/scipy/statsmodels, no I/O).

Every choice a reader of a published table would ask about is made here, once, and documented:

- Pass-rate intervals are Wilson score intervals. With n = 0 the interval is (0, 1).
- Score means get a Clopper-Pearson (beta) interval on the sum of scores in [0, 1]: coverage at
  least nominal from n = 1 (the percentile bootstrap covered 54-73% at n = 3-5 near 0 or 1 and
  printed zero-width intervals), and never zero width.
- Uplift between two tiers of one test: difference of proportions, Newcombe hybrid score interval
  (method 10 of Newcombe 1998) with its dual p-value; Bonferroni-simultaneous interval and p over
  the tiers compared; the Fisher exact p, Holm-adjusted, as a second opinion.
- Across tests (a batch): per-test differences with a t-interval (each test counts once, so no
  Simpson reversal), a cluster bootstrap over tests, a GEE logistic model with the test as the
  cluster, and a Cochran-Mantel-Haenszel test stratified by test (statsmodels).
- Best of several: probability of the highest pass rate under Beta-binomial posteriors.
- pass@k and pass^k: the unbiased estimators from n runs with c passes.
- Judge agreement: Krippendorff's alpha, interval metric for scores, nominal metric for pass/fail
  verdicts (chance-corrected), plus the raw pairwise pass/fail agreement.
- Planning: runs for an expected Wilson half-width, runs per arm for a detectable uplift.

Undefined quantities come back as `math.nan` (or `math.inf` for cost-of-pass); the report layer turns
them into JSON null with an explicit flag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats as sps


def _z(conf: float) -> float:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {conf}")
    return float(sps.norm.ppf(1.0 - (1.0 - conf) / 2.0))


def wilson_interval(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials. n == 0 gives (0.0, 1.0)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    z = _z(conf)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Clamp float noise; at k=0 / k=n the bound is exactly 0 / 1.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def bootstrap_mean_ci(values: Sequence[float], conf: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean, deterministic for a given seed.

    Empty input gives (nan, nan); a single value (or identical values) gives a zero-width interval.
    """
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return (math.nan, math.nan)
    _z(conf)  # validates conf
    if data.size == 1 or np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_resamples, data.size))
    means = data[idx].mean(axis=1)
    alpha = (1.0 - conf) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def sample_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0.0 for fewer than two values."""
    data = np.asarray(list(values), dtype=float)
    return float(data.std(ddof=1)) if data.size >= 2 else 0.0


def consistency(values: Sequence[float]) -> float:
    """1 − coefficient of variation (sample std / mean), clamped to [0, 1].

    Definitions for the edge cases: empty input → nan; mean 0 → 0.0 (a tier that always scores 0 is
    not "consistent" in any sense worth rewarding); fewer than two values → 1.0 if the mean is positive
    (no spread observed). CV above 1 is clamped to consistency 0.
    """
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return math.nan
    mean = float(data.mean())
    if mean <= 0.0:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - sample_std(data) / mean)))


def cost_of_pass(mean_cost: float, pass_rate: float) -> float:
    """Expected spend per passing run: mean cost / pass rate; `math.inf` when the pass rate is 0."""
    if pass_rate < 0 or pass_rate > 1 or math.isnan(pass_rate):
        raise ValueError(f"pass rate must be in [0, 1], got {pass_rate}")
    if pass_rate == 0:
        return math.inf
    return mean_cost / pass_rate


class Uplift(NamedTuple):
    """Difference of pass rates p1 − p0 with its confidence interval and Fisher p-value."""

    diff: float
    ci: tuple[float, float]
    p_value: float


def fisher_exact_uplift(k1: int, n1: int, k0: int, n0: int, conf: float = 0.95) -> Uplift:
    """Pass-rate difference of group 1 over group 0.

    CI: Newcombe's hybrid score interval from the two Wilson intervals. p: two-sided Fisher exact test
    on the 2×2 table. If either group is empty the difference is undefined: (nan, (-1, 1), 1.0).
    """
    if n1 == 0 or n0 == 0:
        return Uplift(math.nan, (-1.0, 1.0), 1.0)
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson_interval(k1, n1, conf)
    l0, u0 = wilson_interval(k0, n0, conf)
    diff = p1 - p0
    lo = diff - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = diff + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    _, p = sps.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]], alternative="two-sided")
    return Uplift(diff, (max(-1.0, lo), min(1.0, hi)), float(min(1.0, p)))


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, returned in the input order (monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def _as_matrix(matrix: Sequence[Sequence[float | None]]) -> np.ndarray:
    rows = [[math.nan if v is None else float(v) for v in row] for row in matrix]
    return np.asarray(rows, dtype=float).reshape(len(rows), -1) if rows else np.zeros((0, 0))


def krippendorff_alpha(matrix: Sequence[Sequence[float | None]], metric: str = "interval") -> float:
    """Krippendorff's alpha for items × judges (NaN/None = missing), metric "interval" or "nominal".

    alpha = 1 − D_o / D_e over pairable values (items with at least two values), as in Krippendorff
    (2011), "Computing Krippendorff's Alpha-Reliability". nan when fewer than two pairable values or
    when there is no variation at all (D_e = 0: agreement cannot be told apart from chance).
    """
    if metric not in ("interval", "nominal"):
        raise ValueError(f"unknown metric {metric!r}")
    data = _as_matrix(matrix)
    units = [row[~np.isnan(row)] for row in data]
    units = [u for u in units if u.size >= 2]
    pooled = np.concatenate(units) if units else np.zeros(0)
    n = pooled.size
    if n < 2:
        return math.nan

    def delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        diff = a[:, None] - b[None, :]
        return diff**2 if metric == "interval" else (diff != 0).astype(float)

    observed = sum(delta(u, u).sum() / (u.size - 1) for u in units) / n
    expected = delta(pooled, pooled).sum() / (n * (n - 1))
    if expected == 0:
        return math.nan
    return float(1.0 - observed / expected)


def krippendorff_alpha_interval(matrix: Sequence[Sequence[float | None]]) -> float:
    """Krippendorff's alpha with the interval metric (squared difference): for judge scores."""
    return krippendorff_alpha(matrix, metric="interval")


def pairwise_agreement(matrix: Sequence[Sequence[bool | None]]) -> float:
    """Share of judge pairs that gave the same pass/fail verdict on the same item (None = missing).

    Counted over every pair of judges on every item where both gave a verdict; nan with no such pair.
    """
    agree = total = 0
    for row in matrix:
        verdicts = [bool(v) for v in row if v is not None]
        for i in range(len(verdicts)):
            for j in range(i + 1, len(verdicts)):
                total += 1
                agree += verdicts[i] == verdicts[j]
    return agree / total if total else math.nan


# --- Intervals that hold at small n -------------------------------------------------------------

def beta_interval_sum(total, n, conf: float = 0.95):
    """Clopper–Pearson interval for a mean in [0, 1] from the sum of n values (vectorised).

    For 0/1 values this is the exact binomial interval, whose coverage is at least nominal at every
    n and every rate. A score in [0, 1] with mean μ has at most the variance of a 0/1 value with
    mean μ, so using the sum of scores as a (fractional) success count keeps the coverage at or
    above nominal; the beta quantiles accept non-integer counts. The interval never has zero width:
    at a sum of 0 (or n) only the outer bound is 0 (or 1). n == 0 gives (nan, nan).
    """
    total = np.asarray(total, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = 1.0 - conf
    _z(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.clip(total, 0.0, n)
        lo = np.where(s > 0, sps.beta.ppf(alpha / 2, np.maximum(s, 1e-300), n - s + 1), 0.0)
        hi = np.where(s < n, sps.beta.ppf(1 - alpha / 2, s + 1, np.maximum(n - s, 1e-300)), 1.0)
    lo = np.where(n > 0, lo, np.nan)
    hi = np.where(n > 0, hi, np.nan)
    return lo, hi


def score_mean_interval(values: Sequence[float], conf: float = 0.95) -> tuple[float, float]:
    """Interval for the mean score of runs (scores in [0, 1]): `beta_interval_sum` on their sum."""
    data = np.clip(np.asarray(list(values), dtype=float), 0.0, 1.0)
    if data.size == 0:
        return (math.nan, math.nan)
    lo, hi = beta_interval_sum(data.sum(), data.size, conf)
    return (float(lo), float(hi))


# --- Dual p-values and multiplicity -------------------------------------------------------------

def newcombe_interval(k1: int, n1: int, k0: int, n0: int, conf: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for p1 − p0; (-1, 1) if a group is empty."""
    if n1 == 0 or n0 == 0:
        return (-1.0, 1.0)
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = wilson_interval(k1, n1, conf)
    l0, u0 = wilson_interval(k0, n0, conf)
    diff = p1 - p0
    lo = diff - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = diff + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return (max(-1.0, lo), min(1.0, hi))


def newcombe_p_value(k1: int, n1: int, k0: int, n0: int) -> float:
    """The p-value dual to the Newcombe interval: the largest α whose (1 − α) interval holds 0.

    So the (1 − α) Newcombe interval excludes 0 exactly when this p is below α, and a Bonferroni
    interval at level 1 − α/m excludes 0 exactly when min(1, m·p) is below α.
    """
    if n1 == 0 or n0 == 0 or k1 * n0 == k0 * n1:
        return 1.0
    positive = k1 / n1 > k0 / n0

    def excludes_zero(alpha: float) -> bool:
        lo, hi = newcombe_interval(k1, n1, k0, n0, 1.0 - alpha)
        return lo > 0 if positive else hi < 0

    low, high = 1e-15, 1.0 - 1e-12  # excludes at `high` (narrow), not at `low` (wide)
    if excludes_zero(low):
        return low
    for _ in range(200):
        mid = math.sqrt(low * high) if high / low > 1.0001 else (low + high) / 2
        if excludes_zero(mid):
            high = mid
        else:
            low = mid
        if high - low < 1e-12:
            break
    return float(high)


def bonferroni_adjust(pvalues: Sequence[float | None]) -> list[float | None]:
    """min(1, m·p) with m the number of p-values that are not None."""
    m = sum(p is not None for p in pvalues)
    return [None if p is None else min(1.0, m * float(p)) for p in pvalues]


# --- Batch level: paired by test ----------------------------------------------------------------

class PairedUplift(NamedTuple):
    """Mean over tests of (tier rate − baseline rate), with a t-interval and its dual p-value."""

    n_tests: int
    mean: float
    ci: tuple[float, float]
    p_value: float


def paired_t(diffs: Sequence[float], conf: float = 0.95) -> PairedUplift:
    """One-sample t-interval and two-sided t-test over per-test differences.

    Each test counts once, whatever its number of runs, so runs clustered within a test are not
    treated as independent and unequal run counts cannot produce a Simpson reversal. Undefined
    (nan) with fewer than two tests or when every test shows the same difference (no spread to
    estimate an error from).
    """
    data = np.asarray(list(diffs), dtype=float)
    n = int(data.size)
    if n == 0:
        return PairedUplift(0, math.nan, (math.nan, math.nan), math.nan)
    mean = float(data.mean())
    sd = float(data.std(ddof=1)) if n >= 2 else 0.0
    if n < 2 or sd == 0.0:
        return PairedUplift(n, mean, (math.nan, math.nan), math.nan)
    se = sd / math.sqrt(n)
    q = float(sps.t.ppf(1.0 - (1.0 - conf) / 2.0, n - 1))
    p = float(2.0 * sps.t.sf(abs(mean / se), n - 1))
    return PairedUplift(n, mean, (max(-1.0, mean - q * se), min(1.0, mean + q * se)), p)


def cluster_bootstrap_mean_ci(diffs: Sequence[float], conf: float = 0.95, n_resamples: int = 4000,
                              seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean per-test difference, resampling whole tests (seeded)."""
    data = np.asarray(list(diffs), dtype=float)
    if data.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_resamples, data.size))].mean(axis=1)
    alpha = (1.0 - conf) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


class ModelEstimate(NamedTuple):
    """A tier-vs-baseline logistic estimate: odds ratio and difference of marginal pass rates."""

    odds_ratio: float
    odds_ratio_ci: tuple[float, float]
    diff: float
    diff_ci: tuple[float, float]
    p_value: float
    note: str | None


def gee_logistic(passed: Sequence[int], treated: Sequence[int], groups: Sequence[str],
                 conf: float = 0.95) -> ModelEstimate:
    """GEE logistic model pass ~ tier (0 = baseline, 1 = tier) with the test as the cluster.

    Exchangeable working correlation; Mancl–DeRouen bias-reduced sandwich covariance, which keeps
    the error honest with few clusters. The odds ratio is exp(β); the difference of the marginal
    pass rates expit(β0 + β) − expit(β0) gets a delta-method interval. A note replaces the estimate
    when the model cannot be estimated (a tier passing or failing every run: separation).
    """
    import statsmodels.api as sm

    y = np.asarray(passed, dtype=float)
    x = np.asarray(treated, dtype=float)
    nan2 = (math.nan, math.nan)
    for arm in (0.0, 1.0):
        values = y[x == arm]
        if values.size == 0:
            return ModelEstimate(math.nan, nan2, math.nan, nan2, math.nan, "an arm has no runs")
        if values.min() == values.max():
            return ModelEstimate(math.nan, nan2, math.nan, nan2, math.nan,
                                 "not estimable: one tier passed or failed every run (separation)")
    codes = {g: i for i, g in enumerate(sorted(set(groups)))}
    group_ids = np.asarray([codes[g] for g in groups])
    design = np.column_stack([np.ones_like(x), x])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = sm.GEE(y, design, groups=group_ids, family=sm.families.Binomial(),
                           cov_struct=sm.cov_struct.Exchangeable())
            fit = model.fit(cov_type="bias_reduced")
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            return ModelEstimate(math.nan, nan2, math.nan, nan2, math.nan, f"fit failed: {exc}")
    beta = np.asarray(fit.params, dtype=float)
    cov = np.asarray(fit.cov_params(), dtype=float)
    if not np.all(np.isfinite(beta)) or not np.all(np.isfinite(cov)):
        return ModelEstimate(math.nan, nan2, math.nan, nan2, math.nan, "fit did not converge")
    z = _z(conf)
    se = math.sqrt(max(cov[1, 1], 0.0))
    odds = math.exp(beta[1])
    p = float(2.0 * sps.norm.sf(abs(beta[1] / se))) if se > 0 else math.nan
    p0 = 1.0 / (1.0 + math.exp(-beta[0]))
    p1 = 1.0 / (1.0 + math.exp(-(beta[0] + beta[1])))
    grad = np.array([p1 * (1 - p1) - p0 * (1 - p0), p1 * (1 - p1)])
    diff_se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
    diff = p1 - p0
    return ModelEstimate(odds, (math.exp(beta[1] - z * se), math.exp(beta[1] + z * se)), diff,
                         (max(-1.0, diff - z * diff_se), min(1.0, diff + z * diff_se)), p, None)


class CMHResult(NamedTuple):
    n_strata: int
    statistic: float
    p_value: float
    odds_ratio: float  # Mantel–Haenszel pooled odds ratio; inf / 0 possible
    odds_ratio_ci: tuple[float, float]


def cmh_test(tables: Sequence[Sequence[Sequence[int]]], conf: float = 0.95) -> CMHResult:
    """Cochran–Mantel–Haenszel test over 2×2 tables [[tier pass, tier fail], [T0 pass, T0 fail]],
    one per test (stratum), with continuity correction, and the Mantel–Haenszel odds ratio.

    Strata where either tier has no runs carry no information and are dropped. nan when no stratum
    has any variation in outcome.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    kept = [np.asarray(t, dtype=float) for t in tables
            if sum(t[0]) > 0 and sum(t[1]) > 0]
    informative = [t for t in kept if 0 < t[:, 0].sum() < t.sum()]
    nan2 = (math.nan, math.nan)
    if not informative:
        return CMHResult(len(kept), math.nan, math.nan, math.nan, nan2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = StratifiedTable([t for t in kept])
        result = table.test_null_odds(correction=True)
        odds = float(table.oddsratio_pooled)
        try:
            lo, hi = table.oddsratio_pooled_confint(alpha=1.0 - conf)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            lo, hi = math.nan, math.nan
    return CMHResult(len(kept), float(result.statistic), float(result.pvalue), odds,
                     (float(lo), float(hi)))


# --- Best of several, pass@k, pass^k ------------------------------------------------------------

def prob_best(counts: Sequence[tuple[int, int]], draws: int = 20000, seed: int = 0) -> list[float]:
    """P(each group has the highest pass rate) under independent Beta(1 + k, 1 + n − k) posteriors
    (uniform prior), by seeded Monte Carlo. 3/3 is not "better" than 29/30 here: its posterior is
    wide, so it is best with a modest probability."""
    if not counts:
        return []
    if len(counts) == 1:
        return [1.0]
    rng = np.random.default_rng(seed)
    samples = np.column_stack([rng.beta(1 + k, 1 + n - k, size=draws) for k, n in counts])
    winners = samples.argmax(axis=1)
    return [float(np.mean(winners == i)) for i in range(len(counts))]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n runs with c passes (Chen et al. 2021): 1 − C(n−c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k (all k of k runs pass; Yao et al. 2024, τ-bench): C(c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return math.comb(c, k) / math.comb(n, k)


# --- Planning: how many runs ---------------------------------------------------------------------

def expected_wilson_half_width(n: int, p: float, conf: float = 0.95) -> float:
    """Mean half-width of the Wilson interval over K ~ Binomial(n, p): what n runs will give."""
    if n <= 0:
        return math.inf
    z = _z(conf)
    k = np.arange(n + 1)
    phat = k / n
    denom = 1.0 + z * z / n
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return float(np.sum(sps.binom.pmf(k, n, p) * half))


def runs_for_half_width(p: float, half_width: float, conf: float = 0.95,
                        max_runs: int = 100_000) -> int | None:
    """Fewest runs whose expected Wilson half-width at pass rate p is at most `half_width`;
    None when more than `max_runs` would be needed."""
    if not 0.0 <= p <= 1.0 or not 0.0 < half_width < 1.0:
        raise ValueError(f"need 0 <= p <= 1 and 0 < half_width < 1, got {p}, {half_width}")
    if expected_wilson_half_width(max_runs, p, conf) > half_width:
        return None
    low, high = 0, 1
    while expected_wilson_half_width(high, p, conf) > half_width:
        low, high = high, high * 2
    while high - low > 1:  # invariant: low is too few (or 0), high is enough
        mid = (low + high) // 2
        if expected_wilson_half_width(mid, p, conf) > half_width:
            low = mid
        else:
            high = mid
    return high


def runs_for_uplift(p0: float, uplift: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Runs per arm for a two-sided test of p0 + uplift against p0 to reach `power` at level
    `alpha` (Cohen's arcsine effect size h, statsmodels NormalIndPower). None when p0 + uplift
    leaves [0, 1] or the uplift is 0."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    p1 = p0 + uplift
    if uplift == 0 or not 0.0 <= p1 <= 1.0 or not 0.0 <= p0 <= 1.0:
        return None
    effect = abs(float(proportion_effectsize(p1, p0)))
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0,
                                     alternative="two-sided")
    return max(2, math.ceil(float(n) - 1e-9))
