"""T5 (`inherit_best_from`) and T6 end to end: the best subtest of each lower tier is chosen by the
rule, written to best_subtest.json, and its files are in the later tier's workspace when its agent
runs. The agent here is a real command that fixes calc.py only when the workspace's HINTS.md asks it
to, and lists every file it sees, so which subtest was inherited is visible in its log."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.testdirs import FIXED, make_test_dir, write_yaml

AGENT = f"""\
import os, pathlib
ws = pathlib.Path(os.environ["TIERBENCH_WORKSPACE"])
for path in sorted(p for p in ws.rglob("*") if p.is_file() and ".git" not in p.relative_to(ws).parts):
    text = path.read_text()
    print("FILE", path.relative_to(ws), "=", text.strip().splitlines()[0] if text.strip() else "")
hints = ws / "HINTS.md"
if hints.exists() and "apply-fix" in hints.read_text():
    (ws / "calc.py").write_text({FIXED!r})
"""

SUBTESTS = {
    "T0": {"00-plain.yaml": {},
           "01-hinted.yaml": {"files": {"HINTS.md": "apply-fix", "t0.txt": "from T0/01"}}},
    # Inverting the rule would pick 00, the decoy, whose file then shows up in T5 instead.
    "T1": {"00-decoy.yaml": {"files": {"t1-decoy.txt": "from T1/00"}},
           "01-hinted.yaml": {"files": {"HINTS.md": "apply-fix", "t1.txt": "from T1/01"}}},
    "T5": {"00-hybrid.yaml": {"inherit_best_from": ["T0", "T1"], "files": {"t5.txt": "from T5/00"}},
           # Its own HINTS.md wins over the inherited one and withholds the fix: it must lose.
           "01-withheld.yaml": {"inherit_best_from": ["T1"], "files": {"HINTS.md": "keep-bug"}}},
    # T6 merges the best T5 subtest as declared (its own files; what T5 inherited is not passed on).
    "T6": {"00-super.yaml": {"inherit_best_from": ["T5"],
                             "files": {"t6.txt": "from T6/00", "HINTS.md": "apply-fix"}}},
}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("inherit")
    test_dir = make_test_dir(root / "tests", "calc", tiers=("T0", "T1", "T5", "T6"), subtests=1)
    for tier, files in SUBTESTS.items():
        for old in (test_dir / "tiers" / tier).glob("*.yaml"):
            old.unlink()
        for name, body in files.items():
            write_yaml(test_dir / "tiers" / tier / name, {"description": name, **body})
    agent = root / "agent.py"
    agent.write_text(AGENT)
    # The agent script lives in the test's tmp dir, which the sandbox's private /tmp hides.
    proc = run_cli("run", test_dir, "--results-dir", root / "results", "--runs", 2, "--parallel", 2,
                   "--agent", "command", "--agent-opt", f"cmd={sys.executable} {agent}", "--no-report",
                   "--sandbox", "none")
    return proc, root / "results" / "calc"


def _files_seen(exp: Path, tier: str, subtest: str, run: int = 1) -> dict[str, str]:
    log = (exp / tier / subtest / f"run_{run:02d}" / "agent" / "stdout.log").read_text()
    seen = {}
    for line in log.splitlines():
        if line.startswith("FILE "):
            name, _, first = line[5:].partition(" = ")
            seen[name] = first
    return seen


def _result(exp: Path, tier: str, subtest: str, run: int = 1) -> dict:
    return json.loads((exp / tier / subtest / f"run_{run:02d}" / "run_result.json").read_text())


def test_every_tier_ran_and_the_hinted_subtests_passed(experiment):
    proc, exp = experiment
    assert proc.returncode == 0, proc.stderr
    statuses = {f"{t}/{s}": _result(exp, t, s, r)["status"]
                for t, subs in SUBTESTS.items() for s in (n[:2] for n in subs) for r in (1, 2)}
    assert statuses == {"T0/00": "failed", "T0/01": "passed", "T1/00": "failed", "T1/01": "passed",
                        "T5/00": "passed", "T5/01": "failed", "T6/00": "passed"}


def test_best_subtests_follow_the_rule(experiment):
    _, exp = experiment
    best = {tier: json.loads((exp / tier / "best_subtest.json").read_text()) for tier in ("T0", "T1", "T5")}
    assert {tier: b["subtest"] for tier, b in best.items()} == {"T0": "01", "T1": "01", "T5": "00"}
    assert best["T1"]["median_score"] > best["T1"]["candidates"]["00"]["median_score"]


def test_t5_ran_with_the_files_of_the_best_lower_subtests(experiment):
    _, exp = experiment
    for run in (1, 2):
        seen = _files_seen(exp, "T5", "00", run)
        assert seen["t0.txt"] == "from T0/01" and seen["t1.txt"] == "from T1/01", seen
        assert seen["t5.txt"] == "from T5/00" and seen["HINTS.md"] == "apply-fix"
        assert "t1-decoy.txt" not in seen
    withheld = _files_seen(exp, "T5", "01")
    assert withheld["t1.txt"] == "from T1/01" and withheld["HINTS.md"] == "keep-bug", withheld
    assert "t0.txt" not in withheld  # it inherits from T1 only


def test_t6_ran_with_the_best_t5_subtest_after_t5_finished(experiment):
    _, exp = experiment
    seen = _files_seen(exp, "T6", "00")
    assert seen["t5.txt"] == "from T5/00" and seen["t6.txt"] == "from T6/00", seen
    assert json.loads((exp / "T5" / "best_subtest.json").read_text())["subtest"] == "00"
    # The tier order holds: T5 starts after T0 and T1 finished, T6 after T5.
    def times(tier: str, key: str) -> list[datetime]:
        return [datetime.fromisoformat(_result(exp, tier, s[:2], r)[key])
                for s in SUBTESTS[tier] for r in (1, 2)]
    assert min(times("T5", "started_at")) >= max(times("T0", "finished_at") + times("T1", "finished_at"))
    assert min(times("T6", "started_at")) >= max(times("T5", "finished_at"))
