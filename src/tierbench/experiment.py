"""Starting a new experiment directory or reopening an existing one.

A new experiment snapshots the test directory into `config/test/` and saves the frozen config, so
everything a resume needs lives inside the experiment directory. Reopening never lets command-line
arguments override the saved config silently: differences are listed as ignored, `--extend` applies
the ones that only add work (and records them), and `--fresh` moves the old directory aside.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tierbench.config import ExperimentConfig, diff_config, extend_config, load_config, save_config
from tierbench.errors import TierbenchError
from tierbench.options import describe_ignored
from tierbench.resources import write_composed
from tierbench.spec import LoadedTest, SpecError, load_test
from tierbench.store.layout import ExperimentLayout, backup_path


class ExperimentError(TierbenchError):
    """The experiment directory cannot be used as asked; the message says what to do."""


@dataclass
class OpenedExperiment:
    layout: ExperimentLayout
    config: ExperimentConfig
    test: LoadedTest  # loaded from the experiment's own snapshot
    resumed: bool
    notes: list[str] = field(default_factory=list)


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def backup_aside(path: Path) -> Path:
    """Move `path` to `<path>.backup-<UTC time>` (never overwriting an earlier backup)."""
    target = backup_path(path, _timestamp(), tag="backup")
    os.replace(path, target)
    return target


def experiment_root(results_dir: Path, test: LoadedTest) -> Path:
    return Path(results_dir).resolve() / test.spec.id


def start_experiment(test: LoadedTest, root: Path, requested: dict[str, Any], *,
                     extend: bool = False) -> OpenedExperiment:
    """`tierbench run TEST_DIR` (the caller validated the test and holds the lock on `root`):
    create the experiment, or reopen it if it exists."""
    layout = ExperimentLayout(root)
    if layout.config_file.exists():
        return reopen_experiment(root, requested, extend=extend)
    notes: list[str] = []
    config = new_config(test, requested)
    root.mkdir(parents=True, exist_ok=True)
    snapshot_partial = layout.config_dir / "test.partial"
    shutil.rmtree(snapshot_partial, ignore_errors=True)
    shutil.rmtree(layout.test_snapshot, ignore_errors=True)
    shutil.copytree(test.test_dir, snapshot_partial, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    write_composed(test.subtests, snapshot_partial)  # the composed files, not the library, are the record
    os.replace(snapshot_partial, layout.test_snapshot)
    save_config(config, layout.config_file)  # last: its presence means the experiment exists
    return OpenedExperiment(layout, config, load_test(layout.test_snapshot), resumed=False, notes=notes)


def reopen_experiment(root: Path, requested: dict[str, Any], *, extend: bool = False) -> OpenedExperiment:
    """`tierbench resume EXP_DIR` (and `run` on an existing experiment): the saved config wins."""
    layout = ExperimentLayout(Path(root).resolve())
    if not layout.config_file.exists():
        raise ExperimentError(f"{layout.root} is not an experiment directory (no config/experiment.json). "
                              "Start one with: tierbench run TEST_DIR")
    saved = load_config(layout.config_file)  # ConfigUnreadable names the file and the fix
    differences = diff_config(saved, requested)
    notes: list[str] = []
    config = saved
    if differences and extend:
        config = extend_config(saved, differences)  # raises ExtensionError for non-additive changes
        save_config(config, layout.config_file)
        notes.append("extended the experiment: " + "; ".join(
            f"{name} {old} -> {new}" for name, (old, new) in config.extensions[-1].changes.items()))
    elif differences:
        notes.extend(f"ignored on resume: {line}" for line in describe_ignored(differences))
        notes.append("(the saved config wins; add --extend to add runs or tiers, or --fresh to start anew)")
    try:
        test = load_test(layout.test_snapshot)
    except SpecError as exc:
        raise ExperimentError(f"the experiment's test snapshot is invalid: {exc}") from None
    return OpenedExperiment(layout, config, test, resumed=True, notes=notes)


def new_config(test: LoadedTest, requested: dict[str, Any]) -> ExperimentConfig:
    """The config a new experiment would get; raises ExperimentError for a bad agent, option,
    judge or tier, so the caller can refuse before creating anything."""
    values = {k: v for k, v in requested.items() if v is not None}
    values.setdefault("tiers", tuple(test.spec.tiers))
    values.setdefault("judges", tuple(test.spec.judges))
    values.setdefault("timeout_seconds", test.spec.task.timeout_seconds)
    unknown = [t for t in values["tiers"] if t not in test.subtests]
    if unknown:
        raise ExperimentError(f"--tiers {' '.join(unknown)}: the test {test.spec.id} does not define "
                              f"{'these tiers' if len(unknown) > 1 else 'this tier'} "
                              f"(it has {' '.join(test.subtests)})")
    values["tiers"] = tuple(sorted(values["tiers"]))
    _validate_agent_and_judges(values.get("agent", "demo"), values.get("agent_options", {}), values["judges"])
    _check_agent_features(test, values["tiers"], values.get("agent", "demo"), values.get("thinking"))
    return ExperimentConfig(experiment_id=f"{test.spec.id}-{_timestamp()}", test_id=test.spec.id,
                            test_dir=str(test.test_dir), **values)


def _check_agent_features(test: LoadedTest, tiers: tuple[str, ...], agent: str, thinking: str | None) -> None:
    """Refuse a subtest that asks for a tier feature (or a thinking level) its agent lacks, before
    anything runs."""
    from tierbench.agents import AGENT_NAMES
    from tierbench.agents.features import describe_thinking, describe_unsupported

    for tier in tiers:
        for sub in test.subtests.get(tier, []):
            sub_agent = sub.agent or agent
            if sub.agent and sub.agent not in AGENT_NAMES:
                raise ExperimentError(f"subtest {tier}/{sub.id}: agent {sub.agent!r} is unknown; "
                                      f"known agents: {', '.join(AGENT_NAMES)}")
            problem = (describe_unsupported(sub_agent, sub, f"{tier}/{sub.id}")
                       or describe_thinking(sub_agent, thinking, f"subtest {tier}/{sub.id}"))
            if problem:
                raise ExperimentError(problem)


def _validate_agent_and_judges(agent: str, options: dict[str, str], judges: tuple[str, ...]) -> None:
    from tierbench.agents import get_agent
    from tierbench.judges import validate_judge_spec

    try:
        get_agent(agent).validate_options(dict(options))
    except ValueError as exc:
        raise ExperimentError(f"--agent {agent}: {exc}") from None
    for spec in judges:
        try:
            validate_judge_spec(spec)
        except ValueError as exc:
            raise ExperimentError(f"--judge {spec}: {exc}") from None


def record_budget_change(layout: ExperimentLayout, config: ExperimentConfig, old: float | None,
                         new: float) -> ExperimentConfig:
    """A rerun under a different --budget-usd continues; the change is kept in the config's
    extensions (`{"budget_usd": [old, new]}`), beside the checkpoint's budget_history. The budget
    is not part of what the experiment measures, so the config hash does not change."""
    from datetime import datetime, timezone

    from tierbench.config import Extension

    extension = Extension(at=datetime.now(timezone.utc), changes={"budget_usd": [old, new]})
    config = config.model_copy(update={"extensions": (*config.extensions, extension)})
    save_config(config, layout.config_file)
    return config
