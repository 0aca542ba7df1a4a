"""The one error type a user sees: what went wrong, and what to do about it.

Any module raises a `TierbenchError` (or a subclass) for a condition the user can fix; `cli.main`
catches it once, prints `tierbench: <message> <fix>` on one line and exits 1. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class TierbenchError(Exception):
    """A failure the user can act on. `message` says what happened (naming the file or option),
    `fix` says what to do; both end up on one line."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if not self.fix:
            return self.message
        return f"{self.message.rstrip('. ')}. {self.fix}"
