"""Report figures as PNG bytes (matplotlib, Agg, object API).

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so no global backend or figure
registry is touched: safe inside a long-running process and with threads. Each function returns PNG
bytes; render.py writes them atomically and embeds the same bytes in the HTML. PNG metadata is
stripped and strip-plot jitter is seeded so the same report gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from tierbench.report.schema import BatchReport, ExperimentReport, Interval

_COLOR = "#3a6ea5"
_FRONTIER = "#c0392b"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _bars_with_ci(ax, labels: Sequence[str], rates: Sequence[float | None],
                  cis: Sequence[Interval], counts: Sequence[str]) -> None:
    x = np.arange(len(labels))
    values = [r if r is not None else 0.0 for r in rates]
    lower = [max(0.0, v - (ci.low if ci.low is not None else v)) for v, ci in zip(values, cis)]
    upper = [max(0.0, (ci.high if ci.high is not None else v) - v) for v, ci in zip(values, cis)]
    ax.bar(x, values, color=_COLOR, alpha=0.85)
    ax.errorbar(x, values, yerr=[lower, upper], fmt="none", ecolor="black", capsize=4, linewidth=1)
    for xi, value, count in zip(x, values, counts):
        ax.annotate(f"{value:.0%}\n{count}", (xi, value), ha="left", va="bottom", fontsize=8,
                    xytext=(6, 2), textcoords="offset points")
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("pass rate")
    ax.grid(axis="y", alpha=0.3)


def pass_rate_plot(report: ExperimentReport) -> bytes:
    """Pass rate per tier with Wilson 95% intervals as error bars."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    tiers = report.tiers
    _bars_with_ci(ax, [f"{t.tier}\n{t.name}" for t in tiers], [t.pass_rate for t in tiers],
                  [t.pass_rate_ci for t in tiers], [f"{t.n_passed}/{t.n_runs}" for t in tiers])
    ax.set_title("Pass rate by tier (error bars: Wilson 95% CI)")
    fig.tight_layout()
    return _png(fig)


def score_plot(scores_by_tier: Mapping[str, Sequence[float]], threshold: float | None = None) -> bytes:
    """Box plot of run scores per tier with every run drawn as a jittered point."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    labels = list(scores_by_tier)
    series = [list(scores_by_tier[t]) for t in labels]
    positions = np.arange(1, len(labels) + 1)
    drawable = [(p, s) for p, s in zip(positions, series) if s]
    if drawable:
        ax.boxplot([s for _, s in drawable], positions=[p for p, _ in drawable], widths=0.5,
                   showfliers=False, medianprops={"color": _FRONTIER})
    rng = np.random.default_rng(0)
    for position, values in zip(positions, series):
        jitter = rng.uniform(-0.12, 0.12, size=len(values))
        ax.scatter(position + jitter, values, s=14, color=_COLOR, alpha=0.7, zorder=3)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"pass ≥ {threshold:g}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(positions, labels)
    ax.set_xlim(0.4, len(labels) + 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Score distribution by tier (one point per run)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def pareto_frontier(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Labels of the (label, cost, pass_rate) points no other point beats on both axes.

    A point is on the frontier when every cheaper-or-equal point has a strictly lower pass rate.
    """
    ordered = sorted(points, key=lambda p: (p[1], -p[2], p[0]))
    frontier, best_rate = [], -1.0
    for label, _, rate in ordered:
        if rate > best_rate:
            frontier.append(label)
            best_rate = rate
    return frontier


def cost_plot(report: ExperimentReport) -> bytes:
    """Mean cost per run against pass rate per tier, with the Pareto frontier marked."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    points = [(t.tier, t.cost_mean, t.pass_rate) for t in report.tiers
              if t.cost_mean is not None and t.pass_rate is not None]
    frontier = set(pareto_frontier(points))
    for label, cost, rate in points:
        on = label in frontier
        ax.scatter([cost], [rate], s=60 if on else 35, color=_FRONTIER if on else _COLOR, zorder=3)
        ax.annotate(label, (cost, rate), xytext=(5, 4), textcoords="offset points", fontsize=8)
    line = sorted((c, r) for label, c, r in points if label in frontier)
    if len(line) > 1:
        ax.plot([c for c, _ in line], [r for _, r in line], color=_FRONTIER, linewidth=1,
                linestyle="--", label="Pareto frontier")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("mean cost per run (USD)")
    ax.set_ylabel("pass rate")
    ax.set_ylim(-0.05, 1.08)
    ax.set_title("Cost vs pass rate (red: Pareto frontier)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def batch_pass_rate_plot(report: BatchReport) -> bytes:
    """Pass rate per tier pooled over every test of the batch, with Wilson 95% intervals."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    pooled = report.pooled
    _bars_with_ci(ax, [f"{p.tier}\n{p.name}" for p in pooled], [p.pass_rate for p in pooled],
                  [p.pass_rate_ci for p in pooled], [f"{p.n_passed}/{p.n_runs}" for p in pooled])
    ax.set_title("Pooled pass rate by tier across tests, descriptive (Wilson 95% CI)")
    fig.tight_layout()
    return _png(fig)


def batch_uplift_plot(report: BatchReport) -> bytes:
    """The batch headline as a forest plot: mean per-test uplift over T0 per tier, with the 95%
    t-interval (thick) and the Bonferroni-simultaneous interval (thin)."""
    fig = Figure(figsize=(7, 0.5 + 0.45 * max(1, len(report.uplift))))
    ax = fig.add_subplot()
    rows = [u for u in report.uplift if u.mean_diff is not None]
    for y, row in enumerate(reversed(rows)):
        for ci, color, width in ((row.ci_simultaneous, "grey", 1), (row.ci, _COLOR, 4)):
            if ci.low is not None and ci.high is not None:
                ax.hlines(y, ci.low, ci.high, color=color, linewidth=width)
        ax.plot([row.mean_diff or 0.0], [y], "o", color=_FRONTIER, zorder=3)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [f"{u.tier} ({u.n_tests} tests)" for u in reversed(rows)])
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel("pass rate minus T0's, mean over tests")
    ax.set_title("Uplift vs T0 paired by test (95% CI thick, simultaneous thin)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)
