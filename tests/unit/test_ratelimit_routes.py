"""Every error channel of the Claude Code and command adapters reaches the one detector.

Each test runs the real adapter against a real subprocess (a fake `claude` that prints one of Claude
Code's own output shapes, from tests/support/agent_shapes.py) and checks what the adapter reports:
a rate limit with its reset, an infrastructure error for a permanent "request too large", or
nothing when the run finished or the text is only the task's own output.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tierbench.agents.base import AgentContext
from tierbench.agents.claude_code import ClaudeCodeAgent
from tierbench.agents.command import CommandAgent
from tierbench.models import AgentOutcome, RateLimitKind, RunKey
from tierbench.process import ProcessRegistry
from tierbench.spec import Subtest
from tests.support.agent_shapes import shape

EPOCH_TEXT = "Claude AI usage limit reached|1762952400"
EPOCH_RESET = datetime(2025, 11, 12, 13, 0, tzinfo=timezone.utc)
TOO_LARGE = ("API Error: 429 {'error': {'message': 'Request too large for gpt-4o in organization org-x on tokens "
             "per min (TPM): Limit 30000, Requested 36278. The input or output tokens must be reduced in order to "
             "run successfully.', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}")

FAKE = textwrap.dedent(f"""\
    #!{sys.executable}
    import os, sys
    sys.stdin.read() if not sys.stdin.isatty() else None
    sys.stdout.write(os.environ.get("FAKE_STDOUT", ""))
    sys.stderr.write(os.environ.get("FAKE_STDERR", ""))
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
    """)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "claude"
    path.parent.mkdir()
    path.write_text(FAKE)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run(agent: str, tmp_path: Path, fake_bin: Path, output) -> AgentOutcome:
    """Run the real adapter once; the fake prints `output`'s stdout/stderr and exits with its code."""
    workspace, agent_dir = tmp_path / "ws", tmp_path / "run" / "agent"
    workspace.mkdir(exist_ok=True)
    agent_dir.mkdir(parents=True, exist_ok=True)
    (agent_dir / "prompt.md").write_text("Fix the bug.\n")
    options = {"bin": str(fake_bin)} if agent == "claude-code" else {"cmd": str(fake_bin)}
    env = {"PATH": os.environ.get("PATH", os.defpath), "FAKE_STDOUT": output.stdout, "FAKE_STDERR": output.stderr,
           "FAKE_EXIT": str(output.exit_code)}
    ctx = AgentContext(key=RunKey(tier="T0", subtest="00", run=1), workspace=workspace, agent_dir=agent_dir,
                       prompt_file=agent_dir / "prompt.md", subtest=Subtest(id="00", tier="T0", name="empty"),
                       test_dir=tmp_path, model=None, timeout_seconds=30.0, thinking="None", options=options, seed=0,
                       registry=ProcessRegistry(), default_rate_limit_wait=900.0, base_env=env)
    return (ClaudeCodeAgent() if agent == "claude-code" else CommandAgent()).run(ctx)


@pytest.mark.parametrize("channel", ["result", "events", "stdout"])
def test_claude_code_usage_limit_on_each_output_mode(tmp_path, fake_bin, channel):
    outcome = run("claude-code", tmp_path, fake_bin, shape("claude-code", channel, EPOCH_TEXT, status=429))
    assert outcome.rate_limit is not None, channel
    assert (outcome.rate_limit.kind, outcome.rate_limit.reset_at) == (RateLimitKind.QUOTA, EPOCH_RESET)
    assert outcome.rate_limit.reset_known and outcome.infra_error is None


def test_claude_code_sdk_error_on_stderr(tmp_path, fake_bin):
    text = 'Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    before = datetime.now(timezone.utc)
    outcome = run("claude-code", tmp_path, fake_bin, shape("claude-code", "stderr", text))
    after = datetime.now(timezone.utc)
    assert outcome.rate_limit is not None and outcome.rate_limit.kind is RateLimitKind.TRANSIENT
    assert not outcome.rate_limit.reset_known  # no reset named: the configured wait (900 s) applies
    assert before + timedelta(seconds=900) <= outcome.rate_limit.reset_at <= after + timedelta(seconds=900)


def test_claude_code_finished_after_a_retried_429_is_a_result(tmp_path, fake_bin):
    outcome = run("claude-code", tmp_path, fake_bin, shape("claude-code", "events", "rate_limit", status=429,
                                                           success=True))
    assert outcome.rate_limit is None and outcome.infra_error is None and outcome.is_error is False


def test_claude_code_request_too_large_is_an_infra_error(tmp_path, fake_bin):
    outcome = run("claude-code", tmp_path, fake_bin, shape("claude-code", "result", TOO_LARGE, status=429))
    assert outcome.rate_limit is None
    assert outcome.infra_error is not None and "no wait can let it through" in outcome.infra_error


def test_command_agent_claude_result(tmp_path, fake_bin):
    outcome = run("command", tmp_path, fake_bin, shape("command", "result", EPOCH_TEXT))
    assert outcome.rate_limit is not None and outcome.rate_limit.reset_at == EPOCH_RESET


def test_command_agent_claude_error_line(tmp_path, fake_bin):
    text = "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"
    outcome = run("command", tmp_path, fake_bin, shape("command", "stdout", text))
    assert outcome.rate_limit is not None and outcome.rate_limit.kind is RateLimitKind.TRANSIENT


@pytest.mark.parametrize("text, exit_code", [
    ("FAILED tests/test_client.py::test_backoff - AssertionError: server responds 429 Too Many Requests", 1),
    ('127.0.0.1 - - [23/Nov/2026 10:00:00] "POST /api/login HTTP/1.1" 429 -', 1),
    ('Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}', 0),
])
def test_command_agent_task_output_is_not_a_rate_limit(tmp_path, fake_bin, text, exit_code):
    outcome = run("command", tmp_path, fake_bin, shape("command", "stderr", text, exit_code=exit_code))
    assert outcome.rate_limit is None and outcome.infra_error is None
