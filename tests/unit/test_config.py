"""config/experiment.json must round-trip every field, and resume must never apply CLI
arguments silently."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tierbench.config import (ExperimentConfig, Extension, ExtensionError, describe_ignored, diff_config,
                              extend_config, load_config, save_config)


def _non_default_config() -> ExperimentConfig:
    return ExperimentConfig(
        version=1, experiment_id="x-1", test_id="x", test_dir="/somewhere/x", tiers=("T0", "T3", "T5"),
        runs_per_subtest=7, max_subtests=3, agent="claude-code", agent_options={"bin": "/opt/claude", "max_turns": "9"},
        model="claude-sonnet-4-5", judges=("command", "openai:gpt-4o@http://127.0.0.1:9"), parallel=5,
        timeout_seconds=1234, thinking="UltraThink", keep_workspaces=True, seed=99, on_rate_limit="exit",
        max_wait_seconds=42.5, default_rate_limit_wait_seconds=17.0, preflight=False, stall_limit=9, sandbox="none",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        extensions=(Extension(at=datetime(2026, 1, 3, tzinfo=timezone.utc), changes={"runs_per_subtest": [3, 7]}),),
    )


def test_every_field_round_trips(tmp_path):
    config = _non_default_config()
    defaults = ExperimentConfig(experiment_id="d", test_id="d", test_dir="d", tiers=("T0",))
    same = [name for name in ExperimentConfig.model_fields
            if name != "version" and getattr(config, name) == getattr(defaults, name)]
    assert same == [], f"make these fields non-default so the test covers them: {same}"
    path = tmp_path / "config" / "experiment.json"
    save_config(config, path)
    loaded = load_config(path)
    assert loaded == config
    assert loaded.config_hash() == config.config_hash()


def test_hash_ignores_bookkeeping_but_not_definition():
    config = _non_default_config()
    assert config.model_copy(update={"created_at": datetime.now(timezone.utc)}).config_hash() == config.config_hash()
    assert config.model_copy(update={"seed": 1}).config_hash() != config.config_hash()


def test_diff_lists_ignored_arguments():
    config = _non_default_config()
    diff = diff_config(config, {"runs_per_subtest": 5, "model": None, "seed": 99, "tiers": ["T0", "T3", "T5"]})
    assert diff == {"runs_per_subtest": (5, 7)}
    assert describe_ignored(diff) == ["--runs 5, experiment uses 7"]


def test_extend_records_additive_changes_only():
    config = _non_default_config()
    extended = extend_config(config, diff_config(config, {"runs_per_subtest": 9, "tiers": ["T0", "T3", "T5", "T6"]}))
    assert extended.runs_per_subtest == 9 and extended.tiers == ("T0", "T3", "T5", "T6")
    assert extended.extensions[-1].changes == {"runs_per_subtest": [7, 9], "tiers": [["T0", "T3", "T5"],
                                                                                    ["T0", "T3", "T5", "T6"]]}
    with pytest.raises(ExtensionError, match="--runs can only grow"):
        extend_config(config, diff_config(config, {"runs_per_subtest": 2}))
    with pytest.raises(ExtensionError, match="--model cannot change"):
        extend_config(config, diff_config(config, {"model": "other"}))
    with pytest.raises(ExtensionError, match="drop"):
        extend_config(config, diff_config(config, {"tiers": ["T0"]}))
