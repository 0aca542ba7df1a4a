"""The live view of a `run`: what the coordinator tells the user while an experiment proceeds.

The coordinator calls a `ProgressSink` from its main thread only, so implementations keep plain
state and need no locks. Three implementations:

- `RichProgress` for a terminal: per-tier bars, passes and cost so far, ETA, in-flight runs with
  elapsed time, and a countdown while paused on a rate limit. It redraws on `tick()` (the coordinator
  calls it about 4×/s), not from a background thread, so state is never read while it changes.
- `PlainProgress` when stderr is not a TTY (CI, logs, `| tee`): one line per finished run and a line
  on pause/resume; nothing that needs cursor movement.
- `QuietProgress` for `--quiet`: only error messages.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Protocol

from tierbench.models import RunStatus


class ProgressSink(Protocol):
    def start(self, exp_label: str, totals: dict[str, int], done: dict[str, int], passed: int,
              cost: float) -> None: ...
    def run_started(self, key: str) -> None: ...
    def run_finished(self, key: str, status: RunStatus, score: float | None, cost: float,
                     duration: float) -> None: ...
    def paused(self, until: datetime, source: str, message: str) -> None: ...
    def resumed(self) -> None: ...
    def tick(self) -> None: ...
    def message(self, text: str, error: bool = False) -> None: ...
    def budget(self, budget: float, spent: float, committed: float, forecast: float) -> None: ...
    def stop(self) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def format_duration(seconds: float) -> str:
    """'42s', '3m05s', '2h04m': short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Tally:
    """What the views count: runs done per tier, passes, cost, run times, runs in flight, pause."""

    label: str = ""
    totals: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)
    passed: int = 0
    cost: float = 0.0
    durations: list[float] = field(default_factory=list)
    in_flight: dict[str, float] = field(default_factory=dict)  # key -> monotonic start
    peak_in_flight: int = 0
    paused_until: datetime | None = None
    pause_source: str = ""
    pause_message: str = ""
    budget: tuple[float, float, float, float] | None = None  # budget, spent, committed, forecast

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def done_total(self) -> int:
        return sum(self.done.values())

    def started(self, key: str, now: float) -> None:
        self.in_flight[key] = now
        self.peak_in_flight = max(self.peak_in_flight, len(self.in_flight))

    def finished(self, key: str, status: RunStatus, cost: float, duration: float) -> None:
        """Only passed/failed runs count as done; every attempt's cost was spent, so it counts."""
        self.in_flight.pop(key, None)
        self.cost += cost
        if status.is_result:
            tier = key.split("/", 1)[0]
            self.done[tier] = self.done.get(tier, 0) + 1
            self.passed += status is RunStatus.PASSED
            self.durations.append(duration)

    def eta_seconds(self, parallel: int | None) -> float | None:
        """Remaining runs × median run time / parallelism (given, else the most seen in flight)."""
        remaining = max(0, self.total - self.done_total)
        if remaining == 0:
            return 0.0
        if not self.durations:
            return None
        workers = max(1, parallel or self.peak_in_flight or 1)
        return remaining * statistics.median(self.durations) / workers


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.2f}"


def budget_line(budget: float, spent: float, committed: float, forecast: float) -> str:
    """`budget $5.00: spent $3.00, committed $1.00, forecast $6.00` (forecast: the whole plan)."""
    return (f"budget ${budget:.2f}: spent ${spent:.2f}, committed ${committed:.2f}, "
            f"forecast ${forecast:.2f}")


class PlainProgress:
    """One plain line per event, for logs: `[12/40] T0/01/run_02 passed score=0.83 cost=$0.012 23.1s`."""

    def __init__(self, stream: IO[str] | None = None, now: Callable[[], datetime] = _utcnow):
        self.stream = stream if stream is not None else sys.stderr
        self.tally = Tally()
        self._now = now

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, exp_label, totals, done, passed, cost) -> None:
        self.tally = Tally(label=exp_label, totals=dict(totals), done=dict(done), passed=passed, cost=cost)
        t = self.tally
        tiers = " ".join(f"{tier} {t.done.get(tier, 0)}/{n}" for tier, n in sorted(t.totals.items()))
        self._print(f"{exp_label}: {t.done_total}/{t.total} runs done, {passed} passed, "
                    f"${cost:.3f} so far ({tiers})")

    def run_started(self, key: str) -> None:
        self.tally.started(key, time.monotonic())

    def run_finished(self, key, status, score, cost, duration) -> None:
        self.tally.finished(key, status, cost, duration)
        t = self.tally
        scored = f" score={_score(score)}" if status.is_result else ""
        retry = "" if status.is_result else " (not a result; will be retried)"
        self._print(f"[{t.done_total}/{t.total}] {key} {status.value}{scored} cost=${cost:.3f} "
                    f"{duration:.1f}s{retry}")

    def paused(self, until: datetime, source: str, message: str) -> None:
        until = _aware(until)
        wait = format_duration((until - self._now()).total_seconds())
        detail = f": {message}" if message else ""
        self._print(f"paused: rate limited ({source}) until {until:%Y-%m-%d %H:%M:%S} UTC "
                    f"(in {wait}){detail}")

    def resumed(self) -> None:
        self._print("resumed")

    def tick(self) -> None:
        pass

    def message(self, text: str, error: bool = False) -> None:
        self._print(text)

    def budget(self, budget: float, spent: float, committed: float, forecast: float) -> None:
        self.tally.budget = (budget, spent, committed, forecast)
        self._print(budget_line(budget, spent, committed, forecast))

    def stop(self) -> None:
        self.stream.flush()


class QuietProgress:
    """Prints nothing but error messages."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream if stream is not None else sys.stderr

    def start(self, exp_label, totals, done, passed, cost) -> None:
        pass

    def run_started(self, key: str) -> None:
        pass

    def run_finished(self, key, status, score, cost, duration) -> None:
        pass

    def paused(self, until: datetime, source: str, message: str) -> None:
        pass

    def resumed(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def message(self, text: str, error: bool = False) -> None:
        if error:
            self.stream.write(text + "\n")
            self.stream.flush()

    def budget(self, budget: float, spent: float, committed: float, forecast: float) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress:
    """A rich Live view on a terminal, redrawn by `tick()` and on every event."""

    MAX_IN_FLIGHT_SHOWN = 8

    def __init__(self, stream: IO[str] | None = None, parallel: int | None = None,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] = _utcnow,
                 console=None):
        from rich.console import Console

        self.console = console or Console(file=stream if stream is not None else sys.stderr)
        self.parallel = parallel
        self.tally = Tally()
        self._clock = clock
        self._now = now
        self._started_at = clock()
        self._live: Any = None

    def _render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        t = self.tally
        elapsed = format_duration(self._clock() - self._started_at)
        eta = t.eta_seconds(self.parallel)
        rate = f" ({t.passed / t.done_total:.0%})" if t.done_total else ""
        header = Text.assemble((t.label, "bold"), f"  {t.done_total}/{t.total} runs  ",
                               (f"{t.passed} passed{rate}", "green"), f"  ${t.cost:.3f}  ",
                               f"elapsed {elapsed}  ETA {'–' if eta is None else format_duration(eta)}")
        bars = Table.grid(padding=(0, 1))
        for tier, total in sorted(t.totals.items()):
            done = t.done.get(tier, 0)
            bars.add_row(Text(tier, style="bold"), ProgressBar(total=max(total, 1), completed=done,
                                                               width=30), Text(f"{done}/{total}"))
        parts = [header, bars]
        if t.budget is not None:
            parts.append(Text(budget_line(*t.budget), style="magenta"))
        now = self._clock()
        running = sorted(t.in_flight.items(), key=lambda item: item[1])
        for key, started in running[: self.MAX_IN_FLIGHT_SHOWN]:
            parts.append(Text(f"  running {key}  {format_duration(now - started)}", style="cyan"))
        if len(running) > self.MAX_IN_FLIGHT_SHOWN:
            parts.append(Text(f"  … and {len(running) - self.MAX_IN_FLIGHT_SHOWN} more", style="cyan"))
        if t.paused_until is not None:
            left = format_duration((t.paused_until - self._now()).total_seconds())
            parts.append(Text(f"Rate limited ({t.pause_source}): resuming in {left} at "
                              f"{t.paused_until:%H:%M:%S} UTC. {t.pause_message}".rstrip(),
                              style="bold yellow"))
        return Group(*parts)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def start(self, exp_label, totals, done, passed, cost) -> None:
        from rich.live import Live

        self.tally = Tally(label=exp_label, totals=dict(totals), done=dict(done), passed=passed, cost=cost)
        self._started_at = self._clock()
        self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def run_started(self, key: str) -> None:
        self.tally.started(key, self._clock())
        self._refresh()

    def run_finished(self, key, status, score, cost, duration) -> None:
        self.tally.finished(key, status, cost, duration)
        if not status.is_result:
            self.message(f"{key} {status.value}: not a result, will be retried", error=status is RunStatus.ERROR)
        self._refresh()

    def paused(self, until: datetime, source: str, message: str) -> None:
        self.tally.paused_until, self.tally.pause_source = _aware(until), source
        self.tally.pause_message = message
        self._refresh()

    def resumed(self) -> None:
        self.tally.paused_until = None
        self.message("resumed after rate limit")
        self._refresh()

    def tick(self) -> None:
        self._refresh()

    def message(self, text: str, error: bool = False) -> None:
        from rich.text import Text

        self.console.print(Text(text, style="bold red" if error else ""))

    def budget(self, budget: float, spent: float, committed: float, forecast: float) -> None:
        self.tally.budget = (budget, spent, committed, forecast)
        self._refresh()

    def stop(self) -> None:
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None


def make_progress(quiet: bool, stream: IO[str] | None = None, parallel: int | None = None) -> ProgressSink:
    """Quiet when asked; the rich view on a terminal; plain lines otherwise (default stream: stderr)."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return QuietProgress(stream)
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return RichProgress(stream, parallel=parallel)
    return PlainProgress(stream)
