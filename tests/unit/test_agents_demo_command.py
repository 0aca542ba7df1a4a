"""The demo and command agents, with real subprocesses and real git repositories."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tierbench.agents import AGENT_NAMES, get_agent
from tierbench.agents.base import AgentContext
from tierbench.agents.command import CommandAgent, redact_env
from tierbench.agents.demo import DemoAgent, success_probability
from tierbench.agents.jsonresult import apply_result_fields, parse_result_json
from tierbench.process import ProcessRegistry
from tierbench.models import AgentOutcome, RunKey
from tierbench.spec import Subtest

BUGGY = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return x + x\n"
FIXED = "def add(a, b):\n    total = a + b\n    return total\n\n\ndef double(x):\n    return x + x\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def init_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for rel, text in files.items():
        (path / rel).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return path


@pytest.fixture
def test_dir(tmp_path: Path) -> Path:
    """A test directory whose expected/solution.patch fixes calc.py."""
    scratch = init_repo(tmp_path / "scratch", {"calc.py": BUGGY})
    (scratch / "calc.py").write_text(FIXED)
    patch = git(scratch, "diff")
    (tmp_path / "test" / "expected").mkdir(parents=True)
    (tmp_path / "test" / "expected" / "solution.patch").write_text(patch)
    return tmp_path / "test"


_counter = iter(range(10_000))


def make_ctx(tmp_path: Path, test_dir: Path, key: str = "T0/00/run_01", *, options=None, seed: int = 1,
             timeout: float = 60, env=None, model: str | None = None) -> AgentContext:
    n = next(_counter)
    workspace = init_repo(tmp_path / f"ws{n}", {"calc.py": BUGGY})
    run_key = RunKey.parse(key)
    agent_dir = tmp_path / f"run{n}" / "agent"
    agent_dir.mkdir(parents=True)
    prompt = agent_dir / "prompt.md"
    prompt.write_text("Fix add().\n")
    return AgentContext(key=run_key, workspace=workspace, agent_dir=agent_dir, prompt_file=prompt,
                        subtest=Subtest(id=run_key.subtest, tier=run_key.tier, env=env or {}),
                        test_dir=test_dir, model=model, timeout_seconds=timeout, thinking="None",
                        options=options or {}, seed=seed, registry=ProcessRegistry())


def workspace_diff(ctx: AgentContext) -> str:
    git(ctx.workspace, "add", "-A")
    return git(ctx.workspace, "diff", "--cached")


@pytest.fixture
def ratelimit_calls(monkeypatch):
    """Record what the command agent hands to the rate-limit detector (which then finds nothing)."""
    calls = []

    def detect_agent(output, *, now, default_wait):
        calls.append({"result": output.result, "stderr": output.stderr, "agent": output.agent,
                      "exit_code": output.exit_code, "now": now, "default_wait": default_wait})
        return None

    monkeypatch.setattr("tierbench.agents.command.detect_agent", detect_agent)
    return calls


# --- registry -----------------------------------------------------------------------------------


def test_registry_knows_demo_and_command_and_rejects_unknown_names():
    assert set(AGENT_NAMES) == {"demo", "command", "claude-code", "codex", "gemini", "opencode", "aider",
                                "mini-swe-agent"}
    assert get_agent("demo").name == "demo"
    assert get_agent("command").name == "command"
    with pytest.raises(ValueError, match="known agents: demo, command, claude-code, codex"):
        get_agent("gpt-pilot")


def test_validate_options_rejects_missing_or_unknown_options():
    with pytest.raises(ValueError, match="cmd"):
        CommandAgent().validate_options({})
    CommandAgent().validate_options({"cmd": "true"})
    with pytest.raises(ValueError, match="delay"):
        DemoAgent().validate_options({"delay": "soon"})
    with pytest.raises(ValueError, match="does not know"):
        DemoAgent().validate_options({"speed": "1"})
    DemoAgent().validate_options({"delay": "0.5", "seed": "7"})


def test_bad_options_at_run_time_are_reported_not_raised(tmp_path, test_dir):
    assert "cmd" in CommandAgent().run(make_ctx(tmp_path, test_dir)).infra_error
    assert "delay" in DemoAgent().run(make_ctx(tmp_path, test_dir, options={"delay": "-1"})).infra_error
    assert DemoAgent().preflight({}, None, ProcessRegistry(), Path(".")) is None
    assert CommandAgent().preflight({"cmd": "x"}, None, ProcessRegistry(), Path(".")) is None


# --- JSON results ---------------------------------------------------------------------------------

RESULT = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 4, "result": "done",
          "total_cost_usd": 0.12, "usage": {"input_tokens": 10, "output_tokens": 20,
                                            "cache_creation_input_tokens": 30, "cache_read_input_tokens": 40}}


def test_parse_result_json_single_object_stream_and_noise():
    assert parse_result_json(json.dumps(RESULT, indent=2)) == RESULT
    stream = "\n".join([json.dumps({"type": "system", "subtype": "init"}),
                        json.dumps({"type": "assistant", "message": {"content": []}}),
                        json.dumps(RESULT), ""])
    assert parse_result_json(stream) == RESULT
    noisy = "npm WARN something\nStarting agent...\n" + json.dumps(RESULT) + "\n"
    assert parse_result_json(noisy) == RESULT
    assert parse_result_json("") is None
    assert parse_result_json("no json here\n{broken") is None
    assert parse_result_json("[1, 2]") is None


def test_apply_result_fields_maps_usage_cost_and_flags():
    outcome = apply_result_fields(AgentOutcome(exit_code=0), {**RESULT, "is_error": True,
                                                              "api_error_status": 429})
    assert outcome.token_stats.model_dump() == {"input_tokens": 10, "output_tokens": 20,
                                                "cache_creation_tokens": 30, "cache_read_tokens": 40, "reasoning_tokens": 0}
    assert (outcome.cost_usd, outcome.num_turns, outcome.is_error) == (0.12, 4, True)
    assert (outcome.api_error_status, outcome.result_text, outcome.exit_code) == (429, "done", 0)
    legacy = apply_result_fields(AgentOutcome(), {"cost_usd": 0.5})
    assert legacy.cost_usd == 0.5 and legacy.token_stats.total_tokens == 0


# --- demo agent -----------------------------------------------------------------------------------


def test_success_probability_rises_with_tier_and_stays_capped():
    assert success_probability("T0", "00") < success_probability("T0", "01") < success_probability("T6", "00")
    assert all(success_probability(t, s) <= 0.95 for t in ("T0", "T5", "T6") for s in ("00", "09", "99"))


def test_demo_is_deterministic_per_seed_and_key(tmp_path, test_dir):
    keys = [f"T{t}/00/run_{r:02d}" for t in (0, 3) for r in (1, 2, 3)]

    def diffs(seed: int) -> list[str]:
        result = []
        for key in keys:
            ctx = make_ctx(tmp_path, test_dir, key, options={"seed": str(seed)})
            outcome = DemoAgent().run(ctx)
            assert outcome.exit_code == 0 and outcome.infra_error is None
            result.append(workspace_diff(ctx) + f"|{outcome.cost_usd}|{outcome.token_stats}")
        return result

    first = diffs(11)
    assert diffs(11) == first
    assert diffs(12) != first


def test_demo_success_applies_the_solution_and_reports_usage(tmp_path, test_dir):
    # Find a key that succeeds under seed 5, then check what it did.
    for run in range(1, 30):
        ctx = make_ctx(tmp_path, test_dir, f"T6/00/run_{run:02d}", seed=5)
        outcome = DemoAgent().run(ctx)
        if (ctx.workspace / "calc.py").read_text() == FIXED:
            break
    else:
        pytest.fail("the demo agent never succeeded at T6")
    assert outcome.cost_usd > 0 and outcome.token_stats.output_tokens > 0 and outcome.num_turns
    assert outcome.command[1:3] == ["-m", "tierbench.agents.demo"]
    record = json.loads((ctx.agent_dir / "command.json").read_text())
    assert record["argv"] == outcome.command and record["cwd"] == str(ctx.workspace)
    assert "PYTHONPATH" in record["env_overrides"]


def test_demo_failures_leave_a_wrong_change(tmp_path, test_dir):
    failures = 0
    for run in range(1, 15):
        ctx = make_ctx(tmp_path, test_dir, f"T0/00/run_{run:02d}", seed=3)
        DemoAgent().run(ctx)
        text = (ctx.workspace / "calc.py").read_text()
        if text != FIXED:
            failures += 1
            assert workspace_diff(ctx), "a failed demo run should still change something"
            assert "total = a + b" not in text or "return total" not in text
    assert failures > 0


def test_demo_timeout_kills_the_child(tmp_path, test_dir):
    ctx = make_ctx(tmp_path, test_dir, options={"delay": "30"}, timeout=1)
    started = time.monotonic()
    outcome = DemoAgent().run(ctx)
    assert outcome.timed_out and time.monotonic() - started < 10
    assert (ctx.workspace / "calc.py").read_text() == BUGGY


def test_demo_cancelled_by_registry_reports_the_kill(tmp_path, test_dir):
    import threading

    ctx = make_ctx(tmp_path, test_dir, options={"delay": "30"})
    threading.Timer(0.5, ctx.registry.kill_all).start()
    outcome = DemoAgent().run(ctx)
    assert ctx.registry.closed and not outcome.timed_out
    assert outcome.exit_code is not None and outcome.exit_code < 0


# --- command agent --------------------------------------------------------------------------------


def test_command_agent_gets_run_env_and_parses_json(tmp_path, test_dir, ratelimit_calls):
    script = ('env | grep -E "^TIERBENCH_(PROMPT_FILE|RUN_DIR|TIER|SUBTEST|RUN|MODEL|WORKSPACE|THINKING)=" | sort > env.txt; echo "$SUBTEST_FLAG" > flag.txt; '
              f"echo noise; echo '{json.dumps(RESULT)}'; echo oops >&2")
    ctx = make_ctx(tmp_path, test_dir, "T2/01/run_03", options={"cmd": script}, model="m-1",
                   env={"SUBTEST_FLAG": "on", "MY_API_KEY": "sk-secret"})
    outcome = CommandAgent().run(ctx)
    assert outcome.exit_code == 0 and outcome.infra_error is None and outcome.rate_limit is None
    env = dict(line.split("=", 1) for line in (ctx.workspace / "env.txt").read_text().splitlines())
    assert env == {"TIERBENCH_PROMPT_FILE": str(ctx.prompt_file), "TIERBENCH_RUN_DIR": str(ctx.agent_dir.parent),
                   "TIERBENCH_TIER": "T2", "TIERBENCH_SUBTEST": "01", "TIERBENCH_RUN": "3",
                   "TIERBENCH_MODEL": "m-1", "TIERBENCH_WORKSPACE": str(ctx.workspace)}
    assert (ctx.workspace / "flag.txt").read_text() == "on\n"
    assert (outcome.cost_usd, outcome.num_turns, outcome.token_stats.cache_read_tokens) == (0.12, 4, 40)
    assert ratelimit_calls[0]["result"] == RESULT and ratelimit_calls[0]["stderr"] == "oops\n"
    assert ratelimit_calls[0]["default_wait"] == ctx.default_rate_limit_wait
    record = json.loads((ctx.agent_dir / "command.json").read_text())
    assert record["argv"] == ["/bin/sh", "-c", script]
    assert record["env_overrides"]["MY_API_KEY"] == "<redacted>"
    assert record["env_overrides"]["SUBTEST_FLAG"] == "on"
    assert "PATH" not in record["env_overrides"], "only the variables the adapter set are recorded"


def test_command_agent_plain_output_and_failure_exit(tmp_path, test_dir, ratelimit_calls):
    ctx = make_ctx(tmp_path, test_dir, options={"cmd": "echo hello; exit 3"})
    outcome = CommandAgent().run(ctx)
    assert outcome.exit_code == 3 and outcome.infra_error is None and outcome.cost_usd == 0
    assert ratelimit_calls[0]["result"] is None


def test_command_agent_missing_binary_is_an_infra_error(tmp_path, test_dir, ratelimit_calls):
    ctx = make_ctx(tmp_path, test_dir, options={"cmd": "no-such-agent-binary-xyz --go"})
    outcome = CommandAgent().run(ctx)
    assert outcome.exit_code == 127
    assert outcome.infra_error and outcome.infra_error.startswith("command not found: no-such-agent-binary-xyz")


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def test_command_agent_timeout_kills_the_whole_process_group(tmp_path, test_dir, ratelimit_calls):
    marker = f"tierbench-marker-{uuid.uuid4().hex}"
    # A background grandchild that would outlive a kill of the shell alone; it says when it is up.
    child = f"python3 -c 'import time; open(\"up.txt\", \"w\").close(); time.sleep(1000)' {marker}"
    ctx = make_ctx(tmp_path, test_dir, options={"cmd": f"{child} & sleep 1000"}, timeout=1.5)
    started = time.monotonic()
    outcome = CommandAgent().run(ctx)
    assert outcome.timed_out and time.monotonic() - started < 10
    assert (ctx.workspace / "up.txt").exists(), "the background child never started"
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_redact_env_hides_credential_like_names():
    assert redact_env({"ANTHROPIC_API_KEY": "x", "GH_TOKEN": "y", "client_secret": "z", "HOME": "/h"}) == {
        "ANTHROPIC_API_KEY": "<redacted>", "GH_TOKEN": "<redacted>", "client_secret": "<redacted>", "HOME": "/h"}
