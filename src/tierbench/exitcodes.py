"""The exit codes every command shares, and how a command states an error. Scripts depend on
these: 2 means "rate limited, run the same command again later", so nothing else may use it."""

from __future__ import annotations

import sys

EXIT_OK = 0  # done
EXIT_ERROR = 1  # bad input, a bug, a permanent failure
EXIT_RATE_LIMITED = 2  # rate limited and not waiting: run again later, it resumes
EXIT_INTERRUPTED = 130  # SIGINT/SIGTERM: run again, it resumes


def print_error(text: str) -> None:
    print(f"tierbench: {text}", file=sys.stderr, flush=True)
