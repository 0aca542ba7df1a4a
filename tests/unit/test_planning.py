"""`tierbench plan`: run counts for a target precision or uplift, and the forecast from a pilot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from tierbench.report.planning import PlanError, make_plan, render_plan
from tierbench.report.stats import expected_wilson_half_width, runs_for_half_width, runs_for_uplift
from tests.unit.test_report_experiment import _counts_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tests"


def _expected_width_scipy(n: int, p: float) -> float:
    total = 0.0
    for k in range(n + 1):
        ci = sps.binomtest(k, n).proportion_ci(method="wilson")
        total += sps.binom.pmf(k, n, p) * (ci.high - ci.low) / 2
    return total


@pytest.mark.parametrize(("p", "h"), [(0.5, 0.1), (0.9, 0.1), (0.2, 0.15), (0.5, 0.3), (1.0, 0.2)])
def test_runs_for_half_width_is_the_fewest_that_reach_it(p, h):
    n = runs_for_half_width(p, h)
    assert _expected_width_scipy(n, p) <= h + 1e-12
    assert _expected_width_scipy(n - 1, p) > h
    assert expected_wilson_half_width(n, p) == pytest.approx(_expected_width_scipy(n, p))


def test_runs_for_uplift_matches_the_arcsine_formula_and_simulated_power():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    for p0, delta in ((0.5, 0.2), (0.3, 0.3), (0.8, -0.3)):
        h = abs(2 * math.asin(math.sqrt(p0 + delta)) - 2 * math.asin(math.sqrt(p0)))
        assert runs_for_uplift(p0, delta) == math.ceil(2 * (z / h) ** 2)
    # Simulated power of the pooled two-proportion z-test at the planned n: about 0.8.
    n = runs_for_uplift(0.3, 0.3)
    rng = np.random.default_rng(5)
    k0, k1 = rng.binomial(n, 0.3, 4000), rng.binomial(n, 0.6, 4000)
    pooled = (k0 + k1) / (2 * n)
    zstat = (k1 - k0) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert 0.75 <= float(np.mean(np.abs(zstat) > 1.96)) <= 0.88
    assert runs_for_uplift(0.9, 0.2) is None


def test_plan_from_a_pilot_forecasts_cost_and_wall_time(tmp_path: Path):
    # Pilot of py-fizzbuzz: T0 2/8, T1 6/8; every run costs $0.01 and lasts 10 + run s.
    pilot = _counts_experiment(tmp_path / "pilot", "py-fizzbuzz", {"T0": (2, 8), "T1": (6, 8)})
    plan = make_plan(EXAMPLES / "py-fizzbuzz", half_width=0.2, pilot=pilot, tiers=["T0", "T1", "T2"],
                     parallel=3)
    rows = {r.tier: r for r in plan.rows}
    # (passes + 1) / (runs + 2): 2/8 -> 0.3, 6/8 -> 0.7; T2 has no pilot runs: all 16 -> 9/18.
    assert rows["T0"].pass_rate == pytest.approx(0.3) and rows["T1"].pass_rate == pytest.approx(0.7)
    assert rows["T0"].rate_source == "pilot py-fizzbuzz T0 (2/8 passed)"
    assert rows["T2"].rate_source == "pilot, all tiers (8/16 passed)" and rows["T2"].pass_rate == 0.5
    for row in plan.rows:
        assert row.runs_per_subtest == runs_for_half_width(row.pass_rate, 0.2)
    assert plan.recommended_runs == max(r.runs_per_subtest for r in plan.rows)
    subtests = sum(r.subtests for r in plan.rows)
    assert plan.total_runs == subtests * plan.recommended_runs
    assert plan.total_cost == pytest.approx(plan.total_runs * 0.01)
    seconds = np.mean([10.0 + run for run in range(1, 9)])
    assert plan.wall_seconds == pytest.approx(plan.total_runs * seconds / 3)
    text = render_plan(plan)
    assert f"Recommended: --runs {plan.recommended_runs} -> {plan.total_runs} runs" in text
    assert f"forecast cost ${plan.total_cost:.2f}" in text


def test_plan_with_a_prior_and_no_cost_says_so():
    plan = make_plan(EXAMPLES, uplift=0.3, prior_pass_rate=0.4)
    assert {r.test_id for r in plan.rows} == {"js-slugify", "py-fizzbuzz", "py-roman", "sh-wordcount"}
    assert {r.runs_per_subtest for r in plan.rows} == {runs_for_uplift(0.4, 0.3)}
    assert plan.total_cost == 0.0 and not plan.cost_complete
    assert "forecast cost unknown (give --pilot or --cost-per-run)" in render_plan(plan)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one target"),
    ({"half_width": 0.1, "uplift": 0.2}, "exactly one target"),
    ({"half_width": 1.5}, "--half-width 1.5"),
    ({"uplift": 0.2, "prior_pass_rate": 2.0}, "--prior-pass-rate 2.0"),
])
def test_plan_rejects_bad_targets(kwargs, message):
    with pytest.raises(PlanError, match=message):
        make_plan(EXAMPLES / "py-fizzbuzz", **kwargs)


def test_plan_rejects_a_directory_without_tests(tmp_path: Path):
    with pytest.raises(PlanError, match="no test.yaml"):
        make_plan(tmp_path, half_width=0.1)
    with pytest.raises(PlanError, match="not an experiment directory"):
        make_plan(EXAMPLES / "py-fizzbuzz", half_width=0.1, pilot=tmp_path)


def test_plan_command_line(tmp_path: Path):
    """`tierbench plan` as a user runs it: text by default, JSON with --json, exit 1 on bad input."""
    from tests.support.cli import run_cli

    pilot = _counts_experiment(tmp_path / "pilot", "py-fizzbuzz", {"T0": (2, 8), "T1": (6, 8)})
    text = run_cli("plan", EXAMPLES / "py-fizzbuzz", "--half-width", "0.2", "--pilot", pilot,
                   "--tiers", "T0", "T1", "--parallel", "3")
    assert text.returncode == 0, text.stderr
    expected = make_plan(EXAMPLES / "py-fizzbuzz", half_width=0.2, pilot=pilot, tiers=["T0", "T1"],
                         parallel=3)
    assert text.stdout == render_plan(expected)
    as_json = run_cli("plan", EXAMPLES / "py-fizzbuzz", "--half-width", "0.2", "--pilot", pilot,
                      "--tiers", "T0", "T1", "--parallel", "3", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == json.loads(expected.model_dump_json())
    bad = run_cli("plan", EXAMPLES / "py-fizzbuzz", "--half-width", "1.5")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "tierbench: --half-width 1.5: must be between 0 and 1 (e.g. 0.1)"
    missing = run_cli("plan", tmp_path / "nowhere", "--uplift", "0.2")
    assert missing.returncode == 1 and "no test.yaml there" in missing.stderr
