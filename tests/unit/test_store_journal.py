"""Journal append/replay, torn tails, and the checkpoint file format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierbench.store.checkpoint import Checkpoint, CheckpointCorrupt, load_checkpoint, save_checkpoint
from tierbench.store.journal import Journal, apply_event, iter_events, replay, scan_tail


def empty_checkpoint(tmp_path: Path) -> Checkpoint:
    return Checkpoint.empty(experiment_id="exp", experiment_dir=tmp_path, config_hash="h")


def write_events(path: Path) -> Journal:
    journal, _ = Journal.open(path)
    journal.append("run", tier="T0", subtest="00", run=1, status="passed")
    journal.append("run", tier="T0", subtest="00", run=2, status="failed")
    journal.append("attempt", tier="T0", subtest="00", run=3, status="rate_limited")
    journal.append("rate_limit", until="2030-01-01T00:00:00+00:00", source="agent", message="429", kind="transient")
    journal.append("rate_limit", until="2030-01-01T01:00:00+00:00", source="judge", message="later", kind="quota")
    journal.append("rate_limit_cleared", paused_seconds=12.5)
    journal.append("reconcile", tier="T0", subtest="00", run=2, action="drop", reason="missing")
    journal.append("reconcile", tier="T1", subtest="03", run=4, action="adopt", status="passed", reason="on disk")
    return journal


def test_append_is_one_line_per_event_with_increasing_seq(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = write_events(path)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 8 and journal.seq == 8 and journal.size == path.stat().st_size
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, 9))
    assert events[0] == {**events[0], "ev": "run", "tier": "T0", "subtest": "00", "run": 1, "status": "passed"}
    assert all(e["at"].endswith("+00:00") for e in events)
    journal.close()
    reopened, scan = Journal.open(path)
    assert (reopened.seq, reopened.size, scan.torn_bytes) == (8, journal.size, 0)
    reopened.close()


def test_replay_folds_events_into_the_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write_events(path).close()
    cp = empty_checkpoint(tmp_path)
    notes: list[str] = []
    assert replay(cp, path, path.stat().st_size, notes) == 8
    assert notes == []
    assert cp.completed_runs == {"T0": {"00": {"1": "passed"}}, "T1": {"03": {"4": "passed"}}}
    assert (cp.rate_limited_attempts, cp.error_attempts) == (1, 0)
    assert cp.pause_count == 1  # the second rate_limit extended the same pause
    assert cp.total_pause_seconds == 12.5
    assert (cp.status, cp.rate_limit_until, cp.rate_limit_source) == ("running", None, None)
    assert cp.journal_seq == 8


def test_replay_from_an_offset_skips_events_already_in_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal, _ = Journal.open(path)
    journal.append("run", tier="T0", subtest="00", run=1, status="passed")
    snapshot = empty_checkpoint(tmp_path)
    apply_event(snapshot, json.loads(path.read_bytes()))
    snapshot.journal_offset, snapshot.journal_seq = journal.size, journal.seq
    journal.append("attempt", tier="T0", subtest="00", run=2, status="error")
    journal.append("run", tier="T0", subtest="00", run=2, status="failed")
    journal.close()
    replay(snapshot, path, path.stat().st_size, [])
    full = empty_checkpoint(tmp_path)
    replay(full, path, path.stat().st_size, [])
    assert snapshot.completed_runs == full.completed_runs == {"T0": {"00": {"1": "passed", "2": "failed"}}}
    assert snapshot.error_attempts == full.error_attempts == 1


def test_offset_that_does_not_match_the_journal_falls_back_to_seq(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write_events(path).close()
    cp = empty_checkpoint(tmp_path)
    cp.journal_offset, cp.journal_seq = 10**6, 7  # e.g. the journal was replaced by a shorter one
    notes: list[str] = []
    assert replay(cp, path, path.stat().st_size, notes) == 1  # only seq 8
    assert "replayed the whole journal" in notes[0]
    assert cp.completed_runs == {"T1": {"03": {"4": "passed"}}}


@pytest.mark.parametrize("tail", [b'{"seq":9,"at":"x","ev":"ru', b"\x00" * 300, b"garbage\n"])
def test_torn_last_line_is_found_read_only_and_truncated_on_open(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "journal.jsonl"
    write_events(path).close()
    good = path.read_bytes()
    path.write_bytes(good + tail)
    scan = scan_tail(path)
    assert (scan.good_size, scan.torn_bytes, scan.last_seq) == (len(good), len(tail), 8)
    assert path.read_bytes() == good + tail  # scanning changes nothing
    journal, opened_scan = Journal.open(path)
    assert opened_scan.torn_bytes == len(tail)
    assert path.read_bytes() == good
    journal.append("status", status="interrupted")
    journal.close()
    assert [json.loads(line)["seq"] for line in path.read_bytes().splitlines()][-1] == 9


def test_whole_file_torn_and_empty_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    assert scan_tail(path).size == 0
    path.write_bytes(b'{"seq":1,"a')
    assert (scan_tail(path).good_size, scan_tail(path).last_seq) == (0, 0)
    journal, scan = Journal.open(path)
    assert scan.torn_bytes == 11 and path.read_bytes() == b""
    journal.close()


def test_unreadable_middle_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = [json.dumps({"seq": 1, "ev": "run", "tier": "T0", "subtest": "00", "run": 1, "status": "passed"}),
             "not json",
             json.dumps({"seq": 3, "ev": "run", "tier": "T0", "subtest": "00", "run": 2})]  # missing status
    path.write_text("\n".join(lines) + "\n")
    bad: list[str] = []
    assert [e["seq"] for e in iter_events(path, 0, path.stat().st_size, bad)] == [1, 3]
    assert "unreadable line" in bad[0]
    cp = empty_checkpoint(tmp_path)
    notes: list[str] = []
    replay(cp, path, path.stat().st_size, notes)
    assert cp.completed_runs == {"T0": {"00": {"1": "passed"}}}
    assert any("malformed" in note for note in notes)


def test_checkpoint_round_trip_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    cp = empty_checkpoint(tmp_path)
    cp.set_completed("T0", "00", 1, "passed")
    cp.set_completed("T0", "01", 12, "failed")
    save_checkpoint(path, cp)
    data = json.loads(path.read_text())
    assert data["completed_runs"] == {"T0": {"00": {"1": "passed"}, "01": {"12": "failed"}}}
    for name in ("version", "experiment_id", "experiment_dir", "config_hash", "status", "started_at",
                 "last_updated_at", "rate_limit_until", "rate_limit_source", "rate_limit_message",
                 "pause_count", "total_pause_seconds", "rate_limited_attempts", "error_attempts", "pid",
                 "journal_offset"):
        assert name in data
    assert load_checkpoint(path) == cp
    assert cp.counts_by_tier() == {"T0": {"passed": 1, "failed": 1}}
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointCorrupt, match="corrupt checkpoint"):
        load_checkpoint(path)
    path.write_text(json.dumps({**data, "completed_runs": {"T0": {"00": {"1": "maybe"}}}}))
    with pytest.raises(CheckpointCorrupt, match="completed_runs"):
        load_checkpoint(path)
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(CheckpointCorrupt, match="version 99"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.json")
