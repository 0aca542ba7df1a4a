"""The `opencode` agent: OpenCode, once, non-interactively, in the run's worktree.

    opencode run --format json [-m PROVIDER/MODEL] PROMPT
    (OPENCODE_CONFIG points at the run's private home; HOME and XDG_* too)

Checked against the pinned CLI (features.PINNED_VERSIONS["opencode"], 1.18.33) with the fake
Chat Completions API in tests/support/fake_chat.py:

  * Endpoint: with a base URL (--agent-opt base_url, else OPENAI_BASE_URL) the config defines a
    provider "tierbench" on the bundled `@ai-sdk/openai-compatible` package, with `apiKey` given as
    `{env:OPENAI_API_KEY}` (--agent-opt key_env), so the key never reaches a file; the model is
    then "tierbench/MODEL". Without one, MODEL must name one of OpenCode's own providers
    ("openai/gpt-5") and that provider's usual key variable applies.
  * Protocol: Chat Completions SSE. It makes one extra title request first (no tools).
  * Output: JSONL events step_start, tool_use {part: {tool, state}}, text, step_finish {part:
    {tokens: {input (uncached), output (reasoning excluded), reasoning, cache {read, write}},
    cost}}; usage and cost are summed over steps. Its cost comes from its model table: 0 for a
    custom provider, which then falls to tierbench's price table.
  * Errors: {"type": "error", "error": {"name": "APIError", "data": {statusCode, isRetryable,
    responseHeaders, responseBody}}} and exit 1. A 429's Retry-After header gives the reset.
    Retries are hard-coded (5) and honour Retry-After without a cap: no knob bounds them, so the
    run timeout is the backstop.
  * Quiet and offline: OPENCODE_DISABLE_MODELS_FETCH, _AUTOUPDATE, _DEFAULT_PLUGINS (else it
    installs plugins from npm at start), _LSP_DOWNLOAD, _SHARE; `autoupdate: false`.
  * Tier features: AGENTS.md or CLAUDE.md in the workspace are read natively (GEMINI.md is copied
    to ~/.config/opencode/AGENTS.md); skills under .claude/skills/ are read natively. Tool
    restriction (OpenCode's tool names: bash, read, glob, grep, apply_patch, edit, write, webfetch,
    skill, task, todowrite) goes through `permission`, since a denied tool is not offered at all
    (the `tools` switches did not remove webfetch or apply_patch in 1.18.33): `enabled` ->
    `{"*": "deny", NAME: "allow"}`, `disabled` -> `NAME: "deny"`; the editing tools share the
    one `edit` permission.
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

SPEC = CliSpec(agent="opencode", command="opencode", tools_path="opencode/node_modules/.bin/opencode",
               install_hint="install with `make agents` or pass --agent-opt bin=PATH", key_env="OPENAI_API_KEY",
               default_max_retries=5)
PROVIDER = "tierbench"
EDIT_TOOLS = frozenset({"edit", "write", "apply_patch", "patch"})
QUIET_ENV = {name: "1" for name in ("OPENCODE_DISABLE_MODELS_FETCH", "OPENCODE_DISABLE_AUTOUPDATE",
                                    "OPENCODE_DISABLE_DEFAULT_PLUGINS", "OPENCODE_DISABLE_LSP_DOWNLOAD",
                                    "OPENCODE_DISABLE_SHARE")}


def _base_url(ctx: AgentContext) -> str | None:
    return ctx.options.get("base_url") or ctx.base_env.get("OPENAI_BASE_URL") or None


def model_id(ctx: AgentContext) -> str | None:
    if not ctx.model:
        return None
    return f"{PROVIDER}/{ctx.model}" if _base_url(ctx) else ctx.model


def config(ctx: AgentContext) -> dict[str, Any]:
    data: dict[str, Any] = {"autoupdate": False, "share": "disabled",
                            "permission": {"edit": "allow", "bash": "allow", "webfetch": "allow"}}
    base_url = _base_url(ctx)
    if base_url:
        models = {ctx.model: {"name": ctx.model}} if ctx.model else {}
        data["provider"] = {PROVIDER: {"npm": "@ai-sdk/openai-compatible", "name": PROVIDER, "models": models,
                                       "options": {"baseURL": base_url,
                                                   "apiKey": "{env:" + cli_base.key_env(SPEC, ctx.options) + "}"}}}
    if (mid := model_id(ctx)) is not None:
        data["model"] = mid
    tools = ctx.subtest.tools
    if tools is not None and (tools.enabled is not None or tools.disabled):
        # Permission "deny" removes a tool from what the model is offered; the editing tools
        # (apply_patch for GPT models, edit/write otherwise) share the one `edit` permission.
        permission: dict[str, str] = dict(data["permission"])
        if tools.enabled is not None:
            permission = {"*": "deny"}
            for name in tools.enabled:
                permission["edit" if name in EDIT_TOOLS else name] = "allow"
        for name in tools.disabled:
            permission["edit" if name in EDIT_TOOLS else name] = "deny"
        data["permission"] = permission
    return data


def build_command(ctx: AgentContext, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    binary, _ = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
    argv = [binary, "run", "--format", "json"]
    if (mid := model_id(ctx)) is not None:
        argv += ["-m", mid]
    argv += [*ctx.subtest.agent_args, prompt]
    env = {**cli_base.home_env(home), **QUIET_ENV, "OPENCODE_CONFIG": str(home / "opencode.json")}
    return argv, env


def parse_events(events: list[dict[str, Any]]) -> tuple[TokenStats, int, float, str, dict | None]:
    """(tokens, steps, the agent's cost, final text, the last error event's error or None)."""
    tokens = TokenStats()
    cost, text, error = 0.0, "", None
    steps = 0
    for event in events:
        kind = event.get("type")
        part = cli_base.as_dict(event.get("part"))
        if kind == "step_finish":
            steps += 1
            t = cli_base.as_dict(part.get("tokens"))
            cache = cli_base.as_dict(t.get("cache"))
            reasoning = int(t.get("reasoning") or 0)
            tokens = tokens + TokenStats(input_tokens=int(t.get("input") or 0),
                                         output_tokens=int(t.get("output") or 0) + reasoning,
                                         cache_read_tokens=int(cache.get("read") or 0),
                                         cache_creation_tokens=int(cache.get("write") or 0),
                                         reasoning_tokens=reasoning)
            cost += float(part.get("cost") or 0.0)
        elif kind == "text":
            text = str(part.get("text") or text)
        elif kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {"data": {"message": str(event)}}
    return tokens, steps, cost, text, error


class OpenCodeAgent(cli_base.CliAgent):
    name = "opencode"
    spec = SPEC

    def needs_key(self, ctx: AgentContext) -> bool:
        return bool(_base_url(ctx))  # only the provider tierbench configures (a base URL) reads our key variable

    def validate_options(self, options: dict[str, str]) -> None:
        super().validate_options(options)
        if "max_retries" in options:
            raise ValueError("opencode has no retry setting (its retries are hard-coded); drop max_retries. "
                             "The run timeout bounds it")

    def run(self, ctx: AgentContext) -> AgentOutcome:
        prompt = self.prompt_or_failure(ctx)
        if isinstance(prompt, AgentOutcome):
            return prompt
        with cli_base.agent_home(ctx) as home:
            atomic_write_text(home / "opencode.json", json.dumps(config(ctx), indent=2) + "\n")
            files = {p.removeprefix("./") for p in ctx.subtest.files}
            if "CLAUDE.md" not in files and (text := cli_base.instructions(ctx, "AGENTS.md")) is not None:
                (home / ".config" / "opencode").mkdir(parents=True, exist_ok=True)
                atomic_write_text(home / ".config" / "opencode" / "AGENTS.md", text)
            argv, overrides = build_command(ctx, home, prompt)
            binary, found = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
            if not found:
                return cli_base.not_found(SPEC, binary, argv)
            proc, outcome = cli_base.start(ctx, SPEC, argv, overrides)
        if proc.exit_code is None:
            return outcome
        return self._classify(ctx, outcome, proc.exit_code, proc.cancelled or proc.timed_out)

    def _classify(self, ctx: AgentContext, outcome: AgentOutcome, exit_code: int, stopped: bool) -> AgentOutcome:
        stdout_text, stderr_text = cli_base.logs(ctx)
        events = cli_base.jsonl_events(stdout_text)
        outcome.usage = cli_base.write_transcript(ctx, self.name, events)
        tokens, steps, cost, text, error = parse_events(events)
        outcome.token_stats, outcome.num_turns = tokens, steps or None
        data = cli_base.as_dict(cli_base.as_dict(error).get("data"))
        message = str(data.get("message") or (error or {}).get("name") or "") if error is not None else ""
        outcome.result_text = message or text
        outcome.is_error = error is not None or exit_code != 0
        status = data.get("statusCode")
        outcome.api_error_status = status if isinstance(status, int) else None
        settle_cost(outcome, ctx.model, ctx.options, agent_cost=cost)
        # the detector reads the error event's status and Retry-After header (from the event's time)
        cli_base.detect(ctx, outcome, self.name, exit_code=exit_code, stdout=stdout_text, stderr=stderr_text,
                        events=events)
        if outcome.rate_limit is not None or outcome.infra_error or stopped:
            return outcome
        if outcome.api_error_status in (401, 403) or (error or {}).get("name") == "ProviderAuthError":
            outcome.infra_error = (f"OpenCode authentication failed ({outcome.api_error_status or 'auth'}): "
                                   f"{message[:300]}. Check the API key in {cli_base.key_env(SPEC, ctx.options)}")
        elif error is not None:
            outcome.infra_error = f"OpenCode stopped on an error ({error.get('name')}): {message[:500]}"
        elif exit_code != 0:
            detail = cli_base.last_line(stderr_text) or "no output"
            outcome.infra_error = f"opencode exited with code {exit_code}: {detail}"
        return outcome
