"""The pages, rendered from `data` with Jinja2 (autoescaped), for the server and for `--export`.

A `Links` object builds every URL a page holds: paths of the web app when served, flat relative
file names in a static export, so one set of templates serves both. Agent-written text reaches a
page only through autoescaped `{{ }}` or Pygments' formatter (which escapes what it highlights);
no template marks agent content `|safe`.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

from tierbench.models import TIER_NAMES, RunKey
from tierbench.view import transcript as transcripts
from tierbench.view.data import ExperimentView, NotFound, Source, summarize, transcript_path

HERE = Path(__file__).parent
RUNS_PER_PAGE = 200
DIFF_HIGHLIGHT_CAP = 2 * 1024 * 1024  # larger diffs are shown plain (still escaped)
# Files of a run directory the raw view may serve (relative to the run or attempt directory).
RAW_FILES = ("agent/diff.patch", "agent/stdout.log", "agent/stderr.log", "agent/prompt.md", "agent/command.json",
             "agent/transcript.jsonl", "run_result.json", "judge/checks.json")
_FORMATTER = HtmlFormatter(cssclass="hl", nowrap=False)


def key_slug(key: RunKey | str) -> str:
    return str(key).replace("/", "-")


class Links:
    """URLs of the served app (`static=False`) or file names of an export (`static=True`)."""

    def __init__(self, static: bool = False):
        self.static = static

    def home(self) -> str:
        return "index.html" if self.static else "/"

    def exp(self, exp: str) -> str:
        return f"{exp}.html" if self.static else f"/e/{exp}/"

    def tier(self, exp: str, tier: str) -> str:
        return f"{exp}--{tier}.html" if self.static else f"/e/{exp}/t/{tier}/"

    def subtest(self, exp: str, tier: str, subtest: str) -> str:
        return f"{exp}--{tier}-{subtest}.html" if self.static else f"/e/{exp}/t/{tier}/{subtest}/"

    def runs(self, exp: str, page: int = 1, **filters: str) -> str:
        if self.static:
            return f"{exp}--runs-{page}.html"
        query = {k: v for k, v in filters.items() if v}
        if page > 1:
            query["page"] = str(page)
        return f"/e/{exp}/runs" + (f"?{urlencode(query)}" if query else "")

    def run(self, exp: str, key: RunKey | str, attempt: str | None = None) -> str:
        if self.static:
            return f"{exp}--{key_slug(key)}" + (f"--attempt-{attempt}" if attempt else "") + ".html"
        return f"/e/{exp}/r/{key}" + (f"?attempt={attempt}" if attempt else "")

    def transcript(self, exp: str, key: RunKey | str, first: int, attempt: str | None = None) -> str:
        if self.static:
            return (f"{exp}--{key_slug(key)}" + (f"--attempt-{attempt}" if attempt else "")
                    + f"--transcript-{first}.html")
        query = {"first": str(first), **({"attempt": attempt} if attempt else {})}
        return f"/e/{exp}/r/{key}/transcript?{urlencode(query)}"

    def raw(self, exp: str, key: RunKey | str, rel: str, attempt: str | None = None) -> str:
        if self.static:
            return f"files/{exp}/{key}/" + (f"attempts/{attempt}/" if attempt else "") + rel
        return f"/e/{exp}/r/{key}/raw/{rel}" + (f"?attempt={attempt}" if attempt else "")

    def compare(self, exp: str, a: str, b: str) -> str:
        if self.static:
            return f"{exp}--compare-{key_slug(a)}--{key_slug(b)}.html"
        return f"/e/{exp}/compare?{urlencode({'a': a, 'b': b})}"

    def asset(self, name: str) -> str:
        return f"static/{name}" if self.static else f"/static/{name}"

    def events(self, exp: str | None = None) -> str:
        return "/events" + (f"?{urlencode({'exp': exp})}" if exp else "")


# -- formatting ------------------------------------------------------------------------------------

def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def ci(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"{100 * low:.0f}–{100 * high:.0f}%"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:.4f}" if abs(value) < 1 else f"${value:,.2f}"


def seconds(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def count(value: float | int | None) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def highlight_diff(text: str | None) -> Markup | None:
    """The diff as highlighted HTML. Pygments escapes every character of the input it emits."""
    if text is None:
        return None
    if len(text) > DIFF_HIGHLIGHT_CAP:
        return None  # the template shows it plain, autoescaped
    return Markup(highlight(text, DiffLexer(), _FORMATTER))


def pygments_css() -> str:
    return _FORMATTER.get_style_defs(".hl")


def make_env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"],
                      default=True, default_for_string=True), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(pct=pct, money=money, seconds=seconds, count=count, score=score)
    env.globals.update(ci=ci, tier_names=TIER_NAMES, highlight_diff=highlight_diff)
    return env


# -- page contexts ---------------------------------------------------------------------------------

class Site:
    """Renders every page from a Source. Used by the web app and by the static export."""

    def __init__(self, source: Source, links: Links | None = None):
        self.source = source
        self.links = links or Links()
        self.env = make_env()

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(links=self.links, static=self.links.static,
                                                      source=self.source, now=datetime.now(timezone.utc),
                                                      **context)

    def version(self, exp: ExperimentView | None = None) -> str:
        views = [exp] if exp is not None else self.source.experiments()
        return ".".join(str(v.version) for v in views)

    def index(self) -> str:
        experiments = self.source.experiments()
        summary = self.source.batch_summary()
        entries = {r.test_id: r for r in summary.results} if summary is not None else {}
        rows = []
        tiers = sorted({t for e in experiments for t in e.tiers()})
        for exp in experiments:
            all_rows = list(exp.rows.values())
            rows.append({"exp": exp, "stats": summarize(all_rows),
                         "tiers": {t: summarize(r for r in all_rows if r.tier == t) for t in tiers},
                         "entry": entries.get(exp.title()) or entries.get(exp.name),
                         "best": _best_tier(exp)})
        pooled = {t: summarize(r for e in experiments for r in e.rows.values() if r.tier == t) for t in tiers}
        shown = {e.title() for e in experiments} | {e.name for e in experiments}
        # Tests the batch tried that have no experiment directory (an invalid test, a failed start).
        orphans = [r for r in summary.results if r.test_id not in shown] if summary is not None else []
        return self.render("index.html", rows=rows, tiers=tiers, pooled=pooled, summary=summary, orphans=orphans,
                           version=self.version(), live_exp=None)

    def experiment(self, exp: ExperimentView) -> str:
        rows = list(exp.rows.values())
        tiers = []
        for tier in exp.tiers():
            tier_rows = [r for r in rows if r.tier == tier]
            tiers.append({"tier": tier, "stats": summarize(tier_rows), "subtests": len(exp.subtests(tier)),
                          "best_subtest": exp.best_subtests.get(tier), "best_run": exp.best_run(tier)})
        best = {t["tier"]: t["best_run"] for t in tiers if t["best_run"] is not None}
        return self.render("experiment.html", exp=exp, stats=summarize(rows), tiers=tiers, best=best,
                           in_flight=[r for r in rows if r.status == "running"], version=self.version(exp),
                           live_exp=exp.name)

    def tier(self, exp: ExperimentView, tier: str) -> str:
        rows = [r for r in exp.rows.values() if r.tier == tier]
        if not rows:
            raise NotFound(f"{exp.name}: no tier {tier}")
        subtests = []
        for sub in exp.subtests(tier):
            spec = exp.resolved_subtest(tier, sub)
            subtests.append({"id": sub, "spec": spec, "stats": summarize(r for r in rows if r.subtest == sub),
                             "best": exp.best_subtests.get(tier) == sub})
        return self.render("tier.html", exp=exp, tier=tier, stats=summarize(rows), subtests=subtests,
                           rows=rows[:RUNS_PER_PAGE], more=len(rows) > RUNS_PER_PAGE,
                           version=self.version(exp), live_exp=exp.name)

    def subtest(self, exp: ExperimentView, tier: str, subtest: str) -> str:
        rows = [r for r in exp.rows.values() if r.tier == tier and r.subtest == subtest]
        if not rows:
            raise NotFound(f"{exp.name}: no subtest {tier}/{subtest}")
        return self.render("subtest.html", exp=exp, tier=tier, subtest=subtest, spec=exp.resolved_subtest(tier, subtest),
                           stats=summarize(rows), rows=rows[:RUNS_PER_PAGE], more=len(rows) > RUNS_PER_PAGE,
                           version=self.version(exp), live_exp=exp.name)

    def runs(self, exp: ExperimentView, filters: dict[str, str], page: int = 1, fragment: bool = False,
             sort: str = "") -> str:
        rows = exp.sorted_rows(exp.filter(**filters), sort)
        pages = max(1, math.ceil(len(rows) / RUNS_PER_PAGE))
        page = min(max(1, page), pages)
        shown = rows[(page - 1) * RUNS_PER_PAGE: page * RUNS_PER_PAGE]
        context = dict(exp=exp, filters=filters, sort=sort, sorts=[k for k in exp.SORTS if k],
                       facets=exp.facets(), stats=summarize(rows), rows=shown,
                       page=page, pages=pages, total=len(rows), version=self.version(exp), live_exp=exp.name)
        return self.render("_runs_live.html" if fragment else "runs.html", **context)

    def run(self, exp: ExperimentView, key: RunKey, attempt: str | None = None) -> str:
        detail = exp.run_detail(key, attempt)
        first_page = transcripts.page(detail.transcript, fmt=_format(exp, key, detail)) if detail.transcript else None
        others = {t: r for t in exp.tiers() if (r := exp.best_run(t)) is not None and r.key != str(key)}
        return self.render("run.html", exp=exp, d=detail, key=key, attempt=attempt, tpage=first_page,
                           row=exp.rows.get(str(key)), compare_with=others, version=self.version(exp),
                           live_exp=exp.name, live_tail=self._in_flight(exp, key, attempt))

    def _in_flight(self, exp: ExperimentView, key: RunKey, attempt: str | None) -> bool:
        """A served page of a run in flight polls for the transcript lines written after it."""
        row = exp.rows.get(str(key))
        return not self.links.static and attempt is None and row is not None and row.status == "running"

    def transcript_fragment(self, exp: ExperimentView, key: RunKey, first: int, attempt: str | None = None,
                            standalone: bool = False) -> str:
        path = transcript_path(exp.run_dir(key, attempt))
        if path is None:
            raise NotFound(f"{exp.name}: {key} has no transcript")
        tpage = transcripts.page(path, first, fmt=_format(exp, key, None))
        return self.render("transcript_page.html" if standalone else "_transcript.html", exp=exp, key=key,
                           attempt=attempt, tpage=tpage, version=self.version(exp), live_exp=exp.name,
                           live_tail=not standalone and self._in_flight(exp, key, attempt))

    def compare(self, exp: ExperimentView, a: RunKey, b: RunKey) -> str:
        sides = []
        for key in (a, b):
            detail = exp.run_detail(key)
            sides.append({"key": key, "d": detail, "row": exp.rows.get(str(key)),
                          "tpage": transcripts.page(detail.transcript, fmt=_format(exp, key, detail))
                          if detail.transcript else None})
        config_rows = _config_rows(sides[0]["d"], sides[1]["d"])
        return self.render("compare.html", exp=exp, a=a, b=b, sides=sides, config_rows=config_rows,
                           keys=list(exp.rows), version=self.version(exp), live_exp=exp.name, live_tail=False)

    def not_found(self, message: str) -> str:
        return self.render("error.html", message=message, version="", live_exp=None)


def _format(exp: ExperimentView, key: RunKey, detail: Any) -> str | None:
    """The transcript format of the agent that ran `key` (a subtest may switch agent)."""
    from tierbench.transcript import agent_format

    agent = ""
    if detail is not None and detail.result is not None:
        agent = detail.result.agent
    row = exp.rows.get(str(key))
    agent = agent or (row.agent if row is not None else "") or (exp.config.agent if exp.config else "")
    return agent_format(agent) if agent else None


def _best_tier(exp: ExperimentView) -> str | None:
    best: tuple[float, str] | None = None
    for tier in exp.tiers():
        stats = summarize(r for r in exp.rows.values() if r.tier == tier)
        if stats.pass_rate is not None and (best is None or stats.pass_rate > best[0]):
            best = (stats.pass_rate, tier)
    return best[1] if best else None


def _config_rows(a: Any, b: Any) -> list[dict[str, Any]]:
    """Side-by-side configuration lines; `same` marks the ones that do not differ."""
    def fields(detail: Any) -> dict[str, str]:
        spec = detail.subtest
        result = detail.result
        out: dict[str, str] = {}
        if result is not None:
            out["agent"] = result.agent
            out["model"] = result.model or "(default)"
        if spec is not None:
            out["description"] = spec.description
            out["agent_args"] = " ".join(spec.agent_args) or "(none)"
            out["env"] = ", ".join(f"{k}={v}" for k, v in sorted(spec.env.items())) or "(none)"
            if spec.tools is not None:
                out["tools"] = (f"enabled: {', '.join(spec.tools.enabled) if spec.tools.enabled is not None else 'all'}"
                                f"; disabled: {', '.join(spec.tools.disabled) or 'none'}")
            else:
                out["tools"] = "(agent default)"
            out["system_prompt_mode"] = spec.system_prompt_mode or "(default)"
            out["max_turns"] = str(spec.max_turns or "(default)")
            out["inherited_from"] = ", ".join(spec.inherited_from) or "(none)"
            for name, body in sorted(spec.files.items()):
                out[f"file {name}"] = body
        return out

    left, right = fields(a), fields(b)
    names = list(dict.fromkeys([*left, *right]))
    return [{"name": n, "a": left.get(n, "(not set)"), "b": right.get(n, "(not set)"),
             "same": left.get(n) == right.get(n)} for n in names]
