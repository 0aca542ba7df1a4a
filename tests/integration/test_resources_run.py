"""The library example run end to end with the demo agent: composed files reach each run's
workspace, extends_previous follows the recorded best subtests, and each run records its resolved
configuration, provenance and size."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.support.cli import completed_runs, run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tests" / "py-roman"


def test_library_example_runs_cumulatively_with_provenance(tmp_path: Path) -> None:
    proc = run_cli("run", EXAMPLE, "--results-dir", tmp_path, "--agent", "demo", "--runs", 1,
                   "--keep-workspaces", "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "py-roman"
    assert len(completed_runs(exp)) == 8
    best = {tier: json.loads((exp / tier / "best_subtest.json").read_text())["subtest"] for tier in ("T0", "T1", "T2")}
    run_dir = exp / "T3" / "01" / "run_01"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["extends_from"] == ["T2/00", f"T1/{best['T1']}", f"T0/{best['T0']}"]
    snapshot = load_snapshot_subtests(exp)
    expected_files = {**snapshot.get(f"T0/{best['T0']}", {}), **snapshot.get(f"T1/{best['T1']}", {}),
                      **snapshot["T3/01"]}
    assert set(config["files"]) == set(expected_files)
    workspace = run_dir / "workspace"
    for rel, content in expected_files.items():  # what the agent saw is exactly the composition
        assert (workspace / rel).read_text() == content, rel
    assert config["mcp_servers"] == {"git": {"type": None, "command": "uvx", "args": ["mcp-server-git", "--repository", "."],
                                             "env": {}, "url": None, "headers": {}}}
    assert config["provenance"]["files/.claude/agents/architect.md"] == \
        "T3/01 resources.agents name: library agents/L2/architect.md"
    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["config_size"] == config["config_size"]
    assert result["config_size"]["agents"] == 3 and result["config_size"]["mcp_servers"] == 1
    report = run_cli("report", exp, "--format", "csv")
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader((exp / "runs.csv").open()))
    row = next(r for r in rows if (r["tier"], r["subtest"]) == ("T3", "01"))
    assert [int(row[k]) for k in ("claude_md_lines", "skills", "subagents", "mcp_servers", "config_files")] == [
        config["config_size"][k] for k in ("claude_md_lines", "skills", "agents", "mcp_servers", "files")]
    assert {r["subagents"] for r in rows if r["tier"] == "T0"} == {"0"}


def load_snapshot_subtests(exp: Path) -> dict[str, dict[str, str]]:
    composed = json.loads((exp / "config" / "test" / ".composed.json").read_text())
    return {key: {rel: composed["blobs"][digest] for rel, digest in entry["files"].items()}
            for key, entry in composed["subtests"].items()}
