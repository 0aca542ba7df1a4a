"""The `claude-code` agent: drives the Claude Code CLI once, non-interactively, in the run's worktree.

    claude --print --output-format stream-json --verbose --max-turns N --dangerously-skip-permissions
           --setting-sources project,local --strict-mcp-config [--mcp-config <worktree>/.mcp.json]
           [--mcp-config agent/mcp.json]      (the subtest's MCP servers)
           --settings '{"claudeMdExcludes": [CLAUDE.md files above the worktree]}'
           [--model M] [thinking flags] [--tools ...] [--disallowedTools ...] [--system-prompt ""]
           [subtest.agent_args...]            (the prompt goes in on stdin)

    env: HOME=<private home>  CLAUDE_CONFIG_DIR=<private home>/.claude  (see run/private.py)

Isolation (checked with CLI 2.1.330 and a fake API that logs every request body; the e2e leak test
re-checks it): with HOME and CLAUDE_CONFIG_DIR pointing at the run's private home, nothing of the
user's ~/.claude (CLAUDE.md, skills, agents, settings and their hooks, ~/.claude.json MCP servers,
memory) reaches the model. Two things still came from directories *above* the worktree: the CLI
walks up from the cwd reading every CLAUDE.md (stopped by the `claudeMdExcludes` setting, passed
with --settings, listing each ancestor's CLAUDE.md, CLAUDE.local.md and .claude/CLAUDE.md), and
it starts the MCP servers of every .mcp.json above (stopped by --strict-mcp-config; the worktree's
own .mcp.json is then passed explicitly with --mcp-config). Skills and agents in .claude/ of a
parent directory were not loaded. --setting-sources project,local keeps user-level settings out
even if a config dir were shared. The worktree's own CLAUDE.md, .claude/skills, .claude/agents
and .claude/settings.json (the subtest's files) do reach the agent.

Transcript: `--output-format stream-json --verbose` prints one JSON event per line (system init,
assistant messages with tool_use blocks, user messages with tool_result blocks, and a final
`result` event that carries usage, cost and errors like the old single JSON result). stdout.log is
that stream; it is also kept (hard-linked) as agent/transcript.jsonl and counted into ToolUsage by
tierbench.transcript.

Credentials: API keys come through the environment (run/private.py carries *_API_KEY,
*_AUTH_TOKEN, ...). Without one, a subscription login's `.credentials.json` (from the user's
CLAUDE_CONFIG_DIR or ~/.claude) is the one file copied into the private home; the run record
names it, and the private space is removed when the attempt ends.

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
  * MCP: `--strict-mcp-config` makes the CLI use only the servers of `--mcp-config` files: without
    it, servers in ~/.claude.json and any .mcp.json were offered too (checked: their tools appear
    as mcp__<server>__<tool> in the request). The subtest's servers are written to agent/mcp.json
    and passed as a second `--mcp-config` (two flags: both files load). `${VAR}` in the file is
    expanded by the CLI when it starts the server (checked), so secrets stay in the environment
    and the file keeps only names; run/attempt.py carries the named variables into the agent's env.
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

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tierbench.agents.base import DEFAULT_RATE_LIMIT_WAIT, AgentContext
from tierbench.agents.command import outcome_from_process, read_log, write_command_record
from tierbench.agents.jsonresult import apply_result_fields, parse_result_json
from tierbench.agents.mcp import referenced_env, write_mcp_config
from tierbench.process import ProcessRegistry, run_process
from tierbench.models import AgentOutcome, RateLimitInfo
from tierbench.transcript import TRANSCRIPT_NAME, count_usage, parse_events, read_events
from tierbench.ratelimit import AgentOutput, detect_agent

BIN_ENV = "TIERBENCH_CLAUDE_BIN"
CREDENTIALS_FILE = ".credentials.json"
# Any of these in the environment means the CLI authenticates without a login file.
_KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
# Instruction files the CLI reads from each directory above the cwd.
_ANCESTOR_MEMORY = ("CLAUDE.md", "CLAUDE.local.md", ".claude/CLAUDE.md", ".claude/rules/**")
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


def isolation_args(workspace: Path) -> list[str]:
    """Flags that keep everything but the worktree's own configuration away from the CLI."""
    workspace = Path(workspace).absolute()
    excludes = [str(parent / name) for parent in workspace.parents for name in _ANCESTOR_MEMORY]
    args = ["--setting-sources", "project,local", "--strict-mcp-config"]
    if (workspace / ".mcp.json").is_file():
        args += ["--mcp-config", str(workspace / ".mcp.json")]
    return args + ["--settings", json.dumps({"claudeMdExcludes": excludes})]


def build_command(ctx: AgentContext) -> tuple[list[str], dict[str, str]]:
    """The argv and the environment variables the adapter sets on top of ctx.base_env.

    Pure apart from looking the binary up on PATH; raises ValueError for bad options or thinking.
    """
    options = ctx.options
    max_turns = ctx.subtest.max_turns or _int_option(options, "max_turns", 1) or DEFAULT_MAX_TURNS
    max_retries = _int_option(options, "max_retries", 0)
    binary, _ = resolve_binary(options, ctx.base_env)
    argv = [binary, "--print", "--output-format", "stream-json", "--verbose", "--max-turns", str(max_turns),
            "--dangerously-skip-permissions", *isolation_args(ctx.workspace)]
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
    if ctx.subtest.mcp_servers:  # --strict-mcp-config (isolation_args): these and the worktree's own only
        argv += ["--mcp-config", str(mcp_config_path(ctx))]
    argv += list(ctx.subtest.agent_args)

    env = dict(BASE_ENV_OVERRIDES)
    if ctx.home is not None:
        env["HOME"] = str(ctx.home)
        env["CLAUDE_CONFIG_DIR"] = str(ctx.home / ".claude")
    # Without a limit the CLI retries a 429 (and a 401) silently for minutes.
    env["CLAUDE_CODE_MAX_RETRIES"] = str(DEFAULT_MAX_RETRIES if max_retries is None else max_retries)
    if _is_root():
        env["IS_SANDBOX"] = "1"  # else the CLI refuses --dangerously-skip-permissions as root
    env.update(ctx.subtest.env)  # the subtest's own settings win
    return argv, env


def mcp_config_path(ctx: AgentContext) -> Path:
    return ctx.agent_dir / "mcp.json"


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


def carry_credentials(home: Path | None, env: dict[str, str], host_env: dict[str, str] | None = None) -> list[str]:
    """Copy a subscription login into the private `home` when `env` (the agent's) holds no key.

    Returns the names of the files carried (relative to the home), never their contents."""
    if home is None or any(env.get(name) for name in _KEY_VARIABLES):
        return []
    host = dict(os.environ if host_env is None else host_env)
    source_dir = Path(host["CLAUDE_CONFIG_DIR"]) if host.get("CLAUDE_CONFIG_DIR") else \
        Path(host.get("HOME") or Path.home()) / ".claude"
    source = source_dir / CREDENTIALS_FILE
    if not source.is_file():
        return []
    target = home / ".claude" / CREDENTIALS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(source.read_bytes())
    return [f".claude/{CREDENTIALS_FILE}"]


def keep_transcript(stdout_path: Path, transcript_path: Path) -> None:
    """The raw event stream as agent/transcript.jsonl: a hard link to stdout.log (no second copy)."""
    transcript_path.unlink(missing_ok=True)
    if not stdout_path.exists():
        return
    try:
        os.link(stdout_path, transcript_path)
    except OSError:
        shutil.copyfile(stdout_path, transcript_path)


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
        mcp_env: dict[str, str] = {}
        if ctx.subtest.mcp_servers:
            # Only variable names are written; their values go to the CLI's environment, never a file.
            mcp_env, missing = referenced_env(ctx.subtest.mcp_servers, {**ctx.base_env, **overrides})
            if missing:
                return AgentOutcome(command=argv, infra_error="; ".join(missing) + ", which is not set. "
                                    "Export it where tierbench runs and run the same command again")
            write_mcp_config(mcp_config_path(ctx), ctx.subtest.mcp_servers)
        carried = carry_credentials(ctx.home, {**ctx.base_env, **overrides})
        stdout_path, stderr_path = ctx.agent_dir / "stdout.log", ctx.agent_dir / "stderr.log"
        proc = run_process(argv, cwd=ctx.workspace, env={**ctx.base_env, **mcp_env, **overrides},
                           timeout=ctx.timeout_seconds, stdout_path=stdout_path, stderr_path=stderr_path,
                           registry=ctx.registry, stdin_text=prompt, sandbox=ctx.sandbox)
        outcome = outcome_from_process(proc, argv)
        outcome.carried_files = carried
        if proc.exit_code is None:
            if proc.start_error and not proc.cancelled:
                outcome.infra_error = f"claude binary could not start ({proc.start_error}): {binary}; {INSTALL_HINT}"
            return outcome
        stdout_text, stderr_text = read_log(stdout_path), read_log(stderr_path)
        keep_transcript(stdout_path, ctx.agent_dir / TRANSCRIPT_NAME)
        result = parse_result_json(stdout_text)
        if result is not None:
            outcome = apply_result_fields(outcome, result)
        outcome.usage = count_usage(parse_events(read_events(stdout_path), "claude-code"))
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
                "--system-prompt", "", "--no-session-persistence", "--setting-sources", "project,local",
                "--strict-mcp-config"]
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
        # A scratch cwd and home: the CLI reads CLAUDE.md and settings from its cwd and home, runs the
        # user's hooks, and must write nothing into the experiment directory. The scratch directory
        # (with any credentials carried into it) is removed afterwards.
        with tempfile.TemporaryDirectory(prefix=".claude-preflight-", dir=work_dir) as scratch:
            scratch_dir = Path(scratch)
            home = scratch_dir / "home"
            home.mkdir(mode=0o700)
            excludes = [str(parent / name) for parent in scratch_dir.parents for name in _ANCESTOR_MEMORY]
            at = argv.index("--strict-mcp-config") + 1
            argv[at:at] = ["--settings", json.dumps({"claudeMdExcludes": excludes})]
            overrides = {**overrides, "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude")}
            carry_credentials(home, {**env, **overrides}, env)
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
