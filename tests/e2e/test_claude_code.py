"""The real Claude Code CLI, driven by ClaudeCodeAgent against the local fake Anthropic API.

Nothing leaves 127.0.0.1: the CLI gets ANTHROPIC_BASE_URL pointing at a FakeAnthropic on an
ephemeral port, a dummy API key, a throwaway HOME and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1.
Needs the pinned CLI (`make claude-code`); skipped with a visible reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `tests.support` when pytest is run as a script, not `python -m`
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.fake_anthropic import (  # noqa: E402
    FakeAnthropic,
    Usage,
    auth_error,
    rate_limited,
    text_turn,
    tool_turn,
)
from tierbench.agents.base import AgentContext  # noqa: E402
from tierbench.agents.claude_code import ClaudeCodeAgent  # noqa: E402
from tierbench.process import ProcessRegistry  # noqa: E402
from tierbench.models import RateLimitKind, RunKey  # noqa: E402
from tierbench.spec import Subtest, ToolsSpec  # noqa: E402

# List prices per token the CLI uses for claude-sonnet-4-5 (measured: see claude_code.py).
SONNET_45 = {"input_tokens": 3e-6, "output_tokens": 15e-6, "cache_creation_input_tokens": 3.75e-6,
             "cache_read_input_tokens": 0.3e-6}


def claude_bin() -> Path:
    configured = os.environ.get("TIERBENCH_CLAUDE_BIN")
    path = Path(configured) if configured else REPO_ROOT / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip("Claude Code CLI not installed (needs npm; run `make claude-code`)")
    return path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """A real git repository with one commit, and a worktree of it for the run (as tierbench makes)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# demo\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    workspace = tmp_path / "workspace"
    git(repo, "worktree", "add", "-q", "-b", "run_01", str(workspace))
    return workspace


def cli_env(tmp_path: Path, api: FakeAnthropic) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),  # no user config or credentials leak in
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "IS_SANDBOX": "1",
    }


def make_ctx(tmp_path: Path, workspace: Path, api: FakeAnthropic, *, subtest: Subtest | None = None,
             model: str | None = "claude-sonnet-4-5", thinking: str = "None", options: dict[str, str] | None = None,
             timeout: float = 50.0, prompt: str = "Append a greeting to README.md and create hello.txt.\n",
             default_wait: float = 60.0) -> AgentContext:
    agent_dir = tmp_path / "run" / "agent"
    agent_dir.mkdir(parents=True, exist_ok=True)
    prompt_file = agent_dir / "prompt.md"
    prompt_file.write_text(prompt)
    return AgentContext(
        key=RunKey(tier="T0", subtest="00", run=1), workspace=workspace, agent_dir=agent_dir,
        prompt_file=prompt_file, subtest=subtest or Subtest(id="00", tier="T0", name="empty"),
        test_dir=tmp_path, model=model, timeout_seconds=timeout, thinking=thinking,
        options={"bin": str(claude_bin()), **(options or {})}, seed=0, registry=ProcessRegistry(),
        default_rate_limit_wait=default_wait, base_env=cli_env(tmp_path, api),
    )


def tool_names(body: dict) -> set[str]:
    return {tool["name"] for tool in body.get("tools") or []}


def system_text(body: dict) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "".join(block.get("text", "") for block in system)


# ------------------------------------------------------------------------------------ (a) an edit


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_scripted_bash_edit_in_worktree(tmp_path: Path, worktree: Path) -> None:
    u1 = Usage(input_tokens=1000, output_tokens=50, cache_creation_input_tokens=200, cache_read_input_tokens=300)
    u2 = Usage(input_tokens=2000, output_tokens=10, cache_creation_input_tokens=0, cache_read_input_tokens=400)
    script = [
        tool_turn("Bash", {"command": "printf 'hello from the agent\\n' >> README.md && echo hi > hello.txt",
                           "description": "edit files"}, usage=u1),
        text_turn("done", usage=u2),
    ]
    with FakeAnthropic(script) as api:
        ctx = make_ctx(tmp_path, worktree, api)
        started = time.monotonic()
        outcome = ClaudeCodeAgent().run(ctx)
        elapsed = time.monotonic() - started
    stdout = (ctx.agent_dir / "stdout.log").read_text()
    assert outcome.infra_error is None, (outcome.infra_error, stdout, (ctx.agent_dir / "stderr.log").read_text())
    assert outcome.exit_code == 0 and not outcome.timed_out and not outcome.is_error
    assert outcome.rate_limit is None and outcome.api_error_status is None
    assert outcome.result_text == "done"
    assert outcome.num_turns == 2
    assert elapsed < 60

    # The edit is on disk and in git.
    assert (worktree / "hello.txt").read_text() == "hi\n"
    assert (worktree / "README.md").read_text() == "# demo\nhello from the agent\n"
    diff = git(worktree, "diff")
    assert "+hello from the agent" in diff
    assert "hello.txt" in git(worktree, "status", "--porcelain")

    # Exactly the two scripted turns went to the main conversation; the second carried the tool result.
    main = api.main_requests
    assert [r.turn_index for r in main] == [0, 1], api.paths()
    assert all(r.model == "claude-sonnet-4-5" and r.stream for r in main)
    tool_use_id = next(b["id"] for m in main[1].body["messages"] if m["role"] == "assistant"
                       for b in m["content"] if b["type"] == "tool_use")
    last = main[1].body["messages"][-1]["content"]
    assert any(b.get("type") == "tool_result" and b.get("tool_use_id") == tool_use_id for b in last)
    assert "Append a greeting to README.md" in json.dumps(main[0].body["messages"])  # the prompt went in on stdin

    # Tokens: the sum of what the server reported (side requests, if any, report zero usage).
    reported = api.reported_usage(routes=("main", "side"))
    assert reported == Usage(3000, 60, 200, 700)
    stats = outcome.token_stats
    assert (stats.input_tokens, stats.output_tokens, stats.cache_creation_tokens, stats.cache_read_tokens) == (
        3000, 60, 200, 700)
    # Cost: the CLI prices usage itself; for sonnet-4-5 that is exactly the list price.
    expected_cost = sum(getattr(reported, field) * price for field, price in SONNET_45.items())
    assert expected_cost == pytest.approx(0.01086)
    assert outcome.cost_usd == pytest.approx(expected_cost, rel=1e-9)
    events = [json.loads(line) for line in stdout.splitlines()]  # stream-json: one event per line
    result = events[-1]
    assert result["type"] == "result"
    assert sum(m["costUSD"] for m in result["modelUsage"].values()) == pytest.approx(outcome.cost_usd)
    # The whole stream is the run's transcript, and what the agent used is counted from it.
    assert (ctx.agent_dir / "transcript.jsonl").read_text() == stdout
    assert outcome.usage.tool_calls == {"Bash": 1} and outcome.usage.turns == 2

    # The run can be replayed from command.json, which holds no credentials.
    record = json.loads((ctx.agent_dir / "command.json").read_text())
    assert record["argv"][0] == str(claude_bin()) and record["cwd"] == str(worktree)
    assert "dummy" not in (ctx.agent_dir / "command.json").read_text()
    print(f"\n[e2e] scripted edit: {elapsed:.1f}s, {len(api.requests)} requests: {api.paths()}")


# ------------------------------------------------------------------------------------ flags reach the API


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_subtest_flags_reach_the_api(tmp_path: Path, worktree: Path) -> None:
    """Re-checks, against the pinned CLI, the flag mapping the adapter relies on."""
    sub = Subtest(id="02", tier="T2", tools=ToolsSpec(enabled=["Bash", "Read", "Edit"], disabled=["Edit"]),
                  system_prompt_mode="none")
    with FakeAnthropic([text_turn("ok")]) as api:
        none = ClaudeCodeAgent().run(make_ctx(tmp_path, worktree, api, subtest=sub, thinking="None"))
        high = ClaudeCodeAgent().run(make_ctx(tmp_path, worktree, api, thinking="High", model="claude-sonnet-4-6"))
        low = ClaudeCodeAgent().run(make_ctx(tmp_path, worktree, api, thinking="Low"))
        ultra = ClaudeCodeAgent().run(make_ctx(tmp_path, worktree, api, thinking="UltraThink",
                                               model="claude-sonnet-4-6"))
    assert [o.infra_error for o in (none, high, low, ultra)] == [None] * 4
    first, second, third, fourth = api.main_requests
    # tools.enabled -> --tools (the offered set); tools.disabled -> --disallowedTools removes one.
    assert {"Bash", "Read"} <= tool_names(first.body) and "Edit" not in tool_names(first.body)
    assert "Edit" in tool_names(second.body) and "Write" in tool_names(second.body)
    # system_prompt_mode none -> only the CLI's one-line identity remains of the system prompt.
    assert len(system_text(first.body)) < 400 < len(system_text(second.body))
    # Thinking: None disables it on a budget model (whose CLI default is a 31999 budget), Low sets a
    # 4000 budget there; on an effort model High and UltraThink set output_config.effort.
    assert first.body["thinking"] == {"type": "disabled"}
    assert (second.body.get("output_config") or {}).get("effort") == "high"
    assert third.body["thinking"].get("budget_tokens") == 4000
    assert (fourth.body.get("output_config") or {}).get("effort") == "max"


# ------------------------------------------------------------------------------------ (b) rate limited


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_rate_limited_run_is_bounded(tmp_path: Path, worktree: Path) -> None:
    with FakeAnthropic([text_turn("never")], error=rate_limited(retry_after=3)) as api:
        ctx = make_ctx(tmp_path, worktree, api, options={"max_retries": "1"}, default_wait=123.0)
        before = datetime.now(timezone.utc)
        started = time.monotonic()
        outcome = ClaudeCodeAgent().run(ctx)
        elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    assert not outcome.timed_out and outcome.exit_code == 1
    assert outcome.rate_limit is not None, (ctx.agent_dir / "stdout.log").read_text()
    assert outcome.rate_limit.kind is RateLimitKind.TRANSIENT and outcome.rate_limit.source == "agent"
    assert outcome.infra_error is None and outcome.api_error_status == 429
    # CLAUDE_CODE_MAX_RETRIES=1: the first request and one retry, spaced by retry-after.
    errors = api.requests_for("error")
    assert len(errors) == 2, api.paths()
    assert errors[1].at - errors[0].at >= 2.9
    # The CLI does not surface retry-after in its output, so the reset is the configured default.
    assert not outcome.rate_limit.reset_known
    assert before + timedelta(seconds=120) <= outcome.rate_limit.reset_at <= datetime.now(timezone.utc) + timedelta(
        seconds=124)
    assert not (worktree / "hello.txt").exists()
    print(f"\n[e2e] 429 with max_retries=1, retry-after 3: {elapsed:.1f}s, {len(errors)} requests")


@pytest.mark.e2e
@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["stream-json", "text"])
def test_rate_limit_is_detected_in_each_output_mode(tmp_path: Path, worktree: Path, mode: str) -> None:
    # The real CLI with its output format switched by the subtest: stream-json events or plain text.
    args = ["--output-format", mode] + (["--verbose"] if mode == "stream-json" else [])
    message = "Number of request tokens has exceeded your per-minute rate limit"
    with FakeAnthropic([text_turn("never")], error=rate_limited(retry_after=0, message=message)) as api:
        ctx = make_ctx(tmp_path, worktree, api, options={"max_retries": "0"},
                       subtest=Subtest(id="00", tier="T0", name="empty", agent_args=args))
        outcome = ClaudeCodeAgent().run(ctx)
    stdout = (ctx.agent_dir / "stdout.log").read_text()
    assert outcome.exit_code == 1, stdout
    assert outcome.rate_limit is not None, stdout
    assert outcome.rate_limit.kind is RateLimitKind.TRANSIENT and outcome.infra_error is None
    print(f"\n[e2e] {mode} stdout on a 429: {stdout.strip().splitlines()[-1][:200]}")


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_auth_failure_is_infra_error(tmp_path: Path, worktree: Path) -> None:
    with FakeAnthropic([text_turn("never")], error=auth_error()) as api:
        started = time.monotonic()
        outcome = ClaudeCodeAgent().run(make_ctx(tmp_path, worktree, api, options={"max_retries": "0"}))
        elapsed = time.monotonic() - started
    assert outcome.infra_error is not None and "authentication failed" in outcome.infra_error
    assert outcome.rate_limit is None and outcome.api_error_status == 401
    assert len(api.requests_for("error")) == 1 and elapsed < 30


# ------------------------------------------------------------------------------------ (c) preflight


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_preflight(tmp_path: Path) -> None:
    agent, registry, options = ClaudeCodeAgent(), ProcessRegistry(), {"bin": str(claude_bin())}
    with FakeAnthropic([], error=rate_limited(retry_after=3)) as api:
        started = time.monotonic()
        info = agent.preflight(options, "claude-sonnet-4-5", registry, tmp_path / "exp",
                               base_env=cli_env(tmp_path, api))
        limited_elapsed = time.monotonic() - started
    assert info is not None and info.source == "preflight" and info.kind is RateLimitKind.TRANSIENT
    assert len(api.requests_for("error")) == 1  # the probe never retries
    assert limited_elapsed < 30

    with FakeAnthropic([]) as api:
        assert agent.preflight(options, "claude-sonnet-4-5", registry, tmp_path / "exp",
                               base_env=cli_env(tmp_path, api)) is None
    (probe,) = [r for r in api.requests if r.path.startswith("/v1/messages")]
    assert not probe.body.get("tools") and probe.body["model"] == "claude-sonnet-4-5"  # cheap: no tool schemas
    assert len(system_text(probe.body)) < 400
    assert list((tmp_path / "exp").iterdir()) == []

    with FakeAnthropic([], error=auth_error()) as api:  # an error is not a rate limit
        assert agent.preflight(options, None, registry, tmp_path / "exp", base_env=cli_env(tmp_path, api)) is None
    print(f"\n[e2e] preflight against 429: {limited_elapsed:.1f}s")


# ------------------------------------------------------------------------------------ the fake itself


def test_fake_server_non_streaming_and_routing() -> None:
    """No CLI needed: the parts of the fake the pinned CLI does not exercise (non-streaming, count_tokens)."""
    script = [tool_turn("Bash", {"command": "true"}, usage=Usage(5, 6, 7, 8)), text_turn("fin")]
    with FakeAnthropic(script, max_lifetime=30) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
        first = client.post("/v1/messages", json={"model": "m", "tools": tools,
                                                  "messages": [{"role": "user", "content": "go"}]}).json()
        assert first["stop_reason"] == "tool_use" and first["usage"]["cache_read_input_tokens"] == 8
        side = client.post("/v1/messages", json={"model": "small", "messages": [{"role": "user", "content": "title?"}]})
        assert side.json()["content"][0]["text"] == "ok"
        history = [{"role": "user", "content": "go"}, {"role": "assistant", "content": first["content"]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first["content"][0]["id"],
                                                 "content": ""}]}]
        stream = client.post("/v1/messages", json={"model": "m", "stream": True, "tools": tools, "messages": history})
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in stream.text.splitlines() if line.startswith("event: ")]
        assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
        assert '"text_delta"' in stream.text and '"fin"' in stream.text
        assert client.post("/v1/messages/count_tokens", json={"messages": []}).json()["input_tokens"] >= 1
        assert client.get("/v1/anything").json() == {}
        assert [r.turn_index for r in api.main_requests] == [0, 1]
        assert api.reported_usage() == Usage(5 + 100, 6 + 20, 7, 8)
    with FakeAnthropic([], error=rate_limited(retry_after=3, count=1)) as api, httpx.Client(base_url=api.url) as client:
        limited = client.post("/v1/messages", json={"model": "m", "messages": []})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert client.post("/v1/messages", json={"model": "m", "messages": []}).status_code == 200
