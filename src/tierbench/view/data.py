"""What the viewer reads, and nothing it writes.

A viewed PATH is a batch results directory (experiments as subdirectories) or one experiment
directory. Each experiment keeps an in-memory index of its runs, one small `RunRow` per planned
run. The index is built once by reading every `run_result.json`, then kept current by tailing
`journal.jsonl` from the byte offset already read: only the runs named by new `run`, `attempt` and
`reconcile` events are read again, so a page of a 10,000-run experiment that is still running
costs a stat and a short read, not 10,000 file reads. A journal that shrank or was replaced
(`tierbench repair`) means a full rebuild.

Runs in flight are not journal events: while a process holds the experiment's lock, a pending
run whose `workspace/` exists is being run now.

Everything here opens files read-only; the viewer can run beside `tierbench run` on the same
directory.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tierbench.config import ExperimentConfig
from tierbench.errors import TierbenchError
from tierbench.models import ALL_TIERS, TIER_NAMES, RunKey, RunResult, grade_for
from tierbench.report import stats
from tierbench.spec import LoadedTest, SpecError, Subtest, load_test
from tierbench.store.checkpoint import Checkpoint
from tierbench.store.layout import RUN_RESULT_NAME, ExperimentLayout, run_dir_name
from tierbench.store.lock import ExperimentLock
from tierbench.store.results import load_state, read_best_subtest, read_run_result

# How an entry of the listing ended, or where it stands. passed/failed are results; the others
# are a pending run (in flight now, never tried, or whose latest attempt was not a result).
OUTCOMES = ("passed", "failed", "running", "pending", "rate_limited", "error", "interrupted")
REFRESH_INTERVAL = 0.5  # seconds: several requests at once share one refresh
TEXT_CAP = 1024 * 1024  # prompts, logs and command records are shown up to this many bytes

_TIER_RE = re.compile(r"^T[0-6]$")
_SUBTEST_RE = re.compile(r"^\d{2}$")
_RUN_RE = re.compile(r"^run_(\d{2,})$")
_ATTEMPT_RE = re.compile(r"^\d{1,4}$")


class ViewError(TierbenchError):
    """PATH cannot be viewed, or a URL names something that does not exist."""


class NotFound(ViewError):
    pass


@dataclass(slots=True)
class RunRow:
    """One planned (or found) run as the listings show it."""

    key: str
    tier: str
    subtest: str
    run: int
    outcome: str = "pending"  # before `running` is applied
    score: float | None = None
    grade: str | None = None
    cost: float = 0.0
    tokens: int = 0
    duration: float = 0.0
    agent: str = ""
    model: str | None = None
    tools: tuple[str, ...] = ()
    attempts: int = 0
    error: str | None = None
    finished_at: str | None = None
    running: bool = False

    @property
    def status(self) -> str:
        return "running" if self.running and self.outcome not in ("passed", "failed") else self.outcome

    @property
    def is_result(self) -> bool:
        return self.outcome in ("passed", "failed")


@dataclass
class GroupStats:
    """The numbers a listing shows for a set of runs (results only count in rates)."""

    planned: int = 0
    results: int = 0
    passed: int = 0
    running: int = 0
    attempts: int = 0
    pass_rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    score_mean: float | None = None
    cost: float = 0.0
    tokens: int = 0
    duration_mean: float | None = None

    @property
    def tokens_mean(self) -> float | None:
        return self.tokens / self.results if self.results else None


def summarize(rows: Iterable[RunRow]) -> GroupStats:
    """Same definitions as the report: Wilson 95% interval on passed/failed runs only; cost,
    tokens and durations over results (a rate-limited or errored attempt is no result)."""
    group = GroupStats()
    scores: list[float] = []
    durations: list[float] = []
    for row in rows:
        group.planned += 1
        group.attempts += row.attempts
        group.running += row.status == "running"
        if not row.is_result:
            continue
        group.results += 1
        group.passed += row.outcome == "passed"
        group.cost += row.cost
        group.tokens += row.tokens
        durations.append(row.duration)
        if row.score is not None:
            scores.append(row.score)
    if group.results:
        group.pass_rate = group.passed / group.results
        group.ci_low, group.ci_high = stats.wilson_interval(group.passed, group.results)
        group.duration_mean = sum(durations) / len(durations)
    if scores:
        group.score_mean = sum(scores) / len(scores)
    return group


def _read_json(path: str | Path) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read())


def _tools_used(usage: Any) -> tuple[str, ...]:
    if not isinstance(usage, dict):
        return ()
    names: set[str] = set()
    for field_name, prefix in (("tool_calls", ""), ("skills", "skill:"), ("subagents", "agent:"),
                               ("mcp_tools", "mcp:")):
        counts = usage.get(field_name)
        if isinstance(counts, dict):
            names.update(f"{prefix}{name}" for name, count in counts.items() if count)
    return tuple(sorted(names))


def row_from_result(row: RunRow, data: dict[str, Any]) -> None:
    """Fill a row from a parsed run_result.json (plain dict access: 10k of these must be quick)."""
    row.outcome = str(data.get("status") or "error")
    row.score = data.get("judge_score")
    grade = data.get("judge_grade")
    row.grade = grade if grade else (grade_for(row.score) if isinstance(row.score, (int, float)) else None)
    row.cost = float(data.get("cost_usd") or 0.0)
    row.tokens = int(data.get("total_tokens") or 0)
    row.duration = float(data.get("duration_seconds") or 0.0)
    row.agent = str(data.get("agent") or "")
    row.model = data.get("model")
    row.tools = _tools_used(data.get("usage"))
    row.error = data.get("error")
    row.finished_at = data.get("finished_at")


def read_row(run_dir: str, tier: str, subtest: str, run: int) -> RunRow:
    """The row of one run directory: its result, or its latest archived attempt's status.
    One scandir says what the directory holds, so a pending run costs no failed open()."""
    row = RunRow(key=f"{tier}/{subtest}/{run_dir_name(run)}", tier=tier, subtest=subtest, run=run)
    try:
        names = {entry.name for entry in os.scandir(run_dir)}
    except (FileNotFoundError, NotADirectoryError):
        return row
    attempts = _attempt_numbers(os.path.join(run_dir, "attempts")) if "attempts" in names else []
    row.attempts = len(attempts)
    if RUN_RESULT_NAME in names:
        try:
            data = _read_json(os.path.join(run_dir, RUN_RESULT_NAME))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError):
            row.outcome, row.error = "error", f"{RUN_RESULT_NAME} is unreadable"
            return row
        if isinstance(data, dict):
            row_from_result(row, data)
            return row
    if attempts:
        try:
            last = _read_json(os.path.join(run_dir, "attempts", attempts[-1], RUN_RESULT_NAME))
            row.outcome = str(last.get("status") or "error")
            row.error = last.get("error")
            row.agent = str(last.get("agent") or "")
            row.model = last.get("model")
        except (OSError, ValueError, AttributeError):
            row.outcome = "error"
        if row.outcome in ("passed", "failed"):  # an archived attempt is never a result
            row.outcome = "error"
    return row


def _attempt_numbers(attempts_dir: str) -> list[str]:
    try:
        names = [entry.name for entry in os.scandir(attempts_dir) if entry.name.isdigit()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, key=int)


def check_key(tier: str, subtest: str, run: str) -> RunKey:
    """A run key from URL parts, refusing anything that is not one (no path tricks)."""
    match = _RUN_RE.match(run)
    if not (_TIER_RE.match(tier) and _SUBTEST_RE.match(subtest) and match):
        raise NotFound(f"not a run: {tier}/{subtest}/{run}")
    return RunKey(tier=tier, subtest=subtest, run=int(match[1]))


class ExperimentView:
    """One experiment directory, read-only, with its run index kept current from the journal."""

    def __init__(self, root: Path, name: str):
        self.root = Path(root)
        self.name = name
        self.layout = ExperimentLayout(self.root)
        self.rows: dict[str, RunRow] = {}
        self.config: ExperimentConfig | None = None
        self.config_raw: dict[str, Any] = {}
        self.test: LoadedTest | None = None
        self.checkpoint: Checkpoint | None = None
        self.notes: list[str] = []
        self.running = False
        self.pid: int | None = None
        self.best_subtests: dict[str, str] = {}
        self.version = 0  # bumps whenever anything shown may have changed
        self._journal_pos = 0
        self._journal_ino: int | None = None
        self._config_mtime: int | None = None
        self._last_refresh = 0.0
        self._signature: tuple[Any, ...] = ()
        self._lock = threading.RLock()

    # -- loading -----------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and self._last_refresh and now - self._last_refresh < REFRESH_INTERVAL:
                return
            self._last_refresh = now
            config_mtime = _mtime(self.layout.config_file)
            if config_mtime != self._config_mtime:
                self._load_config()
                self._config_mtime = config_mtime
                self._rebuild()
            else:
                self._tail_journal()
            self._update_live()
            signature = (self._journal_pos, self.running, self.pid,
                         tuple(sorted(k for k, r in self.rows.items() if r.running)),
                         self.checkpoint.status if self.checkpoint else None,
                         self.checkpoint.rate_limit_until if self.checkpoint else None)
            if signature != self._signature:
                self._signature = signature
                self.version += 1

    def _load_config(self) -> None:
        self.notes = []
        try:
            self.config_raw = _read_json(self.layout.config_file)
            self.config = ExperimentConfig.model_validate(self.config_raw)
        except (OSError, ValueError) as exc:
            self.config = None
            self.notes.append(f"{self.layout.config_file}: unreadable ({type(exc).__name__}); "
                              "runs are listed from the directories alone")
        try:
            self.test = load_test(self.layout.test_snapshot)
        except (SpecError, OSError) as exc:
            self.test = None
            self.notes.append(f"test snapshot {self.layout.test_snapshot}: {exc}")

    def planned(self) -> list[tuple[str, str, int]]:
        """(tier, subtest, run) of every planned run: plan.py's rule, without building 10k RunKeys."""
        if self.config is None or self.test is None:
            return []
        from tierbench.plan import experiment_tiers, planned_subtests

        return [(tier, sub.id, run) for tier in experiment_tiers(self.config, self.test)
                for sub in planned_subtests(self.config, self.test, tier)
                for run in range(1, self.config.runs_per_subtest + 1)]

    def _rebuild(self) -> None:
        rows: dict[str, RunRow] = {}
        agent = self.config.agent if self.config else ""
        for tier, subtest, run in self.planned():
            key = f"{tier}/{subtest}/{run_dir_name(run)}"
            rows[key] = RunRow(key=key, tier=tier, subtest=subtest, run=run, agent=agent)
        # Journal size first: an event appended while the files are read is read again, never missed.
        self._journal_ino, self._journal_pos = _journal_id(self.layout.journal)
        root = str(self.root)
        extra = False
        for tier in ALL_TIERS:
            tier_dir = os.path.join(root, tier)
            for subtest in _subdirs(tier_dir, _SUBTEST_RE):
                subtest_dir = os.path.join(tier_dir, subtest)
                for run_name in _subdirs(subtest_dir, _RUN_RE):
                    run = int(run_name[4:])
                    row = read_row(os.path.join(subtest_dir, run_name), tier, subtest, run)
                    if row.outcome == "pending" and row.key in rows:
                        continue
                    if not row.agent and row.key in rows:
                        row.agent = rows[row.key].agent
                    extra = extra or row.key not in rows
                    rows[row.key] = row
        # Planned runs come in plan order; only runs found outside the plan need a sort.
        self.rows = _sorted_rows(rows) if extra else rows
        self.best_subtests = self._read_best()
        self._read_checkpoint()

    def _tail_journal(self) -> None:
        ino, size = _journal_id(self.layout.journal)
        if ino != self._journal_ino or size < self._journal_pos:
            self._rebuild()  # replaced or truncated (repair): start over
            return
        if size == self._journal_pos:
            return
        with open(self.layout.journal, "rb") as handle:
            handle.seek(self._journal_pos)
            chunk = handle.read(size - self._journal_pos)
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        touched: set[tuple[str, str, int]] = set()
        state_changed = False  # status, pause or anything else the checkpoint's state shows
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
                kind = event.get("ev")
            except (ValueError, AttributeError):
                continue
            if kind == "repair":
                self._rebuild()
                return
            if kind in ("run", "attempt", "reconcile"):
                try:
                    touched.add((str(event["tier"]), str(event["subtest"]), int(event["run"])))
                except (KeyError, TypeError, ValueError):
                    continue
            if kind in ("run", "reconcile"):
                self.best_subtests = self._read_best()
            elif kind in ("status", "rate_limit", "rate_limit_cleared", "open"):
                state_changed = True
        self._journal_pos += end
        for tier, subtest, run in touched:
            if not (_TIER_RE.match(tier) and _SUBTEST_RE.match(subtest)):
                continue
            row = read_row(str(self.layout.run_dir(RunKey(tier=tier, subtest=subtest, run=run))), tier, subtest, run)
            old = self.rows.get(row.key)
            if old is not None and not row.agent:
                row.agent = old.agent
            self.rows[row.key] = row
            if old is None:
                self.rows = _sorted_rows(self.rows)
        if state_changed:
            self._read_checkpoint()  # only then: it replays the journal since the last snapshot

    def _read_checkpoint(self) -> None:
        if not self.layout.checkpoint.exists() and not self._journal_pos:
            self.checkpoint = None  # nothing recorded yet
            return
        # The snapshot plus the journal events after it, read-only and tolerant of a running writer.
        self.checkpoint = load_state(self.layout, strict=False)

    def _read_best(self) -> dict[str, str]:
        best: dict[str, str] = {}
        for tier in ALL_TIERS:
            recorded = read_best_subtest(self.layout, tier)
            if recorded is not None:
                best[tier] = recorded.subtest
        return best

    def _update_live(self) -> None:
        lock = ExperimentLock(self.layout.lock_file)
        self.running = self.layout.lock_file.exists() and lock.is_held()
        self.pid = lock.holder_pid() if self.running else None
        for row in self.rows.values():
            if row.is_result:
                row.running = False
            elif self.running:
                row.running = os.path.isdir(f"{self.root}/{row.tier}/{row.subtest}/{run_dir_name(row.run)}/workspace")
            else:
                row.running = False

    # -- queries -----------------------------------------------------------------------------

    def tiers(self) -> list[str]:
        return sorted({row.tier for row in self.rows.values()})

    def subtests(self, tier: str) -> list[str]:
        return sorted({row.subtest for row in self.rows.values() if row.tier == tier})

    def filter(self, outcome: str = "", tier: str = "", subtest: str = "", agent: str = "",
               tool: str = "") -> list[RunRow]:
        rows = list(self.rows.values())
        if tier:
            rows = [r for r in rows if r.tier == tier]
        if subtest:
            rows = [r for r in rows if r.subtest == subtest]
        if outcome:
            rows = [r for r in rows if r.status == outcome]
        if agent:
            rows = [r for r in rows if r.agent == agent]
        if tool:
            rows = [r for r in rows if tool in r.tools]
        return rows

    SORTS = {"": None, "score": lambda r: (r.score is None, -(r.score or 0.0)),
             "cost": lambda r: -r.cost, "tokens": lambda r: -r.tokens, "duration": lambda r: -r.duration}

    def sorted_rows(self, rows: list[RunRow], sort: str) -> list[RunRow]:
        """Run-key order, or highest score / cost / tokens / duration first (pending runs last)."""
        key = self.SORTS.get(sort)
        if key is None:
            return rows
        return sorted(rows, key=lambda r: (not r.is_result, key(r)))

    def facets(self) -> dict[str, list[str]]:
        rows = self.rows.values()
        return {
            "outcome": list(OUTCOMES),
            "tier": self.tiers(),
            "subtest": sorted({r.subtest for r in rows}),
            "agent": sorted({r.agent for r in rows if r.agent}),
            "tool": sorted({t for r in rows for t in r.tools}),
        }

    def best_run(self, tier: str) -> RunRow | None:
        """The run to show for a tier: highest score, then passed, then cheapest, among results of
        the tier's best subtest when one is recorded (else of the whole tier)."""
        rows = [r for r in self.rows.values() if r.tier == tier and r.is_result]
        preferred = self.best_subtests.get(tier)
        if preferred and any(r.subtest == preferred for r in rows):
            rows = [r for r in rows if r.subtest == preferred]
        if not rows:
            return None
        return min(rows, key=lambda r: (-(r.score or 0.0), r.outcome != "passed", r.cost, r.key))

    def title(self) -> str:
        return str(self.config_raw.get("test_id") or self.name)

    def pause(self) -> dict[str, Any] | None:
        cp = self.checkpoint
        if cp is None or cp.rate_limit_until is None:
            return None
        return {"until": cp.rate_limit_until.isoformat(), "source": cp.rate_limit_source,
                "message": cp.rate_limit_message}

    # -- one run -----------------------------------------------------------------------------

    def run_dir(self, key: RunKey, attempt: str | None = None) -> Path:
        base = self.layout.run_dir(key)
        if attempt is None:
            return base
        if not _ATTEMPT_RE.match(attempt):
            raise NotFound(f"not an attempt: {attempt}")
        return base / "attempts" / attempt

    def run_detail(self, key: RunKey, attempt: str | None = None) -> "RunDetail":
        base = self.run_dir(key, attempt)
        row = self.rows.get(str(key))
        if row is None and not base.is_dir():
            raise NotFound(f"{self.name}: no run {key}")
        detail = RunDetail(key=key, attempt=attempt, base=base, row=row)
        if attempt is None:
            detail.result = read_run_result(self.layout, key)
        else:
            detail.result = _read_attempt(base)
        if detail.result is None and (base / RUN_RESULT_NAME).exists():
            detail.notes.append(f"{base / RUN_RESULT_NAME}: unreadable; `tierbench check` names the problem")
        detail.prompt = read_text(base / "agent" / "prompt.md") or (self.test.prompt if self.test else None)
        detail.command = read_text(base / "agent" / "command.json")
        detail.diff = read_text(base / "agent" / "diff.patch", cap=4 * TEXT_CAP)
        detail.stdout_tail = read_tail(base / "agent" / "stdout.log")
        detail.stderr_tail = read_tail(base / "agent" / "stderr.log")
        detail.transcript = transcript_path(base)
        try:
            checks = _read_json(base / "judge" / "checks.json")
            detail.checks = checks if isinstance(checks, list) else []
        except (OSError, ValueError):
            detail.checks = []
        for number in _attempt_numbers(str(self.layout.attempts_dir(key))):
            detail.attempts.append(self._attempt_summary(key, number))
        detail.subtest = self.resolved_subtest(key.tier, key.subtest)
        if self.test is not None:
            for category in self.test.rubric.categories:
                for item in category.items:
                    detail.rubric[item.id] = {"category": category.name, "check": item.check,
                                              "points": item.points, "command": item.command}
        return detail

    def _attempt_summary(self, key: RunKey, number: str) -> dict[str, Any]:
        result = _read_attempt(self.layout.attempts_dir(key) / number)
        if result is None:
            return {"number": number, "status": "unreadable", "error": f"{RUN_RESULT_NAME} is missing or unreadable"}
        return {"number": number, "status": result.status.value, "error": result.error,
                "reset_at": result.rate_limit.reset_at.isoformat() if result.rate_limit else None,
                "kind": result.rate_limit.kind.value if result.rate_limit else None,
                "started_at": result.started_at.isoformat() if result.started_at else None,
                "duration": result.duration_seconds, "cost": result.cost_usd}

    def resolved_subtest(self, tier: str, subtest_id: str) -> Subtest | None:
        """The subtest as the coordinator runs it: inherit_best_from merged from best_subtest.json."""
        if self.test is None:
            return None
        try:
            subtest = self.test.subtest(tier, subtest_id)
        except KeyError:
            return None
        if not subtest.inherit_best_from:
            return subtest
        from tierbench.plan import merge_inherited

        inherited = []
        for source in subtest.inherit_best_from:
            best = self.best_subtests.get(source)
            if best is None:
                continue
            try:
                inherited.append(self.test.subtest(source, best))
            except KeyError:
                continue
        return merge_inherited(subtest, inherited)


def _read_attempt(attempt_dir: Path) -> RunResult | None:
    """One archived attempt's run_result.json (store/results.py reads them only as a list)."""
    try:
        return RunResult.model_validate_json((attempt_dir / RUN_RESULT_NAME).read_bytes())
    except (OSError, ValueError):
        return None


@dataclass
class RunDetail:
    key: RunKey
    attempt: str | None
    base: Path
    row: RunRow | None
    result: RunResult | None = None
    prompt: str | None = None
    command: str | None = None
    diff: str | None = None
    stdout_tail: str | None = None
    stderr_tail: str | None = None
    transcript: Path | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    subtest: Subtest | None = None
    rubric: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


TRANSCRIPT_NAME = "transcript.jsonl"


def transcript_path(base: Path) -> Path | None:
    """agent/transcript.jsonl; while a run is in flight (the adapter keeps the stream only when the
    agent ends), its agent/stdout.log when that is an event stream: the transcript so far."""
    path = base / "agent" / TRANSCRIPT_NAME
    if path.is_file():
        return path
    stdout = base / "agent" / "stdout.log"
    try:
        with open(stdout, "rb") as handle:
            first = handle.readline(64 * 1024)
    except OSError:
        return None
    try:
        event = json.loads(first)
    except ValueError:
        return None
    return stdout if isinstance(event, dict) and isinstance(event.get("type"), str) else None


def read_text(path: Path, cap: int = TEXT_CAP) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    text = data[:cap].decode("utf-8", errors="replace")
    if len(data) > cap:
        text += f"\n… (cut at {cap // 1024} KiB; open the raw file for the rest)"
    return text


def read_tail(path: Path, size: int = 16 * 1024) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            handle.seek(max(0, end - size))
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return data.decode("utf-8", errors="replace")


def _sorted_rows(rows: dict[str, RunRow]) -> dict[str, RunRow]:
    return dict(sorted(rows.items(), key=lambda item: (item[1].tier, item[1].subtest, item[1].run)))


def _subdirs(path: str, pattern: re.Pattern[str]) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(path) if pattern.match(entry.name) and entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _journal_id(path: Path) -> tuple[int | None, int]:
    try:
        info = os.stat(path)
    except OSError:
        return None, 0
    return info.st_ino, info.st_size


def is_experiment(path: Path) -> bool:
    return (Path(path) / "config" / "experiment.json").is_file()


class Source:
    """The viewed PATH: one experiment, or a batch directory of them."""

    def __init__(self, path: Path):
        self.root = Path(path).resolve()
        if not self.root.is_dir():
            raise ViewError(f"{path}: not a directory",
                            "Pass an experiment directory (with config/experiment.json) or a batch results directory")
        self.kind = "experiment" if is_experiment(self.root) else "batch"
        self._experiments: dict[str, ExperimentView] = {}
        self._lock = threading.Lock()
        if self.kind == "batch" and not self.experiment_dirs() and not (self.root / "batch_summary.json").is_file():
            raise ViewError(f"{path}: neither an experiment directory (no config/experiment.json) nor a batch "
                            "results directory (no batch_summary.json, no experiment subdirectories)",
                            "Pass the directory `tierbench run` or `tierbench batch` wrote")

    def experiment_dirs(self) -> list[Path]:
        if self.kind == "experiment":
            return [self.root]
        from tierbench.report.aggregate import find_experiment_dirs

        return find_experiment_dirs(self.root)

    def experiments(self) -> list[ExperimentView]:
        with self._lock:
            for path in self.experiment_dirs():
                if path.name not in self._experiments:
                    self._experiments[path.name] = ExperimentView(path, path.name)
            views = list(self._experiments.values())
        for view in views:
            view.refresh()
        return views

    def experiment(self, name: str) -> ExperimentView:
        with self._lock:
            view = self._experiments.get(name)
        if view is None:
            match = [p for p in self.experiment_dirs() if p.name == name]
            if not match:
                raise NotFound(f"no experiment {name!r} in {self.root}")
            with self._lock:
                view = self._experiments.setdefault(name, ExperimentView(match[0], name))
        view.refresh()
        return view

    def batch_summary(self) -> Any:
        if self.kind != "batch":
            return None
        from tierbench.batch.summary import SUMMARY_FILE, load_summary

        try:
            return load_summary(self.root / SUMMARY_FILE)
        except (TierbenchError, ValueError):
            return None

    def tier_name(self, tier: str) -> str:
        return TIER_NAMES.get(tier, tier)
