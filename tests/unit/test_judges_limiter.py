"""AdaptiveLimiter: halves on 429 (min 1), grows back by one after a streak of successes."""

from __future__ import annotations

import threading
import time

import pytest

from tierbench.judges.limiter import (
    MAX_CONCURRENCY_ENV,
    AdaptiveLimiter,
    limiter_for,
    limiter_history,
    reset_limiters,
    set_limiter_backend,
)


def reasons(limiter: AdaptiveLimiter) -> list[tuple[str, int]]:
    return [(event["reason"], event["limit"]) for event in limiter.history()]


def test_halves_on_429_down_to_one():
    limiter = AdaptiveLimiter("p", initial=8, maximum=8)
    for _ in range(5):
        limiter.on_rate_limited()
    assert limiter.limit == 1
    assert reasons(limiter) == [("init", 8), ("429", 4), ("429", 2), ("429", 1)]


def test_grows_by_one_after_n_consecutive_successes_up_to_the_maximum():
    limiter = AdaptiveLimiter("p", initial=2, maximum=3, grow_after=3)
    for _ in range(2):
        limiter.on_success()
    assert limiter.limit == 2
    limiter.on_success()
    assert limiter.limit == 3
    for _ in range(10):
        limiter.on_success()
    assert limiter.limit == 3
    assert reasons(limiter) == [("init", 2), ("success", 3)]


def test_a_429_resets_the_success_streak():
    limiter = AdaptiveLimiter("p", initial=4, maximum=8, grow_after=3)
    limiter.on_success()
    limiter.on_success()
    limiter.on_rate_limited()
    limiter.on_success()
    limiter.on_success()
    assert limiter.limit == 2


def test_429s_from_requests_sent_before_the_last_decrease_halve_only_once():
    limiter = AdaptiveLimiter("p", initial=8, maximum=8)
    tickets = [limiter.acquire() for _ in range(4)]
    for ticket in tickets:  # one burst of congestion, seen by four requests in flight together
        limiter.on_rate_limited(ticket)
    assert limiter.limit == 4
    for _ in tickets:
        limiter.release()
    limiter.on_rate_limited(limiter.acquire())  # a new request, after the decrease, halves again
    assert limiter.limit == 2


def test_history_entries_have_iso_time_limit_and_reason():
    event = AdaptiveLimiter("p").history()[0]
    assert set(event) == {"at", "limit", "reason"}
    assert event["reason"] == "init" and event["limit"] == 4
    assert "T" in event["at"] and event["at"].endswith("+00:00")


def test_concurrency_never_exceeds_the_limit():
    limiter = AdaptiveLimiter("p", initial=3, maximum=3)
    peak, current, lock = [0], [0], threading.Lock()

    def work() -> None:
        with limiter.slot():
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            time.sleep(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 3
    assert limiter.in_flight == 0


def test_a_lowered_limit_holds_back_new_requests_until_enough_finish():
    limiter = AdaptiveLimiter("p", initial=4, maximum=4)
    held = [limiter.acquire() for _ in range(3)]
    limiter.on_rate_limited(held[0])  # limit 2 with 3 in flight
    assert limiter.acquire(timeout=0.05) is None
    limiter.release()
    assert limiter.acquire(timeout=0.05) is None  # 2 in flight, limit 2
    limiter.release()
    assert limiter.acquire(timeout=0.5) is not None


def test_invalid_bounds_are_refused():
    with pytest.raises(ValueError):
        AdaptiveLimiter("p", initial=0)
    with pytest.raises(ValueError):
        AdaptiveLimiter("p", initial=9, maximum=8)


def test_registry_shares_one_limiter_per_provider_and_reports_history():
    reset_limiters()
    try:
        a = limiter_for("anthropic")
        assert limiter_for("anthropic") is a
        b = limiter_for("openai@http://127.0.0.1:1/v1", initial=2, maximum=4)
        assert (b.limit, b.maximum) == (2, 4)
        a.on_rate_limited()
        history = limiter_history()
        assert set(history) == {"anthropic", "openai@http://127.0.0.1:1/v1"}
        assert [e["reason"] for e in history["anthropic"]] == ["init", "429"]
    finally:
        reset_limiters()


def test_the_max_concurrency_knob_caps_initial_and_maximum(monkeypatch):
    reset_limiters()
    monkeypatch.setenv(MAX_CONCURRENCY_ENV, "1")
    try:
        limiter = limiter_for("anthropic")
        assert (limiter.limit, limiter.maximum) == (1, 1)
        monkeypatch.setenv(MAX_CONCURRENCY_ENV, "zero")
        with pytest.raises(ValueError, match=MAX_CONCURRENCY_ENV):
            limiter_for("openai")
    finally:
        reset_limiters()


def test_an_installed_backend_serves_limiters_and_history():
    class Shared:
        def __init__(self):
            self.asked = []
            self.one = AdaptiveLimiter("shared", 2, 2)

        def limiter(self, key, initial, maximum):
            self.asked.append((key, initial, maximum))
            return self.one

        def history(self):
            return {"shared": self.one.history()}

    reset_limiters()
    backend = Shared()
    set_limiter_backend(backend)
    try:
        assert limiter_for("anthropic") is backend.one
        assert backend.asked == [("anthropic", 4, 8)]
        assert list(limiter_history()) == ["shared"]
        set_limiter_backend(None)
        assert limiter_for("anthropic") is not backend.one
    finally:
        reset_limiters()
