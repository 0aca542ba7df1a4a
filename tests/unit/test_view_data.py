"""The viewer's read side: transcript paging, entry normalisation, the run index kept current from
the journal, in-flight detection, filters and the numbers, on real files."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.testdirs import make_test_dir
from tierbench.config import ExperimentConfig, save_config
from tierbench.models import JudgeResult, RunResult, RunStatus, ToolUsage
from tierbench.report import stats
from tierbench.store.lock import ExperimentLock
from tierbench.view import transcript as tr
from tierbench.view.data import ExperimentView, Source, ViewError, summarize

pytest.importorskip("jinja2", reason="the view extra is not installed (make dev installs it)")


# -- transcripts -------------------------------------------------------------------------------------

def _line(event: dict) -> str:
    return json.dumps(event) + "\n"


def test_line_index_pages_and_follows_a_growing_file(tmp_path):
    path = tmp_path / "transcript.jsonl"
    path.write_text("".join(_line({"type": "assistant", "message": {"content": [{"type": "text", "text": f"t{i}"}]}})
                            for i in range(250)) + '{"type": "assist')  # the last line is still being written
    index = tr.line_index(path)
    assert index.lines == 250
    first = tr.page(path, 0)
    assert [e.text for e in first.entries][:2] == ["t0", "t1"] and len(first.entries) == tr.PAGE_LINES
    assert first.next == tr.PAGE_LINES
    last = tr.page(path, 200)
    assert [e.text for e in last.entries][-1] == "t249" and last.next is None
    with open(path, "a") as handle:
        handle.write('ant", "message": {"content": [{"type": "text", "text": "t250"}]}}\n')
    grown = tr.page(path, 200)
    assert grown.total == 251 and grown.entries[-1].text == "t250"
    path.write_text(_line({"type": "result", "result": "replaced", "total_cost_usd": 0.5}))
    assert tr.page(path, 0).entries[0].text == "replaced"  # a shorter file is indexed anew


def test_entries_go_through_the_agents_transcript_reader():
    lines = [
        {"type": "system", "subtype": "init", "model": "m", "tools": ["Bash", "Read"], "mcp_servers": [{"name": "git"}]},
        {"type": "assistant", "message": {"id": "m1", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls -la\nmore"}}],
            "usage": {"input_tokens": 3, "output_tokens": 4}}},
        {"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "same message"}],
                                          "usage": {"input_tokens": 3, "output_tokens": 4}}},
        {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": True,
                                                  "content": [{"type": "text", "text": "boom"}]}]}},
        {"type": "result", "subtype": "success", "result": "done", "total_cost_usd": 0.25, "num_turns": 2},
        {"type": "something_new", "x": 1},
    ]
    seen: set[str] = set()
    out = [e for number, event in enumerate(lines, 1)
           for e in tr.entries(number, json.dumps(event).encode(), "claude-code", seen)]
    kinds = [e.kind for e in out]
    assert kinds == ["system", "text", "usage", "tool_call", "text", "tool_result", "result", "raw"]
    assert "git" in out[0].text and out[0].meta["tools"] == "Bash, Read"
    assert out[2].meta == {"input_tokens": 3, "output_tokens": 4}  # once per message, not per line
    call = out[3]
    assert (call.name, call.tool_id, call.meta["summary"], call.line) == ("Bash", "t1", "ls -la", 2)
    assert json.loads(call.text) == {"command": "ls -la\nmore"}
    assert out[5].is_error and out[5].text == "boom" and out[5].tool_id == "t1"
    assert out[6].meta["cost"] == 0.25 and out[6].text == "done"
    assert "something_new" in out[7].text
    # An agent without a registered reader: every line is still shown, as it is.
    assert [e.kind for e in tr.entries(2, json.dumps(lines[1]).encode(), None)] == ["raw"]
    broken = tr.entries(9, b'{"type": "assistant", "mess')
    assert broken[0].kind == "raw" and broken[0].meta["note"] == "unreadable line" and broken[0].is_error


def test_a_huge_block_is_cut_and_says_how_much():
    text = "y" * (tr.BLOCK_CAP + 10)
    entry = tr.entries(1, json.dumps({"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "a", "content": text}]}}).encode())[0]
    assert len(entry.text) == tr.BLOCK_CAP and entry.truncated == 10


# -- the run index -----------------------------------------------------------------------------------

def _experiment(tmp_path: Path) -> Path:
    """An experiment directory as tierbench lays it out: config, test snapshot, checkpoint-less."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    root = tmp_path / "results" / "calc"
    shutil.copytree(test_dir, root / "config" / "test")
    config = ExperimentConfig(experiment_id="calc-1", test_id="calc", test_dir=str(test_dir), tiers=("T0", "T1"),
                              runs_per_subtest=2, agent="demo")
    save_config(config, root / "config" / "experiment.json")
    (root / "journal.jsonl").write_text("")
    return root


def _result(root: Path, tier: str, subtest: str, run: int, status: str, *, score: float = 1.0, cost: float = 0.1,
            tools: dict[str, int] | None = None, attempt: int | None = None) -> None:
    result = RunResult(tier=tier, subtest=subtest, run_number=run, status=RunStatus(status), judge_score=score,
                       cost_usd=cost, total_tokens=1000, duration_seconds=2.0, agent="demo",
                       usage=ToolUsage(tool_calls=tools or {}), error=None if status in ("passed", "failed") else "x",
                       judges=[JudgeResult(judge_id="judge_01", spec="command", is_valid=True, score=score)],
                       started_at=datetime.now(timezone.utc), finished_at=datetime.now(timezone.utc))
    run_dir = root / tier / subtest / f"run_{run:02d}"
    if attempt is not None:
        run_dir = run_dir / "attempts" / f"{attempt:02d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run_result.json").write_text(result.model_dump_json())


def _event(root: Path, ev: str, **fields) -> None:
    journal = root / "journal.jsonl"
    seq = len(journal.read_text().splitlines()) + 1 if journal.exists() else 1
    with open(journal, "a") as handle:
        handle.write(json.dumps({"seq": seq, "at": "2026-01-01T00:00:00+00:00", "ev": ev, **fields}) + "\n")


def test_index_lists_planned_runs_and_follows_the_journal(tmp_path):
    root = _experiment(tmp_path)
    _result(root, "T0", "00", 1, "passed", tools={"Bash": 3})
    _event(root, "run", tier="T0", subtest="00", run=1, status="passed")
    view = ExperimentView(root, "calc")
    view.refresh(force=True)
    assert len(view.rows) == 8  # 2 tiers x 2 subtests x 2 runs, from the config and the snapshot
    assert view.rows["T0/00/run_01"].status == "passed" and view.rows["T0/00/run_01"].tools == ("Bash",)
    assert view.rows["T1/01/run_02"].status == "pending"
    version = view.version

    # A result the journal does not name yet is not read: the index follows the journal, not a rescan.
    _result(root, "T0", "01", 1, "failed", score=0.2)
    view.refresh(force=True)
    assert view.rows["T0/01/run_01"].status == "pending" and view.version == version
    _event(root, "run", tier="T0", subtest="01", run=1, status="failed")
    _result(root, "T1", "00", 2, "rate_limited", attempt=1)
    _event(root, "attempt", tier="T1", subtest="00", run=2, status="rate_limited")
    view.refresh(force=True)
    assert view.rows["T0/01/run_01"].status == "failed" and view.rows["T0/01/run_01"].score == 0.2
    assert view.rows["T1/00/run_02"].status == "rate_limited" and view.rows["T1/00/run_02"].attempts == 1
    assert view.version > version

    # A replaced journal (tierbench repair) means a full rebuild.
    _result(root, "T1", "01", 1, "passed")
    (root / "journal.jsonl").unlink()
    _event(root, "repair", original="x", rebuilt=3, backup="y")
    view.refresh(force=True)
    assert view.rows["T1/01/run_01"].status == "passed"


def test_filters_and_numbers_count_results_only(tmp_path):
    root = _experiment(tmp_path)
    _result(root, "T0", "00", 1, "passed", cost=0.5, tools={"Read": 1, "Bash": 2})
    _result(root, "T0", "00", 2, "failed", score=0.1, cost=0.25, tools={"Read": 1})
    _result(root, "T0", "01", 1, "error", attempt=1)
    view = ExperimentView(root, "calc")
    view.refresh(force=True)
    assert [r.key for r in view.filter(tool="Bash")] == ["T0/00/run_01"]
    assert [r.key for r in view.filter(tool="Read", outcome="failed")] == ["T0/00/run_02"]
    assert [r.key for r in view.filter(outcome="error")] == ["T0/01/run_01"]
    assert len(view.filter(tier="T1", outcome="pending")) == 4
    assert view.facets()["tool"] == ["Bash", "Read"]
    group = summarize(view.filter(tier="T0"))
    assert (group.planned, group.results, group.passed, group.attempts) == (4, 2, 1, 1)
    assert (group.ci_low, group.ci_high) == stats.wilson_interval(1, 2)
    assert group.cost == pytest.approx(0.75) and group.score_mean == pytest.approx(0.55)
    assert view.best_run("T0").key == "T0/00/run_01"


def test_a_pending_run_with_a_workspace_is_in_flight_only_while_the_lock_is_held(tmp_path):
    root = _experiment(tmp_path)
    (root / "T0" / "01" / "run_02" / "workspace").mkdir(parents=True)
    view = ExperimentView(root, "calc")
    view.refresh(force=True)
    assert view.rows["T0/01/run_02"].status == "pending" and not view.running
    with ExperimentLock(root / ".lock"):
        view.refresh(force=True)
        assert view.running and view.pid == os.getpid()
        assert view.rows["T0/01/run_02"].status == "running"
        assert [r.key for r in view.filter(outcome="running")] == ["T0/01/run_02"]
    view.refresh(force=True)
    assert view.rows["T0/01/run_02"].status == "pending"


def test_source_refuses_what_is_not_an_experiment_or_batch(tmp_path):
    with pytest.raises(ViewError, match="not a directory"):
        Source(tmp_path / "missing")
    with pytest.raises(ViewError, match="neither an experiment directory"):
        Source(tmp_path)
    root = _experiment(tmp_path)
    assert Source(root).kind == "experiment"
    assert Source(root.parent).kind == "batch" and [e.name for e in Source(root.parent).experiments()] == ["calc"]


def test_cli_errors_are_one_line_and_exit_1(tmp_path):
    done = run_cli("view", tmp_path / "missing")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "not a directory" in done.stderr
    root = _experiment(tmp_path)
    inside = run_cli("view", root, "--export", root / "site")
    assert inside.returncode == 1 and "inside the viewed directory" in inside.stderr
    assert not (root / "site").exists()
    bad_port = run_cli("view", root, "--port", "70000")
    assert bad_port.returncode == 1 and "port" in bad_port.stderr


def test_every_agents_transcript_reader_is_known_to_the_viewer():
    """The viewer never imports an adapter, yet a Codex run's transcript must show as tool calls, not
    raw JSON: checked in a fresh interpreter, where nothing else has registered the readers."""
    import subprocess
    import sys

    probe = (
        "import json\n"
        "from tierbench.view import transcript as tr\n"
        "from tierbench.transcript import agent_format\n"
        "formats = {a: agent_format(a) for a in ('codex', 'gemini', 'opencode', 'aider', 'mini-swe-agent')}\n"
        "event = {'type': 'item.completed', 'item': {'id': 'i1', 'type': 'command_execution',\n"
        "         'command': 'ls', 'aggregated_output': 'a.py', 'exit_code': 0, 'status': 'completed'}}\n"
        "kinds = [e.kind for e in tr.entries(1, json.dumps(event).encode(), formats['codex'], set())]\n"
        "print(json.dumps({'formats': formats, 'kinds': kinds}))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert all(seen["formats"].values()), seen["formats"]
    assert "tool_call" in seen["kinds"] and "raw" not in seen["kinds"], seen["kinds"]
