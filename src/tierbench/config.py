"""ExperimentConfig: everything that defines an experiment, frozen, saved in the experiment dir.

Resume reads the config from `config/experiment.json`; CLI arguments never override it silently.
`diff_config` lists what a resume ignores; `extend_config` applies the only changes a saved
experiment accepts (more runs, more tiers, more subtests), recording each extension.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tierbench.store.atomic import atomic_write_json

CONFIG_VERSION = 1
Thinking = Literal["None", "Low", "High", "UltraThink"]
RateLimitPolicy = Literal["auto", "wait", "exit"]


class Extension(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    changes: dict[str, list[Any]]  # field -> [old, new]


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = CONFIG_VERSION
    experiment_id: str
    test_id: str
    test_dir: str  # where the test came from (informational; the snapshot is used)
    tiers: tuple[str, ...]
    runs_per_subtest: int = Field(default=3, gt=0)
    max_subtests: int | None = Field(default=None, gt=0)
    agent: str = "demo"
    agent_options: dict[str, str] = Field(default_factory=dict)
    model: str | None = None
    judges: tuple[str, ...] = ("command",)
    parallel: int = Field(default=2, gt=0)
    timeout_seconds: int = Field(default=600, gt=0)
    thinking: Thinking = "None"
    keep_workspaces: bool = False
    seed: int = 0
    on_rate_limit: RateLimitPolicy = "auto"  # auto: wait when the reset is within max_wait
    max_wait_seconds: float = Field(default=6 * 3600, ge=0)
    default_rate_limit_wait_seconds: float = Field(default=60.0, gt=0)
    preflight: bool = True
    stall_limit: int = Field(default=5, gt=0)
    executor: Literal["local", "ray"] = "local"
    run_cpus: float = Field(default=1.0, gt=0)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    extensions: tuple[Extension, ...] = ()

    def config_hash(self) -> str:
        """Hash of what defines the results (not bookkeeping such as created_at or extensions)."""
        payload = self.model_dump(mode="json", exclude={"created_at", "extensions", "experiment_id"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# Fields a user can pass on the command line, with their flag names (for messages).
CLI_FIELDS: dict[str, str] = {
    "tiers": "--tiers",
    "runs_per_subtest": "--runs",
    "max_subtests": "--max-subtests",
    "agent": "--agent",
    "agent_options": "--agent-opt",
    "model": "--model",
    "judges": "--judge",
    "parallel": "--parallel",
    "timeout_seconds": "--timeout",
    "thinking": "--thinking",
    "keep_workspaces": "--keep-workspaces",
    "seed": "--seed",
    "on_rate_limit": "--on-rate-limit",
    "max_wait_seconds": "--max-wait",
    "default_rate_limit_wait_seconds": "--rate-limit-wait",
    "preflight": "--no-preflight",
    "stall_limit": "--stall-limit",
    "executor": "--executor",
    "run_cpus": "--run-cpus",
}
# Changes that only add work; allowed on an existing experiment with --extend.
EXTENSIBLE = ("runs_per_subtest", "tiers", "max_subtests")


def save_config(config: ExperimentConfig, path: Path) -> None:
    atomic_write_json(path, config.model_dump(mode="json"))


def load_config(path: Path) -> ExperimentConfig:
    return ExperimentConfig.model_validate_json(Path(path).read_text())


def diff_config(saved: ExperimentConfig, requested: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields the user asked for that differ from the saved config: {field: (asked, saved)}."""
    differences: dict[str, tuple[Any, Any]] = {}
    for name, asked in requested.items():
        if asked is None:
            continue
        current = getattr(saved, name)
        if isinstance(current, tuple):
            asked = tuple(asked)
        if asked != current:
            differences[name] = (asked, current)
    return differences


def describe_ignored(differences: dict[str, tuple[Any, Any]]) -> list[str]:
    """'--runs 5, experiment uses 3' lines for a resume that keeps the saved config."""
    lines = []
    for name, (asked, saved) in differences.items():
        flag = CLI_FIELDS.get(name, name)
        lines.append(f"{flag} {_show(asked)}, experiment uses {_show(saved)}")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


class ExtensionError(ValueError):
    pass


def extend_config(saved: ExperimentConfig, differences: dict[str, tuple[Any, Any]]) -> ExperimentConfig:
    """Apply only work-adding changes, recorded as an Extension. Anything else is an error."""
    changes: dict[str, list[Any]] = {}
    update: dict[str, Any] = {}
    for name, (asked, current) in differences.items():
        if name not in EXTENSIBLE:
            raise ExtensionError(
                f"{CLI_FIELDS.get(name, name)} cannot change on an existing experiment "
                f"(it uses {_show(current)}); start anew with --fresh")
        if name == "runs_per_subtest" and asked < current:
            raise ExtensionError(f"--runs can only grow (experiment uses {current})")
        if name == "max_subtests" and current is not None and (asked is None or asked < current):
            raise ExtensionError(f"--max-subtests can only grow (experiment uses {current})")
        if name == "tiers":
            missing = set(current) - set(asked)
            if missing:
                raise ExtensionError(f"--tiers can only add tiers; it would drop {sorted(missing)}")
            asked = tuple(sorted(asked))
        changes[name] = [_jsonable(current), _jsonable(asked)]
        update[name] = asked
    if not changes:
        return saved
    extension = Extension(at=datetime.now(timezone.utc), changes=changes)
    return saved.model_copy(update={**update, "extensions": (*saved.extensions, extension)})


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
