"""The `command` agent: any shell command as the agent, e.g. a wrapper script around a real CLI.

The command runs in the workspace with the prompt file and the run's identity in TIERBENCH_*
environment variables, HOME in the run's private home, and under the run's sandbox. If it prints a
Claude-Code-style JSON result, tokens, cost and rate limits are read from it exactly as for Claude
Code itself; if it prints Claude Code's stream-json events (a wrapper around `claude
--output-format stream-json --verbose`), stdout is also kept as agent/transcript.jsonl and counted
into the run's ToolUsage.
environment variables. If it prints a Claude-Code-style JSON result, tokens, cost and rate limits
are read from it exactly as for Claude Code itself. Its other output is the task's own (a test
runner may print "429 Too Many Requests"): only Claude Code's own error lines count as a rate limit
there, and never when the result or the exit code says the run finished.

Also home of the small helpers every subprocess-driven adapter shares: the replayable
`command.json` record and turning a `ProcessOutcome` into an `AgentOutcome`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from datetime import datetime, timezone
from pathlib import Path

from tierbench.agents.base import DEFAULT_RATE_LIMIT_WAIT, AgentContext
from tierbench.agents.jsonresult import apply_result_fields, parse_result_json
from tierbench.process import ProcessOutcome, ProcessRegistry, run_process
from tierbench.models import AgentOutcome, RateLimitInfo
from tierbench.ratelimit import AgentOutput, detect_agent
from tierbench.store.atomic import atomic_write_text
from tierbench.transcript import TRANSCRIPT_NAME, count_usage, is_claude_stream, parse_events, read_events

# Env names that may carry credentials; their values never reach command.json.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
REDACTED = "<redacted>"
EXIT_COMMAND_NOT_FOUND = 127


def redact_env(env: dict[str, str]) -> dict[str, str]:
    return {name: (REDACTED if _SECRET_NAME.search(name) else value) for name, value in env.items()}


def write_command_record(agent_dir: Path, argv: list[str], cwd: Path, env_overrides: dict[str, str]) -> None:
    """Save agent_dir/command.json so a human can replay the exact invocation.

    Only the variables the adapter set are recorded (never the whole inherited environment),
    and any whose name looks like a credential is redacted.
    """
    record = {"argv": list(argv), "cwd": str(cwd), "env_overrides": redact_env(env_overrides)}
    agent_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(agent_dir / "command.json", json.dumps(record, indent=2) + "\n", durable=False)


def read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def outcome_from_process(proc: ProcessOutcome, argv: list[str]) -> AgentOutcome:
    """The process-level facts of an agent run; JSON result fields are applied afterwards."""
    infra_error = None
    if proc.start_error and not proc.cancelled:
        infra_error = f"agent could not start: {proc.start_error}"
    return AgentOutcome(exit_code=proc.exit_code, timed_out=proc.timed_out,
                        duration_seconds=proc.duration_seconds, infra_error=infra_error, command=list(argv))


def adopt_stream_transcript(stdout_path: Path, agent_dir: Path) -> AgentOutcome | None:
    """If stdout is a Claude Code event stream, keep it as transcript.jsonl; the usage it shows."""
    events = read_events(stdout_path)
    if not is_claude_stream(events):
        return None
    target = agent_dir / TRANSCRIPT_NAME
    target.unlink(missing_ok=True)
    try:
        os.link(stdout_path, target)
    except OSError:
        shutil.copyfile(stdout_path, target)
    return AgentOutcome(usage=count_usage(parse_events(events, "claude-code")))


def run_env_overrides(ctx: AgentContext) -> dict[str, str]:
    """What the run tells a command agent about itself; the subtest's own env comes first."""
    overrides = dict(ctx.subtest.env)
    if ctx.home is not None:
        overrides.setdefault("HOME", str(ctx.home))
    overrides.update({
        "TIERBENCH_PROMPT_FILE": str(ctx.prompt_file),
        "TIERBENCH_RUN_DIR": str(ctx.agent_dir.parent),
        "TIERBENCH_TIER": ctx.key.tier,
        "TIERBENCH_SUBTEST": ctx.key.subtest,
        "TIERBENCH_RUN": str(ctx.key.run),
        "TIERBENCH_WORKSPACE": str(ctx.workspace),
    })
    if ctx.model:
        overrides["TIERBENCH_MODEL"] = ctx.model
    if ctx.thinking and ctx.thinking != "None":
        overrides["TIERBENCH_THINKING"] = ctx.thinking
    return overrides


def _program_name(cmd: str) -> str:
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = cmd.split()
    return words[0] if words else cmd


class CommandAgent:
    name = "command"
    known_options = ("cmd",)

    def validate_options(self, options: dict[str, str]) -> None:
        unknown = sorted(set(options) - set(self.known_options))
        if unknown:
            raise ValueError(f"the command agent does not know option(s) {unknown}; it takes: cmd")
        if not str(options.get("cmd") or "").strip():
            raise ValueError("the command agent needs the shell command to run: --agent-opt cmd='...'")

    def preflight(self, options: dict[str, str], model: str | None, registry: ProcessRegistry,
                  work_dir: Path, *, default_wait: float = DEFAULT_RATE_LIMIT_WAIT) -> RateLimitInfo | None:
        return None  # an arbitrary command has no free probe

    def run(self, ctx: AgentContext) -> AgentOutcome:
        try:
            self.validate_options(ctx.options)
        except ValueError as exc:  # run() reports, never raises
            return AgentOutcome(infra_error=str(exc))
        cmd = ctx.options["cmd"]
        argv = ["/bin/sh", "-c", cmd]  # what shell=True runs; recorded so it replays verbatim
        overrides = run_env_overrides(ctx)
        write_command_record(ctx.agent_dir, argv, ctx.workspace, overrides)
        stdout_path, stderr_path = ctx.agent_dir / "stdout.log", ctx.agent_dir / "stderr.log"
        proc = run_process(cmd, cwd=ctx.workspace, env={**ctx.base_env, **overrides},
                           timeout=ctx.timeout_seconds, stdout_path=stdout_path, stderr_path=stderr_path,
                           registry=ctx.registry, shell=True, sandbox=ctx.sandbox)
        outcome = outcome_from_process(proc, argv)
        if proc.exit_code is None:
            return outcome
        stdout_text = read_log(stdout_path)
        result = parse_result_json(stdout_text)
        if result is not None:
            outcome = apply_result_fields(outcome, result)
        streamed = adopt_stream_transcript(stdout_path, ctx.agent_dir)
        if streamed is not None:
            outcome.usage = streamed.usage
        stderr_text = read_log(stderr_path)
        if proc.exit_code == EXIT_COMMAND_NOT_FOUND and not proc.timed_out:
            last_line = (stderr_text.strip().splitlines() or [""])[-1]
            detail = f" ({last_line})" if last_line else ""
            outcome.infra_error = f"command not found: {_program_name(cmd)}{detail}"
            return outcome
        output = AgentOutput.from_streams(self.name, exit_code=proc.exit_code, stdout=stdout_text,
                                          stderr=stderr_text, result=result)
        detection = detect_agent(output, now=datetime.now(timezone.utc), default_wait=ctx.default_rate_limit_wait)
        if detection is not None:
            detection.apply(outcome)
        return outcome
