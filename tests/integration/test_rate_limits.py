"""A rate limit pauses the experiment and is never scored: real CLI, a scripted `command` agent."""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo
from pathlib import Path

from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.testdirs import FIXED

AGENT = '''
import json, pathlib, sys, time
state = pathlib.Path(sys.argv[1]); offset = float(sys.argv[2]); limited_calls = int(sys.argv[3])
state.mkdir(exist_ok=True)
calls = state / "calls"
with calls.open("a") as f:
    f.write("x\\n")
n = len(calls.read_text().splitlines())
if n <= limited_calls:
    print(json.dumps({"type": "result", "subtype": "success", "is_error": True,
                      "result": "Claude AI usage limit reached|%d" % int(time.time() + offset)}))
    sys.exit(1)
pathlib.Path("calc.py").write_text(@FIXED@)
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "fixed",
                  "num_turns": 2, "total_cost_usd": 0.01,
                  "usage": {"input_tokens": 100, "output_tokens": 20}}))
'''.replace("@FIXED@", repr(FIXED))


def _agent_args(tmp_path: Path, offset: float, limited_calls: int = 1, runs: int = 1) -> list[object]:
    script = tmp_path / "limited_agent.py"
    script.write_text(AGENT)
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(tmp_path / 'state'))} " \
          f"{offset} {limited_calls}"
    # The agent counts its calls in a file of the test's tmp dir, which the sandbox hides.
    return ["--agent", "command", "--agent-opt", f"cmd={cmd}", "--tiers", "T0", "--max-subtests", 1,
            "--runs", runs, "--parallel", 1, "--no-report", "--sandbox", "none"]


def _calls(tmp_path: Path) -> int:
    calls = tmp_path / "state" / "calls"
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_wait_policy_pauses_then_resumes_in_the_same_process(tmp_path, calc_test):
    results = tmp_path / "results"
    started = time.monotonic()
    proc = run_cli("run", calc_test, "--results-dir", results, *_agent_args(tmp_path, offset=3),
                   "--on-rate-limit", "wait")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started >= 2.5, "it must really wait for the reset"
    exp = results / "calc"
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}, "the rate-limited run is never a failure"
    attempt = json.loads((exp / "T0/00/run_01/attempts/01/run_result.json").read_text())
    assert attempt["status"] == "rate_limited"
    assert attempt["rate_limit"]["kind"] == "quota" and attempt["rate_limit"]["source"] == "agent"
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["pause_count"] == 1 and checkpoint["rate_limit_until"] is None
    assert checkpoint["total_pause_seconds"] > 1
    status = json.loads(run_cli("status", exp, "--json").stdout)
    assert status["rate_limited_attempts"] == 1 and status["pause_count"] == 1


def test_exit_policy_exits_2_then_refuses_until_reset_then_completes(tmp_path, calc_test):
    results = tmp_path / "results"
    exp = results / "calc"
    args = ["run", calc_test, "--results-dir", results, *_agent_args(tmp_path, offset=8), "--on-rate-limit", "exit"]
    first = run_cli(*args)
    assert first.returncode == 2, first.stderr
    assert "Rate limited until" in first.stderr and "(agent)" in first.stderr
    assert "Run the same command again after that; it resumes where it left off." in first.stderr
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "paused_rate_limit" and checkpoint["rate_limit_source"] == "agent"
    assert completed_runs(exp) == {}
    assert _calls(tmp_path) == 1

    second = run_cli(*args)
    assert second.returncode == 2, second.stderr
    assert _calls(tmp_path) == 1, "before the reset no run (and no request) may be spent"

    until = datetime.fromisoformat(checkpoint["rate_limit_until"])
    time.sleep(max(0.0, until.timestamp() - time.time()) + 0.3)
    third = run_cli(*args)
    assert third.returncode == 0, third.stderr
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}


def test_stall_breaker_stops_after_repeated_infrastructure_errors(tmp_path, calc_test):
    results = tmp_path / "results"
    proc = run_cli("run", calc_test, "--results-dir", results, "--agent", "command",
                   "--agent-opt", "cmd=/nonexistent/agent-binary", "--tiers", "T0", "T1", "--runs", 3,
                   "--parallel", 1, "--stall-limit", 3, "--no-report")
    assert proc.returncode == 1
    assert "consecutive" in proc.stderr and "not found" in proc.stderr
    exp = results / "calc"
    attempts = list(exp.glob("T*/*/run_*/attempts/*/run_result.json"))
    assert len(attempts) == 3, "stop launching after K identical errors instead of burning the plan"
    assert completed_runs(exp) == {}, "infrastructure errors are never results"


def test_judge_quota_escalates_to_the_gate_and_two_judges_reach_consensus(tmp_path, calc_test):
    from tests.support.fake_llm_judges import FakeJudgeAPI, rate_limited, scores

    all_items = {"add": 1.0, "mul": 1.0, "style": 0.5, "compiles": 1.0}
    results = tmp_path / "results"
    env = cli_env(OPENAI_API_KEY="sk-test-judge")
    base = ["run", calc_test, "--results-dir", results, "--agent", "demo", "--tiers", "T0", "--max-subtests", 1,
            "--runs", 1, "--no-report", "--on-rate-limit", "exit", "--judge", "command"]
    # A reset an hour away is beyond the client's short retries: it must close the experiment's gate.
    with FakeJudgeAPI([], default=rate_limited(retry_after=3600)) as api:
        limited = run_cli(*base, "--judge", f"openai:gpt-4o@{api.openai_url}", env=env)
    assert limited.returncode == 2, limited.stderr
    exp = results / "calc"
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["rate_limit_source"] == "judge" and checkpoint["status"] == "paused_rate_limit"
    attempt = json.loads((exp / "T0/00/run_01/attempts/01/run_result.json").read_text())
    assert attempt["status"] == "rate_limited" and completed_runs(exp) == {}

    # With a judge that answers, the run is graded by both judges (a new server URL is a new judge
    # spec, so this starts afresh; the paused experiment is kept aside as a backup).
    with FakeJudgeAPI([], default=scores(all_items)) as api:
        done = run_cli(*base, "--judge", f"openai:gpt-4o@{api.openai_url}", "--fresh", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads((exp / "T0/00/run_01/run_result.json").read_text())
    assert [j["spec"].split("@")[0] for j in result["judges"]] == ["command", "openai:gpt-4o"]
    assert all(j["is_valid"] for j in result["judges"])
    assert result["judge_score"] == sum(j["score"] for j in result["judges"]) / 2


WEEKLY_AGENT = '''
import json, pathlib, sys
calls = pathlib.Path(sys.argv[1])
with calls.open("a") as f:
    f.write("x\\n")
print(json.dumps({"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
                  "result": sys.argv[2]}))
sys.exit(1)
'''


def test_weekly_limit_naming_a_weekday_pauses_until_that_weekday_printed_in_local_time(tmp_path, calc_test):
    berlin, tokyo = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    target = datetime.now(berlin).date() + timedelta(days=3)  # always ahead, whatever today is
    message = f"Weekly limit reached · resets {target.strftime('%a')} 12:00am (Europe/Berlin) · /upgrade"
    reset = datetime.combine(target, dtime(0), berlin)
    script = tmp_path / "weekly_agent.py"
    script.write_text(WEEKLY_AGENT)
    calls = tmp_path / "calls"
    cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(calls))} {shlex.quote(message)}"
    args = ["run", calc_test, "--results-dir", tmp_path / "results", "--agent", "command", "--agent-opt", f"cmd={cmd}",
            "--tiers", "T0", "--max-subtests", 1, "--runs", 1, "--parallel", 1, "--no-report", "--on-rate-limit", "exit",
            "--sandbox", "none"]  # the agent counts its calls in the test's tmp dir, which the sandbox hides
    env = cli_env(TZ="Asia/Tokyo")
    first = run_cli(*args, env=env)
    assert first.returncode == 2, first.stderr
    local = reset.astimezone(tokyo).strftime("%a %Y-%m-%d %H:%M:%S JST")  # e.g. "Thu 2026-11-26 08:00:00 JST"
    assert f"Rate limited until {local} (agent)" in first.stderr, first.stderr
    checkpoint = json.loads((tmp_path / "results" / "calc" / "checkpoint.json").read_text())
    assert datetime.fromisoformat(checkpoint["rate_limit_until"]) == reset
    second = run_cli(*args, env=env)
    assert second.returncode == 2 and f"until {local}" in second.stderr, second.stderr
    assert len(calls.read_text().splitlines()) == 1, "no new attempt before that weekday"
