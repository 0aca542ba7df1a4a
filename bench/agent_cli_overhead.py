"""What one run costs per agent CLI, offline: `tierbench run` of the calc test (one scripted edit,
then a final message) against the local fake server for each agent's protocol, inside a
loopback-only network namespace. Prints, per agent, the median over N runs of the agent process's
own time (`agent_duration_seconds`) and of the whole `tierbench run` command, side by side.

    .venv/bin/python bench/agent_cli_overhead.py [N]      # default N=3; needs `make agents`

No pass/fail goal: the numbers are for choosing timeouts and comparing agents' start-up costs.
"""

from __future__ import annotations

import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cli import cli_env, run_cli  # noqa: E402
from tests.support.fake_chat import FakeChat  # noqa: E402
from tests.support.fake_gemini import FakeGemini  # noqa: E402
from tests.support.fake_responses import FakeResponses  # noqa: E402
from tests.support.fake_scripted import text_turn, tool_turn  # noqa: E402
from tests.support.netns import loopback_only_network  # noqa: E402
from tests.support.testdirs import FIXED, make_test_dir  # noqa: E402
from tests.e2e.agent_runs import BINARIES  # noqa: E402

FIX = f"printf %s {shlex.quote(FIXED)} > calc.py"
KEY = "sk-bench-not-a-key"


def _setup(agent: str):
    """(fake server, model, env, extra args) for one agent."""
    if agent == "codex":
        api = FakeResponses([tool_turn("exec_command", {"cmd": FIX}), text_turn("Fixed.")])
        return api, "gpt-5-mini", lambda url: {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{url}/v1"}, []
    if agent == "gemini":
        api = FakeGemini([tool_turn("run_shell_command", {"command": FIX}), text_turn("Fixed.")])
        return api, "gemini-2.5-flash", lambda url: {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": url}, []
    if agent == "opencode":
        api = FakeChat([tool_turn("bash", {"command": FIX, "description": "fix"}), text_turn("Fixed.")])
    elif agent == "mini-swe-agent":
        api = FakeChat([tool_turn("bash", {"command": FIX}),
                        tool_turn("bash", {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"})])
    else:  # aider
        api = FakeChat([text_turn(f"calc.py\n```python\n{FIXED}```\n")], main_when="all", turns_by="requests")
        return (api, "gpt-4o-mini", lambda url: {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{url}/v1"},
                ["--agent-opt", "edit_format=whole"])
    return api, "gpt-4o-mini", lambda url: {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{url}/v1"}, []


def measure(agent: str, runs: int) -> tuple[list[float], list[float]] | None:
    binary = ROOT / BINARIES[agent][1]
    if not binary.exists():
        print(f"{agent:15s} not installed ({binary}); run `make agents`")
        return None
    agent_times, command_times = [], []
    for index in range(runs):
        with tempfile.TemporaryDirectory(prefix="tb-bench-") as scratch:
            root = Path(scratch)
            test_dir = make_test_dir(root / "tests", "calc", tiers=("T0",), subtests=1)
            api, model, env_for, extra = _setup(agent)
            with api:
                started = time.monotonic()
                proc = run_cli("run", test_dir, "--results-dir", root / "results", "--agent", agent,
                               "--agent-opt", f"bin={binary}", "--model", model, "--tiers", "T0", "--runs", 1,
                               "--timeout", 120, "--no-report", *extra,
                               env=cli_env(HOME=str(root), **env_for(api.url)), timeout=300)
                elapsed = time.monotonic() - started
            result_file = root / "results" / "calc" / "T0" / "00" / "run_01" / "run_result.json"
            if proc.returncode != 0 or not result_file.exists():
                print(f"{agent}: run {index + 1} did not finish (exit {proc.returncode}): {proc.stderr[-300:]}")
                return None
            agent_times.append(json.loads(result_file.read_text())["agent_duration_seconds"])
            command_times.append(elapsed)
    return agent_times, command_times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"median of {runs} offline runs each (one scripted edit + final message)")
    print(f"{'agent':15s} {'agent process s':>16s} {'tierbench run s':>16s} {'agent share':>12s}")
    with loopback_only_network():
        for agent in BINARIES:
            measured = measure(agent, runs)
            if measured is None:
                continue
            agent_median, command_median = statistics.median(measured[0]), statistics.median(measured[1])
            print(f"{agent:15s} {agent_median:16.2f} {command_median:16.2f} {agent_median / command_median:12.0%}")


if __name__ == "__main__":
    main()
