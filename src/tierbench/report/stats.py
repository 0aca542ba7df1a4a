"""Statistics for the reports: pure functions over plain numbers (numpy/scipy, no I/O).

Every choice a reader of a published table would ask about is made here, once, and documented:

- Pass-rate intervals are Wilson score intervals (good coverage at small n and at 0% / 100%, where
  the normal "Wald" interval collapses to a point). With n = 0 the interval is (0, 1): no runs, no
  information.
- Score means get a percentile bootstrap interval with a fixed seed, so the same files always give
  the same report.
- Uplift between two tiers is a difference of proportions with the Newcombe hybrid score interval
  (method 10 of Newcombe 1998, built from the two Wilson intervals) and a two-sided Fisher exact
  p-value; p-values across tiers are Holm-adjusted.
- Judge agreement is Krippendorff's alpha for interval data (missing values allowed) plus the plain
  pairwise agreement on pass/fail verdicts, which is easier to explain.

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
