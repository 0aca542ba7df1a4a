"""Experiment and batch reports built from synthetic run_result.json files.

Every expected number is recomputed here from the raw JSON files (json + scipy), not through the
report code, so a bug in aggregation cannot hide behind the same bug in the test.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from tierbench.config import ExperimentConfig, save_config
from tierbench.models import JudgeResult, RunResult, RunStatus, TokenStats, grade_for
from tierbench.report import ExperimentReport, write_report
from tierbench.report.stats import holm_adjust, krippendorff_alpha
from tierbench.store.atomic import atomic_write_json

# (tier, subtest) -> scores of runs 1..3; a run passes at score >= 0.6.
SCORES = {
    ("T0", "00"): [0.9, 0.3, 0.7],
    ("T0", "01"): [0.8, 0.8, 0.5],
    ("T1", "00"): [1.0, 0.9],  # run 3 is an infrastructure error, written as its run_result.json
    ("T1", "01"): [0.65, 0.2, 0.95],
    ("T2", "00"): [0.1, 0.2, 0.0],  # nothing passes: cost-of-pass is infinite
}


def _result(tier: str, subtest: str, run: int, score: float | None, status: RunStatus,
            cost: float) -> RunResult:
    judges = []
    if score is not None:
        for index, offset in ((1, 0.0), (2, -0.05)):
            judge_score = max(0.0, score + offset)
            judges.append(JudgeResult(judge_id=f"judge_{index:02d}",
                                      spec="command" if index == 1 else "openai:gpt-4o@http://x",
                                      is_valid=True, score=judge_score, passed=judge_score >= 0.6,
                                      grade=grade_for(judge_score), duration_seconds=1.0 + index))
    return RunResult(
        tier=tier, subtest=subtest, run_number=run, status=status, exit_code=0,
        token_stats=TokenStats(input_tokens=100 * run, output_tokens=50, cache_creation_tokens=10,
                               cache_read_tokens=5 * run),
        cost_usd=cost, duration_seconds=10.0 + run, agent_duration_seconds=8.0,
        judge_duration_seconds=2.0, judge_score=score,
        judge_passed=None if score is None else score >= 0.6,
        judge_grade=None if score is None else grade_for(score), judges=judges,
        error="agent binary missing" if status == RunStatus.ERROR else None)


def build_experiment(root: Path, test_id: str = "test-a", scores=SCORES, extras: bool = True) -> Path:
    config = ExperimentConfig(experiment_id=f"exp-{test_id}", test_id=test_id, test_dir="/tests/x",
                              tiers=tuple(sorted({t for t, _ in scores})), runs_per_subtest=3,
                              judges=("command", "openai:gpt-4o@http://x"))
    save_config(config, root / "config" / "experiment.json")
    for (tier, subtest), values in scores.items():
        for run, score in enumerate(values, start=1):
            status = RunStatus.PASSED if score >= 0.6 else RunStatus.FAILED
            result = _result(tier, subtest, run, score, status, cost=0.01 * run + 0.001 * len(subtest))
            atomic_write_json(root / tier / subtest / f"run_{run:02d}" / "run_result.json", result)
    if extras:
        limited = _result("T0", "00", 2, None, RunStatus.RATE_LIMITED, cost=0.002)
        atomic_write_json(root / "T0/00/run_02/attempts/01/run_result.json", limited)
        errored = _result("T1", "00", 3, None, RunStatus.ERROR, cost=0.0)
        atomic_write_json(root / "T1/00/run_03/run_result.json", errored)
        atomic_write_json(root / "T0/best_subtest.json", {"tier": "T0", "subtest": "01", "median_score": 0.7,
                                                          "mean_tokens": 10.0, "candidates": {}})
        now = "2026-01-01T00:00:00+00:00"
        atomic_write_json(root / "checkpoint.json", {
            "experiment_id": "x", "experiment_dir": str(root), "config_hash": "h", "started_at": now,
            "last_updated_at": now, "pause_count": 1, "total_pause_seconds": 120.0, "rate_limited_attempts": 1})
    return root


def _raw_runs(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("T*/*/run_*/run_result.json"))]


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def experiment(tmp_path: Path) -> Path:
    exp = build_experiment(tmp_path / "test-a")
    write_report(exp)
    return exp


def test_rates_recomputed_from_files_match_report_json(experiment: Path):
    report = json.loads((experiment / "report.json").read_text())
    results = [r for r in _raw_runs(experiment) if r["status"] in ("passed", "failed")]
    assert report["n_results"] == len(results) == 14
    for tier in report["tiers"]:
        runs = [r for r in results if r["tier"] == tier["tier"]]
        k = sum(r["status"] == "passed" for r in runs)
        ci = sps.binomtest(k, len(runs)).proportion_ci(method="wilson")
        assert (tier["n_runs"], tier["n_passed"]) == (len(runs), k)
        assert tier["pass_rate"] == pytest.approx(k / len(runs))
        assert tier["pass_rate_ci"]["low"] == pytest.approx(ci.low)
        assert tier["pass_rate_ci"]["high"] == pytest.approx(ci.high)
        scores = [r["judge_score"] for r in runs]
        assert tier["score_mean"] == pytest.approx(np.mean(scores))
        assert tier["score_median"] == pytest.approx(np.median(scores))
        assert tier["cost_total"] == pytest.approx(sum(r["cost_usd"] for r in runs))
        tokens = sum(sum(r["token_stats"].values()) for r in runs)
        assert tier["tokens"]["total_tokens"] == tokens
        low, high = tier["score_mean_ci"]["low"], tier["score_mean_ci"]["high"]
        assert low <= tier["score_mean"] <= high
        total, n = sum(scores), len(scores)  # Clopper-Pearson on the sum of scores
        assert low == pytest.approx(sps.beta.ppf(0.025, total, n - total + 1))
        assert high == pytest.approx(sps.beta.ppf(0.975, total + 1, n - total))
        for sub in tier["subtests"]:
            sub_runs = [r for r in runs if r["subtest"] == sub["subtest"]]
            assert sub["n_runs"] == len(sub_runs)
            assert sub["n_passed"] == sum(r["status"] == "passed" for r in sub_runs)
            assert sum(sub["grades"].values()) == len(sub_runs)


def test_rate_limited_and_error_runs_are_excluded_and_listed(experiment: Path):
    report = json.loads((experiment / "report.json").read_text())
    ex = report["exclusions"]
    assert (ex["rate_limited_attempts"], ex["infrastructure_errors"]) == (1, 1)
    assert ex["checkpoint_rate_limited_attempts"] == 1
    assert (ex["pause_count"], ex["total_pause_seconds"]) == (1, 120.0)
    listed = {(e["tier"], e["subtest"], e["run"], e["attempt"], e["status"]) for e in ex["runs"]}
    assert listed == {("T0", "00", 2, 1, "rate_limited"), ("T1", "00", 3, None, "error")}
    t1 = next(t for t in report["tiers"] if t["tier"] == "T1")
    assert t1["n_runs"] == 5 and t1["n_excluded"] == 1
    assert report["total_cost"] == pytest.approx(report["result_cost"] + ex["excluded_cost"])
    assert ex["excluded_cost"] == pytest.approx(0.002)
    markdown = (experiment / "report.md").read_text()
    assert "## Rate limits and infrastructure errors" in markdown
    assert "excluded from every rate" in markdown
    assert "T0/00/run_02/attempts/01/run_result.json" in markdown


def test_csv_row_counts_equal_run_counts(experiment: Path):
    results = [r for r in _raw_runs(experiment) if r["status"] in ("passed", "failed")]
    runs = _read_csv(experiment / "runs.csv")
    assert len(runs) == len(results)
    assert {row["status"] for row in runs} == {"passed", "failed"}
    assert len(_read_csv(experiment / "judges.csv")) == sum(len(r["judges"]) for r in results)
    assert len(_read_csv(experiment / "subtests.csv")) == len(SCORES)
    assert len(_read_csv(experiment / "excluded.csv")) == 2
    passed = sum(row["passed"] == "True" for row in runs)
    assert passed == sum(r["status"] == "passed" for r in results)


def test_html_is_self_contained_with_plots_and_tables(experiment: Path):
    page = (experiment / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "<table>" in page and "<th>95% CI (Wilson)</th>" in page
    assert "Rate limits and infrastructure errors" in page
    assert 'src="' not in page.replace('src="data:image/png;base64,', "")
    assert "<link" not in page and "<script" not in page
    for name in ("pass_rate.png", "scores.png", "cost_vs_pass_rate.png"):
        assert (experiment / name).read_bytes().startswith(b"\x89PNG")


def test_markdown_states_methods(experiment: Path):
    markdown = (experiment / "report.md").read_text()
    assert "Wilson score interval, 95%" in markdown
    assert "Clopper-Pearson (beta) interval on the sum of scores" in markdown
    assert "| T0 | Prompts |" in markdown
    assert "![Pass rate by tier, Wilson 95% CI](pass_rate.png)" in markdown


def test_best_tier_frontier_and_best_subtest(experiment: Path):
    report = ExperimentReport.model_validate_json((experiment / "report.json").read_text())
    tiers = {t.tier: t for t in report.tiers}
    assert tiers["T2"].cost_of_pass is None and tiers["T2"].cost_of_pass_infinite
    finite = {t: s.cost_mean / s.pass_rate for t, s in tiers.items() if s.n_passed}
    assert report.frontier_cop == pytest.approx(min(finite.values()))
    assert report.frontier_tier == min(finite, key=finite.get)
    assert not report.frontier_cop_infinite
    best = max(tiers.values(), key=lambda t: t.pass_rate)
    assert report.best_tier == best.tier == "T1"
    assert report.best_score == pytest.approx(best.score_mean)
    assert tiers["T0"].best_subtest == "01" and tiers["T0"].best_subtest_source == "best_subtest.json"
    # T1: medians 0.95 (00) and 0.65 (01) -> 00 by median, no tie.
    assert tiers["T1"].best_subtest == "00" and tiers["T1"].best_subtest_source == "median_score"
    assert "∞" in (experiment / "report.md").read_text()


def test_uplift_is_holm_adjusted_across_tiers(experiment: Path):
    report = ExperimentReport.model_validate_json((experiment / "report.json").read_text())
    compared = [t for t in report.tiers if t.uplift_vs_t0 is not None]
    assert [t.tier for t in compared] == ["T1", "T2"]
    t0 = report.tiers[0]
    for tier in compared:
        table = [[tier.n_passed, tier.n_runs - tier.n_passed], [t0.n_passed, t0.n_runs - t0.n_passed]]
        assert tier.uplift_vs_t0.p_value == pytest.approx(sps.fisher_exact(table)[1])
        assert tier.uplift_vs_t0.diff == pytest.approx(tier.pass_rate - t0.pass_rate)
        assert tier.uplift_vs_t0.ci.low <= tier.uplift_vs_t0.diff <= tier.uplift_vs_t0.ci.high
    adjusted = holm_adjust([t.uplift_vs_t0.p_value for t in compared])
    assert [t.uplift_vs_t0.p_holm for t in compared] == pytest.approx(adjusted)


def test_judges_and_agreement(experiment: Path):
    report = ExperimentReport.model_validate_json((experiment / "report.json").read_text())
    assert [(j.judge_id, j.n_valid) for j in report.judges] == [("judge_01", 14), ("judge_02", 14)]
    assert report.judge_agreement is not None and report.judge_agreement.n_items == 14
    assert 0.9 < report.judge_agreement.krippendorff_alpha_interval <= 1.0
    assert 0.0 < report.judge_agreement.pairwise_pass_agreement <= 1.0


def test_output_is_deterministic(tmp_path: Path):
    exp = build_experiment(tmp_path / "exp")
    first = write_report(exp, tmp_path / "out1")
    second = write_report(exp, tmp_path / "out2")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_all_failing_experiment_has_infinite_frontier_as_null(tmp_path: Path):
    exp = build_experiment(tmp_path / "exp", scores={("T0", "00"): [0.1, 0.2]}, extras=False)
    write_report(exp, formats={"json"})
    assert sorted(p.name for p in exp.iterdir() if p.is_file()) == ["report.json"]
    raw = json.loads((exp / "report.json").read_text())
    assert raw["frontier_cop"] is None and raw["frontier_cop_infinite"] is True
    assert raw["best_tier"] == "T0" and raw["pass_rate"] == 0.0
    assert raw["tiers"][0]["uplift_vs_t0"] is None


def test_unreadable_run_result_is_named_not_silently_skipped(tmp_path: Path):
    exp = build_experiment(tmp_path / "exp", extras=False)
    (exp / "T0/00/run_01/run_result.json").write_text("{torn")
    write_report(exp, formats={"json"})
    raw = json.loads((exp / "report.json").read_text())
    assert raw["exclusions"]["unreadable_files"] == ["T0/00/run_01/run_result.json"]
    assert raw["n_results"] == 13


def test_rejects_unknown_dirs_and_formats(tmp_path: Path):
    with pytest.raises(ValueError, match="neither"):
        write_report(tmp_path)
    exp = build_experiment(tmp_path / "exp", extras=False)
    with pytest.raises(ValueError, match="unknown report formats"):
        write_report(exp, formats={"pdf"})


def test_batch_report_from_two_experiments(tmp_path: Path):
    batch = tmp_path / "batch"
    build_experiment(batch / "test-a")
    build_experiment(batch / "test-b", test_id="test-b",
                     scores={("T0", "00"): [0.9, 0.9, 0.1], ("T1", "00"): [0.2, 0.7]}, extras=False)
    atomic_write_json(batch / "batch_summary.json", {"tests": {}})
    written = write_report(batch)
    names = {p.name for p in written}
    assert {"report.json", "report.md", "report.html", "tests.csv", "tiers.csv", "runs.csv",
            "pooled_pass_rate.png"} <= names
    raw = json.loads((batch / "report.json").read_text())
    assert raw["kind"] == "batch" and raw["batch_summary_present"]
    assert [t["test_id"] for t in raw["tests"]] == ["test-a", "test-b"]
    results = [r for e in ("test-a", "test-b") for r in _raw_runs(batch / e)
               if r["status"] in ("passed", "failed")]
    for pooled in raw["pooled"]:
        runs = [r for r in results if r["tier"] == pooled["tier"]]
        k = sum(r["status"] == "passed" for r in runs)
        assert (pooled["n_runs"], pooled["n_passed"]) == (len(runs), k)
        ci = sps.binomtest(k, len(runs)).proportion_ci(method="wilson")
        assert pooled["pass_rate_ci"]["low"] == pytest.approx(ci.low)
    t2 = next(p for p in raw["pooled"] if p["tier"] == "T2")
    assert t2["n_tests"] == 1 and t2["cost_of_pass_infinite"]
    assert len(_read_csv(batch / "tests.csv")) == 2
    assert len(_read_csv(batch / "runs.csv")) == len(results)
    assert raw["rate_limited_attempts"] == 1 and raw["infrastructure_errors"] == 1
    per_test = sum(json.loads(json.dumps(t))["total_cost"] for t in raw["tests"])
    assert raw["total_cost"] == pytest.approx(per_test)
    assert "data:image/png;base64," in (batch / "report.html").read_text()
    assert "| test-b | 2/3 (66.7%) | 1/2 (50.0%) | – |" in (batch / "report.md").read_text()
    assert not math.isnan(raw["pooled"][0]["pass_rate"])


def test_experiment_without_results_still_reports(tmp_path: Path):
    exp = build_experiment(tmp_path / "exp", scores={}, extras=False)
    written = write_report(exp)
    assert (exp / "report.html").is_file() and len(_read_csv(exp / "runs.csv")) == 0
    report = ExperimentReport.model_validate_json((exp / "report.json").read_text())
    assert (report.best_tier, report.best_score, report.frontier_cop) == (None, None, None)
    assert not report.frontier_cop_infinite and report.total_cost == 0.0
    assert report.judge_agreement is None and len(written) == 11  # 3 PNGs, json, 5 CSVs (usage.csv too), md, html


def test_judge_limiter_history_per_provider_is_counted(experiment: Path):
    # The coordinator saves the judges' concurrency history keyed by provider.
    history = {"openai@http://127.0.0.1:1": [{"at": "t", "limit": 4, "reason": "init"},
                                              {"at": "t", "limit": 2, "reason": "429"}],
               "anthropic": [{"at": "t", "limit": 4, "reason": "init"}]}
    (experiment / "stats.json").write_text(json.dumps({"judge_limiter_history": history}))
    write_report(experiment)
    assert json.loads((experiment / "report.json").read_text())["judge_limiter_events"] == 3


# --- Evidence that survives review ----------------------------------------------------------------

def _counts_experiment(root: Path, test_id: str, counts: dict[str, tuple[int, int]],
                       configured: tuple[str, ...] | None = None) -> Path:
    """An experiment with `passes`/`runs` per tier (subtest 00), scores 0.9 for a pass, 0.2 else."""
    config = ExperimentConfig(experiment_id=f"exp-{test_id}", test_id=test_id, test_dir="/tests/x",
                              tiers=configured or tuple(sorted(counts)), runs_per_subtest=3,
                              judges=("command",))
    save_config(config, root / "config" / "experiment.json")
    for tier, (passes, runs) in counts.items():
        for run in range(1, runs + 1):
            score = 0.9 if run <= passes else 0.2
            status = RunStatus.PASSED if score >= 0.6 else RunStatus.FAILED
            atomic_write_json(root / tier / "00" / f"run_{run:02d}" / "run_result.json",
                              _result(tier, "00", run, score, status, cost=0.01))
    return root


def test_simpson_example_does_not_reverse_the_batch_headline(tmp_path: Path):
    # T0 at 9/10 and 0/2, T1 at 2/2 and 2/10: T1 is at least as good on each test, but pooling
    # by run count says T0 wins (9/12 against 4/12).
    batch = tmp_path / "batch"
    _counts_experiment(batch / "easy", "easy", {"T0": (9, 10), "T1": (2, 2)})
    _counts_experiment(batch / "hard", "hard", {"T0": (0, 2), "T1": (2, 10)})
    write_report(batch)
    raw = json.loads((batch / "report.json").read_text())
    pooled = {p["tier"]: p for p in raw["pooled"]}
    assert pooled["T0"]["pass_rate"] > pooled["T1"]["pass_rate"]  # the reversal, kept descriptive
    (uplift,) = raw["uplift"]
    assert uplift["tier"] == "T1" and uplift["n_tests"] == 2
    assert (uplift["tests_better"], uplift["tests_worse"]) == (2, 0)
    assert uplift["mean_diff"] == pytest.approx(((1.0 - 0.9) + (0.2 - 0.0)) / 2)
    assert uplift["ci"]["low"] < uplift["mean_diff"] < uplift["ci"]["high"]
    assert uplift["gee"]["note"].startswith("needs at least 5 tests")
    md = (batch / "report.md").read_text()
    assert "## Pooled by tier (descriptive)" in md and "can disagree with the per-test comparison" in md
    assert "| T1 | 2 | 2/0/0 | 15.0% |" in md
    assert (batch / "uplift.png").read_bytes().startswith(b"\x89PNG")


def test_batch_inference_matches_statsmodels_from_the_files(tmp_path: Path):
    import pandas as pd
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from statsmodels.stats.contingency_tables import StratifiedTable

    batch = tmp_path / "batch"
    counts = [((1, 4), (3, 4)), ((0, 4), (2, 4)), ((4, 4), (4, 4)), ((2, 4), (1, 4)),
              ((3, 4), (4, 4)), ((1, 4), (1, 4)), ((0, 4), (3, 4)), ((2, 4), (4, 4)),
              ((1, 4), (2, 4)), ((3, 4), (2, 4)), ((0, 4), (0, 4))]
    for i, (t0, t1) in enumerate(counts):
        _counts_experiment(batch / f"t{i:02d}", f"t{i:02d}", {"T0": t0, "T1": t1})
    write_report(batch)
    (uplift,) = json.loads((batch / "report.json").read_text())["uplift"]
    rows = [{"test": r["experiment_dir"], "tier": int(r["tier"] == "T1"),
             "passed": int(r["status"] == "passed")} for r in _read_csv(batch / "runs.csv")]
    frame = pd.DataFrame(rows)
    diffs = frame.groupby(["test", "tier"]).passed.mean().unstack().pipe(lambda f: f[1] - f[0])
    ttest = sps.ttest_1samp(diffs, 0.0)
    assert uplift["n_tests"] == 11 and uplift["mean_diff"] == pytest.approx(diffs.mean())
    assert uplift["p_value"] == pytest.approx(ttest.pvalue)
    assert uplift["bootstrap_ci"]["low"] < uplift["mean_diff"] < uplift["bootstrap_ci"]["high"]
    gee = smf.gee("passed ~ tier", groups="test", data=frame, family=sm.families.Binomial(),
                  cov_struct=sm.cov_struct.Exchangeable()).fit(cov_type="bias_reduced")
    assert uplift["gee"]["odds_ratio"] == pytest.approx(math.exp(gee.params["tier"]), rel=1e-6)
    assert uplift["gee"]["p_value"] == pytest.approx(gee.pvalues["tier"], rel=1e-6)
    tables = [np.array([[t1[0], t1[1] - t1[0]], [t0[0], t0[1] - t0[0]]]) for t0, t1 in counts]
    strat = StratifiedTable(tables)
    cmh = strat.test_null_odds(correction=True)
    assert uplift["cmh"]["p_value"] == pytest.approx(cmh.pvalue)
    assert uplift["cmh"]["mh_odds_ratio"] == pytest.approx(strat.oddsratio_pooled)
    assert uplift["cmh"]["n_strata"] == 11
    # One comparison: the adjusted values equal the raw ones.
    assert uplift["p_adjusted"] == pytest.approx(uplift["p_value"])
    assert uplift["ci_simultaneous"] == pytest.approx(uplift["ci"])
    md = (batch / "report.md").read_text()
    assert "## Uplift vs T0 across tests" in md and "GEE odds ratio" in md


def test_best_tier_says_when_the_data_cannot_separate(tmp_path: Path):
    exp = _counts_experiment(tmp_path / "exp", "sep", {"T0": (29, 30), "T1": (3, 3)})
    write_report(exp, formats={"json", "md"})
    report = ExperimentReport.model_validate_json((exp / "report.json").read_text())
    assert report.best_tier == "T0"  # 29/30 beats 3/3
    assert report.best_tier_separated is False and report.best_tier_runner_up == "T1"
    assert 0.5 < report.best_tier_prob < 0.95
    assert "the data cannot separate T0 from T1" in (exp / "report.md").read_text()
    clear = _counts_experiment(tmp_path / "clear", "clear", {"T0": (1, 20), "T1": (19, 20)})
    write_report(clear, formats={"json"})
    report = ExperimentReport.model_validate_json((clear / "report.json").read_text())
    assert report.best_tier == "T1" and report.best_tier_separated is True


def test_n_scored_and_tiers_without_results_are_shown(tmp_path: Path):
    exp = _counts_experiment(tmp_path / "exp", "ns", {"T0": (2, 4), "T1": (1, 2)},
                             configured=("T0", "T1", "T3"))
    for run in (3, 4):  # two results whose judges gave no score
        path = exp / "T0/00" / f"run_{run:02d}" / "run_result.json"
        raw = json.loads(path.read_text())
        raw["judge_score"], raw["judge_grade"] = None, None
        path.write_text(json.dumps(raw))
    write_report(exp, formats={"json", "md"})
    report = ExperimentReport.model_validate_json((exp / "report.json").read_text())
    t0 = report.tiers[0]
    assert (t0.n_runs, t0.n_scored) == (4, 2)
    assert report.tiers_without_results == ["T3"]
    md = (exp / "report.md").read_text()
    assert "| 0.900 (n=2) |" in md
    assert "Configured tiers without results: T3" in md and "| T3 |" in md


def test_pass_at_k_flaky_and_chance_corrected_agreement(experiment: Path):
    # Make the second judge fail two runs the first judge passed.
    for rel in ("T0/00/run_01/run_result.json", "T1/01/run_01/run_result.json"):
        raw = json.loads((experiment / rel).read_text())
        raw["judges"][1]["passed"] = False
        (experiment / rel).write_text(json.dumps(raw))
    write_report(experiment)
    report = ExperimentReport.model_validate_json((experiment / "report.json").read_text())
    tiers = {t.tier: t for t in report.tiers}
    raw = [r for r in _raw_runs(experiment) if r["status"] in ("passed", "failed")]
    for sub in tiers["T1"].subtests:
        runs = [r for r in raw if r["tier"] == "T1" and r["subtest"] == sub.subtest]
        n, c = len(runs), sum(r["status"] == "passed" for r in runs)
        assert sub.pass_at_k["2"] == pytest.approx(1 - math.comb(n - c, 2) / math.comb(n, 2))
        assert sub.pass_hat_k["2"] == pytest.approx(math.comb(c, 2) / math.comb(n, 2))
    # T1: subtest 00 has 2 runs (2 passed), 01 has 3 runs (2 passed): pass^2 = mean(1, 1/3).
    assert tiers["T1"].pass_hat_k["2"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert tiers["T1"].pass_hat_k["3"] == pytest.approx(0.0)  # only 01 has 3 runs
    assert [(f.tier, f.subtest) for f in report.flaky_subtests] == [("T0", "00"), ("T0", "01"), ("T1", "01")]
    # Chance-corrected: alpha on the verdicts read back from the files, below the raw share.
    verdicts = [[j["passed"] for j in r["judges"]] for r in _raw_runs(experiment)
                if r["status"] in ("passed", "failed")]
    agreement = report.judge_agreement
    assert agreement.pairwise_pass_agreement == pytest.approx(12 / 14)
    assert agreement.krippendorff_alpha_pass == pytest.approx(
        krippendorff_alpha([[float(v) for v in row] for row in verdicts], metric="nominal"))
    assert agreement.krippendorff_alpha_pass < agreement.pairwise_pass_agreement
    md = (experiment / "report.md").read_text()
    assert "## Flaky subtests" in md and "| pass@1 |" in md
