"""Statistics checked against published values and independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from tierbench.report.stats import (
    bootstrap_mean_ci,
    consistency,
    cost_of_pass,
    fisher_exact_uplift,
    holm_adjust,
    krippendorff_alpha,
    krippendorff_alpha_interval,
    pairwise_agreement,
    wilson_interval,
)


@pytest.mark.parametrize(("k", "n", "expected"), [
    (81, 263, (0.2553, 0.3662)),  # 95%; also cross-checked against scipy below
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (5, 10, (0.2366, 0.7634)),
])
def test_wilson_matches_published_values(k, n, expected):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(expected[0], abs=5e-5)
    assert hi == pytest.approx(expected[1], abs=5e-5)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 3), (7, 20), (81, 263), (30, 30)])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, conf):
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    lo, hi = wilson_interval(k, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_cost_of_pass_edges():
    assert cost_of_pass(0.5, 0.0) == math.inf
    assert cost_of_pass(0.0, 0.0) == math.inf  # nothing passed: no price buys a pass
    assert cost_of_pass(0.0, 0.5) == 0.0
    assert cost_of_pass(0.3, 0.5) == pytest.approx(0.6)
    assert cost_of_pass(0.3, 1.0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        cost_of_pass(1.0, 1.5)


def test_holm_known_example_in_original_order():
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_monotone_and_capped():
    raw = [0.2, 0.5, 0.001, 0.9, 0.04]
    adjusted = holm_adjust(raw)
    ordered = [adjusted[i] for i in np.argsort(raw)]
    assert ordered == sorted(ordered)
    assert all(a >= p for a, p in zip(adjusted, raw))
    assert max(adjusted) <= 1.0
    assert holm_adjust([]) == []


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    values = [0.1, 0.4, 0.45, 0.9, 0.7, 0.65, 0.3]
    first = bootstrap_mean_ci(values, seed=0)
    assert first == bootstrap_mean_ci(values, seed=0)
    assert first != bootstrap_mean_ci(values, seed=1)
    assert first[0] < np.mean(values) < first[1]
    assert bootstrap_mean_ci([0.5]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in bootstrap_mean_ci([]))


def test_consistency_definitions():
    assert consistency([0.5, 0.5, 0.5]) == 1.0
    assert consistency([0.0, 0.0]) == 0.0
    assert math.isnan(consistency([]))
    values = [0.2, 0.4, 0.6]
    assert consistency(values) == pytest.approx(1 - np.std(values, ddof=1) / np.mean(values))
    assert consistency([0.0, 1.0, 0.0, 0.0]) == 0.0  # CV > 1 clamps to 0


def test_uplift_matches_newcombe_1998_example():
    # Newcombe (1998), Stat Med 17:873, example (56/70 vs 48/80): method 10 gives 0.0524 to 0.3339.
    diff, (lo, hi), p = fisher_exact_uplift(56, 70, 48, 80)
    assert diff == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=5e-5)
    assert hi == pytest.approx(0.3339, abs=5e-5)
    assert p == pytest.approx(sps.fisher_exact([[56, 14], [48, 32]])[1])


def test_uplift_empty_group_is_undefined():
    diff, ci, p = fisher_exact_uplift(3, 5, 0, 0)
    assert math.isnan(diff) and ci == (-1.0, 1.0) and p == 1.0


# Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", reliability data of 4 observers
# × 12 units with missing values; published alpha: nominal 0.743, interval 0.849.
_N = None
_KRIPP_2011 = list(zip(
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _N, _N, _N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _N, 3],
    [_N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _N],
))


def test_krippendorff_alpha_published_example():
    assert krippendorff_alpha_interval(_KRIPP_2011) == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha(_KRIPP_2011, metric="nominal") == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_edges():
    assert krippendorff_alpha_interval([[0.5, 0.5], [0.8, 0.8]]) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_interval([[0.5, 0.5], [0.5, 0.5]]))  # no variation
    assert math.isnan(krippendorff_alpha_interval([[0.5, None], [0.2, math.nan]]))  # unpairable


def test_pairwise_agreement():
    matrix = [[True, True], [True, False], [False, False], [None, True]]
    assert pairwise_agreement(matrix) == pytest.approx(2 / 3)
    assert pairwise_agreement([[True, True, False]]) == pytest.approx(1 / 3)
    assert math.isnan(pairwise_agreement([[True, None]]))


# --- Intervals at small n, batch inference, pass@k: seeded simulations and reference values -----

from scipy.special import expit  # noqa: E402

from tierbench.report.stats import (  # noqa: E402
    beta_interval_sum, bonferroni_adjust, cmh_test, gee_logistic, newcombe_interval,
    newcombe_p_value, paired_t, pass_at_k, pass_hat_k, prob_best, score_mean_interval,
)

RATES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_score_interval_covers_at_small_n(n):
    """The per-tier score interval covers the true mean score >= 90% at n = 3, 5, 10 for every
    true pass rate of the grid, for 0/1 scores and for scores spread inside [0, 1]."""
    rng = np.random.default_rng(20261123 + n)
    reps = 2000
    for p in RATES:
        outcomes = rng.random((reps, n)) < p
        bernoulli = outcomes.astype(float)
        # Rubric-like scores: a pass scores in [0.6, 1], a failure in [0, 0.6).
        spread = np.where(outcomes, 0.6 + 0.4 * rng.random((reps, n)), 0.6 * rng.random((reps, n)))
        for scores, truth in ((bernoulli, p), (spread, 0.8 * p + 0.3 * (1 - p))):
            lo, hi = beta_interval_sum(scores.sum(axis=1), n)
            coverage = float(np.mean((lo <= truth) & (truth <= hi)))
            assert coverage >= 0.90, (n, p, truth, coverage)
            assert np.all(hi - lo > 0.05), "an interval collapsed to (almost) a point"


def test_score_interval_is_never_zero_width_and_matches_clopper_pearson():
    for k, n in ((0, 3), (3, 3), (1, 5), (10, 10)):
        lo, hi = score_mean_interval([1.0] * k + [0.0] * (n - k))
        ref = sps.binomtest(k, n).proportion_ci(method="exact")
        assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
        assert hi > lo
    assert all(math.isnan(v) for v in score_mean_interval([]))


@pytest.mark.parametrize("spread", [1.0, 2.0])
@pytest.mark.parametrize(("n_tests", "runs"), [(5, 3), (10, 3), (10, 5)])
def test_paired_uplift_covers_when_test_difficulty_varies(spread, n_tests, runs):
    """Tests differ in difficulty (logit sd `spread`); the tier adds 0.8 on the logit scale. The
    estimand is the mean over tests like these of P(pass | tier) - P(pass | T0). The paired
    interval over tests covers it >= 90%; an undefined interval counts as a miss."""
    rng = np.random.default_rng(int(spread * 1000) + n_tests * 10 + runs)
    effect = 0.8
    population = rng.normal(0.0, spread, 400_000)
    truth = float(np.mean(expit(population + effect) - expit(population)))
    reps, covered = 1000, 0
    for _ in range(reps):
        difficulty = rng.normal(0.0, spread, n_tests)
        k0 = rng.binomial(runs, expit(difficulty))
        k1 = rng.binomial(runs, expit(difficulty + effect))
        _, _, (lo, hi), _ = paired_t((k1 - k0) / runs)
        covered += bool(lo <= truth <= hi)
    assert covered / reps >= 0.90, (spread, n_tests, runs, covered / reps)


def test_paired_t_matches_scipy_and_is_undefined_without_spread():
    diffs = [0.2, -0.1, 0.4, 0.0, 0.33]
    res = paired_t(diffs)
    ref = sps.ttest_1samp(diffs, 0.0)
    assert res.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert res.ci == pytest.approx((ci.low, ci.high))
    assert math.isnan(paired_t([0.5, 0.5, 0.5]).ci[0]) and math.isnan(paired_t([0.5]).p_value)


def _chen_pass_at_k(n: int, c: int, k: int) -> float:
    # The numerically stable estimator as published with HumanEval (Chen et al. 2021, Fig. 3).
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@pytest.mark.parametrize(("n", "c"), [(3, 0), (3, 1), (5, 2), (10, 7), (20, 20), (30, 29)])
def test_pass_at_k_matches_the_published_estimator(n, c):
    for k in range(1, n + 1):
        assert pass_at_k(n, c, k) == pytest.approx(_chen_pass_at_k(n, c, k), abs=1e-12)
        assert pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k))
    assert pass_at_k(n, c, 1) == pytest.approx(c / n) == pass_hat_k(n, c, 1)


def test_pass_hat_k_known_values():
    assert pass_hat_k(5, 4, 2) == pytest.approx(6 / 10)  # C(4,2)/C(5,2)
    assert pass_hat_k(5, 4, 5) == 0.0 and pass_at_k(5, 4, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_prob_best_does_not_crown_three_of_three_over_29_of_30():
    small, large = prob_best([(3, 3), (29, 30)])
    assert large > small and small + large == pytest.approx(1.0)
    # P(Beta(4,1) > Beta(30,2)) by numerical integration.
    x = np.linspace(0, 1, 200_001)
    exact = np.trapezoid(sps.beta.pdf(x, 4, 1) * sps.beta.cdf(x, 30, 2), x)
    assert small == pytest.approx(exact, abs=0.01)
    assert prob_best([(2, 3)]) == [1.0] and prob_best([]) == []


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"),
                         [(9, 10, 3, 10), (3, 3, 0, 3), (1, 6, 5, 6), (4, 10, 5, 10), (29, 30, 20, 30)])
def test_newcombe_p_is_dual_to_its_interval(k1, n1, k0, n0):
    p = newcombe_p_value(k1, n1, k0, n0)
    for alpha in (0.01, 0.05, 0.1, 0.2, 0.5):
        lo, hi = newcombe_interval(k1, n1, k0, n0, 1 - alpha)
        if abs(p - alpha) > 1e-6:
            assert (lo > 0 or hi < 0) == (p < alpha), (alpha, p, lo, hi)
    assert newcombe_p_value(2, 4, 3, 6) == 1.0
    assert bonferroni_adjust([0.01, None, 0.4]) == [0.02, None, 0.8]


def test_gee_matches_statsmodels_formula_fit():
    import pandas as pd
    import statsmodels.formula.api as smf
    import statsmodels.api as sm

    rng = np.random.default_rng(7)
    rows = []
    for test in range(8):  # unequal run counts, so the working correlation matters
        difficulty = rng.normal(0, 1.5)
        for arm in (0, 1):
            for _ in range(2 + (test + 3 * arm) % 5):
                rows.append({"test": f"t{test}", "tier": arm,
                             "passed": int(rng.random() < expit(difficulty + 0.9 * arm))})
    frame = pd.DataFrame(rows)
    ref = smf.gee("passed ~ tier", groups="test", data=frame, family=sm.families.Binomial(),
                  cov_struct=sm.cov_struct.Exchangeable()).fit(cov_type="bias_reduced")
    est = gee_logistic(frame.passed.tolist(), frame.tier.tolist(), frame.test.tolist())
    assert est.note is None
    assert est.odds_ratio == pytest.approx(math.exp(ref.params["tier"]), rel=1e-6)
    lo, hi = np.exp(ref.conf_int().loc["tier"])
    assert est.odds_ratio_ci == pytest.approx((lo, hi), rel=1e-6)
    assert est.p_value == pytest.approx(ref.pvalues["tier"], rel=1e-6)
    b0, b1 = ref.params["Intercept"], ref.params["tier"]
    assert est.diff == pytest.approx(expit(b0 + b1) - expit(b0), rel=1e-6)
    assert est.diff_ci[0] < est.diff < est.diff_ci[1]
    separated = gee_logistic([1, 1, 0, 1], [0, 0, 1, 1], ["a", "b", "a", "b"])
    assert separated.note is not None and "separation" in separated.note


def test_cmh_matches_the_textbook_formula():
    tables = [[[2, 0], [9, 1]], [[2, 8], [0, 2]], [[5, 5], [3, 7]], [[4, 1], [4, 1]]]
    res = cmh_test(tables)
    # Mantel-Haenszel (1959) with continuity correction, by hand.
    a = np.array([t[0][0] for t in tables], float)
    n1 = np.array([sum(t[0]) for t in tables], float)
    n0 = np.array([sum(t[1]) for t in tables], float)
    m1 = np.array([t[0][0] + t[1][0] for t in tables], float)
    n = n1 + n0
    expected = n1 * m1 / n
    var = n1 * n0 * m1 * (n - m1) / (n**2 * (n - 1))
    stat = (abs(a.sum() - expected.sum()) - 0.5) ** 2 / var.sum()
    assert res.statistic == pytest.approx(stat)
    assert res.p_value == pytest.approx(sps.chi2.sf(stat, 1))
    b = np.array([t[0][1] for t in tables], float)
    c = np.array([t[1][0] for t in tables], float)
    d = np.array([t[1][1] for t in tables], float)
    assert res.odds_ratio == pytest.approx((a * d / n).sum() / (b * c / n).sum())
    assert res.n_strata == 4
    assert math.isnan(cmh_test([[[3, 0], [2, 0]]]).p_value)  # no stratum with both outcomes
