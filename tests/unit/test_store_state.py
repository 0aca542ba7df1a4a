"""StateStore on real files: recording, reopening after crashes, rebuilding, reconciling."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tierbench.models import ExperimentStatus, RateLimitInfo, RateLimitKind, RunKey, RunResult, RunStatus
from tierbench.store import state as state_module
from tierbench.store.checkpoint import Checkpoint, load_checkpoint
from tierbench.store.journal import replay
from tierbench.store.layout import ExperimentLayout
from tierbench.store.state import StateStore

PASSED, FAILED = RunStatus.PASSED, RunStatus.FAILED


def keys(n: int, tier: str = "T0") -> list[RunKey]:
    return [RunKey(tier=tier, subtest=f"{i // 3:02d}", run=i % 3 + 1) for i in range(n)]


def write_result(layout: ExperimentLayout, key: RunKey, status: RunStatus = PASSED) -> None:
    layout.run_dir(key).mkdir(parents=True, exist_ok=True)
    result = RunResult(tier=key.tier, subtest=key.subtest, run_number=key.run, status=status)
    layout.run_result(key).write_text(result.model_dump_json())


def open_store(layout: ExperimentLayout, planned: list[RunKey]) -> tuple[StateStore, list[str]]:
    store, notes = StateStore.open(layout, experiment_id="exp-1", config_hash="abc", planned=planned)
    return store, notes.fixed


def complete(layout: ExperimentLayout, store: StateStore, key: RunKey, status: RunStatus = PASSED) -> None:
    write_result(layout, key, status)  # as a run does: result file first, then the coordinator records it
    store.record_run(key, status)


def journal_events(layout: ExperimentLayout, ev: str | None = None) -> list[dict]:
    events = [json.loads(line) for line in layout.journal.read_text().splitlines()]
    return [e for e in events if ev is None or e["ev"] == ev]


@pytest.fixture
def layout(tmp_path: Path) -> ExperimentLayout:
    return ExperimentLayout(tmp_path / "exp")


def test_fresh_open_records_and_closes(layout: ExperimentLayout) -> None:
    planned = keys(6)
    store, notes = open_store(layout, planned)
    assert notes == [] and dict(store.completed) == {}
    cp = load_checkpoint(layout.checkpoint)
    assert cp.pid is not None and cp.experiment_dir == str(layout.root.resolve()) and cp.config_hash == "abc"
    complete(layout, store, planned[0])
    complete(layout, store, planned[4], FAILED)
    store.record_attempt(planned[1], RunStatus.RATE_LIMITED)
    store.record_attempt(planned[2], RunStatus.ERROR)
    assert dict(store.completed) == {planned[0]: PASSED, planned[4]: FAILED}
    assert store.counts_by_tier() == {"T0": {"passed": 1, "failed": 1}}
    with pytest.raises(ValueError):
        store.record_run(planned[3], RunStatus.ERROR)
    with pytest.raises(ValueError):
        store.record_attempt(planned[3], PASSED)
    store.close(ExperimentStatus.INTERRUPTED)
    store.close()  # twice is harmless
    cp = load_checkpoint(layout.checkpoint)
    assert cp.pid is None and cp.status == "interrupted"
    assert cp.completed_runs == {"T0": {"00": {"1": "passed"}, "01": {"2": "failed"}}}
    assert (cp.rate_limited_attempts, cp.error_attempts) == (1, 1)
    assert cp.journal_offset == layout.journal.stat().st_size


def test_record_run_is_idempotent_and_refuses_a_second_outcome(layout: ExperimentLayout) -> None:
    planned = keys(3)
    store, _ = open_store(layout, planned)
    complete(layout, store, planned[0])
    store.record_run(planned[0], PASSED)
    store.record_run(RunKey(tier="T0", subtest="00", run=1), "passed")  # an equal key built elsewhere
    assert len(journal_events(layout, "run")) == 1
    with pytest.raises(ValueError, match="already recorded as passed"):
        store.record_run(planned[0], FAILED)
    store.close()


def test_reopen_after_a_crash_keeps_every_recorded_run(layout: ExperimentLayout, monkeypatch) -> None:
    monkeypatch.setattr(state_module, "SNAPSHOT_EVERY_EVENTS", 4)
    planned = keys(30)
    store, _ = open_store(layout, planned)
    for key in planned[:10]:
        complete(layout, store, key)
    # No close(): the process died. The snapshot is behind; the journal tail has the rest.
    assert load_checkpoint(layout.checkpoint).completed_count() < 10
    reopened, notes = open_store(layout, planned)
    assert notes == []
    assert set(reopened.completed) == set(planned[:10])
    reopened.close()


def test_snapshot_plus_tail_equals_full_replay(layout: ExperimentLayout, monkeypatch) -> None:
    monkeypatch.setattr(state_module, "SNAPSHOT_EVERY_EVENTS", 3)
    planned = keys(12)
    store, _ = open_store(layout, planned)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    for index, key in enumerate(planned[:9]):
        complete(layout, store, key, PASSED if index % 2 else FAILED)
        store.record_attempt(planned[11], RunStatus.ERROR)
        if index == 4:
            store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="agent", reset_at=until))
            store.record_attempt(planned[10], RunStatus.RATE_LIMITED)
    store.record_attempt(planned[10], RunStatus.INTERRUPTED)  # one more, so the journal has a tail
    # crashed: compare the snapshot + tail with a replay of everything from nothing
    snapshot = load_checkpoint(layout.checkpoint)
    assert snapshot.journal_offset < layout.journal.stat().st_size
    size = layout.journal.stat().st_size
    replay(snapshot, layout.journal, size, [])
    full = Checkpoint.empty(experiment_id="", experiment_dir=layout.root, config_hash="")
    replay(full, layout.journal, size, [])
    fields = {"started_at", "last_updated_at", "journal_offset", "experiment_dir", "pid"}
    assert snapshot.model_dump(exclude=fields) == full.model_dump(exclude=fields)
    assert full.model_dump(exclude=fields) == store.checkpoint.model_dump(exclude=fields)


def test_torn_last_line_is_truncated_and_reported(layout: ExperimentLayout) -> None:
    planned = keys(3)
    store, _ = open_store(layout, planned)
    complete(layout, store, planned[0])
    with open(layout.journal, "ab") as handle:
        handle.write(b'{"seq":99,"at":"2025-01-01","ev":"run","tier":"T0","sub')
    reopened, notes = open_store(layout, planned)
    assert any("torn last line" in note for note in notes)
    assert b'"seq":99' not in layout.journal.read_bytes()
    assert [e["seq"] for e in journal_events(layout)] == [1, 2, 3]  # cut, then this session's "open"
    assert set(reopened.completed) == {planned[0]}
    reopened.close()


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_checkpoint_is_rebuilt_from_the_journal(layout: ExperimentLayout, damage: str) -> None:
    planned = keys(9)
    store, _ = open_store(layout, planned)
    for key in planned[:5]:
        complete(layout, store, key)
    until = datetime.now(timezone.utc) + timedelta(hours=2)
    store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="judge", reset_at=until, message="5h"))
    store.close(ExperimentStatus.PAUSED_RATE_LIMIT)
    first_start = load_checkpoint(layout.checkpoint).started_at
    if damage == "truncate":
        layout.checkpoint.write_bytes(layout.checkpoint.read_bytes()[:100])
    else:
        layout.checkpoint.unlink()
    reopened, notes = open_store(layout, planned)
    assert any("rebuilt the state from journal.jsonl" in note for note in notes)
    if damage == "truncate":
        assert any("corrupt" in note for note in notes)
        assert list(layout.root.glob("checkpoint.json.corrupt-*"))
    assert set(reopened.completed) == set(planned[:5])
    cp = reopened.checkpoint
    assert (cp.status, cp.rate_limit_until, cp.rate_limit_source, cp.pause_count) == (
        "paused_rate_limit", until, "judge", 1)
    assert abs((cp.started_at - first_start).total_seconds()) < 1  # from the first journal event
    reopened.close()
    assert load_checkpoint(layout.checkpoint).completed_count() == 5


def test_reconcile_adopts_drops_and_cleans_temp_files(layout: ExperimentLayout) -> None:
    planned = keys(9)
    store, _ = open_store(layout, planned)
    for key in planned[:4]:
        complete(layout, store, key)
    store.close()
    layout.run_result(planned[1]).unlink()  # recorded, result gone -> drop
    layout.run_result(planned[2]).write_bytes(b"")  # recorded, empty -> drop
    write_result(layout, planned[5], FAILED)  # finished, never recorded (crash) -> adopt
    write_result(layout, planned[6], RunStatus.ERROR)  # not a result -> stays pending
    layout.run_dir(planned[7]).mkdir(parents=True)
    layout.run_result(planned[7]).write_text("{not json")  # invalid -> stays pending
    (layout.run_dir(planned[5]) / ".run_result.json.abc.tmp").write_text("partial")
    (layout.agent_dir(planned[7])).mkdir()
    (layout.agent_dir(planned[7]) / ".stdout.log.x1.tmp").write_text("partial")
    (layout.root / ".checkpoint.json.zz.tmp").write_text("partial")
    workspace_tmp = layout.workspace(planned[7]) / ".keep.tmp"  # the agent's own files: never ours
    workspace_tmp.parent.mkdir()
    workspace_tmp.write_text("agent file")
    reopened, notes = open_store(layout, planned)
    assert dict(reopened.completed) == {planned[0]: PASSED, planned[3]: PASSED, planned[5]: FAILED}
    text = "\n".join(notes)
    assert "T0/00/run_02: recorded as passed but its run_result.json is missing" in text
    assert "run_result.json is empty" in text
    assert "T0/01/run_03: adopted failed" in text
    assert "not a result" in text and "is invalid" in text
    assert "removed 3 leftover temp file(s)" in text
    assert workspace_tmp.exists()
    reconciles = journal_events(layout, "reconcile")
    assert sorted((e["action"], e["subtest"], e["run"]) for e in reconciles) == [
        ("adopt", "01", 3), ("drop", "00", 2), ("drop", "00", 3)]
    reopened.close()
    # The journal is the truth: a replay from nothing agrees with what reconciliation decided.
    layout.checkpoint.unlink()
    again, notes = open_store(layout, planned)
    assert dict(again.completed) == {planned[0]: PASSED, planned[3]: PASSED, planned[5]: FAILED}
    again.close()


def test_rate_limit_survives_reopen_and_clears(layout: ExperimentLayout) -> None:
    planned = keys(3)
    store, _ = open_store(layout, planned)
    until = datetime(2031, 5, 1, 12, 0, tzinfo=timezone.utc)
    store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="agent", reset_at=until,
                                          message="weekly limit"))
    store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="judge",
                                          reset_at=until + timedelta(hours=1), message="later reset"))
    # no close: a kill -9 right after the rate limit was recorded
    reopened, _ = open_store(layout, planned)
    cp = reopened.checkpoint
    assert cp.status == "paused_rate_limit" and cp.rate_limit_until == until + timedelta(hours=1)
    assert (cp.rate_limit_source, cp.rate_limit_message, cp.pause_count) == ("judge", "later reset", 1)
    reopened.clear_rate_limit(42.0)
    reopened.close()
    cp = load_checkpoint(layout.checkpoint)
    assert (cp.status, cp.rate_limit_until, cp.total_pause_seconds, cp.pause_count) == ("running", None, 42.0, 1)


def test_set_status_validates_and_snapshots(layout: ExperimentLayout) -> None:
    store, _ = open_store(layout, keys(1))
    store.set_status(ExperimentStatus.COMPLETED)
    assert load_checkpoint(layout.checkpoint).status == "completed"
    with pytest.raises(ValueError, match="unknown checkpoint status"):
        store.set_status("done")  # type: ignore[arg-type]
    store.close()
    with pytest.raises(RuntimeError):
        store.record_attempt(keys(1)[0], RunStatus.ERROR)


def test_unplanned_recorded_runs_are_kept(layout: ExperimentLayout) -> None:
    store, _ = open_store(layout, keys(6, "T1"))
    for key in keys(6, "T1"):
        complete(layout, store, key)
    store.close()
    reopened, notes = open_store(layout, keys(3, "T1"))  # a smaller plan must not forget results
    assert notes == [] and len(reopened.completed) == 6
    reopened.close()


def test_completed_is_a_live_read_only_view(layout: ExperimentLayout) -> None:
    planned = keys(6)
    store, _ = open_store(layout, planned)
    view = store.completed
    complete(layout, store, planned[2], FAILED)
    assert len(view) == 1 and planned[2] in view and RunKey(tier="T0", subtest="00", run=3) in view
    assert next(iter(view)) is planned[2]  # iteration hands back the caller's own key objects
    assert view[RunKey(tier="T0", subtest="00", run=3)] is FAILED and view.get(planned[0]) is None
    assert list(view.values()) == [FAILED] and "T0/00/run_03" not in view
    with pytest.raises(TypeError):
        view[planned[0]] = PASSED  # type: ignore[index]
    store.close()
