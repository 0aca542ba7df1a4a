"""Every option is declared once (tierbench.options) and everything else is generated from it. This
walks every field: it has a flag and help, it reaches `run`, `resume` and `batch`, a non-default value
survives config save/load, the batch child's argv and a batch summary unchanged, and a resume that
ignores it names its flag."""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from tierbench.cli import build_parser
from tierbench.config import EXTENSIBLE, ExperimentConfig, diff_config, load_config, save_config
from tierbench.options import (ALL_COMMANDS, ExperimentOptions, GivenOptions, Options, child_argv, default_of,
                               describe_ignored, given_options, option_meta, option_names, should_wait)

SAVED = option_names(saved=True)
INVOCATION = option_names(saved=False)


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _positional(command: str) -> list[str]:
    return {"run": ["some/test"], "resume": ["some/exp"], "batch": ["some/tests"]}[command]


def _inner(annotation: Any) -> Any:
    """int | None -> int (the type a given value has)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def sample(name: str) -> Any:
    """A valid non-default value for the option, derived from its type and choices."""
    meta, default = option_meta(name), default_of(name)
    annotation = _inner(Options.model_fields[name].annotation)
    origin = typing.get_origin(annotation)
    if meta.shape in ("switch", "negated"):
        return not default
    if meta.choices:
        if origin in (tuple, list):
            return sorted(meta.choices)[-2:]
        return next(c for c in reversed(meta.choices) if c != default)
    if annotation is int:
        return 7 if default != 7 else 8
    if annotation is float:
        return 42.5
    if annotation is str:
        return "-starts-with-a-dash"
    if annotation is Path:
        return "some/dir"
    if origin is dict:
        return {"k": "-v", "empty": "", "eq": "a=b"}
    if origin in (tuple, list):
        # `--flag A B` (shape list) cannot carry a value starting with '-'; `--flag=-B` (repeat) can.
        return ["first", "second"] if meta.shape == "list" else ["first", "-second"]
    raise AssertionError(f"no sample for option {name} ({annotation}); extend sample() in this test")


def test_every_option_has_one_flag_help_and_a_consistent_kind():
    flags = [option_meta(n).flag for n in option_names()]
    assert len(flags) == len(set(flags)), "two options share a flag"
    for name in option_names():
        meta = option_meta(name)
        assert meta.flag.startswith("--") and meta.help.strip(), name
        assert meta.commands and meta.commands <= ALL_COMMANDS, name
        assert meta.saved == (name in ExperimentOptions.model_fields), (
            f"{name}: saved options are fields of ExperimentOptions, invocation ones of Options")
        if meta.saved:
            assert meta.commands == ALL_COMMANDS, f"{name}: a saved option must reach run, resume and batch"
            assert meta.resumable
    assert set(EXTENSIBLE) == {n for n in SAVED if option_meta(n).extendable} == {
        "tiers", "runs_per_subtest", "max_subtests"}


@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))
def test_every_option_of_a_command_is_a_flag_of_that_command(command):
    parser = _subparser(command)
    dests = {a.dest: a for a in parser._actions}
    for name in option_names(command=command):
        assert name in dests, f"{command} lacks {option_meta(name).flag}"
        assert option_meta(name).flag in dests[name].option_strings
    for name in option_names():
        if command not in option_meta(name).commands:
            assert name not in dests, f"{command} should not accept {option_meta(name).flag}"
    # Nothing given: no saved option counts as given, invocation options take their defaults.
    args = parser.parse_args(_positional(command))
    assert given_options(args) == {}
    for name in option_names(saved=False, command=command):
        assert getattr(args, name) == default_of(name)


@pytest.mark.parametrize("name", SAVED)
def test_a_saved_option_round_trips_through_config_child_argv_and_batch_summary(name, tmp_path):
    value = sample(name)
    defaults = dict(experiment_id="x-1", test_id="x", test_dir="/t", tiers=("T0",))
    config = ExperimentConfig(**{**defaults, name: value})
    assert getattr(config, name) != getattr(ExperimentConfig(**defaults), name)
    save_config(config, tmp_path / "experiment.json")
    assert load_config(tmp_path / "experiment.json") == config

    given = {name: value}
    argv = child_argv(given)
    assert argv, f"{name} produced no child arguments"
    expected = GivenOptions(**given).values()
    for command in sorted(ALL_COMMANDS):  # the child is `run`; resume and batch parse the same flags
        parsed = _subparser(command).parse_args([*_positional(command), *argv])
        assert given_options(parsed) == expected, (command, argv)
    # The batch saves the options in batch_summary.json and builds children from the reloaded copy.
    reloaded = GivenOptions.model_validate_json(json.dumps(GivenOptions(**given).model_dump(mode="json")))
    assert child_argv(reloaded.values()) == argv


@pytest.mark.parametrize("name", [n for n in SAVED if n not in EXTENSIBLE])
def test_a_resume_that_ignores_an_option_names_its_flag(name):
    saved = ExperimentConfig(experiment_id="x-1", test_id="x", test_dir="/t", tiers=("T0",))
    asked = GivenOptions(**{name: sample(name)}).values()
    lines = describe_ignored(diff_config(saved, asked))
    assert len(lines) == 1 and lines[0].startswith(option_meta(name).flag + " ")
    assert "experiment uses" in lines[0]


@pytest.mark.parametrize("name", INVOCATION)
def test_an_invocation_option_is_parsed_but_never_saved(name):
    meta = option_meta(name)
    command = sorted(meta.commands)[0]
    value = sample(name)
    if meta.shape == "switch":
        extra, expected = [meta.flag], True
    elif meta.shape == "list":
        extra, expected = [meta.flag, *map(str, value)], list(map(str, value))
    else:
        extra = [f"{meta.flag}={value}"]
        expected = meta.parse(str(value)) if meta.parse else str(value)
    args = _subparser(command).parse_args([*_positional(command), *extra])
    assert getattr(args, name) == expected
    assert given_options(args) == {}
    with pytest.raises(ValueError):
        GivenOptions(**{name: expected})


def test_given_options_refuse_unknown_names_and_bad_values():
    with pytest.raises(ValueError, match="unknown"):
        GivenOptions(runs=3)
    with pytest.raises(ValueError):
        GivenOptions(runs_per_subtest="many")
    assert GivenOptions(model=None, runs_per_subtest=2).values() == {"runs_per_subtest": 2}


def test_the_wait_policy_is_one_rule():
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    soon, late = now + timedelta(minutes=5), now + timedelta(hours=9)
    assert should_wait("auto", 3600, soon, default_wait=60, now=now)
    assert not should_wait("auto", 3600, late, default_wait=60, now=now)
    assert should_wait("wait", 0, late, default_wait=60, now=now)
    assert not should_wait("exit", 10**9, soon, default_wait=60, now=now)
    # No reset known: the fallback wait decides.
    assert should_wait("auto", 100, None, default_wait=60, now=now)
    assert not should_wait("auto", 100, None, default_wait=600, now=now)
