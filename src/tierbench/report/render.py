"""Writing a report: report.md, report.html, report.json, CSVs and PNGs, every file atomically.

The Markdown and the HTML are two renderings of one list of sections (title, text, tables, figures),
so they can never disagree. Nothing time-dependent is written: the same files give the same report.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tierbench.report.aggregate import (
    ExperimentData, find_experiment_dirs, load_batch, load_experiment_runs, summarize_batch,
    summarize_experiment,
)
from tierbench.report.schema import GRADES, BatchReport, ExperimentReport, Interval
from tierbench.report.usage import usage_csv_rows, usage_report
from tierbench.store.atomic import atomic_write_bytes

DEFAULT_FORMATS = frozenset({"md", "html", "json", "csv"})
KNOWN_FORMATS = DEFAULT_FORMATS | {"png"}


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (png file name, caption)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _ci(ci: Interval, pct: bool = True) -> str:
    if ci.low is None or ci.high is None:
        return "–"
    return f"{ci.low:.1%} – {ci.high:.1%}" if pct else f"{ci.low:.3f} – {ci.high:.3f}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4f}"


def _cop(value: float | None, infinite: bool) -> str:
    return "∞" if infinite else _usd(value)


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}s"


def _mean_n(value: float | None, n_scored: int) -> str:
    """A mean with the number of values behind it, so 2 of 4 scored runs never pass for 4."""
    return "–" if value is None else f"{value:.3f} (n={n_scored})"


def _prob(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}")


def _ratio_ci(ci: Interval) -> str:
    return "–" if ci.low is None or ci.high is None else f"{ci.low:.3g} – {ci.high:.3g}"


def _best_tier_text(rep: ExperimentReport) -> str:
    if rep.best_tier is None:
        return "Best tier: – (no results)"
    head = f"Best tier: {rep.best_tier} (mean score {_num(rep.best_score)}"
    if rep.best_tier_separated is None:
        return head + "; the only tier with results)"
    if rep.best_tier_separated:
        return head + f"; P(best) {_prob(rep.best_tier_prob)})"
    runner = next((t for t in rep.tiers if t.tier == rep.best_tier_runner_up), None)
    return (head + f"; P(best) {_prob(rep.best_tier_prob)}): the data cannot separate "
            f"{rep.best_tier} from {rep.best_tier_runner_up} (P(best) "
            f"{_prob(runner.prob_best if runner else None)})")


def _cell(k: int, n: int, rate: float | None) -> str:
    return f"{k}/{n} ({_pct(rate)})" if n else "–"


def _methods(methods) -> list[str]:
    def label(name: str) -> str:
        special = {"gee": "GEE", "cmh": "CMH", "pass_at_k": "pass@k and pass^k",
                   "prob_best": "P(best)"}
        if name in special:
            return special[name]
        words = name.replace("_ci", "_CI").replace("_", " ")
        return words[0].upper() + words[1:]

    return [f"{label(name)}: {text}" for name, text in methods.model_dump().items()]


def _cost_sources(rep: ExperimentReport) -> str:
    """How many result runs took their agent cost from the agent, tierbench's price table, or nowhere."""
    totals: dict[str, int] = {}
    for tier in rep.tiers:
        for source, n in tier.cost_sources.items():
            totals[source] = totals.get(source, 0) + n
    labels = {"agent": "reported by the agent", "price_table": "tierbench price table", "unknown": "unknown (cost 0)"}
    return "; ".join(f"{labels.get(k, k)} {n}" for k, n in sorted(totals.items())) or "–"


def experiment_sections(rep: ExperimentReport) -> list[Section]:
    best_cop = _cop(rep.frontier_cop, rep.frontier_cop_infinite)
    summary = Section(f"tierbench report: {rep.test_id or rep.experiment_id or 'experiment'}", bullets=[
        f"Experiment: {rep.experiment_id or '–'}; agent: {rep.agent or '–'}; model: {rep.model or '–'}; "
        f"judges: {', '.join(rep.judge_specs) or '–'}; runs per subtest: {rep.runs_per_subtest or '–'}",
        f"Results: {rep.n_results} runs, {rep.n_passed} passed ({_pct(rep.pass_rate)})",
        f"{_best_tier_text(rep)}; frontier cost-of-pass: "
        f"{best_cop}{f' ({rep.frontier_tier})' if rep.frontier_tier else ''}",
        f"Total cost: {_usd(rep.total_cost)} (results {_usd(rep.result_cost)}, excluded attempts "
        f"{_usd(rep.exclusions.excluded_cost)}); total run time: {_secs(rep.total_duration)}; "
        f"wall clock: {_secs(rep.wall_clock_seconds)}",
        f"Agent cost source (runs): {_cost_sources(rep)}",
    ] + ([f"Configured tiers without results: {', '.join(rep.tiers_without_results)}"]
         if rep.tiers_without_results else []))
    methods = Section("Methods", bullets=_methods(rep.methods) + [rep.exclusions.note])
    tiers = Section("Tiers", tables=[Table(
        ["Tier", "Name", "Runs", "Passed", "Pass rate", "95% CI (Wilson)", "Mean score",
         "95% CI (beta)", "Median", "Std", "Consistency", "Mean cost", "Total cost",
         "Cost-of-pass", "P(best)", "Best subtest", "Excluded"],
        [[t.tier, t.name, str(t.n_runs), str(t.n_passed), _pct(t.pass_rate), _ci(t.pass_rate_ci),
          _mean_n(t.score_mean, t.n_scored), _ci(t.score_mean_ci, pct=False), _num(t.score_median),
          _num(t.score_std), _num(t.consistency), _usd(t.cost_mean), _usd(t.cost_total),
          _cop(t.cost_of_pass, t.cost_of_pass_infinite), _prob(t.prob_best), t.best_subtest or "–",
          str(t.n_excluded)]
         for t in rep.tiers]
        + [[tier, "", "0", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–",
            "no results"] for tier in rep.tiers_without_results])],
        figures=[("pass_rate.png", "Pass rate by tier, Wilson 95% CI"),
                 ("scores.png", "Score distribution by tier"),
                 ("cost_vs_pass_rate.png", "Cost vs pass rate, Pareto frontier in red")])
    uplift_rows = [[t.tier, _pct(u.diff), _ci(u.ci), _p(u.p_score), _ci(u.ci_simultaneous),
                    _p(u.p_adjusted), _p(u.p_value), _p(u.p_holm)]
                   for t in rep.tiers if (u := t.uplift_vs_t0) is not None]
    m = next((t.uplift_vs_t0.n_comparisons for t in rep.tiers if t.uplift_vs_t0 is not None), 0)
    uplift = Section("Uplift vs T0", text=[
        f"Pass-rate difference over T0 within this test. The simultaneous interval and adjusted p "
        f"cover all {m} comparisons (Bonferroni); each interval excludes 0 exactly when its p is "
        f"below 0.05." if uplift_rows else "No tier to compare with T0."],
        tables=[Table(["Tier", "Δ pass rate", "95% CI (Newcombe)", "p", "Simultaneous 95% CI",
                       "Adjusted p", "Fisher p", "Fisher Holm p"], uplift_rows)] if uplift_rows else [])
    ks = sorted({k for t in rep.tiers for k in t.pass_at_k}, key=int)
    pass_k = Section("pass@k and pass^k", text=[
        "pass@k: chance that at least one of k runs passes; pass^k: chance that all k pass "
        "(unbiased estimators from the recorded runs; a tier averages its subtests)."],
        tables=[Table(["Tier", *[f"pass@{k}" for k in ks], *[f"pass^{k}" for k in ks]],
                      [[t.tier, *[_num(t.pass_at_k.get(k)) for k in ks],
                        *[_num(t.pass_hat_k.get(k)) for k in ks]] for t in rep.tiers])]
        if ks else [])
    flaky = Section("Flaky subtests", text=[
        "Subtests whose outcome flips between runs (some passed, some failed)."
        if rep.flaky_subtests else "None: every subtest passed all its runs or failed all of them."],
        tables=[Table(["Tier", "Subtest", "Runs", "Passed"],
                      [[f.tier, f.subtest, str(f.n_runs), str(f.n_passed)] for f in rep.flaky_subtests])]
        if rep.flaky_subtests else [])
    unseparated = [t.tier for t in rep.tiers if t.subtests_separated is False]
    subtests = Section("Subtests", text=["* marks the tier's best subtest. Grades: " + " ".join(GRADES)
                                         + ". P(best): probability of the highest pass rate in its tier."]
                       + ([f"The data cannot separate the subtests of {', '.join(unseparated)}: no "
                           f"subtest there has P(best) of 0.95 or more."] if unseparated else []),
                       tables=[Table(
        ["Tier", "Subtest", "Agent", "Runs", "Passed", "Pass rate", "95% CI (Wilson)", "P(best)", "Mean score",
         "Median", "Consistency", "Grades S/A/B/C/D/F", "Mean cost", "Mean tokens", "Cost-of-pass"],
        [[t.tier, s.subtest + (" *" if s.is_best else ""), ", ".join(s.agents) or "–", str(s.n_runs),
          str(s.n_passed), _pct(s.pass_rate), _ci(s.pass_rate_ci), _prob(s.prob_best),
          _mean_n(s.score_mean, s.n_scored), _num(s.score_median),
          _num(s.consistency), "/".join(str(s.grades[g]) for g in GRADES), _usd(s.cost_mean),
          _num(s.tokens.mean_total_tokens, 0), _cop(s.cost_of_pass, s.cost_of_pass_infinite)]
         for t in rep.tiers for s in t.subtests])])
    tokens = Section("Tokens and time", tables=[Table(
        ["Tier", "Input", "Output", "Cache creation", "Cache read", "Total", "Mean agent time",
         "Mean judge time", "Mean run time"],
        [[t.tier, str(t.tokens.input_tokens), str(t.tokens.output_tokens),
          str(t.tokens.cache_creation_tokens), str(t.tokens.cache_read_tokens),
          str(t.tokens.total_tokens), _secs(t.agent_duration_mean), _secs(t.judge_duration_mean),
          _secs(t.duration_mean)] for t in rep.tiers])])
    judges = Section("Judges", tables=[Table(
        ["Judge", "Spec", "Verdicts", "Valid", "Mean score", "Pass rate", "Cost", "Mean time"],
        [[j.judge_id, j.spec, str(j.n_verdicts), str(j.n_valid), _num(j.score_mean),
          _pct(j.pass_rate), _usd(j.cost_total), _secs(j.duration_mean)] for j in rep.judges])])
    if (agreement := rep.judge_agreement) is not None:
        judges.text.append(
            f"Agreement over {agreement.n_items} runs with at least two valid verdicts from "
            f"{agreement.n_judges} judges: Krippendorff's alpha (interval) "
            f"{_num(agreement.krippendorff_alpha_interval)}; on pass/fail verdicts, chance-corrected "
            f"Krippendorff's alpha (nominal) {_num(agreement.krippendorff_alpha_pass)} (raw pairwise "
            f"agreement {_pct(agreement.pairwise_pass_agreement)}).")
    ex = rep.exclusions
    limits = Section("Rate limits and infrastructure errors", text=[ex.note], bullets=[
        f"Rate-limited attempts: {ex.rate_limited_attempts} (coordinator count: "
        f"{ex.checkpoint_rate_limited_attempts if ex.checkpoint_rate_limited_attempts is not None else '–'})",
        f"Infrastructure errors: {ex.infrastructure_errors}; interrupted: {ex.interrupted}",
        f"Pauses: {ex.pause_count if ex.pause_count is not None else '–'}, total pause time "
        f"{_secs(ex.total_pause_seconds)}; cost of excluded attempts {_usd(ex.excluded_cost)}",
    ] + ([f"Unreadable files (not counted): {', '.join(ex.unreadable_files)}"]
         if ex.unreadable_files else []))
    if ex.runs:
        limits.tables.append(Table(
            ["Tier", "Subtest", "Run", "Attempt", "Status", "Error", "Cost", "File"],
            [[e.tier, e.subtest, str(e.run), "final" if e.attempt is None else str(e.attempt), e.status,
              (e.error or "")[:120], _usd(e.cost_usd), e.path] for e in ex.runs]))
    return [summary, methods, tiers, uplift, pass_k, subtests, flaky, tokens, judges, limits]


def batch_sections(rep: BatchReport) -> list[Section]:
    summary = Section("tierbench batch report", bullets=[
        f"Tests: {len(rep.tests)}; tiers: {', '.join(rep.tiers) or '–'}",
        f"Total cost: {_usd(rep.total_cost)}; total run time: {_secs(rep.total_duration)}",
    ])
    methods = Section("Methods", bullets=_methods(rep.methods) + [rep.exclusion_note])
    m = next((u.n_comparisons for u in rep.uplift if u.n_comparisons), 0)
    uplift = Section("Uplift vs T0 across tests", text=[
        "Headline: the tier's pass rate minus T0's in each test, averaged over tests that have both "
        f"(each test counts once). Simultaneous intervals and adjusted p cover all {m} comparisons "
        "(Bonferroni); an interval excludes 0 exactly when its p is below 0.05."
        if rep.uplift else "No tier to compare with T0."],
        bullets=[f"{u.tier}: {u.note}" for u in rep.uplift if u.note],
        tables=[Table(
            ["Tier", "Tests", "Better/worse/equal", "Mean Δ", "95% CI (t)", "p", "Simultaneous 95% CI",
             "Adjusted p", "Cluster bootstrap 95% CI"],
            [[u.tier, str(u.n_tests), f"{u.tests_better}/{u.tests_worse}/{u.tests_equal}",
              _pct(u.mean_diff), _ci(u.ci), _p(u.p_value), _ci(u.ci_simultaneous), _p(u.p_adjusted),
              _ci(u.bootstrap_ci) if u.bootstrap_ci.low is not None else (u.bootstrap_note or "–")]
             for u in rep.uplift]),
            Table(["Tier", "GEE odds ratio", "95% CI", "GEE Δ", "95% CI", "GEE Holm p",
                   "CMH strata", "CMH p", "CMH Holm p", "MH odds ratio", "95% CI"],
                  [[u.tier, _num(u.gee.odds_ratio) if u.gee.odds_ratio is not None else (u.gee.note or "–"),
                    _ratio_ci(u.gee.odds_ratio_ci), _pct(u.gee.diff), _ci(u.gee.diff_ci),
                    _p(u.gee.p_holm), str(u.cmh.n_strata), _p(u.cmh.p_value), _p(u.cmh.p_holm),
                    "∞" if u.cmh.mh_odds_ratio_infinite else _num(u.cmh.mh_odds_ratio),
                    _ratio_ci(u.cmh.mh_odds_ratio_ci)] for u in rep.uplift])] if rep.uplift else [],
        figures=[("uplift.png", "Uplift vs T0 paired by test, 95% and simultaneous CIs")]
        if any(u.mean_diff is not None for u in rep.uplift) else [])
    flaky = Section("Flaky tests", text=[
        "Tests with a subtest whose outcome flips between runs." if rep.flaky_tests
        else "None: no subtest both passed and failed."],
        tables=[Table(["Test", "Flaky subtests", "Subtests with 2+ runs"],
                      [[f.test_id, ", ".join(f.flaky_subtests), str(f.n_subtests)]
                       for f in rep.flaky_tests])] if rep.flaky_tests else [])
    by_test = Section("Pass rate by test and tier", tables=[Table(
        ["Test", *rep.tiers, "Best tier", "Best score", "Frontier cost-of-pass", "Total cost"],
        [[row.test_id, *[_cell(row.tiers[t].n_passed, row.tiers[t].n_runs, row.tiers[t].pass_rate)
                         if t in row.tiers else "–" for t in rep.tiers],
          (row.best_tier or "–") + (" (not separated)" if row.best_tier_separated is False else ""),
          _num(row.best_score), _cop(row.frontier_cop, row.frontier_cop_infinite),
          _usd(row.total_cost)] for row in rep.tests])])
    pooled = Section("Pooled by tier (descriptive)", text=[
        "Runs pooled over tests: descriptive only. Pooling weighs tests by their run counts and "
        "ignores clustering, so it can disagree with the per-test comparison above."], tables=[Table(
        ["Tier", "Name", "Tests", "Runs", "Passed", "Pass rate", "95% CI (Wilson)",
         "Mean of test pass rates", "Total cost", "Cost-of-pass"],
        [[p.tier, p.name, str(p.n_tests), str(p.n_runs), str(p.n_passed), _pct(p.pass_rate),
          _ci(p.pass_rate_ci), _pct(p.mean_of_test_pass_rates), _usd(p.cost_total),
          _cop(p.cost_of_pass, p.cost_of_pass_infinite)] for p in rep.pooled])],
        figures=[("pooled_pass_rate.png", "Pooled pass rate by tier, Wilson 95% CI")])
    limits = Section("Rate limits and infrastructure errors", text=[rep.exclusion_note], tables=[Table(
        ["Test", "Rate-limited attempts", "Infrastructure errors"],
        [[r.test_id, str(r.rate_limited_attempts), str(r.infrastructure_errors)] for r in rep.tests]
        + [["all", str(rep.rate_limited_attempts), str(rep.infrastructure_errors)]])])
    return [summary, methods, uplift, by_test, pooled, flaky, limits]


def to_markdown(sections: list[Section]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out: list[str] = []
    for index, section in enumerate(sections):
        out += [("# " if index == 0 else "## ") + section.title, ""]
        for text in section.text:
            out += [text, ""]
        if section.bullets:
            out += [f"- {b}" for b in section.bullets] + [""]
        for table in section.tables:
            out.append("| " + " | ".join(esc(h) for h in table.headers) + " |")
            out.append("|" + "|".join("---" for _ in table.headers) + "|")
            out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
            out.append("")
        for name, caption in section.figures:
            out += [f"![{caption}]({name})", ""]
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#eef2f7}td{text-align:right}td:first-child,td:nth-child(2){text-align:left}
figure{display:inline-block;margin:0.5em}figcaption{font-size:12px;color:#555}"""


def to_html(sections: list[Section], images: dict[str, bytes]) -> str:
    esc = html.escape
    title = sections[0].title if sections else "tierbench report"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"]
    for index, section in enumerate(sections):
        tag = "h1" if index == 0 else "h2"
        out.append(f"<{tag}>{esc(section.title)}</{tag}>")
        out += [f"<p>{esc(text)}</p>" for text in section.text]
        if section.bullets:
            out.append("<ul>" + "".join(f"<li>{esc(b)}</li>" for b in section.bullets) + "</ul>")
        for table in section.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.headers)
                       + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows]
            out.append("</tbody></table>")
        for name, caption in section.figures:
            if name in images:
                data = base64.b64encode(images[name]).decode("ascii")
                out.append(f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{esc(caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _csv(headers: list[str], rows: Iterable[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue()


RUN_COLUMNS = ["tier", "subtest", "run", "status", "score", "passed", "grade", "cost_usd",
               "agent_cost_usd", "judge_cost_usd", "input_tokens", "output_tokens",
               "cache_creation_tokens", "cache_read_tokens", "total_tokens", "duration_seconds",
               "agent_duration_seconds", "judge_duration_seconds", "num_turns", "exit_code", "model", "agent",
               "agent_cost_source",
               # the resolved configuration's size (see the run's config.json), to relate outcome to it
               "claude_md_lines", "skills", "subagents", "mcp_servers", "config_files"]


def _run_rows(data: ExperimentData) -> list[list]:
    rows = []
    for r in sorted(data.results, key=lambda r: (r.tier, r.subtest, r.run_number)):
        t = r.token_stats
        rows.append([r.tier, r.subtest, r.run_number, r.status.value, r.judge_score,
                     r.status.value == "passed", r.judge_grade, r.cost_usd, r.agent_cost_usd,
                     r.judge_cost_usd, t.input_tokens, t.output_tokens, t.cache_creation_tokens,
                     t.cache_read_tokens, t.total_tokens, r.duration_seconds, r.agent_duration_seconds,
                     r.judge_duration_seconds, r.num_turns, r.exit_code, r.model, r.agent, r.agent_cost_source,
                     *((size.claude_md_lines, size.skills, size.agents, size.mcp_servers, size.files)
                       if (size := r.config_size) is not None else ("",) * 5)])
    return rows


def experiment_csvs(data: ExperimentData, rep: ExperimentReport) -> dict[str, str]:
    results = sorted(data.results, key=lambda r: (r.tier, r.subtest, r.run_number))
    judges = [[r.tier, r.subtest, r.run_number, j.judge_id, j.spec, j.is_valid, j.score, j.passed,
               j.grade, j.cost_usd, j.duration_seconds, j.error] for r in results for j in r.judges]
    sub_cols = ["n_runs", "n_passed", "pass_rate", "score_mean", "score_median", "score_std",
                "consistency", "cost_mean", "cost_total", "cost_of_pass", "duration_mean"]
    subtests = [[t.tier, s.subtest, s.is_best, *[getattr(s, c) for c in sub_cols],
                 s.cost_of_pass_infinite, s.pass_rate_ci.low, s.pass_rate_ci.high,
                 s.tokens.total_tokens, *[s.grades[g] for g in GRADES]]
                for t in rep.tiers for s in t.subtests]
    return {
        "runs.csv": _csv(RUN_COLUMNS, _run_rows(data)),
        "judges.csv": _csv(["tier", "subtest", "run", "judge_id", "spec", "is_valid", "score",
                            "passed", "grade", "cost_usd", "duration_seconds", "error"], judges),
        "subtests.csv": _csv(["tier", "subtest", "is_best", *sub_cols, "cost_of_pass_infinite",
                              "pass_rate_ci_low", "pass_rate_ci_high", "total_tokens",
                              *[f"grade_{g}" for g in GRADES]], subtests),
        "excluded.csv": _csv(["tier", "subtest", "run", "attempt", "status", "error", "cost_usd",
                              "duration_seconds", "path"],
                             [[e.tier, e.subtest, e.run, e.attempt, e.status, e.error, e.cost_usd,
                               e.duration_seconds, e.path] for e in rep.exclusions.runs]),
    }


def batch_csvs(rep: BatchReport, experiments: list[tuple[ExperimentData, ExperimentReport]]
               ) -> dict[str, str]:
    tests = [[row.test_id, row.experiment_dir, *[_cell(row.tiers[t].n_passed, row.tiers[t].n_runs,
                                                       row.tiers[t].pass_rate) if t in row.tiers else ""
                                                 for t in rep.tiers],
              row.best_tier, row.best_score, row.frontier_cop, row.total_cost] for row in rep.tests]
    pooled = [[p.tier, p.n_tests, p.n_runs, p.n_passed, p.pass_rate, p.pass_rate_ci.low,
               p.pass_rate_ci.high, p.mean_of_test_pass_rates, p.cost_total, p.cost_of_pass,
               p.cost_of_pass_infinite] for p in rep.pooled]
    runs = [[data.exp_dir.name, *row] for data, _ in experiments for row in _run_rows(data)]
    return {
        "tests.csv": _csv(["test_id", "experiment_dir", *rep.tiers, "best_tier", "best_score",
                           "frontier_cop", "total_cost"], tests),
        "tiers.csv": _csv(["tier", "n_tests", "n_runs", "n_passed", "pass_rate", "pass_rate_ci_low",
                           "pass_rate_ci_high", "mean_of_test_pass_rates", "cost_total",
                           "cost_of_pass", "cost_of_pass_infinite"], pooled),
        "runs.csv": _csv(["experiment_dir", *RUN_COLUMNS], runs),
    }


def _usage_section(data: ExperimentData) -> Section:
    title, text, tables = usage_report(data)  # report/usage.py: what the agents used
    return Section(title, text=text, tables=[Table(headers, rows) for headers, rows in tables])


def write_report(path: Path, out_dir: Path | None = None,
                 formats: Iterable[str] = DEFAULT_FORMATS) -> list[Path]:
    """Write the report of an experiment dir or a batch dir; return the files written, in order.

    An experiment dir holds config/experiment.json; a batch dir holds experiment dirs. PNGs are
    written with "md" (which links them) or "png"; "html" embeds them and needs no files beside it.
    """
    from tierbench.report import plots  # matplotlib is slow to import; only reports need it

    path = Path(path)
    out = Path(out_dir) if out_dir is not None else path
    wanted = set(formats)
    if unknown := wanted - KNOWN_FORMATS:
        raise ValueError(f"unknown report formats: {sorted(unknown)} (known: {sorted(KNOWN_FORMATS)})")
    if (path / "config" / "experiment.json").is_file():
        data = load_experiment_runs(path)
        exp_report = summarize_experiment(data)
        report: ExperimentReport | BatchReport = exp_report
        scores = {t.tier: [r.judge_score for r in data.results if r.tier == t.tier
                           and r.judge_score is not None] for t in exp_report.tiers}
        sections = experiment_sections(exp_report) + [_usage_section(data)]
        make_images = {"pass_rate.png": lambda: plots.pass_rate_plot(exp_report),
                       "scores.png": lambda: plots.score_plot(scores),
                       "cost_vs_pass_rate.png": lambda: plots.cost_plot(exp_report)}
        make_csvs = lambda: {**experiment_csvs(data, exp_report), "usage.csv": _csv(*usage_csv_rows(data))}  # noqa: E731
    elif path.is_dir() and find_experiment_dirs(path):
        experiments = load_batch(path)
        report = summarize_batch(path, experiments)
        sections = batch_sections(report)
        make_images = {"pooled_pass_rate.png": lambda: plots.batch_pass_rate_plot(report)}
        if any(u.mean_diff is not None for u in report.uplift):
            make_images["uplift.png"] = lambda: plots.batch_uplift_plot(report)
        make_csvs = lambda: batch_csvs(report, experiments)  # noqa: E731
    else:
        raise ValueError(f"{path} is neither an experiment dir (config/experiment.json) "
                         "nor a batch dir (subdirectories holding experiments)")
    files: dict[str, bytes] = {}
    images = {name: make() for name, make in make_images.items()} if wanted & {"md", "html", "png"} else {}
    if wanted & {"md", "png"}:
        files.update(images)
    if "json" in wanted:
        files["report.json"] = (report.model_dump_json(indent=2) + "\n").encode()
    if "csv" in wanted:
        files.update({name: text.encode() for name, text in make_csvs().items()})
    if "md" in wanted:
        files["report.md"] = to_markdown(sections).encode()
    if "html" in wanted:
        files["report.html"] = to_html(sections, images).encode()
    written = []
    for name, content in files.items():
        atomic_write_bytes(out / name, content)
        written.append(out / name)
    return written


def write_report_or_warn(root: Path) -> None:
    """The report at the end of a `run` or `batch`: the work itself is recorded whatever happens
    here, so a failure becomes one line on stderr saying how to retry, never an exit code."""
    from tierbench.exitcodes import print_error

    try:
        write_report(root)
    except Exception as exc:
        print_error(f"warning: the report failed ({type(exc).__name__}: {exc}); retry with: tierbench report {root}")
