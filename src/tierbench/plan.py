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
        if sub.extends_previous and (previous := previous_tier(tier, tiers)) is not None:
            deps.add(previous)
    return {t for t in deps if t in tiers and t != tier}


def previous_tier(tier: str, tiers: list[str]) -> str | None:
    """The tier run just before `tier` (what `extends_previous` starts from), or None for the first."""
    earlier = sorted(t for t in tiers if t < tier)
    return earlier[-1] if earlier else None


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


def merge_inherited(subtest: Subtest, inherited: list[Subtest], base: Subtest | None = None) -> Subtest:
    """Resolve `subtest` on top of `base` (the resolved best subtest of the tier before, for
    `extends_previous`) and the best subtests of `inherit_best_from`; its own settings win.

    files/env/mcp_servers merge by key (later layers win: base, then inherited, then the subtest),
    agent_args concatenate, enabled tools union (None = all tools wins), scalar settings come from
    the subtest, else the first inherited subtest that sets them, else the base. Each key's
    provenance is the provenance of the layer that supplied it."""
    layers = [*([base] if base is not None else []), *inherited, subtest]
    merged: dict[str, dict] = {"files": {}, "env": {}, "mcp_servers": {}}
    provenance: dict[str, str] = {}
    args: list[str] = []
    executable: set[str] = set()
    enabled: set[str] | None = set()
    disabled: set[str] = set()
    for source in layers:
        for kind, values in merged.items():
            for key, value in getattr(source, kind).items():
                values[key] = value
                provenance[f"{kind}/{key}"] = source.provenance.get(f"{kind}/{key}", f"{source.tier}/{source.id} {kind}")
        args.extend(a for a in source.agent_args if a not in args)
        executable.difference_update(source.files)  # the layer that writes a file decides its mode
        executable.update(source.executable)
        if source.tools is not None:
            if source.tools.enabled is None:
                enabled = None
            elif enabled is not None:
                enabled.update(source.tools.enabled)
            disabled.update(source.tools.disabled)
    for name, kinds in (("agent_args", lambda s: s.agent_args), ("tools", lambda s: s.tools is not None)):
        origins = [s.provenance.get(name, f"{s.tier}/{s.id} {name}") for s in layers if kinds(s)]
        if origins:
            provenance[name] = " + ".join(dict.fromkeys(origins))
    scalars: dict[str, object] = {}
    for name in _SCALARS:
        for source in [subtest, *inherited, *([base] if base is not None else [])]:
            value = getattr(source, name)
            if value is not None:
                scalars[name] = value
                provenance[name] = source.provenance.get(name, f"{source.tier}/{source.id} {name}")
                break
    tools = (ToolsSpec(enabled=sorted(enabled) if enabled is not None else None, disabled=sorted(disabled))
             if any(s.tools is not None for s in layers) else None)
    return subtest.model_copy(update={
        **merged, "agent_args": args, "tools": tools, "executable": sorted(executable), **scalars, "provenance": provenance,
        "inherited_from": [f"{s.tier}/{s.id}" for s in inherited],
        "extends_from": [f"{base.tier}/{base.id}", *base.extends_from] if base is not None else [],
    })


_SCALARS = ("system_prompt_mode", "agent", "model", "max_turns")
