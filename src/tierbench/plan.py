"""Expanding a config and a test into run keys, tier dependencies, and the best-subtest rule.

Pure functions: no I/O. The coordinator asks which tiers may start, and resolves `inherit_best_from`
once the tiers a subtest inherits from are complete.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pydantic import BaseModel

from tierbench.config import ExperimentConfig
from tierbench.models import TIER_DEPENDENCIES, RunKey
from tierbench.spec import LoadedTest, Subtest, ToolsSpec

# Median scores closer than this count as a tie; the tie goes to the cheaper subtest (fewer tokens).
BEST_SUBTEST_TIE = 0.05


def experiment_tiers(config: ExperimentConfig, test: LoadedTest) -> list[str]:
    return [tier for tier in config.tiers if tier in test.subtests]


def planned_subtests(config: ExperimentConfig, test: LoadedTest, tier: str) -> list[Subtest]:
    subs = test.subtests.get(tier, [])
    return subs[: config.max_subtests] if config.max_subtests else subs


def plan_runs(config: ExperimentConfig, test: LoadedTest) -> list[RunKey]:
    """Every run of the experiment, in a stable order."""
    return [
        RunKey(tier=tier, subtest=sub.id, run=run)
        for tier in experiment_tiers(config, test)
        for sub in planned_subtests(config, test, tier)
        for run in range(1, config.runs_per_subtest + 1)
    ]


def tier_dependencies(tier: str, tiers: list[str], test: LoadedTest) -> set[str]:
    """Tiers (among those run) that must be complete before `tier` starts: the fixed order of
    DESIGN.md (T5 after T0..T4, T6 after T5) plus any tier a subtest inherits from."""
    deps = set(TIER_DEPENDENCIES.get(tier, ()))
    for sub in test.subtests.get(tier, []):
        deps.update(sub.inherit_best_from)
    return {t for t in deps if t in tiers and t != tier}


@dataclass(frozen=True)
class SubtestScores:
    subtest: str
    scores: list[float]
    mean_tokens: float


class BestSubtest(BaseModel):
    """Contents of T*/best_subtest.json."""

    tier: str
    subtest: str
    median_score: float
    mean_tokens: float
    candidates: dict[str, dict[str, float]]  # subtest -> {median_score, mean_tokens, runs}
    rule: str = f"highest median score; medians within {BEST_SUBTEST_TIE} tie, won by fewer mean tokens"


def best_of(medians: dict[str, float], mean_tokens: dict[str, float]) -> str | None:
    """The best-subtest rule, the one place it is written (the planner and the report use it):
    the highest median score wins; medians within BEST_SUBTEST_TIE of the top tie, and the tie goes
    to fewer mean tokens, then the higher median, then the subtest id."""
    if not medians:
        return None
    top = max(medians.values())
    tied = [s for s, median in medians.items() if top - median <= BEST_SUBTEST_TIE + 1e-12]
    return min(tied, key=lambda s: (mean_tokens.get(s, 0.0), -medians[s], s))


def choose_best(tier: str, candidates: list[SubtestScores]) -> BestSubtest | None:
    scored = [c for c in candidates if c.scores]
    if not scored:
        return None
    medians = {c.subtest: statistics.median(c.scores) for c in scored}
    tokens = {c.subtest: c.mean_tokens for c in scored}
    winner_id = best_of(medians, tokens)
    winner = next(c for c in scored if c.subtest == winner_id)
    return BestSubtest(
        tier=tier,
        subtest=winner.subtest,
        median_score=medians[winner.subtest],
        mean_tokens=winner.mean_tokens,
        candidates={c.subtest: {"median_score": medians[c.subtest], "mean_tokens": c.mean_tokens,
                                "runs": len(c.scores)} for c in scored},
    )


def merge_inherited(subtest: Subtest, inherited: list[Subtest]) -> Subtest:
    """Combine the best subtests of lower tiers into `subtest`; its own settings win on conflict.

    files/env merge by key, agent_args concatenate, enabled tools union (None = all tools wins),
    scalar settings come from the first inherited subtest that sets them."""
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    args: list[str] = []
    enabled: set[str] | None = set()
    disabled: set[str] = set()
    scalars: dict[str, object] = {}
    for source in [*inherited, subtest]:
        files.update(source.files)
        env.update(source.env)
        args.extend(a for a in source.agent_args if a not in args)
        if source.tools is not None:
            if source.tools.enabled is None:
                enabled = None
            elif enabled is not None:
                enabled.update(source.tools.enabled)
            disabled.update(source.tools.disabled)
        for name in ("system_prompt_mode", "agent", "model", "max_turns"):
            value = getattr(source, name)
            if value is not None and (source is subtest or name not in scalars):
                scalars[name] = value
    any_tools = any(s.tools is not None for s in [*inherited, subtest])
    tools = ToolsSpec(enabled=sorted(enabled) if enabled is not None else None,
                      disabled=sorted(disabled)) if any_tools else None
    return subtest.model_copy(update={
        "files": files, "env": env, "agent_args": args, "tools": tools, **scalars,
        "inherited_from": [f"{s.tier}/{s.id}" for s in inherited],
    })
