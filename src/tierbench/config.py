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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierbench.errors import TierbenchError
from tierbench.options import (ExperimentOptions, RateLimitPolicy, Thinking, describe_ignored, flag_of,
                               option_meta, option_names, show_value)
from tierbench.store.atomic import atomic_write_json

__all__ = ["CONFIG_VERSION", "ConfigUnreadable", "EXTENSIBLE", "ExperimentConfig", "Extension", "ExtensionError", "RateLimitPolicy",
           "Thinking", "describe_ignored", "diff_config", "extend_config", "load_config", "save_config"]

CONFIG_VERSION = 1


class Extension(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    changes: dict[str, list[Any]]  # field -> [old, new]


class ExperimentConfig(ExperimentOptions):
    """The saved options (see `tierbench.options`) plus the experiment's bookkeeping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = CONFIG_VERSION
    experiment_id: str
    test_id: str
    test_dir: str  # where the test came from (informational; the snapshot is used)
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    extensions: tuple[Extension, ...] = ()

    def config_hash(self) -> str:
        """Hash of what defines the results (not bookkeeping such as created_at or extensions)."""
        # `sandbox` is left out so experiments saved before it existed keep their hash.
        payload = self.model_dump(mode="json", exclude={"created_at", "extensions", "experiment_id", "sandbox"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# Changes that only add work; allowed on an existing experiment with --extend.
EXTENSIBLE: tuple[str, ...] = tuple(n for n in option_names(saved=True) if option_meta(n).extendable)


def save_config(config: ExperimentConfig, path: Path) -> None:
    atomic_write_json(path, config.model_dump(mode="json"))


class ConfigUnreadable(TierbenchError):
    """config/experiment.json exists but cannot be read or does not validate. It is primary data
    (nothing rebuilds it), so the fix is a backup or a fresh start."""


def load_config(path: Path) -> ExperimentConfig:
    """The saved config. FileNotFoundError if there is none; ConfigUnreadable (one line naming the
    file, the first problem and the fix) if it cannot be used."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigUnreadable(f"{path}: unreadable config ({exc.strerror or exc})", _CONFIG_FIX) from None
    try:
        return ExperimentConfig.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problem = f"{where}: {first['msg']}" if where else first["msg"]
        raise ConfigUnreadable(f"{path}: invalid config ({problem}; {exc.error_count()} problem(s))",
                               _CONFIG_FIX) from None


_CONFIG_FIX = ("Restore it from a backup, or start anew with: tierbench run TEST_DIR --fresh "
               "(the old directory is moved aside, not deleted)")


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


class ExtensionError(TierbenchError):
    """A change --extend cannot apply: it would change what the experiment measures."""


def extend_config(saved: ExperimentConfig, differences: dict[str, tuple[Any, Any]]) -> ExperimentConfig:
    """Apply only work-adding changes, recorded as an Extension. Anything else is an error."""
    changes: dict[str, list[Any]] = {}
    update: dict[str, Any] = {}
    for name, (asked, current) in differences.items():
        if name not in EXTENSIBLE:
            raise ExtensionError(
                f"{flag_of(name)} cannot change on an existing experiment "
                f"(it uses {show_value(current)}); start anew with --fresh")
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
