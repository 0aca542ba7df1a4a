"""The `gemini` agent: Google's Gemini CLI, once, headless, in the run's worktree.

    gemini -p PROMPT --output-format stream-json --yolo [-m MODEL]
    (HOME points at the run's private home, which holds ~/.gemini/settings.json)

Checked against the pinned CLI (features.PINNED_VERSIONS["gemini"], 0.61.0) with the fake API in
tests/support/fake_gemini.py:

  * Endpoint and key: GOOGLE_GEMINI_BASE_URL (--agent-opt base_url, else the environment's) and
    GEMINI_API_KEY (--agent-opt key_env to read another variable). With only these it picks auth
    type "gateway", which headless mode refuses (exit 41), so settings.json sets
    security.auth.selectedType "gemini-api-key"; it also turns off usage statistics, telemetry and
    auto-update. GEMINI_CLI_TRUST_WORKSPACE=true, or --yolo is quietly downgraded.
  * Protocol: POST /v1beta/models/MODEL:streamGenerateContent?alt=sse; shell tool run_shell_command.
  * stream-json events: init, message (user / assistant deltas), tool_use {tool_name, parameters},
    tool_result, result {status, stats: input_tokens (cached included), cached, input, output_tokens
    (thoughts excluded)} or, on failure, result {status: "error", error: {message}}. No cost.
    Thought tokens appear only in the session file ~/.gemini/tmp/*/chats/session-*.jsonl (per
    message `tokens.thoughts`), from where they are added to output and reasoning tokens.
  * Failures: the exit code is the HTTP status & 0xFF (429 -> 173, 401 -> 145), stderr carries the
    status. It ignores Retry-After; settings general.maxAttempts bounds its retries
    (--agent-opt max_retries + 1 attempts; default 2). A 401 is not retried.
  * Tier features: GEMINI.md in the workspace, else ~/.gemini/GEMINI.md; skills from
    .claude/skills/ go to ~/.gemini/skills/ (offered through its activate_skill tool); `tools.enabled` ->
    settings tools.core, `tools.disabled` -> tools.exclude (Gemini's tool names, e.g.
    run_shell_command, read_file, replace, write_file); max_turns -> model.maxSessionTurns.
  * It writes crash reports to $TMPDIR, which points into the run's home.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tierbench.agents import cli_base
from tierbench.agents.base import AgentContext
from tierbench.agents.cli_base import CliSpec
from tierbench.agents.prices import settle_cost
from tierbench.models import AgentOutcome, TokenStats
from tierbench.store.atomic import atomic_write_text

SPEC = CliSpec(agent="gemini", command="gemini", tools_path="gemini/node_modules/.bin/gemini",
               install_hint="install with `make agents` or pass --agent-opt bin=PATH", key_env="GEMINI_API_KEY",
               default_max_retries=1)
EXIT_RATE_LIMITED = 429 & 0xFF  # 173
EXIT_UNAUTHORIZED = 401 & 0xFF  # 145
EXIT_FORBIDDEN = 403 & 0xFF  # 147


def settings(ctx: AgentContext) -> dict[str, Any]:
    data: dict[str, Any] = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True,
                    "maxAttempts": cli_base.max_retries(SPEC, ctx.options) + 1},
    }
    if ctx.subtest.max_turns:
        data["model"] = {"maxSessionTurns": ctx.subtest.max_turns}
    tools = ctx.subtest.tools
    if tools is not None:
        if tools.enabled is not None:
            data.setdefault("tools", {})["core"] = list(tools.enabled)
        if tools.disabled:
            data.setdefault("tools", {})["exclude"] = list(tools.disabled)
    return data


def build_command(ctx: AgentContext, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    binary, _ = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
    argv = [binary, "-p", prompt, "--output-format", "stream-json", "--yolo"]
    if ctx.model:
        argv += ["-m", ctx.model]
    argv += list(ctx.subtest.agent_args)
    env = {**cli_base.home_env(home), "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    base_url = ctx.options.get("base_url") or ctx.base_env.get("GOOGLE_GEMINI_BASE_URL")
    if base_url:
        env["GOOGLE_GEMINI_BASE_URL"] = base_url
    name = cli_base.key_env(SPEC, ctx.options)
    if name != "GEMINI_API_KEY":
        env["GEMINI_API_KEY"] = ctx.base_env.get(name, "")  # redacted in command.json by its name
    return argv, env


def parse_events(events: list[dict[str, Any]]) -> tuple[TokenStats, str, str | None]:
    """(tokens, final text, error message or None) from stream-json events."""
    texts: list[str] = []
    error = None
    tokens = TokenStats()
    for event in events:
        kind = event.get("type")
        if kind == "tool_use":
            texts = []
        elif kind == "message" and event.get("role") == "assistant":
            texts.append(str(event.get("content") or ""))
        elif kind == "result":
            stats = cli_base.as_dict(event.get("stats"))
            cached = int(stats.get("cached") or 0)
            tokens = TokenStats(input_tokens=max(int(stats.get("input_tokens") or 0) - cached, 0),
                                cache_read_tokens=cached, output_tokens=int(stats.get("output_tokens") or 0))
            if event.get("status") == "error":
                err = event.get("error")
                error = str(err.get("message") if isinstance(err, dict) else err or "error")
    return tokens, "".join(texts), error


def session_thoughts(home: Path) -> int:
    """Thought tokens over the session files' model messages (each message id counted once)."""
    by_id: dict[str, int] = {}
    for path in sorted((home / ".gemini" / "tmp").glob("*/chats/session-*.jsonl")):
        for record in cli_base.jsonl_events(path.read_text(encoding="utf-8", errors="replace")):
            if record.get("type") == "gemini" and isinstance(record.get("tokens"), dict):
                by_id[str(record.get("id"))] = int(record["tokens"].get("thoughts") or 0)
    return sum(by_id.values())


class GeminiAgent(cli_base.CliAgent):
    name = "gemini"
    spec = SPEC

    def run(self, ctx: AgentContext) -> AgentOutcome:
        prompt = self.prompt_or_failure(ctx)
        if isinstance(prompt, AgentOutcome):
            return prompt
        with cli_base.agent_home(ctx) as home:
            gemini_dir = home / ".gemini"
            gemini_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(gemini_dir / "settings.json", json.dumps(settings(ctx), indent=2) + "\n")
            if (text := cli_base.instructions(ctx, "GEMINI.md")) is not None:
                atomic_write_text(gemini_dir / "GEMINI.md", text)
            cli_base.copy_skills(ctx, gemini_dir / "skills")
            argv, overrides = build_command(ctx, home, prompt)
            binary, found = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
            if not found:
                return cli_base.not_found(SPEC, binary, argv)
            proc, outcome = cli_base.start(ctx, SPEC, argv, overrides)
            thoughts = session_thoughts(home)
        if proc.exit_code is None:
            return outcome
        return self._classify(ctx, outcome, proc.exit_code, proc.cancelled or proc.timed_out, thoughts)

    def _classify(self, ctx: AgentContext, outcome: AgentOutcome, exit_code: int, stopped: bool,
                  thoughts: int) -> AgentOutcome:
        stdout_text, stderr_text = cli_base.logs(ctx)
        events = cli_base.jsonl_events(stdout_text)
        outcome.usage = cli_base.write_transcript(ctx, self.name, events)
        tokens, final, error = parse_events(events)
        tokens.output_tokens += thoughts
        tokens.reasoning_tokens = thoughts
        outcome.token_stats = tokens
        outcome.result_text = error or final
        outcome.is_error = error is not None or exit_code != 0
        if exit_code in (EXIT_RATE_LIMITED, EXIT_UNAUTHORIZED, EXIT_FORBIDDEN):
            outcome.api_error_status = {EXIT_RATE_LIMITED: 429, EXIT_UNAUTHORIZED: 401, EXIT_FORBIDDEN: 403}[exit_code]
        settle_cost(outcome, ctx.model, ctx.options)
        # events, stderr and the exit code (the HTTP status & 0xFF) all go to the detector
        cli_base.detect(ctx, outcome, self.name, exit_code=exit_code, stdout=stdout_text, stderr=stderr_text,
                        events=events)
        if outcome.rate_limit is not None or outcome.infra_error or stopped:
            return outcome
        if outcome.api_error_status in (401, 403) or "API key not valid" in (error or "") + stderr_text:
            detail = (error or cli_base.last_line(stderr_text)).replace("\n", " ")[:300]
            outcome.infra_error = (f"Gemini CLI authentication failed ({outcome.api_error_status or 'API key'}): "
                                   f"{detail}. Check the API key in {cli_base.key_env(SPEC, ctx.options)}")
        elif error is not None:
            outcome.infra_error = f"Gemini CLI stopped on an error (exit {exit_code}): {error[:500]}"
        elif exit_code != 0:
            detail = cli_base.last_line(stderr_text) or "no output"
            outcome.infra_error = f"gemini exited with code {exit_code}: {detail}"
        return outcome
