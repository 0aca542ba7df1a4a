"""Ctrl+C and SIGTERM, the same way for `run` and `batch`: the first signal asks the work to stop
cleanly (state saved, exit 130); a second one kills what is running and exits 130 at once (every
completed result is already durable, so nothing that finished is lost)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

from tierbench.exitcodes import EXIT_INTERRUPTED, print_error

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_handlers(stop: Callable[[], object], kill: Callable[[], object], *,
                          stopping: str) -> Callable[[], None]:
    """First SIGINT/SIGTERM: say `<SIG>: stopping; <stopping>` and call `stop()`. A second: `kill()`
    and exit 130 at once. Returns a function that restores the previous handlers."""
    hits = {"count": 0}

    def handle(signum: int, _frame: FrameType | None) -> None:
        hits["count"] += 1
        if hits["count"] == 1:
            print_error(f"{signal.Signals(signum).name}: stopping; {stopping} "
                        "(press Ctrl+C again to exit at once)")
            stop()
            return
        kill()
        os._exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def ignore_late_signals() -> None:
    """Everything is saved: Python restores the default handlers while it shuts down, so a late
    Ctrl+C would turn exit 130 into death-by-signal. Ignore signals for these last moments."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
