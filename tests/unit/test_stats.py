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
