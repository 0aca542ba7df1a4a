"""The per-run agent home, seen through `tierbench run --agent claude-code` with a stand-in CLI.

Without an API key in the environment, a subscription login's credentials file is the one thing
carried into the run's private home: the agent finds it there, the run record names it (never its
contents), and no copy is left anywhere in the experiment directory afterwards. The researcher's
other files in ~/.claude are not there.
"""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.testdirs import FIXED, make_test_dir

LOGIN_SECRET = "oauth-refresh-DO-NOT-COPY-5e1d"

# Reports what it finds in its config dir, fixes calc.py, prints a stream-json transcript.
FAKE_CLAUDE = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, sys
    sys.stdin.read()
    config = os.environ["CLAUDE_CONFIG_DIR"]
    found = sorted(os.listdir(config)) if os.path.isdir(config) else []
    creds = os.path.join(config, ".credentials.json")
    mode = oct(os.stat(creds).st_mode & 0o777) if os.path.exists(creds) else None
    open("calc.py", "w").write({FIXED!r})
    events = [
        {{"type": "system", "subtype": "init", "home": os.environ["HOME"], "config_files": found, "mode": mode}},
        {{"type": "assistant", "message": {{"id": "m1", "content": [
            {{"type": "tool_use", "id": "t1", "name": "Bash", "input": {{"command": "true"}}}}]}}}},
        {{"type": "user", "message": {{"content": [{{"type": "tool_result", "tool_use_id": "t1", "content": ""}}]}}}},
        {{"type": "result", "subtype": "success", "is_error": False, "result": "done", "num_turns": 2,
          "total_cost_usd": 0.01, "usage": {{"input_tokens": 10, "output_tokens": 5}}}},
    ]
    for event in events:
        print(json.dumps(event))
    """)


def test_subscription_login_is_carried_named_and_never_kept(tmp_path):
    researcher = tmp_path / "researcher"
    (researcher / ".claude" / "skills" / "mine").mkdir(parents=True)
    (researcher / ".claude" / ".credentials.json").write_text(json.dumps({"refreshToken": LOGIN_SECRET}))
    (researcher / ".claude" / "CLAUDE.md").write_text("my own rules\n")
    (researcher / ".claude" / "skills" / "mine" / "SKILL.md").write_text("---\nname: mine\n---\n")
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text(FAKE_CLAUDE)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    env = cli_env(HOME=str(researcher))
    for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
        env.pop(name, None)
    # The stand-in CLI lives under the test's tmp dir, which the sandbox's private /tmp hides.
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "claude-code",
                   "--agent-opt", f"bin={fake}", "--runs", 1, "--no-preflight", "--sandbox", "none", env=env)
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "results" / "calc"
    assert completed_runs(exp) == {"T0/00/run_01": "passed"}
    run_dir = exp / "T0" / "00" / "run_01"
    init = json.loads((run_dir / "agent" / "transcript.jsonl").read_text().splitlines()[0])
    assert init["config_files"] == [".credentials.json"], "only the login is carried, nothing else of ~/.claude"
    assert init["mode"] == "0o600"
    assert init["home"].startswith(str(exp / ".private")) and init["home"] != str(researcher)
    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["isolation"]["carried_files"] == [".claude/.credentials.json"]
    assert result["usage"]["tool_calls"] == {"Bash": 1}
    for path in exp.rglob("*"):
        if path.is_file():
            assert LOGIN_SECRET not in path.read_text(errors="ignore"), f"the login was kept in {path}"
    assert not any((exp / ".private").iterdir())
