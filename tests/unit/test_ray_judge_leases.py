"""The cluster-wide judge limits (`_JudgeLimits`, the Ray actor's class, used here without Ray): every
slot is leased to one attempt of a run, and the slots of an attempt whose task died come back."""

from __future__ import annotations

import threading

from tierbench.execute.ray import _JudgeLimits

KEY = "openai@http://127.0.0.1:9/v1"


def limits(cap: int) -> _JudgeLimits:
    return _JudgeLimits(cap)


def take(actor: _JudgeLimits, owner: str, timeout: float = 0.05) -> int | None:
    return actor.acquire(KEY, 4, 8, timeout, owner)


def test_a_dead_tasks_slots_come_back_when_its_owner_is_released():
    actor = limits(1)
    assert take(actor, "T0/00/run_01#1") is not None
    assert take(actor, "T0/00/run_02#2") is None, "the limit of 1 is held by the first attempt"
    # The first attempt's worker is SIGKILLed while judging: it never releases. The coordinator
    # records the lost attempt and releases what it held.
    assert actor.release_owner("T0/00/run_01#1") == 1
    assert actor.in_flight(KEY) == 0
    assert take(actor, "T0/00/run_02#2") is not None


def test_a_late_release_of_a_released_owner_frees_nobody_elses_slot():
    actor = limits(2)
    assert take(actor, "a#1") is not None and take(actor, "b#2") is not None
    assert actor.release_owner("a#1") == 1
    assert take(actor, "c#3") is not None  # b and c hold the two slots now
    actor.release(KEY, "a#1")  # a's own release arrives after all (its task was still unwinding)
    assert actor.in_flight(KEY) == 2
    assert take(actor, "d#4") is None, "a late release of a released owner freed someone else's slot"


def test_an_acquire_that_was_waiting_when_its_owner_died_takes_nothing():
    actor = limits(1)
    assert take(actor, "a#1") is not None
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(take(actor, "b#2", timeout=10)))
    waiter.start()
    actor.release_owner("b#2")  # b's task died while its acquire waited in the actor
    actor.release(KEY, "a#1")  # the slot frees: b's pending acquire gets it, and must hand it back
    waiter.join(10)
    assert got == [None]
    assert actor.in_flight(KEY) == 0
    assert take(actor, "c#3") is not None


def test_normal_release_and_owner_release_count_each_slot_once():
    actor = limits(3)
    for _ in range(2):
        assert take(actor, "a#1") is not None
    assert take(actor, "b#2") is not None
    actor.release(KEY, "a#1")
    assert actor.release_owner("a#1") == 1, "only the slot a still held"
    assert actor.release_owner("a#1") == 0
    assert actor.in_flight(KEY) == 1
    actor.release(KEY, "b#2")
    assert actor.in_flight(KEY) == 0
