"""The report's usage table: every offered skill, sub-agent and MCP server gets a row, used or not,
and the shares recompute from the run_result.json files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import yaml

from tests.support.testdirs import make_test_dir
from tierbench.config import ExperimentConfig, save_config
from tierbench.models import RunResult, RunStatus, ToolUsage
from tierbench.report import load_experiment_runs, write_report
from tierbench.report.usage import offered_by_files, usage_rows
from tierbench.store.atomic import atomic_write_json

FILES = {
    ".claude/skills/fixer/SKILL.md": "---\nname: fixer\n---\n",
    ".claude/skills/unused/SKILL.md": "---\nname: unused\n---\n",
    ".claude/agents/reviewer.md": "---\nname: reviewer\n---\n",
    ".mcp.json": json.dumps({"mcpServers": {"github": {"command": "x"}, "idle": {"command": "y"}}}),
    "CLAUDE.md": "not a skill\n",
}


def _experiment(tmp_path: Path) -> Path:
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=1)
    (test_dir / "tiers" / "T1" / "00-variant0.yaml").write_text(yaml.safe_dump({"files": FILES}))
    exp = tmp_path / "exp"
    shutil.copytree(test_dir, exp / "config" / "test")
    save_config(ExperimentConfig(experiment_id="e", test_id="calc", test_dir=str(test_dir), tiers=("T0", "T1")),
                exp / "config" / "experiment.json")
    uses = {
        ("T0", 1): ToolUsage(tool_calls={"Bash": 2}, turns=3),
        ("T1", 1): ToolUsage(tool_calls={"Skill": 2, "Agent": 1, "mcp__github__search": 1},
                             skills={"fixer": 2}, subagents={"reviewer": 1}, mcp_tools={"github/search": 1}, turns=5),
        ("T1", 2): ToolUsage(tool_calls={"Skill": 1, "Task": 1}, skills={"fixer": 1},
                             subagents={"general-purpose": 1}, turns=2),
        ("T1", 3): ToolUsage(tool_calls={"Bash": 1}, turns=1),
    }
    for (tier, run), usage in uses.items():
        result = RunResult(tier=tier, subtest="00", run_number=run, status=RunStatus.PASSED, judge_score=1.0,
                           usage=usage, agent="claude-code")
        atomic_write_json(exp / tier / "00" / f"run_{run:02d}" / "run_result.json", result)
    # A rate-limited attempt is not a result: its usage never counts.
    limited = RunResult(tier="T1", subtest="00", run_number=4, status=RunStatus.RATE_LIMITED,
                        usage=ToolUsage(skills={"unused": 1}))
    atomic_write_json(exp / "T1/00/run_04/attempts/01/run_result.json", limited)
    return exp


def test_offered_by_files():
    offered = offered_by_files(FILES)
    assert offered == {"skill": {"fixer", "unused"}, "sub-agent": {"reviewer"}, "MCP server": {"github", "idle"}}


def test_rows_count_runs_offered_items_and_only_results(tmp_path):
    rows = {(r.tier, r.kind, r.name): r for r in usage_rows(load_experiment_runs(_experiment(tmp_path)))}
    assert not [key for key in rows if key[0] == "T0"], "T0 offered and used nothing"
    fixer = rows[("T1", "skill", "fixer")]
    assert (fixer.offered, fixer.runs_used, fixer.runs, fixer.calls) == (True, 2, 3, 3)
    unused = rows[("T1", "skill", "unused")]
    assert (unused.offered, unused.runs_used, unused.calls) == (True, 0, 0)
    assert rows[("T1", "sub-agent", "reviewer")].runs_used == 1
    general = rows[("T1", "sub-agent", "general-purpose")]
    assert (general.offered, general.runs_used) == (False, 1)
    assert rows[("T1", "MCP tool", "github/search")].offered is True
    idle = rows[("T1", "MCP tool", "idle/*")]
    assert (idle.offered, idle.runs_used) == (True, 0)


def test_report_has_the_table_and_usage_csv(tmp_path):
    exp = _experiment(tmp_path)
    write_report(exp, formats={"md", "csv"})
    report = (exp / "report.md").read_text()
    assert "| T1 | 00 | skill | fixer | yes | 2 of 3 | 67% | 3 |" in report
    assert "| T1 | 00 | skill | unused | yes | 0 of 3 | 0% | 0 |" in report
    with (exp / "usage.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"tier": "T1", "subtest": "00", "kind": "skill", "name": "fixer", "offered": "True",
            "runs_used": "2", "runs": "3", "share": "0.6667", "calls": "3"} in rows
