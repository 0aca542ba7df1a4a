"""StateStore: the coordinator's durable record of what is done, paused or counted.

State = checkpoint.json (a snapshot) + the journal events after it, reconciled on load with the
run_result.json files (which runs write atomically as their very last act). Every change is first
appended to the fsync'd journal and only then applied in memory, through the same `apply_event`
that replays the journal, so the memory, a crash-time replay and a snapshot can never disagree.

Exactly one writer: the coordinator's thread, under the experiment lock. Nothing here is
thread-safe, and workers never touch these files.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, ValuesView

from tierbench.errors import TierbenchError
from tierbench.models import ExperimentStatus, RateLimitInfo, RunKey, RunResult, RunStatus
from tierbench.plan import BestSubtest
from tierbench.store import results
from tierbench.store.checkpoint import (Checkpoint, CheckpointCorrupt, load_checkpoint,
                                        save_checkpoint, utc_now)
from tierbench.store.journal import Journal, apply_event, iter_events, replay
from tierbench.store.layout import ExperimentLayout, backup_path, run_dir_name
from tierbench.store.repair import add_capped, find_temp_files, read_result_status, shallow_state_dirs

# Snapshot after this many events, or after a tenth of the recorded runs if that is more: a snapshot
# costs O(recorded runs), so spacing them in proportion keeps recording O(1) amortised while the tail
# a resume must replay stays a small fraction of the whole. Plus one at least every minute of activity.
SNAPSHOT_EVERY_EVENTS = 200
SNAPSHOT_TAIL_FRACTION = 10
SNAPSHOT_EVERY_SECONDS = 60.0

_ADVICE = {
    errno.ENOSPC: "Free some disk space",
    errno.EDQUOT: "Free some space within your disk quota",
    errno.EFBIG: "Raise the file size limit (ulimit -f)",
    errno.EROFS: "Make the file system writable",
    errno.EACCES: "Fix the permissions of the experiment directory",
}


class StoreWriteError(TierbenchError):
    """The experiment state could not be written. The message says what failed, that nothing
    recorded earlier is lost, and what to do."""

    def __init__(self, what: str, path: Path, error: OSError, consequence: str = ""):
        self.path = Path(path)
        self.error = error
        advice = _ADVICE.get(error.errno or 0, "Fix the cause")
        reason = error.strerror or str(error)
        super().__init__(
            f"could not {what} ({path}: {reason}). The previous checkpoint.json is intact and every run "
            f"recorded before is safe in journal.jsonl.{(' ' + consequence) if consequence else ''} "
            f"{advice}, then run the same command again; it resumes where it left off.")


KeyTuple = tuple[str, str, int]
_STATUS = {status.value: status for status in RunStatus}


class CompletedRuns(Mapping[RunKey, RunStatus]):
    """Read-only live view {RunKey: passed|failed}, stored by (tier, subtest, run) tuple.

    Hashing a tuple is several times cheaper than hashing a pydantic RunKey, and the coordinator asks
    `key in completed` for every planned key on each scheduling pass: at 100k runs that matters."""

    def __init__(self, statuses: dict[KeyTuple, RunStatus], keys: dict[KeyTuple, RunKey]):
        self._statuses, self._keys = statuses, keys

    def __getitem__(self, key: RunKey) -> RunStatus:
        try:
            return self._statuses[(key.tier, key.subtest, key.run)]
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        try:
            return (key.tier, key.subtest, key.run) in self._statuses  # type: ignore[attr-defined]
        except AttributeError:
            return False

    def __iter__(self) -> Iterator[RunKey]:
        for tier, subtest, run in list(self._statuses):
            key = self._keys.get((tier, subtest, run))
            if key is None:  # recorded but not planned (a smaller plan): still a real result
                key = self._keys[(tier, subtest, run)] = RunKey(tier=tier, subtest=subtest, run=run)
            yield key

    def __len__(self) -> int:
        return len(self._statuses)

    def values(self) -> ValuesView[RunStatus]:
        return self._statuses.values()


@dataclass
class LoadNotes:
    fixed: list[str] = field(default_factory=list)  # one human-readable line per repair made on load


class StateStore:
    def __init__(self, layout: ExperimentLayout, checkpoint: Checkpoint, journal: Journal,
                 keys: dict[KeyTuple, RunKey]):
        self.layout = layout
        self._cp = checkpoint
        self._journal = journal
        self._keys = keys  # the caller's planned RunKey objects, handed back when iterating `completed`
        self._statuses: dict[KeyTuple, RunStatus] = {
            (tier, subtest, run): _STATUS[status] for tier, subtest, run, status in checkpoint.iter_completed()}
        self._completed = CompletedRuns(self._statuses, keys)
        self._unsnapshotted = 0
        self._last_snapshot = time.monotonic()
        self._closed = False

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, layout: ExperimentLayout, *, experiment_id: str, config_hash: str,
             planned: Iterable[RunKey]) -> tuple["StateStore", LoadNotes]:
        """Load snapshot + journal tail, reconcile with the files on disk, and take a snapshot.
        The caller must hold the experiment lock. Raises StoreWriteError if the state cannot be written."""
        notes = LoadNotes()
        root = layout.root
        root.mkdir(parents=True, exist_ok=True)
        keys = {(k.tier, k.subtest, k.run): k for k in planned}
        removed = remove_temp_files(shallow_state_dirs(layout), recursive=False)
        checkpoint = _load_snapshot(layout, experiment_id, config_hash, notes)
        try:
            journal, tail = Journal.open(layout.journal)
        except OSError as exc:
            raise StoreWriteError("open the journal", layout.journal, exc) from exc
        try:
            if tail.torn_bytes:
                notes.fixed.append(f"journal.jsonl: truncated a torn last line ({tail.torn_bytes} bytes, "
                                   "written when the previous process died)")
            replay(checkpoint, layout.journal, tail.good_size, notes.fixed)
            journal.seq = max(journal.seq, checkpoint.journal_seq)  # seq never goes backwards
            checkpoint.experiment_id, checkpoint.config_hash = experiment_id, config_hash
            checkpoint.experiment_dir = str(root.resolve())
            checkpoint.pid = os.getpid()
            store = cls(layout, checkpoint, journal, keys)
            store._append([("open", {"pid": checkpoint.pid, "experiment_id": experiment_id,
                                     "config_hash": config_hash})])
            removed += store._reconcile(list(keys.values()), notes)
            if removed:
                notes.fixed.append(f"removed {len(removed)} leftover temp file(s) of interrupted writes")
            store.snapshot()
        except BaseException:
            journal.close()
            raise
        return store, notes

    def _reconcile(self, planned: list[RunKey], notes: LoadNotes) -> list[str]:
        """Make the recorded state agree with run_result.json files, for planned keys only.

        Recorded keys cost one stat each (run_result.json is atomic, so existing and non-empty means
        whole). Unrecorded keys cost one listdir per subtest directory; only run dirs that exist are
        parsed and cleaned of temp files. Returns the temp files removed."""
        drops: list[tuple[RunKey, str]] = []
        pending_by_dir: dict[tuple[str, str], list[RunKey]] = defaultdict(list)
        for key in planned:
            status = self._statuses.get((key.tier, key.subtest, key.run))
            if status is None:
                pending_by_dir[(key.tier, key.subtest)].append(key)
                continue
            problem = result_file_problem(self.layout.run_result_str(key.tier, key.subtest, key.run))
            if problem:
                drops.append((key, f"recorded as {status.value} but its run_result.json {problem}"))
                pending_by_dir[(key.tier, key.subtest)].append(key)
        adopts: list[tuple[RunKey, RunStatus]] = []
        invalid: list[str] = []
        removed: list[str] = []
        for (tier, subtest), keys in pending_by_dir.items():
            try:
                present = set(os.listdir(self.layout.root / tier / subtest))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for key in keys:
                if run_dir_name(key.run) not in present:
                    continue
                removed += remove_temp_files([str(self.layout.run_dir(key))], recursive=True)
                if (key.tier, key.subtest, key.run) in self._statuses:
                    continue  # being dropped: its file is gone or empty
                status, problem = read_result_status(self.layout.run_result(key), (key.tier, key.subtest, key.run))
                if status is not None:
                    adopts.append((key, status))
                elif problem and problem != "is missing":
                    invalid.append(f"{key}: run_result.json {problem}; the run stays pending")
        events = [("reconcile", {**_key_fields(key), "action": "drop", "reason": reason}) for key, reason in drops]
        events += [("reconcile", {**_key_fields(key), "action": "adopt", "status": status.value,
                                  "reason": "valid run_result.json on disk, not in the journal"})
                   for key, status in adopts]
        if events:
            self._append(events)  # one write + one fsync however many there are
        add_capped(notes.fixed, [f"{key}: {reason}; back to pending" for key, reason in drops])
        add_capped(notes.fixed, [f"{key}: adopted {status.value} from its run_result.json (it was not "
                                  "recorded)" for key, status in adopts])
        add_capped(notes.fixed, invalid)
        return removed

    # -- reading -----------------------------------------------------------------------------
    @property
    def completed(self) -> Mapping[RunKey, RunStatus]:
        """Live read-only view of recorded results (passed/failed only)."""
        return self._completed

    @property
    def checkpoint(self) -> Checkpoint:
        """The current state (live object; callers must not modify it)."""
        return self._cp

    def counts_by_tier(self) -> dict[str, dict[str, int]]:
        return self._cp.counts_by_tier()

    # -- results and the files derived from them (see store/results.py) -----------------------
    def run_result(self, key: RunKey) -> RunResult | None:
        return results.read_run_result(self.layout, key)

    def run_results(self, keys: Iterable[RunKey]) -> list[RunResult]:
        return results.read_run_results(self.layout, keys)

    def attempts(self, key: RunKey) -> list[RunResult]:
        """The archived non-result attempts of a run (their cost counts against a budget)."""
        return results.read_attempts(self.layout, key)

    def best_subtest(self, tier: str) -> BestSubtest | None:
        return results.read_best_subtest(self.layout, tier)

    def save_best_subtest(self, best: BestSubtest) -> None:
        try:
            results.save_best_subtest(self.layout, best)
        except OSError as exc:
            raise StoreWriteError("write best_subtest.json", self.layout.best_subtest_file(best.tier), exc) from exc

    def save_stats(self, stats: dict[str, Any]) -> None:
        try:
            results.save_stats(self.layout, stats)
        except OSError as exc:
            raise StoreWriteError("write stats.json", self.layout.stats_file, exc) from exc

    # -- recording ---------------------------------------------------------------------------
    def record_run(self, key: RunKey, status: RunStatus | str, cost_usd: float | None = None) -> None:
        """Record a result durably (one journal append + fsync). Recording the same result again is a
        no-op; a different result for a recorded run is refused, since that would mean it ran twice.
        With `cost_usd` (a budget is in force) its spend is recorded in the same write."""
        status = RunStatus(status)
        if not status.is_result:
            raise ValueError(f"record_run takes passed/failed, not {status.value}; use record_attempt")
        recorded = self._statuses.get((key.tier, key.subtest, key.run))
        if recorded is status:
            return
        if recorded is not None:
            raise ValueError(f"{key} is already recorded as {recorded.value}; refusing to record "
                             f"{status.value} (a run must never be counted twice)")
        self._keys.setdefault((key.tier, key.subtest, key.run), key)
        self._append([("run", {**_key_fields(key), "status": status.value})] + _spend(key, cost_usd),
                     consequence=f"{key} was not recorded, but its run_result.json is adopted on resume.")
        self._maybe_snapshot()

    def record_attempt(self, key: RunKey, status: RunStatus | str, cost_usd: float | None = None) -> None:
        """Count a non-result attempt (rate_limited, error, interrupted); the run stays pending."""
        status = RunStatus(status)
        if status.is_result:
            raise ValueError(f"record_attempt takes non-result statuses, not {status.value}; use record_run")
        self._append([("attempt", {**_key_fields(key), "status": status.value})] + _spend(key, cost_usd))
        self._maybe_snapshot()

    @property
    def closed(self) -> bool:
        return self._closed

    def record_launches(self, launches: list[tuple[str | None, int]], session: str) -> None:
        """Process groups started for runs (label = run key): what a later coordinator checks for."""
        if launches:
            self._append([("launch", {"run_key": label, "pgid": pgid, "session": session})
                          for label, pgid in launches])

    def record_reap(self, pids: list[int], reason: str) -> None:
        """Processes left by an earlier coordinator of this experiment, killed before any relaunch."""
        self._append([("reap", {"pids": list(pids), "reason": reason})])

    # -- budget (execute/budget.py) ------------------------------------------------------------
    def set_budget(self, usd: float | None, scope: str | None = None) -> None:
        """The --budget-usd in force (and the batch dir it covers); a change is kept in
        `budget_history`."""
        if usd == self._cp.budget_usd and scope == self._cp.budget_scope:
            return
        self._append([("budget", {"usd": usd, "scope": scope})])
        self.snapshot()

    def set_spent(self, usd: float) -> None:
        """Spent as recomputed from the files (and settled commitments) when a budgeted run starts."""
        self._append([("spent", {"usd": float(usd)})])

    def commit_budget(self, key: RunKey, usd: float) -> None:
        """A run is launching under the budget with this expected cost (durable before it starts)."""
        self._append([("commit", {**_key_fields(key), "usd": float(usd)})])
        self._maybe_snapshot()

    def record_spend(self, key: RunKey, usd: float) -> None:
        """The cost of a finished attempt that is recorded no other way (e.g. interrupted)."""
        self._append(_spend(key, usd))
        self._maybe_snapshot()

    def settle_commitment(self, key_text: str, usd: float) -> None:
        """Close a commitment left open by a process that died: its money counts as spent."""
        tier, subtest, run = key_text.split("/")
        self._append([("settle", {"tier": tier, "subtest": subtest, "run": int(run), "usd": float(usd)})])

    def set_status(self, status: ExperimentStatus) -> None:
        try:
            status = ExperimentStatus(status)
        except ValueError:
            raise ValueError(f"unknown checkpoint status {status!r} (one of "
                             f"{', '.join(s.value for s in ExperimentStatus)})") from None
        if status is self._cp.status:
            return
        self._append([("status", {"status": status.value})])
        self.snapshot()

    def record_rate_limit(self, info: RateLimitInfo) -> None:
        """Pause until info.reset_at, durably: a restarted process must honour it without a request."""
        until = info.reset_at if info.reset_at.tzinfo else info.reset_at.replace(tzinfo=timezone.utc)
        self._append([("rate_limit", {"until": until.astimezone(timezone.utc).isoformat(),
                                      "source": info.source, "message": info.message,
                                      "kind": info.kind.value, "reset_known": info.reset_known})])
        self.snapshot()

    def clear_rate_limit(self, paused_seconds: float) -> None:
        self._append([("rate_limit_cleared", {"paused_seconds": max(0.0, float(paused_seconds))})])
        self.snapshot()

    def snapshot(self) -> None:
        """Rewrite checkpoint.json atomically; on failure the previous one stays as it was."""
        cp = self._cp
        cp.journal_offset, cp.journal_seq = self._journal.size, self._journal.seq
        cp.last_updated_at = utc_now()
        try:
            save_checkpoint(self.layout.checkpoint, cp)
        except OSError as exc:
            raise StoreWriteError("write the checkpoint", self.layout.checkpoint, exc) from exc
        self._unsnapshotted = 0
        self._last_snapshot = time.monotonic()

    def close(self, status: ExperimentStatus | None = None) -> None:
        """Final snapshot (pid cleared) and close the journal. Safe to call twice."""
        if self._closed:
            return
        try:
            if status is not None:
                self.set_status(status)
            self._cp.pid = None
            self.snapshot()
        finally:
            self._journal.close()
            self._closed = True

    # -- internals ---------------------------------------------------------------------------
    def _append(self, events: list[tuple[str, dict[str, Any]]], consequence: str = "") -> None:
        if self._closed:
            raise RuntimeError("the state store is closed")
        try:
            written = self._journal.append_many(events)
        except OSError as exc:
            raise StoreWriteError("append to the journal", self.layout.journal, exc, consequence) from exc
        for event in written:
            apply_event(self._cp, event)
            if event["ev"] in ("run", "reconcile"):
                self._sync_completed(event["tier"], event["subtest"], int(event["run"]))
        self._cp.journal_offset, self._cp.journal_seq = self._journal.size, self._journal.seq
        self._unsnapshotted += len(written)

    def _sync_completed(self, tier: str, subtest: str, run: int) -> None:
        status = self._cp.get_completed(tier, subtest, run)
        if status is None:
            self._statuses.pop((tier, subtest, run), None)
        else:
            self._statuses[(tier, subtest, run)] = _STATUS[status]

    def _maybe_snapshot(self) -> None:
        every = max(SNAPSHOT_EVERY_EVENTS, len(self._statuses) // SNAPSHOT_TAIL_FRACTION)
        if self._unsnapshotted >= every or time.monotonic() - self._last_snapshot >= SNAPSHOT_EVERY_SECONDS:
            self.snapshot()


def remove_temp_files(directories: list[str], *, recursive: bool) -> list[str]:
    removed = []
    for directory in directories:
        for path in find_temp_files(directory, recursive=recursive):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def result_file_problem(path: str) -> str | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"is unreadable ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    return "is empty" if info.st_size == 0 else None


def _load_snapshot(layout: ExperimentLayout, experiment_id: str, config_hash: str, notes: LoadNotes) -> Checkpoint:
    """The snapshot, or an empty state (to be rebuilt from the whole journal) if missing or corrupt."""
    try:
        return load_checkpoint(layout.checkpoint)
    except FileNotFoundError:
        rebuilt = layout.journal.exists() and layout.journal.stat().st_size > 0
        if rebuilt:
            notes.fixed.append("checkpoint.json was missing; rebuilt the state from journal.jsonl and the run files")
    except CheckpointCorrupt as exc:
        aside = backup_path(layout.checkpoint, _stamp(), tag="corrupt")
        try:
            os.replace(layout.checkpoint, aside)
            kept = f"kept it as {aside.name}"
        except OSError:
            kept = "could not keep a copy"
        notes.fixed.append(f"checkpoint.json was corrupt ({exc.reason}); {kept} and rebuilt the state from "
                           "journal.jsonl and the run files")
    return Checkpoint.empty(experiment_id=experiment_id, experiment_dir=layout.root.resolve(),
                            config_hash=config_hash, started_at=_first_event_time(layout.journal))


def _first_event_time(path: Path) -> datetime | None:
    for event in iter_events(path, 0, 1 << 62, []):
        try:
            return datetime.fromisoformat(event["at"])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def _spend(key: RunKey, cost_usd: float | None) -> list[tuple[str, dict[str, Any]]]:
    return [] if cost_usd is None else [("spend", {**_key_fields(key), "usd": float(cost_usd)})]


def _key_fields(key: RunKey) -> dict[str, Any]:
    return {"tier": key.tier, "subtest": key.subtest, "run": key.run}


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
