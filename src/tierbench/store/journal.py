"""journal.jsonl: the append-only, fsync'd log of facts about an experiment.

Recording a completion costs one append and one fdatasync, whatever the experiment's size. The
state is a pure function of the events (`apply_event`), so a snapshot plus the events after it
equals a replay of the whole journal from nothing.

Every line is one JSON object with these common fields:

    seq   int   1, 2, 3 ... strictly increasing across sessions (continues after a lost journal)
    at    str   ISO-8601 UTC time of the append
    ev    str   the event type, one of:

    open                pid, experiment_id, config_hash     a coordinator opened the store
    run                 tier, subtest, run, status          a result: status "passed" | "failed"
    attempt             tier, subtest, run, status          a non-result attempt, the run stays pending:
                                                            "rate_limited" | "error" | "interrupted"
    status              status                              checkpoint status changed
    rate_limit          until, source, message, kind        paused until `until` (ISO UTC)
    rate_limit_cleared  paused_seconds                      the pause ended
    reconcile           tier, subtest, run, action, reason  load-time repair: action "adopt" (+ status)
                        [, status]                          records a run found on disk; "drop"
                                                            forgets one whose run_result.json is gone
    repair              original, rebuilt, backup           `tierbench repair` started a fresh journal
    launch              run_key, pgid, session              a process group started for a run (agent or
                                                            check); its processes carry the session
                                                            marker (see tierbench/reaper.py)
    reap                pids, reason                        processes an earlier coordinator left, killed
                                                            at start before any run was relaunched
    budget              usd (null: none), scope             the --budget-usd in force changed; scope: the
                                                            batch results dir it covers (or null)
    commit              tier, subtest, run, usd             a run launched under a budget, expected cost
    spend               tier, subtest, run, usd             a finished attempt's cost; ends its commit
    settle              tier, subtest, run, usd             a commit left open by a dead process,
                                                            counted as spent (the run's money is gone)
    spent               usd                                 spent recomputed from the files at start

`run` is the subtest-relative run number as an int (1, not "run_01"). Unknown event types are
ignored on replay, so an older tierbench can read a newer journal.

A crash can tear only the last line (each line is written by one write() and fsync'd before the
next). `scan_tail` finds such a tail without changing anything; `Journal.open` truncates it away.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from tierbench.store.atomic import fsync_dir
from tierbench.models import ExperimentStatus, RunStatus
from tierbench.store.checkpoint import CHECKPOINT_STATUSES, Checkpoint

_TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True)
class TailScan:
    size: int  # bytes on disk
    good_size: int  # end of the last complete, parseable line
    last_seq: int  # seq of the last good event (0 for an empty journal)

    @property
    def torn_bytes(self) -> int:
        return self.size - self.good_size


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return event if isinstance(event, dict) and isinstance(event.get("seq"), int) else None


def scan_tail(path: Path) -> TailScan:
    """Locate a torn last line without modifying the file. A missing journal is empty."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return TailScan(0, 0, 0)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        # Read backwards until the buffer holds the fragment after the last newline plus one whole line.
        start, buffer = size, b""
        while start > 0 and buffer.count(b"\n") < 2:
            step = min(_TAIL_CHUNK, start)
            start -= step
            handle.seek(start)
            buffer = handle.read(step) + buffer
    last_newline = buffer.rfind(b"\n")
    if last_newline < 0:
        return TailScan(size, 0, 0)
    good_size = start + last_newline + 1
    line_start = buffer.rfind(b"\n", 0, last_newline) + 1
    event = _parse(buffer[line_start:last_newline])
    if event is None:
        # A complete but unparseable last line (e.g. a block of zeros after a power cut ends in a
        # newline from the next page) is torn as well: nothing after it can exist yet.
        good_size = start + line_start
        return TailScan(size, good_size, _last_seq_before(path, good_size))
    return TailScan(size, good_size, event["seq"])


def _last_seq_before(path: Path, end: int) -> int:
    """seq of the last parseable line before `end` (a full read, needed only after a torn tail)."""
    last = 0
    for event in iter_events(path, 0, end, []):
        last = event["seq"]
    return last


def iter_events(path: Path, start: int, end: int, bad: list[str]) -> Iterator[dict[str, Any]]:
    """Events in bytes [start, end) of the journal. Unparseable lines are skipped and described in `bad`."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        handle.seek(start)
        offset = start
        for line in handle:
            if offset >= end:
                break
            event = _parse(line)
            if event is None:
                bad.append(f"journal.jsonl byte {offset}: unreadable line skipped ({line[:60]!r})")
            else:
                yield event
            offset += len(line)


class Journal:
    """The open journal of the one writer. Not thread-safe: only the coordinator thread appends."""

    def __init__(self, path: Path, fd: int, size: int, seq: int):
        self.path = path
        self._fd: int | None = fd
        self.size = size  # bytes; snapshots record it as journal_offset
        self.seq = seq  # seq of the last event written

    @classmethod
    def open(cls, path: Path) -> tuple["Journal", TailScan]:
        """Open for appending, truncating a torn last line. The TailScan says what was cut."""
        path = Path(path)
        created = not path.exists()
        scan = scan_tail(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            if scan.torn_bytes:
                os.ftruncate(fd, scan.good_size)
                os.fsync(fd)
            if created:
                fsync_dir(path.parent)  # the file's existence must survive a crash too
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, scan.good_size, scan.last_seq), scan

    def append(self, ev: str, **fields: Any) -> dict[str, Any]:
        """Write one event durably and return it (with its seq and time). Raises OSError."""
        return self.append_many([(ev, fields)])[0]

    def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Write events with one write() and one fdatasync. Raises OSError; on failure any partial
        line is cut off again, so a later append cannot land behind garbage."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is closed")
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        written = [{"seq": self.seq + number, "at": at, "ev": ev, **fields}
                   for number, (ev, fields) in enumerate(events, start=1)]
        data = "".join(json.dumps(event, separators=(",", ":"), default=str) + "\n" for event in written).encode()
        try:
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:])
            os.fdatasync(self._fd)  # the data and the new file size; atime/mtime need not be flushed
        except OSError:
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                pass  # if even this fails, the next open cuts the fragment off as a torn tail
            raise
        self.size += len(data)
        self.seq += len(written)
        return written

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# -- what the events mean ----------------------------------------------------------------------

def _run_status(value: Any) -> RunStatus | None:
    """The RunStatus an event names (events hold its value on disk); None for anything else."""
    try:
        return RunStatus(value)
    except ValueError:
        return None


def apply_event(cp: Checkpoint, event: dict[str, Any]) -> None:
    """Fold one event into the state. The live store and every replay go through this one function."""
    kind = event.get("ev")
    if kind == "run":
        if _run_status(event["status"]) in (RunStatus.PASSED, RunStatus.FAILED):
            cp.set_completed(event["tier"], event["subtest"], int(event["run"]), event["status"])
    elif kind == "attempt":
        status = _run_status(event["status"])
        if status is RunStatus.RATE_LIMITED:
            cp.rate_limited_attempts += 1
        elif status is RunStatus.ERROR:
            cp.error_attempts += 1
    elif kind == "status":
        if event["status"] in CHECKPOINT_STATUSES:
            cp.status = ExperimentStatus(event["status"])
    elif kind == "rate_limit":
        if cp.rate_limit_until is None:  # a later reset while already paused extends the same pause
            cp.pause_count += 1
        cp.status = ExperimentStatus.PAUSED_RATE_LIMIT
        cp.rate_limit_until = datetime.fromisoformat(event["until"])
        cp.rate_limit_source = event.get("source")
        cp.rate_limit_message = event.get("message")
    elif kind == "rate_limit_cleared":
        cp.total_pause_seconds += float(event.get("paused_seconds") or 0.0)
        cp.rate_limit_until = cp.rate_limit_source = cp.rate_limit_message = None
        cp.status = ExperimentStatus.RUNNING
    elif kind == "reconcile":
        if event["action"] == "adopt" and _run_status(event.get("status")) in (RunStatus.PASSED, RunStatus.FAILED):
            cp.set_completed(event["tier"], event["subtest"], int(event["run"]), event["status"])
        elif event["action"] == "drop":
            cp.drop_completed(event["tier"], event["subtest"], int(event["run"]))
    elif kind == "budget":
        cp.budget_history.append({"at": event.get("at"), "usd": event.get("usd"), "previous": cp.budget_usd})
        cp.budget_usd = None if event.get("usd") is None else float(event["usd"])
        cp.budget_scope = event.get("scope")
    elif kind == "commit":
        cp.budget_commitments[_key(event)] = float(event["usd"])
    elif kind in ("spend", "settle"):
        cp.budget_commitments.pop(_key(event), None)
        cp.spent_usd += float(event["usd"])
        if kind == "settle":
            cp.unrecorded_spend_usd += float(event["usd"])
    elif kind == "spent":
        cp.spent_usd = float(event["usd"])
    elif kind == "open":
        # Lets a replay from nothing (checkpoint lost) recover which experiment this is.
        cp.experiment_id = event.get("experiment_id") or cp.experiment_id
        cp.config_hash = event.get("config_hash") or cp.config_hash
    # "repair", "launch", "reap" and unknown types carry no state.


def _key(event: dict[str, Any]) -> str:
    return f"{event['tier']}/{event['subtest']}/{int(event['run'])}"


def replay(cp: Checkpoint, path: Path, end: int, notes: list[str]) -> int:
    """Apply the journal events that `cp` does not include yet (seq > cp.journal_seq), reading bytes
    before `end` only. Returns how many were applied; problems are appended to `notes`."""
    start = cp.journal_offset
    if start and not _is_line_start(path, start, end):
        # The snapshot's offset does not point into this journal (replaced or truncated by hand):
        # read it all and let seq decide what is new.
        notes.append(f"journal.jsonl does not reach checkpoint.json's journal_offset {start} (it was replaced "
                     "or truncated); replayed the whole journal, skipping events already in the checkpoint")
        start = 0
    applied = 0
    for event in iter_events(path, start, end, notes):
        if event["seq"] <= cp.journal_seq:
            continue
        try:
            apply_event(cp, event)
        except (KeyError, TypeError, ValueError) as exc:
            notes.append(f"journal.jsonl event seq {event['seq']}: malformed ({type(exc).__name__}: {exc}); skipped")
            continue
        cp.journal_seq = event["seq"]
        applied += 1
    return applied


def _is_line_start(path: Path, offset: int, end: int) -> bool:
    if offset > end:
        return False
    try:
        with open(path, "rb") as handle:
            handle.seek(offset - 1)
            return handle.read(1) == b"\n"
    except OSError:
        return False
