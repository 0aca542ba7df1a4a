"""The `codex` agent: the OpenAI Codex CLI, once, non-interactively, in the run's worktree.

    codex exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox [-m MODEL] -
    (the prompt goes in on stdin; CODEX_HOME points at the run's private home)

Checked against the pinned CLI (features.PINNED_VERSIONS["codex"], 0.169.0) with the fake
Responses API in tests/support/fake_responses.py:

  * The API endpoint is set only through `$CODEX_HOME/config.toml`: a `[model_providers.tierbench]`
    with `base_url`, `env_key` (the *name* of the key variable; the key never reaches a file) and
    `wire_api = "responses"`, chosen by `model_provider`. OPENAI_BASE_URL with the built-in
    provider never reached a local server.
  * Output (`--json`) is JSONL: thread.started, turn.started, item.started / item.completed
    (command_execution, file_change, mcp_tool_call, agent_message, reasoning, error, ...), then
    turn.completed {usage: input_tokens (cached included), cached_input_tokens, output_tokens
    (reasoning included), reasoning_output_tokens} or turn.failed {error: {message}}. No cost.
  * For a model it has no metadata for it always emits an `item.completed` of type "error"
    ("Model metadata for `X` not found"): harmless, never a failure.
  * 429: "Reconnecting... N/M (... last status: 429 Too Many Requests)" error events, then
    turn.failed and exit 1. 401: "unexpected status 401 Unauthorized: ..." and exit 1.
    `stream_max_retries` / `request_max_retries` in the provider bound the retries
    (--agent-opt max_retries, default 1).
  * `check_for_update_on_startup = false` and `[analytics] enabled = false` keep it quiet.
  * Instructions: AGENTS.md in the workspace; otherwise `$CODEX_HOME/AGENTS.md` (its global file).
    Skills: the subtest's .claude/skills/<name>/SKILL.md go to `$CODEX_HOME/skills/<name>/`, where
    it lists them to the model.
  * Thinking: None leaves the model's default; Low/High/UltraThink set model_reasoning_effort
    low/high/xhigh.
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

SPEC = CliSpec(agent="codex", command="codex", tools_path="codex/node_modules/.bin/codex",
               install_hint="install with `make agents` or pass --agent-opt bin=PATH", key_env="OPENAI_API_KEY",
               default_max_retries=1)
DEFAULT_BASE_URL = "https://api.openai.com/v1"
EFFORT = {"none": None, "low": "low", "high": "high", "ultrathink": "xhigh"}


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_toml(ctx: AgentContext, base_url: str) -> str:
    retries = cli_base.max_retries(SPEC, ctx.options)
    lines = ['model_provider = "tierbench"', "check_for_update_on_startup = false"]
    if ctx.model:
        lines.append(f"model = {_toml_string(ctx.model)}")
    effort = EFFORT.get((ctx.thinking or "None").strip().lower())
    if effort:
        lines.append(f"model_reasoning_effort = {_toml_string(effort)}")
    lines += ["", "[analytics]", "enabled = false", "",
              "[model_providers.tierbench]", 'name = "tierbench"', f"base_url = {_toml_string(base_url)}",
              f"env_key = {_toml_string(cli_base.key_env(SPEC, ctx.options))}", 'wire_api = "responses"',
              f"stream_max_retries = {retries}", f"request_max_retries = {retries}", ""]
    return "\n".join(lines)


def build_command(ctx: AgentContext, home: Path) -> tuple[list[str], dict[str, str]]:
    binary, _ = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
    argv = [binary, "exec", "--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    if ctx.model:
        argv += ["-m", ctx.model]
    argv += [*ctx.subtest.agent_args, "-"]
    env = {**cli_base.home_env(home), "CODEX_HOME": str(home / ".codex")}
    return argv, env


def parse_events(events: list[dict[str, Any]]) -> tuple[TokenStats, str, str | None]:
    """(tokens, final message, turn.failed message or None) from codex's JSONL events."""
    inputs = cached = output = reasoning = 0
    final, failed = "", None
    for event in events:
        kind = event.get("type")
        if kind == "turn.completed" and isinstance(event.get("usage"), dict):
            u = event["usage"]
            inputs += int(u.get("input_tokens") or 0)
            cached += int(u.get("cached_input_tokens") or 0)
            output += int(u.get("output_tokens") or 0)
            reasoning += int(u.get("reasoning_output_tokens") or 0)
        elif kind == "turn.failed":
            failed = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "item.completed" and isinstance(event.get("item"), dict):
            item = event["item"]
            if item.get("type") == "agent_message":
                final = str(item.get("text") or "")
    tokens = TokenStats(input_tokens=max(inputs - cached, 0), cache_read_tokens=cached, output_tokens=output,
                        reasoning_tokens=reasoning)
    return tokens, final, failed


class CodexAgent(cli_base.CliAgent):
    name = "codex"
    spec = SPEC

    def run(self, ctx: AgentContext) -> AgentOutcome:
        prompt = self.prompt_or_failure(ctx)
        if isinstance(prompt, AgentOutcome):
            return prompt
        base_url = ctx.options.get("base_url") or ctx.base_env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        with cli_base.agent_home(ctx) as home:
            codex_home = home / ".codex"
            codex_home.mkdir(parents=True, exist_ok=True)
            atomic_write_text(codex_home / "config.toml", config_toml(ctx, base_url))
            if (text := cli_base.instructions(ctx, "AGENTS.md")) is not None:
                atomic_write_text(codex_home / "AGENTS.md", text)
            cli_base.copy_skills(ctx, codex_home / "skills")
            argv, overrides = build_command(ctx, home)
            binary, found = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
            if not found:
                return cli_base.not_found(SPEC, binary, argv)
            proc, outcome = cli_base.start(ctx, SPEC, argv, overrides, stdin_text=prompt)
        if proc.exit_code is None:
            return outcome
        return self._classify(ctx, outcome, proc.exit_code, proc.cancelled, proc.timed_out)

    def _classify(self, ctx: AgentContext, outcome: AgentOutcome, exit_code: int, cancelled: bool,
                  timed_out: bool) -> AgentOutcome:
        stdout_text, stderr_text = cli_base.logs(ctx)
        events = cli_base.jsonl_events(stdout_text)
        outcome.usage = cli_base.write_transcript(ctx, self.name, events)
        tokens, final, failed = parse_events(events)
        outcome.token_stats, outcome.result_text = tokens, failed or final
        outcome.is_error = failed is not None or exit_code != 0
        settle_cost(outcome, ctx.model, ctx.options)
        cli_base.detect(ctx, outcome, self.name, exit_code=exit_code, stdout=stdout_text, stderr=stderr_text,
                        events=events)
        if outcome.rate_limit is not None or outcome.infra_error or cancelled or timed_out:
            return outcome
        if failed is not None:
            if "401" in failed or "unauthorized" in failed.lower() or "403" in failed:
                outcome.infra_error = (f"Codex authentication failed ({failed[:300]}). Check the API key in "
                                       f"{cli_base.key_env(SPEC, ctx.options)}")
            else:
                outcome.infra_error = f"Codex stopped on an API error: {failed[:500]}"
        elif exit_code != 0:
            detail = cli_base.last_line(stderr_text) or cli_base.last_line(stdout_text) or "no output"
            outcome.infra_error = f"codex exited with code {exit_code} without finishing its turn: {detail}"
        return outcome
