"""What a batch shows while it runs, behind the run side's `ProgressSink` interface: a test is the
batch's unit, so `run_started`/`run_finished` take a test id. A rich live view (a headline plus one
row per worker) on a terminal, plain lines otherwise, only errors with `quiet`. Worker threads call
it, so every method takes a lock."""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO, Any

from tierbench.batch.summary import EntryStatus
from tierbench.models import RunStatus
from tierbench.progress import format_duration

_AS_ENTRY = {status.run_status: status for status in EntryStatus if status is not EntryStatus.BUDGET_REACHED}


class BatchProgress:
    """A ProgressSink over tests. `threads` maps each test id to its worker (from the plan)."""

    def __init__(self, threads: dict[str, int], workers: int, *, quiet: bool = False,
                 stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.thread_of, self.workers = dict(threads), workers
        self.total = self.done = self.passed = 0
        self.cost = 0.0
        self.current: dict[int, tuple[str, float]] = {}  # worker -> (test id, monotonic start)
        self.walls: list[float] = []
        self.paused_until: datetime | None = None
        self._started = time.monotonic()
        self._lock = threading.RLock()
        self._live: Any = None
        if not quiet and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=self.stream), auto_refresh=False, transient=True)

    # -- ProgressSink ----------------------------------------------------------------------------
    def start(self, exp_label: str, totals: dict[str, int], done: dict[str, int], passed: int,
              cost: float) -> None:
        with self._lock:
            self.total, self.done = sum(totals.values()), sum(done.values())
            self.passed, self.cost = passed, cost
            if self._live is not None:
                self._live.start()
                self._refresh()

    def run_started(self, key: str) -> None:
        with self._lock:
            if (worker := self.thread_of.get(key)) is not None:
                self.current[worker] = (key, time.monotonic())
            self._refresh()

    def run_finished(self, key: str, status: RunStatus, score: float | None, cost: float,
                     duration: float) -> None:
        """`[3/8] thread 1: py-fizzbuzz pass cost=$0.02 12.3s`"""
        worker = self.thread_of.get(key)
        with self._lock:
            if worker is not None and self.current.get(worker, ("",))[0] == key:
                self.current.pop(worker)
            self.done += 1
            self.passed += status is RunStatus.PASSED
            self.cost += cost
            if status.is_result and duration:
                self.walls.append(duration)
            where = f"thread {worker}: " if worker is not None else ""
            line = f"[{self.done}/{self.total}] {where}{key} {_AS_ENTRY[status].value}"
            if cost:
                line += f" cost=${cost:.2f}"
            if duration:
                line += f" {duration:.1f}s"
        self.message(line, error=status is RunStatus.ERROR)

    def paused(self, until: datetime, source: str, message: str) -> None:
        with self._lock:
            self.paused_until = until
            self._refresh()

    def resumed(self) -> None:
        with self._lock:
            self.paused_until = None
            self._refresh()

    def tick(self) -> None:
        with self._lock:
            self._refresh()

    def budget(self, budget: float, spent: float, committed: float, forecast: float) -> None:
        pass  # each test's own run shows its budget line; the batch prints the stop

    def message(self, text: str, error: bool = False) -> None:
        with self._lock:
            if self.quiet and not error:
                return
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False)
                self._refresh()
            else:
                print(("tierbench: " if error else "") + text, file=self.stream, flush=True)

    def stop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None
                if self.stream.isatty():
                    self.stream.write("\x1b[?25h")  # the live view hid the cursor

    # -- the view --------------------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        remaining = self.total - self.done
        if not self.walls or remaining <= 0:
            return None
        mean = sum(self.walls) / len(self.walls)
        return mean * remaining / max(1, min(self.workers, remaining))

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        eta = self.eta_seconds()
        head = (f"Batch: {self.done}/{self.total} tests done · {self.passed} pass · "
                f"cost ${self.cost:.2f} · elapsed {format_duration(time.monotonic() - self._started)}"
                + (f" · ETA {format_duration(eta)}" if eta is not None else ""))
        if self.paused_until is not None:
            left = (self.paused_until - datetime.now(timezone.utc)).total_seconds()
            head += f"\nRate limited: no new test starts for {format_duration(left)}"
        table = Table(box=None, show_header=True, header_style="dim")
        table.add_column("thread")
        table.add_column("running")
        table.add_column("for", justify="right")
        now = time.monotonic()
        for worker in range(1, self.workers + 1):
            test_id, since = self.current.get(worker, ("-", now))
            table.add_row(str(worker), test_id, format_duration(now - since) if test_id != "-" else "")
        return Group(Text(head, style="bold"), table)
