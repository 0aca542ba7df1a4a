"""check (read-only comparison) and repair (rebuild from run_result.json files) on real directories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tierbench.config import ExperimentConfig, save_config
from tierbench.models import ExperimentStatus, RunKey, RunResult, RunStatus
from tierbench.store.checkpoint import load_checkpoint
from tierbench.store.layout import ExperimentLayout
from tierbench.errors import TierbenchError
from tierbench.store.lock import ExperimentLock, LockHeld
from tierbench.store.repair import check_experiment, format_repair_report, repair_experiment
from tierbench.store.state import StateStore

PASSED, FAILED = RunStatus.PASSED, RunStatus.FAILED


def write_result(layout: ExperimentLayout, key: RunKey, status: RunStatus = PASSED) -> None:
    layout.run_dir(key).mkdir(parents=True, exist_ok=True)
    result = RunResult(tier=key.tier, subtest=key.subtest, run_number=key.run, status=status)
    layout.run_result(key).write_text(result.model_dump_json())


def k(tier: str, subtest: str, run: int) -> RunKey:
    return RunKey(tier=tier, subtest=subtest, run=run)


PLANNED = [k(tier, f"{s:02d}", run) for tier in ("T0", "T1") for s in range(2) for run in (1, 2, 3)]


def build(root: Path, recorded: int = 8) -> ExperimentLayout:
    """An experiment whose first `recorded` planned runs finished and were recorded; T0 passes, T1 fails."""
    layout = ExperimentLayout(root)
    save_config(ExperimentConfig(experiment_id="exp-cfg", test_id="t", test_dir="/t", tiers=("T0", "T1")),
                layout.config_file)
    store, _ = StateStore.open(layout, experiment_id="exp-cfg", config_hash="hash-1", planned=PLANNED)
    for key in PLANNED[:recorded]:
        status = PASSED if key.tier == "T0" else FAILED
        write_result(layout, key, status)
        store.record_run(key, status)
    store.close(ExperimentStatus.INTERRUPTED)
    return layout


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def damage(layout: ExperimentLayout) -> None:
    layout.run_result(PLANNED[0]).unlink()  # recorded, file gone
    layout.run_result(PLANNED[1]).write_text('{"tier": "T0", ')  # recorded, file truncated
    write_result(layout, PLANNED[2], FAILED)  # recorded passed, file says failed
    write_result(layout, PLANNED[9], FAILED)  # finished but never recorded
    write_result(layout, PLANNED[10], RunStatus.ERROR)  # a non-result at the top level
    (layout.run_dir(PLANNED[3]) / "judge").mkdir()
    (layout.run_dir(PLANNED[3]) / "judge" / ".judgment.json.k2.tmp").write_text("{")
    (layout.root / ".checkpoint.json.q1.tmp").write_text("{")


def test_check_reports_every_kind_and_changes_nothing(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    assert check_experiment(layout) == []
    damage(layout)
    layout.workspace(PLANNED[4]).mkdir()
    before = tree(layout.root)
    problems = check_experiment(layout)
    assert tree(layout.root) == before
    found = {(p.kind, Path(p.path).relative_to(layout.root).as_posix()) for p in problems}
    assert found == {
        ("missing_result", "T0/00/run_01/run_result.json"),
        ("invalid_result", "T0/00/run_02/run_result.json"),
        ("status_mismatch", "T0/00/run_03/run_result.json"),
        ("unrecorded_result", "T1/01/run_01/run_result.json"),
        ("invalid_result", "T1/01/run_02/run_result.json"),
        ("temp_file", "T0/01/run_01/judge/.judgment.json.k2.tmp"),
        ("temp_file", ".checkpoint.json.q1.tmp"),
        ("stale_worktree", "T0/01/run_02/workspace"),
    }
    details = {p.path.split("/exp/")[1]: p.detail for p in problems}
    assert "recorded as passed" in details["T0/00/run_02/run_result.json"]
    assert "not a result" in details["T1/01/run_02/run_result.json"]


def test_check_sees_torn_journal_and_corrupt_checkpoint_read_only(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    with open(layout.journal, "ab") as handle:
        handle.write(b'{"seq": 50, "ev": "ru')
    layout.checkpoint.write_text('{"version": 1, "experim')
    before = tree(layout.root)
    kinds = {p.kind for p in check_experiment(layout)}
    assert kinds == {"torn_journal", "corrupt_checkpoint"}  # the journal alone still has all 8 runs
    assert tree(layout.root) == before


def test_check_skips_in_flight_artefacts_while_a_coordinator_runs(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    layout.workspace(PLANNED[4]).mkdir()
    (layout.run_dir(PLANNED[4]) / ".run_result.json.x.tmp").write_text("{")
    with ExperimentLock(layout.lock_file):
        assert check_experiment(layout) == []
    assert {p.kind for p in check_experiment(layout)} == {"temp_file", "stale_worktree"}


def test_repair_rebuilds_from_files_with_counts_and_backups(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    damage(layout)
    old_checkpoint = layout.checkpoint.read_bytes()
    old_journal = layout.journal.read_bytes()
    report = repair_experiment(layout.checkpoint)  # the checkpoint path works as well as the directory
    assert report.backup_path is not None and report.backup_path.read_bytes() == old_checkpoint
    assert report.backup_path.name.startswith("checkpoint.json.bak-")
    assert report.journal_backup_path is not None and report.journal_backup_path.read_bytes() == old_journal
    # before: T0 6 passed + T1/00 2 failed = 8; after: T0 run 1,2 gone, run 3 now failed; T1/01/run_01 added
    assert (report.original_count, report.rebuilt_count) == (8, 8 - 2 + 1)
    assert report.by_tier == {"T0": {"original": 6, "rebuilt": 4, "passed": 3, "failed": 1},
                              "T1": {"original": 2, "rebuilt": 3, "passed": 0, "failed": 3}}
    fixed = "\n".join(report.fixed)
    assert "T0/00/run_01: dropped" in fixed and "T0/00/run_02: dropped" in fixed
    assert "T0/00/run_03: passed -> failed" in fixed and "T1/01/run_01: added failed" in fixed
    assert "removed 2 leftover temp file(s)" in fixed
    cp = load_checkpoint(layout.checkpoint)
    assert (cp.experiment_id, cp.config_hash, cp.status, cp.pid) == ("exp-cfg", "hash-1", "interrupted", None)
    assert cp.completed_count() == 7
    assert [json.loads(line)["ev"] for line in layout.journal.read_text().splitlines()] == ["repair"]
    remaining = {(p.kind, p.path.split("/exp/")[1]) for p in check_experiment(layout)}
    assert remaining == {("invalid_result", "T0/00/run_02/run_result.json"),  # files repair cannot fix;
                         ("invalid_result", "T1/01/run_02/run_result.json")}  # a rerun replaces them
    text = format_repair_report(report)
    assert "recorded before: 8" in text and "rebuilt from run files: 7" in text and "difference: -1" in text
    assert "T0" in text and "T1" in text
    store, notes = StateStore.open(layout, experiment_id="exp-cfg", config_hash="hash-1", planned=PLANNED)
    assert len(store.completed) == 7 and store.completed[PLANNED[2]] is FAILED
    assert all("adopted" not in n and "back to pending" not in n for n in notes.fixed)
    store.close()


def test_repair_never_overwrites_an_earlier_backup(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    first = repair_experiment(layout.root)
    first_bytes = first.backup_path.read_bytes()
    second = repair_experiment(layout.root)  # usually within the same second: a counter is added
    third = repair_experiment(layout.root)
    backups = {first.backup_path, second.backup_path, third.backup_path}
    assert len(backups) == 3 and all(p.exists() for p in backups)
    assert first.backup_path.read_bytes() == first_bytes
    assert len(list(layout.root.glob("journal.jsonl.bak-*"))) == 3
    assert third.original_count == third.rebuilt_count == 8


def test_repair_refuses_while_a_coordinator_holds_the_lock(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    with ExperimentLock(layout.lock_file):
        before = tree(layout.root)
        with pytest.raises(LockHeld) as caught:
            repair_experiment(layout.root)
        assert tree(layout.root) == before
    assert caught.value.pid == os.getpid()


def test_repair_with_unreadable_checkpoint_takes_identity_from_config(tmp_path: Path) -> None:
    layout = build(tmp_path / "exp")
    layout.checkpoint.write_text("{")
    layout.journal.unlink()
    report = repair_experiment(layout.root)
    assert report.original_count == 0 and report.rebuilt_count == 8
    assert any("corrupt" in line or "checkpoint" in line for line in report.fixed)
    cp = load_checkpoint(layout.checkpoint)
    config_hash = ExperimentConfig(experiment_id="exp-cfg", test_id="t", test_dir="/t",
                                   tiers=("T0", "T1")).config_hash()
    assert (cp.experiment_id, cp.config_hash) == ("exp-cfg", config_hash)
    assert cp.counts_by_tier() == {"T0": {"passed": 6, "failed": 0}, "T1": {"passed": 0, "failed": 2}}


def test_repair_rejects_a_directory_that_is_not_an_experiment(tmp_path: Path) -> None:
    with pytest.raises(TierbenchError, match="not an experiment directory"):
        repair_experiment(tmp_path)
