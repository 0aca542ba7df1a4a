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


def _cell(k: int, n: int, rate: float | None) -> str:
    return f"{k}/{n} ({_pct(rate)})" if n else "–"


def _methods(methods) -> list[str]:
    def label(name: str) -> str:
        words = name.replace("_ci", "_CI").replace("_", " ")
        return words[0].upper() + words[1:]

    return [f"{label(name)}: {text}" for name, text in methods.model_dump().items()]


def experiment_sections(rep: ExperimentReport) -> list[Section]:
    best_cop = _cop(rep.frontier_cop, rep.frontier_cop_infinite)
    summary = Section(f"tierbench report: {rep.test_id or rep.experiment_id or 'experiment'}", bullets=[
        f"Experiment: {rep.experiment_id or '–'}; agent: {rep.agent or '–'}; model: {rep.model or '–'}; "
        f"judges: {', '.join(rep.judge_specs) or '–'}; runs per subtest: {rep.runs_per_subtest or '–'}",
        f"Results: {rep.n_results} runs, {rep.n_passed} passed ({_pct(rep.pass_rate)})",
        f"Best tier: {rep.best_tier or '–'} (mean score {_num(rep.best_score)}); frontier cost-of-pass: "
        f"{best_cop}{f' ({rep.frontier_tier})' if rep.frontier_tier else ''}",
        f"Total cost: {_usd(rep.total_cost)} (results {_usd(rep.result_cost)}, excluded attempts "
        f"{_usd(rep.exclusions.excluded_cost)}); total run time: {_secs(rep.total_duration)}; "
        f"wall clock: {_secs(rep.wall_clock_seconds)}",
    ])
    methods = Section("Methods", bullets=_methods(rep.methods) + [rep.exclusions.note])
    tiers = Section("Tiers", tables=[Table(
        ["Tier", "Name", "Runs", "Passed", "Pass rate", "95% CI (Wilson)", "Mean score",
         "95% CI (bootstrap)", "Median", "Std", "Consistency", "Mean cost", "Total cost",
         "Cost-of-pass", "Best subtest", "Excluded"],
        [[t.tier, t.name, str(t.n_runs), str(t.n_passed), _pct(t.pass_rate), _ci(t.pass_rate_ci),
          _num(t.score_mean), _ci(t.score_mean_ci, pct=False), _num(t.score_median), _num(t.score_std),
          _num(t.consistency), _usd(t.cost_mean), _usd(t.cost_total),
          _cop(t.cost_of_pass, t.cost_of_pass_infinite), t.best_subtest or "–", str(t.n_excluded)]
         for t in rep.tiers])],
        figures=[("pass_rate.png", "Pass rate by tier, Wilson 95% CI"),
                 ("scores.png", "Score distribution by tier"),
                 ("cost_vs_pass_rate.png", "Cost vs pass rate, Pareto frontier in red")])
    uplift_rows = [[t.tier, _pct(t.uplift_vs_t0.diff), _ci(t.uplift_vs_t0.ci),
                    _num(t.uplift_vs_t0.p_value, 4), _num(t.uplift_vs_t0.p_holm, 4)]
                   for t in rep.tiers if t.uplift_vs_t0 is not None]
    uplift = Section("Uplift vs T0", text=[] if uplift_rows else ["No tier to compare with T0."],
                     tables=[Table(["Tier", "Δ pass rate", "95% CI (Newcombe)", "Fisher p", "Holm p"],
                                   uplift_rows)] if uplift_rows else [])
    subtests = Section("Subtests", text=["* marks the tier's best subtest. Grades: " + " ".join(GRADES)],
                       tables=[Table(
        ["Tier", "Subtest", "Runs", "Passed", "Pass rate", "95% CI (Wilson)", "Mean score", "Median",
         "Consistency", "Grades S/A/B/C/D/F", "Mean cost", "Mean tokens", "Cost-of-pass"],
        [[t.tier, s.subtest + (" *" if s.is_best else ""), str(s.n_runs), str(s.n_passed),
          _pct(s.pass_rate), _ci(s.pass_rate_ci), _num(s.score_mean), _num(s.score_median),
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
            f"{_num(agreement.krippendorff_alpha_interval)}, pairwise pass/fail agreement "
            f"{_pct(agreement.pairwise_pass_agreement)}.")
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
    return [summary, methods, tiers, uplift, subtests, tokens, judges, limits]


def batch_sections(rep: BatchReport) -> list[Section]:
    summary = Section("tierbench batch report", bullets=[
        f"Tests: {len(rep.tests)}; tiers: {', '.join(rep.tiers) or '–'}",
        f"Total cost: {_usd(rep.total_cost)}; total run time: {_secs(rep.total_duration)}",
    ])
    methods = Section("Methods", bullets=[rep.methods.pooled_pass_rate, rep.exclusion_note])
    by_test = Section("Pass rate by test and tier", tables=[Table(
        ["Test", *rep.tiers, "Best tier", "Best score", "Frontier cost-of-pass", "Total cost"],
        [[row.test_id, *[_cell(row.tiers[t].n_passed, row.tiers[t].n_runs, row.tiers[t].pass_rate)
                         if t in row.tiers else "–" for t in rep.tiers],
          row.best_tier or "–", _num(row.best_score), _cop(row.frontier_cop, row.frontier_cop_infinite),
          _usd(row.total_cost)] for row in rep.tests])])
    pooled = Section("Pooled by tier", tables=[Table(
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
    return [summary, methods, by_test, pooled, limits]


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
               "agent_duration_seconds", "judge_duration_seconds", "num_turns", "exit_code", "model"]


def _run_rows(data: ExperimentData) -> list[list]:
    rows = []
    for r in sorted(data.results, key=lambda r: (r.tier, r.subtest, r.run_number)):
        t = r.token_stats
        rows.append([r.tier, r.subtest, r.run_number, r.status.value, r.judge_score,
                     r.status.value == "passed", r.judge_grade, r.cost_usd, r.agent_cost_usd,
                     r.judge_cost_usd, t.input_tokens, t.output_tokens, t.cache_creation_tokens,
                     t.cache_read_tokens, t.total_tokens, r.duration_seconds, r.agent_duration_seconds,
                     r.judge_duration_seconds, r.num_turns, r.exit_code, r.model])
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
