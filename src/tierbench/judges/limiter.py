"""Adaptive concurrency limits for judge APIs, one per provider, shared by the whole process.

Many runs are judged at once in worker threads. Without a shared limit each thread would discover
a provider's rate limit on its own and they would all retry into it together. The limit behaves
like TCP congestion control: it halves on a 429 (never below 1) and grows back by one after a
streak of successes, up to a maximum. Every change is kept in a history so the experiment's
stats file can show how hard the judges were throttled.

One process is not always the whole experiment: on Ray the runs (and their judges) execute in worker
processes on several nodes. The executor then installs a *backend* (`set_limiter_backend`) in every
process, so `limiter_for` hands out limiters that share one limit per provider across the cluster;
this module never imports Ray itself. Without a backend the limiters are local to the process.

`TIERBENCH_JUDGE_MAX_CONCURRENCY` caps every provider's limit (and its starting value), e.g. 1 for
an API that allows one request at a time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

Reason = Literal["init", "429", "success"]

DEFAULT_INITIAL = 4
DEFAULT_MAXIMUM = 8
DEFAULT_GROW_AFTER = 5
MAX_CONCURRENCY_ENV = "TIERBENCH_JUDGE_MAX_CONCURRENCY"


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


class Limiter(Protocol):
    """What a judge uses: an `AdaptiveLimiter`, or a backend's stand-in for one shared elsewhere."""

    def slot(self) -> Any: ...  # a context manager yielding the ticket for on_rate_limited

    def on_rate_limited(self, ticket: int | None = None) -> None: ...

    def on_success(self) -> None: ...


class LimiterBackend(Protocol):
    """Where the limiters live when they are shared beyond this process (see the module docstring)."""

    def limiter(self, provider_key: str, initial: int, maximum: int) -> Limiter: ...

    def history(self) -> dict[str, list[dict[str, Any]]]: ...


def concurrency_cap() -> int | None:
    """`TIERBENCH_JUDGE_MAX_CONCURRENCY` as a number, or None when unset."""
    raw = os.environ.get(MAX_CONCURRENCY_ENV, "").strip()
    if not raw:
        return None
    try:
        cap = int(raw)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"{MAX_CONCURRENCY_ENV} must be a positive integer, got {raw!r}")
    return cap


def configured_limits(initial: int = DEFAULT_INITIAL, maximum: int = DEFAULT_MAXIMUM,
                      cap: int | None = None) -> tuple[int, int]:
    """`initial` and `maximum` under `cap` (default: this process's `TIERBENCH_JUDGE_MAX_CONCURRENCY`)."""
    cap = concurrency_cap() if cap is None else cap
    if cap is not None:
        maximum = min(maximum, cap)
        initial = min(initial, maximum)
    return initial, maximum


_backend: LimiterBackend | None = None


def set_limiter_backend(backend: LimiterBackend | None) -> None:
    """Share the limiters through `backend` from now on (None: back to this process's own)."""
    global _backend
    with _registry_lock:
        _backend = backend


_registry: dict[str, AdaptiveLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(provider_key: str, initial: int = DEFAULT_INITIAL, maximum: int = DEFAULT_MAXIMUM) -> Limiter:
    """The limiter for a provider ("anthropic", "openai@<base_url>", ...): the backend's when one is
    installed, else this process's own. `initial`/`maximum` apply only when it is first created."""
    initial, maximum = configured_limits(initial, maximum)
    with _registry_lock:
        backend = _backend
    if backend is not None:
        return backend.limiter(provider_key, initial, maximum)
    return local_limiter(provider_key, initial, maximum)


def local_limiter(provider_key: str, initial: int = DEFAULT_INITIAL, maximum: int = DEFAULT_MAXIMUM) -> AdaptiveLimiter:
    """This process's own limiter for a provider (what a backend keeps in its one shared place)."""
    with _registry_lock:
        limiter = _registry.get(provider_key)
        if limiter is None:
            limiter = _registry[provider_key] = AdaptiveLimiter(provider_key, initial, maximum)
        return limiter


def limiter_history() -> dict[str, list[dict[str, Any]]]:
    """Every provider's limit changes, for the experiment's stats file (the backend's when installed)."""
    with _registry_lock:
        backend = _backend
        limiters = dict(_registry)
    if backend is not None:
        return backend.history()
    return local_history(limiters)


def local_history(limiters: dict[str, AdaptiveLimiter] | None = None) -> dict[str, list[dict[str, Any]]]:
    if limiters is None:
        with _registry_lock:
            limiters = dict(_registry)
    return {name: limiter.history() for name, limiter in sorted(limiters.items())}


def reset_limiters() -> None:
    """Forget every limiter and any backend (tests only: limits learned in one test must not leak
    into the next)."""
    global _backend
    with _registry_lock:
        _registry.clear()
        _backend = None
