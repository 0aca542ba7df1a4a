"""The live views of `run`: plain lines for logs, quiet for scripts, rich on a terminal."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from rich.console import Console

from tierbench.models import RunStatus
from tierbench.progress import (
    PlainProgress, QuietProgress, RichProgress, Tally, format_duration, make_progress,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_plain_progress_lines():
    out = io.StringIO()
    sink = PlainProgress(out, now=lambda: NOW)
    sink.start("test-a", {"T0": 4, "T1": 2}, {"T0": 1}, passed=1, cost=0.5)
    sink.run_started("T0/01/run_02")
    sink.run_finished("T0/01/run_02", RunStatus.PASSED, 0.834, 0.0123, 23.14)
    sink.run_finished("T1/00/run_01", RunStatus.RATE_LIMITED, None, 0.0, 3.0)
    sink.paused(NOW + timedelta(minutes=5, seconds=3), "agent", "usage limit reached")
    sink.resumed()
    sink.run_finished("T1/00/run_01", RunStatus.FAILED, None, 0.02, 10.0)
    sink.message("something to say")
    sink.tick()
    sink.stop()
    assert out.getvalue().splitlines() == [
        "test-a: 1/6 runs done, 1 passed, $0.500 so far (T0 1/4 T1 0/2)",
        "[2/6] T0/01/run_02 passed score=0.83 cost=$0.012 23.1s",
        "[2/6] T1/00/run_01 rate_limited cost=$0.000 3.0s (not a result; will be retried)",
        "paused: rate limited (agent) until 2025-03-01 12:05:03 UTC (in 5m03s): usage limit reached",
        "resumed",
        "[3/6] T1/00/run_01 failed score=- cost=$0.020 10.0s",
        "something to say",
    ]
    assert sink.tally.passed == 2 and sink.tally.cost == 0.5 + 0.0123 + 0.02


def test_quiet_progress_prints_only_errors():
    out = io.StringIO()
    sink = QuietProgress(out)
    sink.start("x", {"T0": 1}, {}, 0, 0.0)
    sink.run_finished("T0/00/run_01", RunStatus.PASSED, 1.0, 0.1, 1.0)
    sink.paused(NOW, "judge", "429")
    sink.message("just info")
    sink.message("judge binary missing", error=True)
    sink.stop()
    assert out.getvalue() == "judge binary missing\n"


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_progress_picks_by_tty_and_quiet():
    assert isinstance(make_progress(False, io.StringIO()), PlainProgress)
    assert isinstance(make_progress(True, _FakeTTY()), QuietProgress)
    assert isinstance(make_progress(False, _FakeTTY()), RichProgress)


def test_eta_uses_median_run_time_and_parallelism():
    tally = Tally(totals={"T0": 10}, done={"T0": 4})
    assert tally.eta_seconds(2) is None  # no run time observed yet
    for duration in (10.0, 30.0, 20.0):
        tally.finished("T0/00/run_01", RunStatus.PASSED, 0.0, duration)
    assert tally.eta_seconds(2) == 3 * 20.0 / 2
    tally.started("a", 0.0)
    tally.started("b", 0.0)
    assert tally.eta_seconds(None) == 3 * 20.0 / 2  # parallelism inferred from runs seen in flight


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 185, 7440, -3)] == ["0s", "42s", "3m05s", "2h04m", "0s"]


def test_rich_progress_renders_bars_runs_and_countdown():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    clock = iter(float(i) for i in range(1000))
    sink = RichProgress(console=console, parallel=2, clock=lambda: next(clock), now=lambda: NOW)
    sink.start("test-a", {"T0": 2, "T1": 2}, {}, 0, 0.0)
    sink.run_started("T0/00/run_01")
    sink.tick()
    sink.run_finished("T0/00/run_01", RunStatus.PASSED, 0.9, 0.01, 12.0)
    sink.run_finished("T0/00/run_02", RunStatus.ERROR, None, 0.0, 1.0)
    sink.paused(NOW + timedelta(seconds=90), "agent", "quota")
    sink.tick()
    text = out.getvalue()
    assert "running T0/00/run_01" in text
    assert "Rate limited (agent): resuming in 1m30s" in text
    assert "T0/00/run_02 error: not a result" in text
    sink.resumed()
    sink.message("fatal", error=True)
    sink.stop()
    text = out.getvalue()
    assert "1/4 runs" in text and "1 passed" in text and "fatal" in text


def test_every_view_shows_the_budget():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    rich = RichProgress(console=console, parallel=2, clock=lambda: 0.0, now=lambda: NOW)
    rich.start("test-a", {"T0": 2}, {}, 0, 0.0)
    rich.budget(5.0, 2.5, 1.25, 6.25)
    rich.stop()
    assert "budget $5.00: spent $2.50, committed $1.25, forecast $6.25" in out.getvalue()
    plain_out = io.StringIO()
    plain = PlainProgress(plain_out)
    plain.start("test-a", {"T0": 2}, {}, 0, 0.0)
    plain.budget(5.0, 2.5, 1.25, 6.25)
    assert plain_out.getvalue().splitlines()[-1] == "budget $5.00: spent $2.50, committed $1.25, forecast $6.25"
    quiet_out = io.StringIO()
    QuietProgress(quiet_out).budget(5.0, 2.5, 1.25, 6.25)
    assert quiet_out.getvalue() == ""
