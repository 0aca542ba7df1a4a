"""What the adapters for the other agent CLIs (codex, gemini, opencode, aider, mini-swe-agent) share:
finding the pinned binary, the run's private home, the instruction file, running the process,
transcripts, and the common option checks.

Binary lookup, in order: `--agent-opt bin=PATH`; the env var TIERBENCH_<AGENT>_BIN; the copy
`make agents` installed in this checkout's `.tools/`; the agent's command name on PATH.

Home. `ctx.home` is the run's private home/config directory (created empty per attempt by the
run). Each adapter writes its agent's configuration there and points HOME, XDG_* and the agent's
own variables at it, so nothing of the researcher's set-up reaches the agent. Without one (a unit
test driving an adapter directly) a temporary directory is used and removed afterwards.

Secrets. API keys stay in environment variables: configuration files name the variable (Codex
`env_key`, OpenCode `{env:...}`) and argv never carries a key, so command.json and the home hold
none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierbench.agents.base import AgentContext
from tierbench.agents.command import outcome_from_process, read_log, write_command_record
from tierbench.agents.features import INSTRUCTION_FILES
from tierbench.agents.prices import PRICES_OPTION, validate_prices_option
from tierbench.models import AgentOutcome, RateLimitInfo, ToolUsage
from tierbench.process import ProcessOutcome, ProcessRegistry, run_process
from tierbench.store.atomic import atomic_write_text
from tierbench.transcript import TRANSCRIPT_NAME, count_usage, run_transcript
from tierbench.transcript import jsonl_objects as jsonl_events  # the one JSONL reader, for the adapters

TOOLS_DIR = Path(__file__).resolve().parents[3] / ".tools"  # the checkout's .tools/ (make agents)
COMMON_OPTIONS = ("bin", "base_url", "key_env", "max_retries", PRICES_OPTION)


@dataclass(frozen=True)
class CliSpec:
    agent: str  # tierbench's name for it
    command: str  # its command name on PATH
    tools_path: str  # relative to .tools/
    install_hint: str
    key_env: str  # the env var holding its API key by default
    default_max_retries: int


def bin_env_name(agent: str) -> str:
    return "TIERBENCH_" + agent.upper().replace("-", "_") + "_BIN"


def resolve_binary(spec: CliSpec, options: dict[str, str], env: dict[str, str]) -> tuple[str, bool]:
    """(path or name of the binary, whether it exists and is executable). See the module docstring."""
    wanted = (options.get("bin") or env.get(bin_env_name(spec.agent)) or "").strip()
    if not wanted:
        installed = TOOLS_DIR / spec.tools_path
        if installed.is_file() and os.access(installed, os.X_OK):
            return str(installed), True
        wanted = spec.command
    if os.sep in wanted or wanted.startswith("~"):
        path = Path(wanted).expanduser().absolute()
        return str(path), path.is_file() and os.access(path, os.X_OK)
    found = shutil.which(wanted, path=env.get("PATH", os.defpath))
    return (found, True) if found else (wanted, False)


def int_option(agent: str, options: dict[str, str], name: str, minimum: int) -> int | None:
    if name not in options:
        return None
    try:
        value = int(str(options[name]).strip())
    except ValueError:
        raise ValueError(f"{agent} option {name} must be an integer, got {options[name]!r}") from None
    if value < minimum:
        raise ValueError(f"{agent} option {name} must be at least {minimum}, got {value}")
    return value


def validate_common(spec: CliSpec, options: dict[str, str], extra: tuple[str, ...] = ()) -> None:
    known = COMMON_OPTIONS + extra
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"the {spec.agent} agent does not know option(s) {unknown}; it takes: {', '.join(known)}")
    for name in ("bin", "base_url", "key_env"):
        if name in options and not str(options[name]).strip():
            raise ValueError(f"{spec.agent} option {name} is empty; give a value or leave the option out")
    if options.get("base_url") and not str(options["base_url"]).startswith(("http://", "https://")):
        raise ValueError(f"{spec.agent} option base_url must start with http:// or https://, "
                         f"got {options['base_url']!r}")
    int_option(spec.agent, options, "max_retries", 0)
    validate_prices_option(options)


def key_env(spec: CliSpec, options: dict[str, str]) -> str:
    return str(options.get("key_env") or spec.key_env).strip()


def max_retries(spec: CliSpec, options: dict[str, str]) -> int:
    value = int_option(spec.agent, options, "max_retries", 0)
    return spec.default_max_retries if value is None else value


@contextlib.contextmanager
def agent_home(ctx: AgentContext) -> Iterator[Path]:
    if ctx.home is not None:
        ctx.home.mkdir(parents=True, exist_ok=True)
        yield ctx.home
        return
    with tempfile.TemporaryDirectory(prefix=".agent-home-", dir=ctx.agent_dir) as scratch:
        yield Path(scratch)


def home_env(home: Path) -> dict[str, str]:
    """HOME and the XDG directories, all inside the run's private home (TMPDIR comes with the run's
    environment: its private /tmp)."""
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_STATE_HOME": str(home / ".local/state"), "XDG_CACHE_HOME": str(home / ".cache")}


def instructions(ctx: AgentContext, native: str | None) -> str | None:
    """The subtest's instruction text for an agent whose own file is `native`, or None.

    None when the subtest writes no instruction file, or writes the agent's native one (the agent
    then reads it from the workspace itself). Otherwise the text of the first of CLAUDE.md,
    AGENTS.md, GEMINI.md, which the adapter hands over through the agent's own convention.
    """
    files = {path.removeprefix("./"): text for path, text in ctx.subtest.files.items()}
    if native is not None and native in files:
        return None
    for name in INSTRUCTION_FILES:
        if name in files:
            return files[name]
    return None


SKILLS_PREFIX = ".claude/skills/"


def copy_skills(ctx: AgentContext, dest: Path) -> int:
    """Write the subtest's `.claude/skills/**` files under `dest` (the agent's own skills directory
    in the run's home, e.g. $CODEX_HOME/skills); the number of files written."""
    written = 0
    for path, text in ctx.subtest.files.items():
        rel = path.replace("\\", "/").removeprefix("./")
        if not rel.startswith(SKILLS_PREFIX):
            continue
        target = dest / rel[len(SKILLS_PREFIX):]
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        written += 1
    return written


def missing_key(spec: CliSpec, options: dict[str, str], env: dict[str, str]) -> AgentOutcome | None:
    name = key_env(spec, options)
    if env.get(name):
        return None
    return AgentOutcome(infra_error=f"{spec.agent}: the API key variable {name} is not set. Fix: export {name}=... "
                                    f"(or --agent-opt key_env=NAME to read another variable)")


def start(ctx: AgentContext, spec: CliSpec, argv: list[str], overrides: dict[str, str], *,
          stdin_text: str | None = None, timeout: float | None = None) -> tuple[ProcessOutcome, AgentOutcome]:
    """Record command.json, run the agent in the workspace, and return the process-level outcome.

    `overrides` are applied on top of ctx.base_env and recorded (secrets redacted by name); the
    subtest's `env` wins over both.
    """
    # PWD too: OpenCode takes its working directory from $PWD, which the inherited environment
    # would point at wherever tierbench itself was started.
    overrides = {**overrides, "PWD": str(ctx.workspace), **ctx.subtest.env}
    write_command_record(ctx.agent_dir, argv, ctx.workspace, overrides)
    proc = run_process(argv, cwd=ctx.workspace, env={**ctx.base_env, **overrides},
                       timeout=ctx.timeout_seconds if timeout is None else timeout,
                       stdout_path=ctx.agent_dir / "stdout.log", stderr_path=ctx.agent_dir / "stderr.log",
                       registry=ctx.registry, stdin_text=stdin_text, sandbox=ctx.sandbox)
    outcome = outcome_from_process(proc, argv)
    if proc.exit_code is None and proc.start_error and not proc.cancelled:
        outcome.infra_error = (f"{spec.agent} could not start ({proc.start_error}): {argv[0]}; "
                               f"{spec.install_hint}")
    return proc, outcome


def not_found(spec: CliSpec, binary: str, argv: list[str]) -> AgentOutcome:
    return AgentOutcome(command=argv, infra_error=f"{spec.agent} binary not found: {binary}; {spec.install_hint}")


def write_transcript(ctx: AgentContext, agent: str, entries: list[dict[str, Any]]) -> ToolUsage:
    """agent/transcript.jsonl: the agent's own events, one JSON object a line, as it produced them;
    returns what the agent used, counted from it by the shared rules (tierbench.transcript)."""
    from tierbench.agents import transcripts

    transcripts.register()

    text = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    atomic_write_text(ctx.agent_dir / TRANSCRIPT_NAME, text, durable=False)
    return count_usage(run_transcript(ctx.agent_dir, agent))


def litellm_base_url(ctx: AgentContext) -> str | None:
    """Where a LiteLLM-based agent (Aider, mini-swe-agent) sends requests: `base_url`, else
    OPENAI_BASE_URL, else the provider's own."""
    return ctx.options.get("base_url") or ctx.base_env.get("OPENAI_BASE_URL") or None


def litellm_model(ctx: AgentContext) -> str | None:
    """The model as LiteLLM names it: behind an OpenAI-compatible base URL a bare model name needs the
    `openai/` provider prefix."""
    if not ctx.model:
        return None
    return f"openai/{ctx.model}" if litellm_base_url(ctx) and "/" not in ctx.model else ctx.model


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else {} (agent output is read tolerantly)."""
    return value if isinstance(value, dict) else {}


def detect(ctx: AgentContext, outcome: AgentOutcome, agent: str, *, exit_code: int | None, stdout: str,
           stderr: str, result: dict[str, Any] | None = None,
           events: list[dict[str, Any]] | None = None) -> None:
    """Hand every channel the agent has to the one rate-limit detector and record its answer
    (outcome.rate_limit, or outcome.infra_error for an error no wait can fix)."""
    from tierbench.ratelimit import AgentOutput, detect_agent

    output = AgentOutput.from_streams(agent, exit_code=exit_code, stdout=stdout, stderr=stderr, result=result,
                                      events=events)
    detection = detect_agent(output, now=datetime.now(timezone.utc), default_wait=ctx.default_rate_limit_wait)
    if detection is not None:
        detection.apply(outcome)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


def read_text(path: Path) -> str:
    """A file the agent may or may not have written; "" when it did not."""
    return read_log(path)


def logs(ctx: AgentContext) -> tuple[str, str]:
    return read_log(ctx.agent_dir / "stdout.log"), read_log(ctx.agent_dir / "stderr.log")


class CliAgent:
    """What the five CLI adapters share: option checks, no preflight probe, and the checks every run
    makes before it starts. A subclass sets `name` and `spec` and writes its own `run`."""

    name: str
    spec: CliSpec
    extra_options: tuple[str, ...] = ()  # agent-specific --agent-opt keys beyond the common ones

    def needs_key(self, ctx: AgentContext) -> bool:
        return True

    def validate_options(self, options: dict[str, str]) -> None:
        validate_common(self.spec, options, extra=self.extra_options)

    def preflight(self, options: dict[str, str], model: str | None, registry: ProcessRegistry,
                  work_dir: Path) -> RateLimitInfo | None:
        return None  # no free probe: every request to these agents spends tokens

    def prompt_or_failure(self, ctx: AgentContext) -> str | AgentOutcome:
        """The task prompt, or the infrastructure error that stops the run before any process starts
        (a bad option, an unreadable prompt, a missing API key)."""
        try:
            self.validate_options(ctx.options)
            prompt = ctx.prompt_file.read_text(encoding="utf-8")
        except (ValueError, OSError) as exc:
            return AgentOutcome(infra_error=str(exc))
        missing = missing_key(self.spec, ctx.options, ctx.base_env) if self.needs_key(ctx) else None
        return missing if missing is not None else prompt
