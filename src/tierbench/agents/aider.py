"""The `aider` agent: Aider, once, with `--message`, in the run's worktree.

    aider --model MODEL --message PROMPT --yes-always --no-stream --no-auto-commits ...
          [--openai-api-base URL] [--edit-format F] [--read HOME/CONVENTIONS.md]

Checked against the pinned version (features.PINNED_VERSIONS["aider"], 0.86.2, in its own venv)
with the fake Chat Completions API in tests/support/fake_chat.py:

  * Endpoint: --openai-api-base (--agent-opt base_url, else OPENAI_BASE_URL), the model given to
    litellm as "openai/MODEL". The key is OPENAI_API_KEY in the environment, never on argv.
  * No tool calls: it edits files from the reply text in its edit format (--agent-opt
    edit_format, e.g. "whole"; default: Aider's choice for the model). Files the reply names are
    added to the chat on its own (--yes-always).
  * Output: no JSON on stdout. `--analytics-log FILE` (with analytics otherwise disabled) writes
    JSONL events; each `message_send` has prompt_tokens, completion_tokens and cost (the server's
    numbers with --no-stream). Those events, then the chat history, become transcript.jsonl.
    Cost is Aider's (litellm's table, source "agent") when it knows the model.
  * **429 and 401 both exit 0.** It prints "litellm.RateLimitError: ..." then "Retrying in N
    seconds..." (0.125 s doubling to 32 s, about a minute, and no flag bounds it: the run timeout
    is the backstop), or "litellm.AuthenticationError: ...". So the adapter reads its stdout's
    `litellm.*Error` lines as the error channel, and a run with no `message_send` event is never
    a result. A run cut off by the timeout while it retries a 429 is rate limited, not failed.
  * Every start fetches litellm's price list from the internet; the run's home is seeded with the
    copy bundled in Aider's venv (~/.aider/caches/model_prices_and_context_window.json), and
    LITELLM_LOCAL_MODEL_COST_MAP=True.
  * Its chat and input histories go to the run's home; the tags cache it always creates in the
    repository root (.aider.tags.cache.v4) is removed after the run so it never enters diff.patch.
  * Without a git identity it writes user.name/email into the repository's config (the
    experiment's shared base repo); the run's home gets a ~/.gitconfig with one instead.
  * Tier features: the instruction file becomes a read-only conventions file (`--read`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tierbench.agents import cli_base
from tierbench.agents.base import AgentContext
from tierbench.agents.cli_base import CliSpec
from tierbench.agents.prices import settle_cost
from tierbench.models import AgentOutcome, TokenStats
from tierbench.store.atomic import atomic_write_text

SPEC = CliSpec(agent="aider", command="aider", tools_path="aider/bin/aider",
               install_hint="install with `make agents` or pass --agent-opt bin=PATH", key_env="OPENAI_API_KEY",
               default_max_retries=0)
FLAGS = ["--yes-always", "--no-check-update", "--analytics-disable", "--no-show-model-warnings", "--no-pretty",
         "--no-fancy-input", "--no-stream", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore",
         "--no-show-release-notes"]
TAGS_CACHE = ".aider.tags.cache.v4"
PRICE_CACHE = Path(".aider") / "caches" / "model_prices_and_context_window.json"
GITCONFIG = "[user]\n\tname = tierbench agent\n\temail = agent@tierbench.invalid\n"
_ERROR_LINE = re.compile(r"^litellm\.(\w+Error):.*$", re.MULTILINE)


def build_command(ctx: AgentContext, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    binary, _ = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
    argv = [binary]
    if (model := cli_base.litellm_model(ctx)) is not None:
        argv += ["--model", model]
    argv += [*FLAGS, "--analytics-log", str(home / "analytics.jsonl"),
             "--chat-history-file", str(home / "chat.history.md"),
             "--input-history-file", str(home / "input.history")]
    if (base_url := cli_base.litellm_base_url(ctx)) is not None:
        argv += ["--openai-api-base", base_url]
    if ctx.options.get("edit_format"):
        argv += ["--edit-format", ctx.options["edit_format"]]
    if cli_base.instructions(ctx, None) is not None:
        argv += ["--read", str(home / "CONVENTIONS.md")]
    argv += [*ctx.subtest.agent_args, "--message", prompt]
    env = {**cli_base.home_env(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIDER_CHECK_UPDATE": "false",
           "COLUMNS": "10000"}  # one error per line
    name = cli_base.key_env(SPEC, ctx.options)
    if name != "OPENAI_API_KEY":
        env["OPENAI_API_KEY"] = ctx.base_env.get(name, "")  # redacted in command.json by its name
    return argv, env


def seed_price_cache(binary: str, home: Path) -> None:
    """Copy litellm's bundled price list from Aider's venv into the home, so it fetches nothing."""
    venv = Path(binary).resolve().parent.parent
    for bundled in venv.glob("lib/python3*/site-packages/litellm/model_prices_and_context_window_backup.json"):
        (home / PRICE_CACHE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled, home / PRICE_CACHE)
        return


def parse_analytics(events: list[dict[str, Any]]) -> tuple[TokenStats, float, int]:
    """(tokens, cost, message_send count) from the analytics events."""
    tokens, cost, sends = TokenStats(), 0.0, 0
    for event in events:
        if event.get("event") != "message_send":
            continue
        props = cli_base.as_dict(event.get("properties"))
        sends += 1
        tokens = tokens + TokenStats(input_tokens=int(props.get("prompt_tokens") or 0),
                                     output_tokens=int(props.get("completion_tokens") or 0))
        cost += float(props.get("cost") or 0.0)
    return tokens, cost, sends


class AiderAgent(cli_base.CliAgent):
    name = "aider"
    spec = SPEC

    extra_options = ("edit_format",)

    def validate_options(self, options: dict[str, str]) -> None:
        super().validate_options(options)
        if "max_retries" in options:
            raise ValueError("aider has no retry setting (it retries for about a minute); drop max_retries. "
                             "The run timeout bounds it")

    def run(self, ctx: AgentContext) -> AgentOutcome:
        prompt = self.prompt_or_failure(ctx)
        if isinstance(prompt, AgentOutcome):
            return prompt
        tags_existed = (ctx.workspace / TAGS_CACHE).exists()
        with cli_base.agent_home(ctx) as home:
            if (text := cli_base.instructions(ctx, None)) is not None:
                atomic_write_text(home / "CONVENTIONS.md", text)
            # Without a git identity Aider writes a placeholder one into the repository's config,
            # which is the experiment's shared base repo (read-only in the sandbox).
            if not (home / ".gitconfig").exists():
                atomic_write_text(home / ".gitconfig", GITCONFIG)
            argv, overrides = build_command(ctx, home, prompt)
            binary, found = cli_base.resolve_binary(SPEC, ctx.options, ctx.base_env)
            if not found:
                return cli_base.not_found(SPEC, binary, argv)
            seed_price_cache(binary, home)
            proc, outcome = cli_base.start(ctx, SPEC, argv, overrides)
            events = cli_base.jsonl_events(cli_base.read_text(home / "analytics.jsonl"))
            history = cli_base.read_text(home / "chat.history.md")
        if not tags_existed:
            shutil.rmtree(ctx.workspace / TAGS_CACHE, ignore_errors=True)
        if proc.exit_code is None:
            return outcome
        outcome.usage = cli_base.write_transcript(ctx, self.name, [*events, {"event": "chat_history", "text": history}])
        return self._classify(ctx, outcome, proc.exit_code, proc.cancelled or proc.timed_out, events)

    def _classify(self, ctx: AgentContext, outcome: AgentOutcome, exit_code: int, stopped: bool,
                  events: list[dict[str, Any]]) -> AgentOutcome:
        stdout_text, stderr_text = cli_base.logs(ctx)
        tokens, cost, sends = parse_analytics(events)
        outcome.token_stats, outcome.num_turns = tokens, sends or None
        settle_cost(outcome, ctx.model, ctx.options, agent_cost=cost)
        errors = [match.group(0).strip() for match in _ERROR_LINE.finditer(stdout_text)]
        outcome.is_error = exit_code != 0 or sends == 0
        outcome.result_text = errors[-1] if errors and sends == 0 else cli_base.last_line(stdout_text)
        # stdout's litellm error lines are its error channel; a message_send event means it finished
        cli_base.detect(ctx, outcome, self.name, exit_code=exit_code, stdout=stdout_text, stderr=stderr_text,
                        events=events)
        if outcome.rate_limit is not None or outcome.infra_error or stopped:
            return outcome
        kinds = [re.match(r"litellm\.(\w+)", line).group(1) for line in errors]  # type: ignore[union-attr]
        if any(kind in ("AuthenticationError", "PermissionDeniedError") for kind in kinds):
            outcome.infra_error = (f"Aider authentication failed: {errors[-1][:300]}. Check the API key in "
                                   f"{cli_base.key_env(SPEC, ctx.options)}")
        elif sends == 0:
            detail = errors[-1] if errors else (cli_base.last_line(stderr_text) or cli_base.last_line(stdout_text))
            outcome.infra_error = f"aider sent no message to the model (exit {exit_code}): {detail or 'no output'}"
        elif exit_code != 0:
            outcome.infra_error = f"aider exited with code {exit_code}: {cli_base.last_line(stderr_text) or 'no output'}"
        return outcome
