"""ClaudeCodeAgent: argv/env construction from subtests, command.json redaction, and result handling
with a stand-in `claude` (a tiny Python script: no network, no real CLI needed)."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from tierbench.agents import claude_code
from tierbench.agents.base import AgentContext
from tierbench.agents.claude_code import ClaudeCodeAgent, build_command, resolve_binary, thinking_args
from tierbench.process import ProcessRegistry
from tierbench.models import RateLimitKind, RunKey
from tierbench.spec import Subtest, ToolsSpec

FAKE_CLAUDE = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, sys, time
    record = os.environ.get("FAKE_CLAUDE_RECORD")
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if record:
        with open(record, "w") as fh:
            json.dump({{"argv": sys.argv[1:], "stdin": stdin, "cwd": os.getcwd(),
                       "env": {{k: v for k, v in os.environ.items()
                               if k.startswith(("CLAUDE", "DISABLE", "IS_", "X_"))}}}}, fh)
    time.sleep(float(os.environ.get("FAKE_CLAUDE_SLEEP", "0")))
    sys.stdout.write(os.environ.get("FAKE_CLAUDE_STDOUT", ""))
    sys.stderr.write(os.environ.get("FAKE_CLAUDE_STDERR", ""))
    sys.exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "0")))
    """)


def _result(**fields: object) -> str:
    base = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2, "result": "done",
            "total_cost_usd": 0.01086, "api_error_status": None,
            "usage": {"input_tokens": 3000, "output_tokens": 60, "cache_creation_input_tokens": 200,
                      "cache_read_input_tokens": 700}}
    base.update(fields)
    return json.dumps(base)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "claude"
    path.parent.mkdir()
    path.write_text(FAKE_CLAUDE)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_ctx(tmp_path: Path, subtest: Subtest | None = None, *, options: dict[str, str] | None = None,
             model: str | None = None, thinking: str = "None", env: dict[str, str] | None = None,
             timeout: float = 30.0, prompt: str = "Fix the bug.\n") -> AgentContext:
    workspace = tmp_path / "ws"
    agent_dir = tmp_path / "run" / "agent"
    workspace.mkdir(exist_ok=True)
    agent_dir.mkdir(parents=True, exist_ok=True)
    prompt_file = agent_dir / "prompt.md"
    prompt_file.write_text(prompt)
    return AgentContext(
        key=RunKey(tier="T0", subtest="00", run=1), workspace=workspace, agent_dir=agent_dir,
        prompt_file=prompt_file, subtest=subtest or Subtest(id="00", tier="T0", name="empty"),
        test_dir=tmp_path, model=model, timeout_seconds=timeout, thinking=thinking,
        options=dict(options or {}), seed=0, registry=ProcessRegistry(),
        base_env={"PATH": os.environ.get("PATH", os.defpath), **(env or {})},
    )


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# ------------------------------------------------------------------------------------ argv


def test_default_command(tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claude_code, "_is_root", lambda: False)
    argv, env = build_command(make_ctx(tmp_path, options={"bin": str(fake_bin)}))
    assert argv[0] == str(fake_bin)
    assert argv[1:8] == ["--print", "--output-format", "stream-json", "--verbose", "--max-turns", "30",
                         "--dangerously-skip-permissions"]
    # Only the worktree's own configuration: no user settings, no MCP servers from above, no CLAUDE.md above.
    assert _flag(argv, "--setting-sources") == "project,local" and "--strict-mcp-config" in argv
    excludes = json.loads(_flag(argv, "--settings"))["claudeMdExcludes"]
    workspace = make_ctx(tmp_path).workspace.absolute()
    assert str(workspace.parent / "CLAUDE.md") in excludes and "/CLAUDE.md" in excludes
    assert not any(entry.startswith(str(workspace) + "/") for entry in excludes)
    assert "--model" not in argv
    assert _flag(argv, "--max-thinking-tokens") == "0" and "--effort" not in argv
    for absent in ("--tools", "--disallowedTools", "--allowedTools", "--system-prompt"):
        assert absent not in argv
    assert env == {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                   "CLAUDE_CODE_MAX_RETRIES": "2"}


def test_root_sets_is_sandbox(tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claude_code, "_is_root", lambda: True)
    _, env = build_command(make_ctx(tmp_path, options={"bin": str(fake_bin)}))
    assert env["IS_SANDBOX"] == "1"


def test_model_turns_retries(tmp_path: Path, fake_bin: Path) -> None:
    ctx = make_ctx(tmp_path, model="claude-sonnet-4-5", options={"bin": str(fake_bin), "max_turns": "7",
                                                                  "max_retries": "0"})
    argv, env = build_command(ctx)
    assert _flag(argv, "--model") == "claude-sonnet-4-5"
    assert _flag(argv, "--max-turns") == "7"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    # The subtest's max_turns beats the option.
    ctx.subtest = Subtest(id="01", tier="T0", max_turns=3)
    assert _flag(build_command(ctx)[0], "--max-turns") == "3"


@pytest.mark.parametrize(("level", "budget", "effort"), [
    ("None", "0", None), ("Low", "4000", "low"), ("High", "10000", "high"), ("UltraThink", "31999", "max"),
    ("ultrathink", "31999", "max"), ("", "0", None),
])
def test_thinking_levels(tmp_path: Path, fake_bin: Path, level: str, budget: str, effort: str | None) -> None:
    argv, env = build_command(make_ctx(tmp_path, options={"bin": str(fake_bin)}, thinking=level))
    assert _flag(argv, "--max-thinking-tokens") == budget
    assert _flag(argv, "--effort") == effort
    assert "MAX_THINKING_TOKENS" not in env  # a flag, so command.json keeps it (env names with TOKEN are redacted)


def test_unknown_thinking_is_an_error(tmp_path: Path, fake_bin: Path) -> None:
    with pytest.raises(ValueError, match="thinking level"):
        thinking_args("Medium")
    outcome = ClaudeCodeAgent().run(make_ctx(tmp_path, options={"bin": str(fake_bin)}, thinking="Medium"))
    assert outcome.infra_error and "thinking level" in outcome.infra_error


def test_tools_system_prompt_and_agent_args(tmp_path: Path, fake_bin: Path) -> None:
    sub = Subtest(id="02", tier="T2",
                  tools=ToolsSpec(enabled=["Bash", "Read", "Edit"], disabled=["Bash(rm *)", "Write"]),
                  system_prompt_mode="none", agent_args=["--append-system-prompt", "Be brief.", "--verbose"])
    argv, _ = build_command(make_ctx(tmp_path, sub, options={"bin": str(fake_bin)}))
    # --tools restricts the offered tool set; --allowedTools would only add permission rules.
    assert _flag(argv, "--tools") == "Bash,Read,Edit"
    assert "--allowedTools" not in argv
    assert _flag(argv, "--disallowedTools") == "Bash(rm *),Write"
    assert _flag(argv, "--system-prompt") == ""
    assert argv[-3:] == ["--append-system-prompt", "Be brief.", "--verbose"]  # verbatim, last


def test_empty_enabled_tools_means_no_tools(tmp_path: Path, fake_bin: Path) -> None:
    sub = Subtest(id="03", tier="T0", tools=ToolsSpec(enabled=[]), system_prompt_mode="default")
    argv, _ = build_command(make_ctx(tmp_path, sub, options={"bin": str(fake_bin)}))
    assert _flag(argv, "--tools") == ""
    assert "--disallowedTools" not in argv and "--system-prompt" not in argv


def test_subtest_env_wins(tmp_path: Path, fake_bin: Path) -> None:
    sub = Subtest(id="04", tier="T0", env={"CLAUDE_CODE_MAX_RETRIES": "5", "MAX_THINKING_TOKENS": "2048", "FOO": "bar"})
    _, env = build_command(make_ctx(tmp_path, sub, options={"bin": str(fake_bin)}))
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "5" and env["MAX_THINKING_TOKENS"] == "2048" and env["FOO"] == "bar"


# ------------------------------------------------------------------------------------ binary


def test_binary_resolution_order(tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other" / "claude"
    other.parent.mkdir()
    other.write_text(FAKE_CLAUDE)
    other.chmod(0o755)
    path_env = {"PATH": str(fake_bin.parent)}
    assert resolve_binary({}, path_env) == (str(fake_bin), True)  # claude on PATH
    assert resolve_binary({}, {**path_env, "TIERBENCH_CLAUDE_BIN": str(other)}) == (str(other), True)
    both = {**path_env, "TIERBENCH_CLAUDE_BIN": str(other)}
    assert resolve_binary({"bin": str(fake_bin)}, both) == (str(fake_bin), True)
    monkeypatch.chdir(tmp_path)  # a relative bin is relative to tierbench's cwd, not the workspace
    assert resolve_binary({"bin": "other/claude"}, {}) == (str(other), True)
    assert resolve_binary({}, {"PATH": str(tmp_path / "nowhere")}) == ("claude", False)
    assert resolve_binary({"bin": str(tmp_path / "missing")}, {}) == (str(tmp_path / "missing"), False)


def test_missing_binary_is_infra_error(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, options={"bin": str(tmp_path / "no-such-claude")})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.exit_code is None
    assert outcome.infra_error is not None
    assert "claude binary not found" in outcome.infra_error and "make claude-code" in outcome.infra_error
    assert "--agent-opt bin=PATH" in outcome.infra_error
    ctx = make_ctx(tmp_path, env={"PATH": str(tmp_path / "empty")})
    assert "claude binary not found: claude" in (ClaudeCodeAgent().run(ctx).infra_error or "")


def test_validate_options() -> None:
    agent = ClaudeCodeAgent()
    agent.validate_options({})
    agent.validate_options({"bin": "/x/claude", "max_turns": "5", "max_retries": "0"})
    for bad, message in [({"turns": "5"}, "does not know"), ({"max_turns": "0"}, "at least 1"),
                         ({"max_turns": "many"}, "integer"), ({"max_retries": "-1"}, "at least 0"),
                         ({"bin": " "}, "bin")]:
        with pytest.raises(ValueError, match=message):
            agent.validate_options(bad)
    assert agent.name == "claude-code"


# ------------------------------------------------------------------------------------ command.json


def test_command_json_is_replayable_and_redacted(tmp_path: Path, fake_bin: Path) -> None:
    secrets = {"ANTHROPIC_API_KEY": "sk-ant-secret-1", "GITHUB_TOKEN": "ghp_secret2", "DB_PASSWORD": "hunter2-secret3",
               "MY_SECRET": "secret-4", "api_key_lower": "secret-5"}
    sub = Subtest(id="05", tier="T0", env={**secrets, "PLAIN": "visible"})
    ctx = make_ctx(tmp_path, sub, options={"bin": str(fake_bin)},
                   env={"ANTHROPIC_API_KEY": "sk-ant-base-secret", "ANTHROPIC_AUTH_TOKEN": "base-token-secret",
                        "FAKE_CLAUDE_STDOUT": _result()})
    ClaudeCodeAgent().run(ctx)
    raw = (ctx.agent_dir / "command.json").read_text()
    record = json.loads(raw)
    assert record["argv"][0] == str(fake_bin) and "--print" in record["argv"]
    assert record["cwd"] == str(ctx.workspace)
    overrides = record["env_overrides"]
    assert overrides["PLAIN"] == "visible" and overrides["CLAUDE_CODE_MAX_RETRIES"] == "2"
    for name in secrets:
        assert overrides[name] != secrets[name]
    for value in [*secrets.values(), "sk-ant-base-secret", "base-token-secret"]:
        assert value not in raw
    assert "PATH" not in overrides  # only what the adapter set, never the inherited environment


# ------------------------------------------------------------------------------------ run() with a stand-in CLI


def test_run_parses_result_and_passes_prompt_on_stdin(tmp_path: Path, fake_bin: Path) -> None:
    record = tmp_path / "record.json"
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)}, prompt="Add a --verbose flag.\n",
                   env={"FAKE_CLAUDE_RECORD": str(record), "FAKE_CLAUDE_STDOUT": _result()})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error is None and outcome.rate_limit is None
    assert outcome.exit_code == 0 and outcome.num_turns == 2 and outcome.cost_usd == pytest.approx(0.01086)
    assert outcome.token_stats.input_tokens == 3000 and outcome.token_stats.cache_read_tokens == 700
    seen = json.loads(record.read_text())
    assert seen["stdin"] == "Add a --verbose flag.\n"
    assert "Add a --verbose flag." not in seen["argv"]
    assert Path(seen["cwd"]).resolve() == ctx.workspace.resolve()
    assert seen["env"]["CLAUDE_CODE_MAX_RETRIES"] == "2" and seen["env"]["DISABLE_AUTOUPDATER"] == "1"
    assert outcome.command[0] == str(fake_bin)


def test_run_rate_limited(tmp_path: Path, fake_bin: Path) -> None:
    stdout = _result(is_error=True, num_turns=1, api_error_status=429, api_error_type="rate_limit_error",
                     total_cost_usd=0, result="API Error: Request rejected (429) · This request would exceed "
                     "your organization's rate limit. Please try again later.")
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)},
                   env={"FAKE_CLAUDE_STDOUT": stdout, "FAKE_CLAUDE_EXIT": "1"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.rate_limit is not None and outcome.rate_limit.kind is RateLimitKind.TRANSIENT
    assert outcome.infra_error is None and outcome.api_error_status == 429


@pytest.mark.parametrize("stdout,stderr", [
    (_result(is_error=True, api_error_status=401, api_error_type="authentication_error",
             result="Invalid API key · Fix external API key"), ""),
    (_result(is_error=True, api_error_status=None, result="Not logged in · Please run /login"), ""),
    ("", "Error: authentication_error: invalid x-api-key\n"),
])
def test_run_auth_failure_is_infra_error(tmp_path: Path, fake_bin: Path, stdout: str, stderr: str) -> None:
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)},
                   env={"FAKE_CLAUDE_STDOUT": stdout, "FAKE_CLAUDE_STDERR": stderr, "FAKE_CLAUDE_EXIT": "1"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error and "authentication failed" in outcome.infra_error
    assert outcome.rate_limit is None


@pytest.mark.parametrize("fields", [
    {"api_error_status": None, "api_error": "connection_failed", "terminal_reason": "api_error",
     "result": "API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)"},
    {"api_error_status": 500, "api_error_type": "api_error", "terminal_reason": "api_error",
     "result": "API Error: 500 Internal server error"},
])
def test_run_api_failure_is_infra_error(tmp_path: Path, fake_bin: Path, fields: dict) -> None:
    stdout = _result(is_error=True, num_turns=1, total_cost_usd=0, **fields)
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)},
                   env={"FAKE_CLAUDE_STDOUT": stdout, "FAKE_CLAUDE_EXIT": "1"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error and "API error" in outcome.infra_error and fields["result"][:20] in outcome.infra_error
    assert outcome.rate_limit is None


def test_agent_that_talks_about_api_keys_is_not_an_auth_failure(tmp_path: Path, fake_bin: Path) -> None:
    stdout = _result(result="I fixed the 'Invalid API key' error message in auth.py.")
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)}, env={"FAKE_CLAUDE_STDOUT": stdout})
    assert ClaudeCodeAgent().run(ctx).infra_error is None


def test_run_crash_without_result_is_infra_error(tmp_path: Path, fake_bin: Path) -> None:
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)}, env={
        "FAKE_CLAUDE_STDERR": "--dangerously-skip-permissions cannot be used with root/sudo privileges\n",
        "FAKE_CLAUDE_EXIT": "1"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error and "root/sudo" in outcome.infra_error and "code 1" in outcome.infra_error


def test_max_turns_result_is_a_task_outcome(tmp_path: Path, fake_bin: Path) -> None:
    stdout = _result(is_error=True, subtype="error_max_turns", num_turns=31, result=None,
                     errors=["Reached maximum number of turns (30)"])
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)},
                   env={"FAKE_CLAUDE_STDOUT": stdout, "FAKE_CLAUDE_EXIT": "1"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error is None and outcome.rate_limit is None and outcome.is_error and outcome.num_turns == 31


def test_timeout_kills_and_reports(tmp_path: Path, fake_bin: Path) -> None:
    ctx = make_ctx(tmp_path, options={"bin": str(fake_bin)}, timeout=0.5, env={"FAKE_CLAUDE_SLEEP": "30"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.timed_out and outcome.duration_seconds < 10
    assert outcome.infra_error is None  # too slow is the agent's failure, not infrastructure


# ------------------------------------------------------------------------------------ preflight


def test_preflight_command_is_cheap(tmp_path: Path, fake_bin: Path) -> None:
    argv, env = ClaudeCodeAgent().preflight_command({"bin": str(fake_bin)}, "claude-haiku-4-5", {})
    assert _flag(argv, "--tools") == "" and _flag(argv, "--max-turns") == "1" and _flag(argv, "--system-prompt") == ""
    assert _flag(argv, "--model") == "claude-haiku-4-5" and argv[-1] == "ping"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"


def test_preflight(tmp_path: Path, fake_bin: Path) -> None:
    agent, registry = ClaudeCodeAgent(), ProcessRegistry()
    opts = {"bin": str(fake_bin)}
    limited = _result(is_error=True, api_error_status=429, api_error_type="rate_limit_error",
                      result="API Error: Request rejected (429) · rate limited")
    info = agent.preflight(opts, None, registry, tmp_path / "exp", base_env={"FAKE_CLAUDE_STDOUT": limited,
                                                                               "FAKE_CLAUDE_EXIT": "1"})
    assert info is not None and info.source == "preflight" and info.kind is RateLimitKind.TRANSIENT
    assert agent.preflight(opts, None, registry, tmp_path / "exp", base_env={"FAKE_CLAUDE_STDOUT": _result()}) is None
    # Errors, crashes, timeouts and a missing binary are not rate limits.
    auth = _result(is_error=True, api_error_status=401, result="Invalid API key")
    assert agent.preflight(opts, None, registry, tmp_path / "exp", base_env={"FAKE_CLAUDE_STDOUT": auth}) is None
    assert agent.preflight(opts, None, registry, tmp_path / "exp", base_env={"FAKE_CLAUDE_SLEEP": "30"},
                           timeout=0.5) is None
    assert agent.preflight({"bin": str(tmp_path / "nope")}, None, registry, tmp_path / "exp", base_env={}) is None
    assert list((tmp_path / "exp").iterdir()) == []  # the probe leaves nothing behind


def test_preflight_uses_the_configured_fallback_wait(tmp_path: Path, fake_bin: Path) -> None:
    """A limit that names no reset pauses for --rate-limit-wait, in the probe as in a run."""
    from datetime import datetime, timezone

    limited = _result(is_error=True, api_error_status=429, api_error_type="rate_limit_error",
                      result="API Error: Request rejected (429) · rate limited")
    env = {"FAKE_CLAUDE_STDOUT": limited, "FAKE_CLAUDE_EXIT": "1"}
    for wait in (5.0, 3000.0):
        before = datetime.now(timezone.utc)
        info = ClaudeCodeAgent().preflight({"bin": str(fake_bin)}, None, ProcessRegistry(), tmp_path / "exp",
                                           base_env=env, default_wait=wait)
        assert info is not None
        ahead = (info.reset_at - before).total_seconds()
        assert wait <= ahead < wait + 60, (wait, ahead)


# ------------------------------------------------------------------------------------ MCP servers


def test_strict_mcp_config_is_always_passed_and_the_servers_file_names_only_variables(tmp_path: Path,
                                                                                      fake_bin: Path) -> None:
    from tierbench.spec import McpServer

    (tmp_path / "a").mkdir()
    argv, _ = build_command(make_ctx(tmp_path / "a", options={"bin": str(fake_bin)}))
    assert "--strict-mcp-config" in argv and "--mcp-config" not in argv  # no servers: none at all
    servers = {"notes": McpServer(command="notes-server", args=["--ro"],
                                  env={"NOTES_TOKEN": "${NOTES_TOKEN}", "MODE": "ro"})}
    record = tmp_path / "record.json"
    ctx = make_ctx(tmp_path, Subtest(id="00", tier="T2", mcp_servers=servers), options={"bin": str(fake_bin)},
                   env={"FAKE_CLAUDE_RECORD": str(record), "FAKE_CLAUDE_STDOUT": _result(),
                        "NOTES_TOKEN": "tok-secret-123"})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error is None
    seen = json.loads(record.read_text())["argv"]
    config_file = Path(_flag(seen, "--mcp-config"))
    assert "--strict-mcp-config" in seen and config_file == ctx.agent_dir / "mcp.json"
    assert json.loads(config_file.read_text()) == {"mcpServers": {"notes": {
        "command": "notes-server", "args": ["--ro"], "env": {"NOTES_TOKEN": "${NOTES_TOKEN}", "MODE": "ro"}}}}
    for path in ctx.agent_dir.rglob("*"):  # the secret's value reaches no file the run keeps
        assert not path.is_file() or "tok-secret-123" not in path.read_text()


def test_a_missing_mcp_secret_is_an_infrastructure_error_naming_server_and_variable(tmp_path: Path,
                                                                                   fake_bin: Path) -> None:
    from tierbench.spec import McpServer

    servers = {"notes": McpServer(command="s", env={"NOTES_TOKEN": "${NOTES_TOKEN}", "OPT": "${OPT:-x}"})}
    ctx = make_ctx(tmp_path, Subtest(id="00", tier="T2", mcp_servers=servers), options={"bin": str(fake_bin)})
    outcome = ClaudeCodeAgent().run(ctx)
    assert outcome.infra_error is not None
    assert "MCP server 'notes' needs the environment variable NOTES_TOKEN" in outcome.infra_error
    assert "OPT" not in outcome.infra_error  # a ${VAR:-default} reference may be unset
