"""Adaptive concurrency limits for judge APIs, one per provider, shared by the whole process.

Many runs are judged at once in worker threads. Without a shared limit each thread would discover
a provider's rate limit on its own and they would all retry into it together. The limit behaves
like TCP congestion control: it halves on a 429 (never below 1) and grows back by one after a
streak of successes, up to a maximum. Every change is kept in a history so the experiment's
stats file can show how hard the judges were throttled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal

Reason = Literal["init", "429", "success"]

DEFAULT_INITIAL = 4
DEFAULT_MAXIMUM = 8
DEFAULT_GROW_AFTER = 5


class AdaptiveLimiter:
    """A concurrency limit that halves on rate limits and grows back slowly.

        with limiter.slot() as ticket:
            response = post(...)
        if response.status_code == 429:
            limiter.on_rate_limited(ticket)
        else:
            limiter.on_success()
    """

    def __init__(self, name: str, initial: int = DEFAULT_INITIAL, maximum: int = DEFAULT_MAXIMUM,
                 grow_after: int = DEFAULT_GROW_AFTER) -> None:
        if not 1 <= initial <= maximum:
            raise ValueError(f"need 1 <= initial <= maximum, got initial={initial}, maximum={maximum}")
        self.name = name
        self.maximum = maximum
        self.grow_after = grow_after
        self._limit = initial
        self._in_flight = 0
        self._successes = 0  # consecutive successes since the last change
        self._epoch = 0  # bumped on every decrease; see on_rate_limited
        self._cond = threading.Condition()
        self._history: list[dict[str, Any]] = []
        self._record("init")

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def acquire(self, timeout: float | None = None) -> int | None:
        """Wait for a free slot. Returns a ticket for `on_rate_limited`, or None on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight < self._limit, timeout=timeout):
                return None
            self._in_flight += 1
            return self._epoch

    def release(self) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[int]:
        ticket = self.acquire()
        assert ticket is not None  # no timeout: acquire only returns once a slot is free
        try:
            yield ticket
        finally:
            self.release()

    def on_rate_limited(self, ticket: int | None = None) -> None:
        """Halve the limit (min 1). A 429 on a request sent before the last decrease is the same
        congestion we already reacted to, so with its `ticket` it does not halve again."""
        with self._cond:
            self._successes = 0
            if ticket is not None and ticket != self._epoch:
                return
            self._epoch += 1
            if self._limit > 1:
                self._limit = max(1, self._limit // 2)
                self._record("429")

    def on_success(self) -> None:
        """Count a success; after `grow_after` in a row, allow one more concurrent request."""
        with self._cond:
            self._successes += 1
            if self._successes >= self.grow_after and self._limit < self.maximum:
                self._limit += 1
                self._successes = 0
                self._record("success")
                self._cond.notify_all()

    def history(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(event) for event in self._history]

    def _record(self, reason: Reason) -> None:
        # Caller holds the lock (or is __init__).
        self._history.append({"at": datetime.now(timezone.utc).isoformat(), "limit": self._limit,
                              "reason": reason})


_registry: dict[str, AdaptiveLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(provider_key: str, initial: int = DEFAULT_INITIAL, maximum: int = DEFAULT_MAXIMUM) -> AdaptiveLimiter:
    """The process-wide limiter for a provider ("anthropic", "openai@<base_url>", ...).
    `initial`/`maximum` apply only when the limiter is first created."""
    with _registry_lock:
        limiter = _registry.get(provider_key)
        if limiter is None:
            limiter = _registry[provider_key] = AdaptiveLimiter(provider_key, initial, maximum)
        return limiter


def limiter_history() -> dict[str, list[dict[str, Any]]]:
    """Every provider's limit changes, for the experiment's stats file."""
    with _registry_lock:
        limiters = dict(_registry)
    return {name: limiter.history() for name, limiter in sorted(limiters.items())}


def reset_limiters() -> None:
    """Forget every limiter (tests only: limits learned in one test must not leak into the next)."""
    with _registry_lock:
        _registry.clear()
