"""The `mini-swe-agent` agent: mini-swe-agent's `mini` CLI, once, in yolo mode, in the run's worktree.

    mini -m MODEL -c mini.yaml -c HOME/tierbench.yaml -y --exit-immediately -t PROMPT -o HOME/traj.json

Checked against the pinned version (features.PINNED_VERSIONS["mini-swe-agent"], 2.4.6, installed
with `mcp` beside it in its own venv) with the fake Chat Completions API in tests/support/fake_chat.py:

  * Endpoint: `model.model_kwargs.api_base` (--agent-opt base_url, else OPENAI_BASE_URL); the model
    is then given to litellm as "openai/MODEL". The key is litellm's OPENAI_API_KEY (--agent-opt
    key_env copies another variable into it).
  * Protocol: Chat Completions, non-streaming, one `bash` tool. It finishes when the model runs
    `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`.
  * Env: MSWEA_CONFIGURED=true (else a set-up wizard), MSWEA_SILENT_STARTUP=1,
    MSWEA_COST_TRACKING=ignore_errors (an unknown model costs 0 instead of crashing),
    LITELLM_LOCAL_MODEL_COST_MAP=True (no price download).
  * Output: the trajectory file: info.exit_status (Submitted, LimitsExceeded, RateLimitError,
    AuthenticationError, ...), info.model_stats {instance_cost, api_calls}, and messages whose
    assistant entries carry the raw response with usage (prompt_tokens with cached included,
    completion_tokens with reasoning included). It becomes agent/transcript.jsonl, one message a
    line. Cost is litellm's (source "agent") when it knows the model, else the price table.
  * Retries: MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT bounds its own (--agent-opt max_retries + 1
    attempts, default 2), and model_kwargs.max_retries 0 stops the OpenAI client's hidden ones.
    A 401 is not retried. Exit 1 on any failure.
  * Tier features: the instruction file is appended to agent.system_template; max_turns ->
    agent.step_limit. The cost limit is off (agent.cost_limit 0): tierbench's budget applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tierbench.agents import cli_base
from tierbench.agents.base import AgentContext
from tierbench.agents.cli_base import CliSpec
from tierbench.agents.prices import settle_cost
from tierbench.models import AgentOutcome, TokenStats
from tierbench.store.atomic import atomic_write_text

SPEC = CliSpec(agent="mini-swe-agent", command="mini", tools_path="mini-swe-agent/bin/mini",
               install_hint="install with `make agents` or pass --agent-opt bin=PATH", key_env="OPENAI_API_KEY",
               default_max_retries=1)
# mini.yaml's system template in the pinned version; the subtest's instructions are appended to it.
DEFAULT_SYSTEM_TEMPLATE = "You are a helpful assistant that can interact with a computer.\n"
ENV = {"MSWEA_CONFIGURED": "true", "MSWEA_SILENT_STARTUP": "1", "MSWEA_COST_TRACKING": "ignore_errors",
       "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
_RESULT_STATUSES = {"Submitted", "LimitsExceeded"}  # the agent finished or ran out of steps: a result


def config(ctx: AgentContext) -> dict[str, Any]:
    agent: dict[str, Any] = {"mode": "yolo", "cost_limit": 0, "step_limit": ctx.subtest.max_turns or 0}
    if (text := cli_base.instructions(ctx, None)) is not None:
        agent["system_template"] = DEFAULT_SYSTEM_TEMPLATE + "\n" + text
    kwargs: dict[str, Any] = {"max_retries": 0}
    if (base_url := cli_base.litellm_base_url(ctx)) is not None:
        kwargs["api_base"] = base_url
    return {"agent": agent, "model": {"model_kwargs": kwargs}}


def build_command(ctx: AgentContext, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    binary, _ = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
    argv = [binary]
    if (model := cli_base.litellm_model(ctx)) is not None:
        argv += ["-m", model]
    argv += ["-c", "mini.yaml", "-c", str(home / "tierbench.yaml"), "-y", "--exit-immediately",
             *ctx.subtest.agent_args, "-o", str(home / "traj.json"), "-t", prompt]
    env = {**cli_base.home_env(home), **ENV,
           "MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT": str(cli_base.max_retries(SPEC, ctx.options) + 1)}
    name = cli_base.key_env(SPEC, ctx.options)
    if name != "OPENAI_API_KEY":
        env["OPENAI_API_KEY"] = ctx.base_env.get(name, "")  # redacted in command.json by its name
    return argv, env


def parse_trajectory(traj: dict[str, Any]) -> tuple[TokenStats, int, float, str, str]:
    """(tokens, API calls, the agent's cost, exit status, exit message) from a trajectory."""
    tokens = TokenStats()
    for message in traj.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        response = (message.get("extra") or {}).get("response") or {}
        u = cli_base.as_dict(response.get("usage"))
        cached = int(((u.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        reasoning = int(((u.get("completion_tokens_details") or {}).get("reasoning_tokens")) or 0)
        tokens = tokens + TokenStats(input_tokens=max(int(u.get("prompt_tokens") or 0) - cached, 0),
                                     cache_read_tokens=cached, output_tokens=int(u.get("completion_tokens") or 0),
                                     reasoning_tokens=reasoning)
    info = cli_base.as_dict(traj.get("info"))
    stats = cli_base.as_dict(info.get("model_stats"))
    calls = int(stats.get("api_calls") or 0)
    exit_message = next((str(m.get("content") or "") for m in reversed(traj.get("messages") or [])
                         if isinstance(m, dict) and m.get("role") == "exit"), "")
    return tokens, calls, float(stats.get("instance_cost") or 0.0), str(info.get("exit_status") or ""), exit_message


class MiniSweAgent(cli_base.CliAgent):
    name = "mini-swe-agent"
    spec = SPEC

    def run(self, ctx: AgentContext) -> AgentOutcome:
        prompt = self.prompt_or_failure(ctx)
        if isinstance(prompt, AgentOutcome):
            return prompt
        with cli_base.agent_home(ctx) as home:
            atomic_write_text(home / "tierbench.yaml", yaml.safe_dump(config(ctx), sort_keys=False))
            argv, overrides = build_command(ctx, home, prompt)
            binary, found = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
            if not found:
                return cli_base.not_found(SPEC, binary, argv)
            proc, outcome = cli_base.start(ctx, SPEC, argv, overrides)
            try:
                traj = json.loads((home / "traj.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                traj = None
        if proc.exit_code is None:
            return outcome
        return self._classify(ctx, outcome, proc.exit_code, proc.cancelled or proc.timed_out,
                              traj if isinstance(traj, dict) else None)

    def _classify(self, ctx: AgentContext, outcome: AgentOutcome, exit_code: int, stopped: bool,
                  traj: dict[str, Any] | None) -> AgentOutcome:
        stdout_text, stderr_text = cli_base.logs(ctx)
        status, message = "", ""
        if traj is not None:
            outcome.usage = cli_base.write_transcript(ctx, self.name,
                                                      [m for m in traj.get("messages") or [] if isinstance(m, dict)])
            tokens, calls, cost, status, message = parse_trajectory(traj)
            outcome.token_stats, outcome.num_turns = tokens, calls or None
            settle_cost(outcome, ctx.model, ctx.options, agent_cost=cost)
        outcome.result_text = message
        outcome.is_error = exit_code != 0 or (bool(status) and status not in _RESULT_STATUSES)
        cli_base.detect(ctx, outcome, self.name, exit_code=exit_code, stdout=stdout_text, stderr=stderr_text,
                        result=traj)
        if outcome.rate_limit is not None or outcome.infra_error or stopped:
            return outcome
        if status == "AuthenticationError" or "AuthenticationError" in stderr_text:
            outcome.infra_error = (f"mini-swe-agent authentication failed: {message[:300] or 'AuthenticationError'}. "
                                   f"Check the API key in {cli_base.key_env(SPEC, ctx.options)}")
        elif status and status not in _RESULT_STATUSES:
            outcome.infra_error = f"mini-swe-agent stopped on {status}: {message[:500]}"
        elif traj is None and exit_code != 0:
            detail = cli_base.last_line(stderr_text) or cli_base.last_line(stdout_text) or "no output"
            outcome.infra_error = f"mini exited with code {exit_code} without a trajectory: {detail}"
        return outcome
