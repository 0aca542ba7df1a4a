"""The `claude-code` agent: drives the Claude Code CLI once, non-interactively, in the run's worktree.

    claude --print --output-format json --max-turns N --dangerously-skip-permissions
           [--model M] [thinking flags] [--tools ...] [--disallowedTools ...] [--system-prompt ""]
           [subtest.agent_args...]            (the prompt goes in on stdin)

Everything below was checked against the pinned CLI (Makefile CLAUDE_CODE_VERSION, 2.1.330) with the
fake API in tests/support/fake_anthropic.py; the e2e tests re-check the parts we rely on.

Flags (`claude --help`, plus hidden flags found in the binary):
  * `--tools A,B` is what restricts the tool set the model is offered. `--allowedTools` only adds
    permission rules: with --dangerously-skip-permissions everything is allowed anyway, and all
    default tools are still offered. So `tools.enabled` -> `--tools` (`[]` -> `--tools ""`, no tools).
  * `--disallowedTools A,B` removes tools from the offered set (a pattern like `Bash(rm *)` only
    denies matching calls). Both options are variadic, so each list is passed as ONE comma-joined
    value to keep them from swallowing the arguments that follow.
  * `--system-prompt ""` replaces the default system prompt; the CLI still sends its one-line
    identity ("You are a Claude agent, built on Anthropic's Claude Agent SDK.") and an environment
    message (cwd, platform). That is as close to "no system prompt" as the CLI goes.
  * `--max-turns` exists but is hidden from --help; at the limit the result has
    subtype "error_max_turns", is_error true, exit code 1.
  * --dangerously-skip-permissions is refused as root ("cannot be used with root/sudo privileges")
    unless IS_SANDBOX=1 is set, so we set it when running as root.

Thinking (ctx.thinking). This CLI has two mechanisms and models honour one or the other:
  * a thinking budget (`--max-thinking-tokens N`, hidden and marked deprecated, same effect as the
    MAX_THINKING_TOKENS env var, which wins over the flag): budget models (sonnet-4-5, haiku-4-5,
    opus-4-5) send `thinking: {type: enabled, budget_tokens: N}`; 0 sends `{type: disabled}`.
    Their CLI default is thinking ON with a 31999 budget.
  * `--effort low|medium|high|xhigh|max` -> `output_config.effort` on models that support it
    (opus-4-5 clamps max to high); silently not sent for sonnet-4-5/haiku-4-5.
  The claude-opus-5-5 default model always sends adaptive thinking: neither 0 nor `--thinking
  disabled` turns it off. So we pass both:
        None       -> --max-thinking-tokens 0                      (thinking off where possible)
        Low        -> --max-thinking-tokens 4000  --effort low
        High       -> --max-thinking-tokens 10000 --effort high
        UltraThink -> --max-thinking-tokens 31999 --effort max
  The budgets are the old "think" / "think hard" / "ultrathink" keyword budgets. We use the flag
  rather than the env var so the level stays visible in command.json (an env var whose name
  contains TOKEN is redacted there). We do not add prompt keywords: the prompt stays byte-identical
  across thinking levels. A subtest can still override with env MAX_THINKING_TOKENS.

Retries and rate limits. On 429 the CLI retries by itself, waiting max(retry-after, its exponential
backoff): with `retry-after: 3` and no limit it was still retrying after 90 s (8 attempts). It
honours CLAUDE_CODE_MAX_RETRIES exactly (0 -> 1 request, 2 -> 3 requests ~3.5 s apart; the binary
defaults to 10 and clamps values above 15), and a large retry-after is waited in full (40 s seen),
so every retry can cost retry-after seconds: the run timeout is the backstop. It also retries 401s
with backoff (without a limit an auth failure hung for minutes). After the last retry it
exits 1 with a JSON result: is_error true, api_error_status 429, api_error_type "rate_limit_error",
result "API Error: Request rejected (429) · <message>", empty stderr; the retry-after value itself
is not in the output. A 401 gives api_error_status 401, api_error_type "authentication_error",
result "Invalid API key · Fix external API key"; no key at all gives "Not logged in · Please run
/login" (no status). An unreachable API gives api_error "connection_failed", no status. All of these
end with terminal_reason "api_error" and exit code 1; we report them as infra errors (the task was
never attempted or never finished), rate limits excepted.

Traffic. With CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 a print-mode run makes only
POST /v1/messages?beta=true requests (streaming); without it, also `HEAD /api/hello`.

Cost. The CLI computes total_cost_usd from usage and its price table (list prices per MTok):
sonnet-4-5 3 / 15 / 3.75 cache write / 0.30 cache read; haiku-4-5 1 / 5 / 1.25 / 0.10.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tierbench.agents.base import DEFAULT_RATE_LIMIT_WAIT, AgentContext
from tierbench.agents.command import outcome_from_process, read_log, write_command_record
from tierbench.agents.jsonresult import apply_result_fields, parse_result_json
from tierbench.process import ProcessRegistry, run_process
from tierbench.models import AgentOutcome, RateLimitInfo
from tierbench.ratelimit import AgentOutput, detect_agent

BIN_ENV = "TIERBENCH_CLAUDE_BIN"
DEFAULT_MAX_TURNS = 30
DEFAULT_MAX_RETRIES = 2
PREFLIGHT_TIMEOUT_SECONDS = 60.0
PREFLIGHT_PROMPT = "ping"
INSTALL_HINT = "install with `make claude-code` or pass --agent-opt bin=PATH"

# ctx.thinking (case-insensitive) -> (--max-thinking-tokens, --effort). See the module docstring.
THINKING_FLAGS: dict[str, tuple[int, str | None]] = {
    "none": (0, None),
    "low": (4000, "low"),
    "high": (10000, "high"),
    "ultrathink": (31999, "max"),
}

# Set for every run: no self-update mid-experiment, no telemetry/side traffic.
BASE_ENV_OVERRIDES: dict[str, str] = {
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

# Seen: "Invalid API key · Fix external API key" (401), "Not logged in · Please run /login" (no key).
_AUTH_MARKERS = ("authentication_error", "invalid api key", "invalid x-api-key", "oauth token has expired",
                 "not logged in", "please run /login")


def _int_option(options: dict[str, str], name: str, minimum: int) -> int | None:
    if name not in options:
        return None
    raw = str(options[name]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"claude-code option {name} must be an integer, got {options[name]!r}") from None
    if value < minimum:
        raise ValueError(f"claude-code option {name} must be at least {minimum}, got {value}")
    return value


def resolve_binary(options: dict[str, str], env: dict[str, str]) -> tuple[str, bool]:
    """(path or name of the claude binary, whether it exists and is executable).

    Option `bin`, else env TIERBENCH_CLAUDE_BIN, else `claude` on the PATH of `env`. A relative
    path is taken relative to tierbench's own working directory, not the workspace.
    """
    wanted = (options.get("bin") or env.get(BIN_ENV) or "claude").strip()
    if os.sep in wanted or wanted.startswith("~"):
        path = Path(wanted).expanduser().absolute()
        return str(path), path.is_file() and os.access(path, os.X_OK)
    found = shutil.which(wanted, path=env.get("PATH", os.defpath))
    return (found, True) if found else (wanted, False)


def thinking_args(thinking: str | None) -> list[str]:
    level = (thinking or "None").strip().lower()
    if level not in THINKING_FLAGS:
        raise ValueError(f"unknown thinking level {thinking!r}; use one of None, Low, High, UltraThink")
    budget, effort = THINKING_FLAGS[level]
    args = ["--max-thinking-tokens", str(budget)]
    if effort:
        args += ["--effort", effort]
    return args


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def build_command(ctx: AgentContext) -> tuple[list[str], dict[str, str]]:
    """The argv and the environment variables the adapter sets on top of ctx.base_env.

    Pure apart from looking the binary up on PATH; raises ValueError for bad options or thinking.
    """
    options = ctx.options
    max_turns = ctx.subtest.max_turns or _int_option(options, "max_turns", 1) or DEFAULT_MAX_TURNS
    max_retries = _int_option(options, "max_retries", 0)
    binary, _ = resolve_binary(options, ctx.base_env)
    argv = [binary, "--print", "--output-format", "json", "--max-turns", str(max_turns),
            "--dangerously-skip-permissions"]
    if ctx.model:
        argv += ["--model", ctx.model]
    argv += thinking_args(ctx.thinking)
    tools = ctx.subtest.tools
    if tools is not None:
        if tools.enabled is not None:
            argv += ["--tools", ",".join(tools.enabled)]
        if tools.disabled:
            argv += ["--disallowedTools", ",".join(tools.disabled)]
    if ctx.subtest.system_prompt_mode == "none":
        argv += ["--system-prompt", ""]
    argv += list(ctx.subtest.agent_args)

    env = dict(BASE_ENV_OVERRIDES)
    # Without a limit the CLI retries a 429 (and a 401) silently for minutes.
    env["CLAUDE_CODE_MAX_RETRIES"] = str(DEFAULT_MAX_RETRIES if max_retries is None else max_retries)
    if _is_root():
        env["IS_SANDBOX"] = "1"  # else the CLI refuses --dangerously-skip-permissions as root
    env.update(ctx.subtest.env)  # the subtest's own settings win
    return argv, env


def _auth_failure(outcome: AgentOutcome, result: dict | None, stderr_text: str) -> str | None:
    """The evidence of an authentication failure, or None."""
    failed = outcome.is_error or (outcome.exit_code not in (0, None))
    if not failed:
        return None
    if outcome.api_error_status in (401, 403):
        return outcome.result_text or f"API error {outcome.api_error_status}"
    texts = [str((result or {}).get("api_error_type") or ""), outcome.result_text, stderr_text]
    for text in texts:
        lowered = text.lower()
        if any(marker in lowered for marker in _AUTH_MARKERS):
            return outcome.result_text.strip() or _last_line(stderr_text) or lowered.strip()
    return None


def _api_failure(outcome: AgentOutcome, result: dict | None) -> str | None:
    """What kind of API error ended the run (it never reached or finished the task), or None.

    Every API failure seen ends with terminal_reason "api_error"; a connection failure has no
    status but `api_error: "connection_failed"` and result "API Error: Connection refused ...".
    """
    if result is None or not outcome.is_error:
        return None
    kind = result.get("api_error") or result.get("api_error_type")
    if result.get("terminal_reason") == "api_error" or kind or outcome.api_error_status is not None:
        parts = [str(p) for p in (outcome.api_error_status, kind) if p]
        return " ".join(parts) or "api_error"
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


class ClaudeCodeAgent:
    name = "claude-code"
    known_options = ("bin", "max_turns", "max_retries")

    def validate_options(self, options: dict[str, str]) -> None:
        unknown = sorted(set(options) - set(self.known_options))
        if unknown:
            raise ValueError(f"the claude-code agent does not know option(s) {unknown}; "
                             f"it takes: {', '.join(self.known_options)}")
        if "bin" in options and not str(options["bin"]).strip():
            raise ValueError("claude-code option bin must be a path or a command name, got an empty value")
        _int_option(options, "max_turns", 1)
        _int_option(options, "max_retries", 0)

    def run(self, ctx: AgentContext) -> AgentOutcome:
        try:
            self.validate_options(ctx.options)
            argv, overrides = build_command(ctx)
            prompt = ctx.prompt_file.read_text(encoding="utf-8")
        except (ValueError, OSError) as exc:  # run() reports, never raises
            return AgentOutcome(infra_error=str(exc))
        write_command_record(ctx.agent_dir, argv, ctx.workspace, overrides)
        binary, found = resolve_binary(ctx.options, ctx.base_env)
        if not found:
            return AgentOutcome(command=argv, infra_error=f"claude binary not found: {binary}; {INSTALL_HINT}")
        stdout_path, stderr_path = ctx.agent_dir / "stdout.log", ctx.agent_dir / "stderr.log"
        proc = run_process(argv, cwd=ctx.workspace, env={**ctx.base_env, **overrides},
                           timeout=ctx.timeout_seconds, stdout_path=stdout_path, stderr_path=stderr_path,
                           registry=ctx.registry, stdin_text=prompt)
        outcome = outcome_from_process(proc, argv)
        if proc.exit_code is None:
            if proc.start_error and not proc.cancelled:
                outcome.infra_error = f"claude binary could not start ({proc.start_error}): {binary}; {INSTALL_HINT}"
            return outcome
        stdout_text, stderr_text = read_log(stdout_path), read_log(stderr_path)
        result = parse_result_json(stdout_text)
        if result is not None:
            outcome = apply_result_fields(outcome, result)
        output = AgentOutput.from_streams(self.name, exit_code=proc.exit_code, stdout=stdout_text,
                                          stderr=stderr_text, result=result)
        detection = detect_agent(output, now=datetime.now(timezone.utc), default_wait=ctx.default_rate_limit_wait)
        if detection is not None:
            detection.apply(outcome)  # a rate limit, or a request no wait can let through
            return outcome
        if proc.cancelled:
            return outcome
        auth = _auth_failure(outcome, result, stderr_text)
        if auth is not None:
            outcome.infra_error = (f"Claude Code authentication failed: {auth}. Check ANTHROPIC_API_KEY "
                                   "(or log in with `claude` once) and try again")
        elif (api_error := _api_failure(outcome, result)) is not None:
            outcome.infra_error = f"Claude Code stopped on an API error ({api_error}): {outcome.result_text[:500]}"
        elif result is None and proc.exit_code != 0 and not proc.timed_out:
            detail = _last_line(stderr_text) or _last_line(stdout_text) or "no output"
            outcome.infra_error = f"claude exited with code {proc.exit_code} without a JSON result: {detail}"
        return outcome

    def preflight_command(self, options: dict[str, str], model: str | None,
                          env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """A probe that costs almost nothing: no tools, an empty system prompt, one turn, no retries."""
        binary, _ = resolve_binary(options, env)
        argv = [binary, "--print", "--output-format", "json", "--max-turns", "1", "--tools", "",
                "--system-prompt", "", "--no-session-persistence"]
        if model:
            argv += ["--model", model]
        argv.append(PREFLIGHT_PROMPT)
        overrides = {**BASE_ENV_OVERRIDES, "CLAUDE_CODE_MAX_RETRIES": "0"}
        return argv, overrides

    def preflight(self, options: dict[str, str], model: str | None, registry: ProcessRegistry,
                  work_dir: Path, *, default_wait: float = DEFAULT_RATE_LIMIT_WAIT,
                  base_env: dict[str, str] | None = None,
                  timeout: float = PREFLIGHT_TIMEOUT_SECONDS) -> RateLimitInfo | None:
        """Ask the API once; a RateLimitInfo (source "preflight") if it says we are rate limited.

        A probe that errors, times out or cannot start is not a rate limit: None.
        """
        env = dict(os.environ if base_env is None else base_env)
        try:
            self.validate_options(options)
        except ValueError:
            return None
        binary, found = resolve_binary(options, env)
        if not found:
            return None
        argv, overrides = self.preflight_command(options, model, env)
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        # A scratch cwd: the CLI reads CLAUDE.md and settings from its cwd, and must write nothing
        # into the experiment directory.
        with tempfile.TemporaryDirectory(prefix=".claude-preflight-", dir=work_dir) as scratch:
            scratch_dir = Path(scratch)
            proc = run_process(argv, cwd=scratch_dir, env={**env, **overrides}, timeout=timeout,
                               stdout_path=scratch_dir / "stdout.log", stderr_path=scratch_dir / "stderr.log",
                               registry=registry)
            if proc.exit_code is None or proc.timed_out or proc.cancelled:
                return None
            stdout_text = read_log(scratch_dir / "stdout.log")
            stderr_text = read_log(scratch_dir / "stderr.log")
        output = AgentOutput.from_streams(self.name, exit_code=proc.exit_code, stdout=stdout_text,
                                          stderr=stderr_text, result=parse_result_json(stdout_text))
        detection = detect_agent(output, now=datetime.now(timezone.utc), default_wait=default_wait)
        return detection.rate_limit("preflight") if detection is not None else None
