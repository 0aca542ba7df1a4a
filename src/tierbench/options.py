"""Every command-line option of `run`, `resume` and `batch`, declared once.

An option is one field of `ExperimentOptions` (saved in `config/experiment.json`: it defines what
an experiment measures) or of `Options` (this invocation only), annotated with an `Opt` that carries
its flag, help and how it is spelled on a command line. Everything else is generated from these
fields: the argparse flags (`add_options`), the values a user gave (`given_options`), a batch
child's argv (`child_argv`), the "ignored on resume" lines (`describe_ignored`) and which saved
options `--extend` may change. To add an option, add one field here (see docs/design.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from tierbench.models import ALL_TIERS

Command = Literal["run", "resume", "batch"]
ALL_COMMANDS: frozenset[str] = frozenset({"run", "resume", "batch"})
RUN_COMMANDS: frozenset[str] = frozenset({"run", "resume"})
# How an option is written on a command line:
#   value    --flag=V               list   --flag A B (nargs=+)     repeat  --flag=A --flag=B
#   pairs    --flag=K=V (repeated)  switch --flag (True)             negated --no-x (False; default True)
Shape = Literal["value", "list", "repeat", "pairs", "switch", "negated"]
Thinking = Literal["None", "Low", "High", "UltraThink"]
RateLimitPolicy = Literal["auto", "wait", "exit"]
SandboxMode = Literal["auto", "bwrap", "none"]


# -- parsers for option values (argparse `type=`) -------------------------------------------------

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def usd_amount(text: str) -> float:
    """A positive amount in USD (e.g. 25 or 7.50)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD (like 25 or 7.50)") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive amount in USD")
    return value


def duration(text: str) -> float:
    """Seconds, or a number with s/m/h/d (e.g. 90m, 6h)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 3600, 90m or 6h)") from None


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


@dataclass(frozen=True)
class Opt:
    """Command-line metadata of one option field.

    saved:      part of the experiment's definition (config/experiment.json, the config hash, a
                batch's saved options). On an existing experiment a different value is listed as
                ignored, unless the option is `extendable` and `--extend` is given.
    resumable:  `resume` accepts it (derived from `commands`).
    extendable: `--extend` may change it on an existing experiment (it only adds work).
    """

    flag: str
    help: str
    commands: frozenset[str] = ALL_COMMANDS
    shape: Shape = "value"
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    extendable: bool = False
    saved: bool = True
    sort_unique: bool = False  # a set of names: given in any order, saved sorted

    @property
    def resumable(self) -> bool:
        return "resume" in self.commands


class ExperimentOptions(BaseModel):
    """The saved options: what an experiment runs and measures. `ExperimentConfig` extends this
    with bookkeeping; a field added here is saved, hashed and forwarded to batch children."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: Annotated[tuple[str, ...], Opt(
        "--tiers", "tiers to run (default: every tier the test defines)", shape="list",
        choices=ALL_TIERS, extendable=True, sort_unique=True)]
    runs_per_subtest: Annotated[int, Field(gt=0), Opt(
        "--runs", "runs per subtest (default 3); --extend can raise it", parse=positive_int,
        extendable=True)] = 3
    max_subtests: Annotated[int | None, Field(gt=0), Opt(
        "--max-subtests", "at most this many subtests per tier (default: all)", parse=positive_int,
        extendable=True)] = None
    agent: Annotated[str, Opt(
        "--agent", "the agent under test: demo | command | claude-code | codex | gemini | opencode | aider | "
        "mini-swe-agent (default demo)")] = "demo"
    agent_options: Annotated[dict[str, str], Opt(
        "--agent-opt", "an option of the agent adapter; repeatable", shape="pairs", parse=key_value,
        metavar="KEY=VALUE")] = Field(default_factory=dict)
    model: Annotated[str | None, Opt("--model", "the model the agent uses (default: the agent's)")] = None
    judges: Annotated[tuple[str, ...], Opt(
        "--judge", "command | anthropic:<model> | openai:<model>[@base_url]; repeatable "
        "(default: the test's judges)", shape="repeat", metavar="SPEC")] = ("command",)
    parallel: Annotated[int, Field(gt=0), Opt(
        "--parallel", "runs at once within one experiment (default 2)", parse=positive_int)] = 2
    timeout_seconds: Annotated[int, Field(gt=0), Opt(
        "--timeout", "seconds an agent may run (default: the test's task.timeout_seconds)",
        parse=positive_int)] = 600
    thinking: Annotated[Thinking, Opt(
        "--thinking", "extended thinking level (default None)",
        choices=("None", "Low", "High", "UltraThink"))] = "None"
    keep_workspaces: Annotated[bool, Opt(
        "--keep-workspaces", "keep each run's git worktree after it is judged", shape="switch")] = False
    seed: Annotated[int, Opt("--seed", "seed for sampling subtests and for the demo agent", parse=int)] = 0
    on_rate_limit: Annotated[RateLimitPolicy, Opt(
        "--on-rate-limit", "default: wait when the reset is within --max-wait, else exit",
        choices=("wait", "exit"))] = "auto"
    max_wait_seconds: Annotated[float, Field(ge=0), Opt(
        "--max-wait", "longest rate-limit reset to wait for by default (default 6h)",
        parse=duration)] = 6 * 3600.0
    default_rate_limit_wait_seconds: Annotated[float, Field(gt=0), Opt(
        "--rate-limit-wait", "wait used when a rate limit names no reset time (default 60s)",
        parse=duration)] = 60.0
    preflight: Annotated[bool, Opt(
        "--no-preflight", "skip the cheap rate-limit probe before the first run",
        shape="negated")] = True
    stall_limit: Annotated[int, Field(gt=0), Opt(
        "--stall-limit", "stop after this many consecutive identical infrastructure errors (default 5)",
        parse=positive_int)] = 5
    sandbox: Annotated[SandboxMode, Opt(
        "--sandbox", "confine agents and checks with bubblewrap: auto (the default: when it works here), "
        "bwrap (fail if it cannot) or none", choices=("auto", "bwrap", "none"))] = "auto"


class Options(ExperimentOptions):
    """Every option: the saved ones plus those that only steer this invocation."""

    results_dir: Annotated[Path | None, Opt(
        "--results-dir", "where experiments go (default ./results)", parse=Path, saved=False)] = None
    fresh: Annotated[bool, Opt(
        "--fresh", "move the old results aside and start anew", shape="switch", saved=False)] = False
    extend: Annotated[bool, Opt(
        "--extend", "apply more --runs/--tiers/--max-subtests to an existing experiment",
        shape="switch", saved=False, commands=RUN_COMMANDS)] = False
    quiet: Annotated[bool, Opt(
        "--quiet", "print only errors and the final summary", shape="switch", saved=False)] = False
    no_report: Annotated[bool, Opt(
        "--no-report", "skip writing the report at the end", shape="switch", saved=False,
        commands=RUN_COMMANDS)] = False
    tests: Annotated[list[str] | None, Opt(
        "--tests", "run only these test ids", shape="list", metavar="ID", saved=False,
        commands=frozenset({"batch"}))] = None
    threads: Annotated[int, Opt(
        "--threads", "tests at once (default 4)", parse=positive_int, saved=False,
        commands=frozenset({"batch"}))] = 4
    retry_errors: Annotated[bool, Opt(
        "--retry-errors", "run again the tests whose entry is an error", shape="switch", saved=False,
        commands=frozenset({"batch"}))] = False
    # Not saved: each invocation states the budget it allows (a rerun without it keeps the one in
    # the checkpoint; a different one is recorded in the config's extensions). See execute/budget.py.
    budget_usd: Annotated[float | None, Field(gt=0), Opt(
        "--budget-usd", "launch no run whose forecast cost would take the spend past USD (on a "
        "batch: all its tests together)", parse=usd_amount, metavar="USD", saved=False)] = None
    budget_scope: Annotated[Path | None, Opt(
        "--budget-scope", argparse.SUPPRESS, parse=Path, saved=False,
        commands=frozenset({"run"}))] = None  # set by batch for its children: the shared budget's dir


def option_meta(name: str) -> Opt:
    """The `Opt` of a field of `Options`."""
    for item in Options.model_fields[name].metadata:
        if isinstance(item, Opt):
            return item
    raise KeyError(f"option field {name!r} has no Opt metadata")


def option_names(*, saved: bool | None = None, command: str | None = None) -> list[str]:
    """Field names of `Options` in declaration order, filtered by saved-ness and command."""
    names = []
    for name in Options.model_fields:
        meta = option_meta(name)
        if saved is not None and meta.saved != saved:
            continue
        if command is not None and command not in meta.commands:
            continue
        names.append(name)
    return names


def default_of(name: str) -> Any:
    """The default of an option (what a run uses when it is not given)."""
    return Options.model_fields[name].get_default(call_default_factory=True)


# -- argparse -------------------------------------------------------------------------------------

def add_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the flags of every option `command` accepts. Saved options default to None, so that only
    the ones actually given are compared with a saved config or passed to a batch child."""
    for name in option_names(command=command):
        meta = option_meta(name)
        default = None if meta.saved else default_of(name)
        kwargs: dict[str, Any] = {"dest": name, "help": meta.help, "default": default}
        if meta.shape == "switch":
            kwargs["action"] = "store_true"
        elif meta.shape == "negated":
            kwargs["action"] = "store_false"
        else:
            if meta.parse is not None:
                kwargs["type"] = meta.parse
            if meta.choices is not None:
                kwargs["choices"] = meta.choices
            if meta.metavar is not None:
                kwargs["metavar"] = meta.metavar
            if meta.shape == "list":
                kwargs["nargs"] = "+"
            elif meta.shape in ("repeat", "pairs"):
                kwargs["action"] = "append"
        parser.add_argument(meta.flag, **kwargs)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The saved options the user actually gave, in their saved (JSON) form."""
    given: dict[str, Any] = {}
    for name in option_names(saved=True):
        value = getattr(args, name, None)
        if value is not None:
            given[name] = _normalize(name, value)
    return given


def _normalize(name: str, value: Any) -> Any:
    meta = option_meta(name)
    if meta.shape == "pairs" and not isinstance(value, dict):
        return dict(value)
    if meta.sort_unique:
        return sorted(set(value))
    if isinstance(value, tuple):
        return list(value)
    return value


def child_argv(given: dict[str, Any]) -> list[str]:
    """The `run` arguments that carry `given` (a batch's saved options) to a child unchanged.
    Values are attached with '=' so that a value starting with '-' is never read as a flag;
    empty values (None, "") mean "not given"."""
    argv: list[str] = []
    for name in option_names(saved=True, command="run"):
        value = given.get(name)
        if value is None or value == "":
            continue
        meta = option_meta(name)
        if meta.shape == "value":
            argv.append(f"{meta.flag}={value}")
        elif meta.shape == "list":
            if value:
                argv += [meta.flag, *map(str, value)]
        elif meta.shape == "repeat":
            argv += [f"{meta.flag}={item}" for item in value if item != ""]
        elif meta.shape == "pairs":
            argv += [f"{meta.flag}={key}={item}" for key, item in dict(value).items()]
        elif meta.shape == "switch":
            argv += [meta.flag] if value else []
        elif meta.shape == "negated":
            argv += [meta.flag] if value is False else []
    return argv


# -- saved versus asked ---------------------------------------------------------------------------

class GivenOptions(BaseModel):
    """Saved options given on a command line, only those given (a batch saves these, and builds
    every child's argv from them). Unknown names are refused; values are validated."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_and_valid(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("options must be a mapping of option names to values")
        saved = set(option_names(saved=True))
        unknown = sorted(set(data) - saved)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}")
        out = {}
        for name, value in data.items():
            if value is None:
                continue
            annotation: Any = ExperimentOptions.model_fields[name].annotation
            TypeAdapter(annotation).validate_python(value)
            out[name] = _normalize(name, value)
        return out

    def values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def get(self, name: str) -> Any:
        """The given value, or the option's default when it was not given."""
        values = self.values()
        return values[name] if name in values else default_of(name)


def show_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


def flag_of(name: str) -> str:
    try:
        return option_meta(name).flag
    except KeyError:
        return name


def describe_ignored(differences: dict[str, tuple[Any, Any]], owner: str = "experiment") -> list[str]:
    """'--runs 5, experiment uses 3' lines for a rerun that keeps the saved options.
    `differences` is {field: (asked, saved)}; a saved None reads "the default"."""
    return [f"{flag_of(name)} {show_value(asked)}, {owner} uses "
            f"{show_value(saved) if saved is not None else 'the default'}"
            for name, (asked, saved) in differences.items()]


# -- the rate-limit wait policy (used by the coordinator and the batch alike) --------------------

def should_wait(policy: str, max_wait_seconds: float, until: datetime | None, *,
                default_wait: float, now: datetime | None = None) -> bool:
    """Wait out a rate limit, or exit 2? `wait`/`exit` decide; `auto` waits when the reset (or,
    when none is known, `default_wait` from now) is at most `max_wait_seconds` away."""
    if policy != "auto":
        return policy == "wait"
    now = now or datetime.now(timezone.utc)
    left = (until - now).total_seconds() if until is not None else default_wait
    return left <= max_wait_seconds
