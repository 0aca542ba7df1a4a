"""Per-tier ready queues: dependency order, hand-out once, give back, counters."""

from __future__ import annotations

from tierbench.execute.schedule import RunQueues
from tierbench.models import RunKey


def _plan(tiers, subtests=2, runs=2):
    return [RunKey(tier=t, subtest=f"{s:02d}", run=r) for t in tiers for s in range(subtests)
            for r in range(1, runs + 1)]


def test_dependent_tier_starts_only_when_its_dependencies_are_complete():
    plan = _plan(["T0", "T5"])
    queues = RunQueues(plan, ["T0", "T5"], {"T5": {"T0"}}, completed=set())
    handed = []
    while (key := queues.next_ready()) is not None:
        handed.append(key)
    assert [k.tier for k in handed] == ["T0"] * 4  # T5 waits
    for key in handed:
        queues.completed(key)
    assert queues.tier_complete("T0") and queues.tier_ready("T5")
    rest = []
    while (key := queues.next_ready()) is not None:
        rest.append(key)
    assert [k.tier for k in rest] == ["T5"] * 4
    assert not queues.all_complete()
    for key in rest:
        queues.completed(key)
    assert queues.all_complete() and queues.remaining() == 0


def test_recorded_runs_are_counted_and_never_handed_out():
    plan = _plan(["T0"])
    done = {plan[0], plan[3]}
    queues = RunQueues(plan, ["T0"], {}, completed=done)
    assert queues.done_by_tier() == {"T0": 2} and queues.totals() == {"T0": 4}
    handed = [queues.next_ready(), queues.next_ready()]
    assert set(handed) == {plan[1], plan[2]} and queues.next_ready() is None


def test_given_back_runs_come_first_and_set_aside_runs_never_come():
    plan = _plan(["T0"], subtests=1, runs=3)
    queues = RunQueues(plan, ["T0"], {}, completed=set())
    first = queues.next_ready()
    queues.give_back(first)
    assert queues.next_ready() == first
    queues.set_aside([plan[1]])
    assert queues.next_ready() == plan[2]
    assert queues.next_ready() is None
    assert not queues.tier_complete("T0")
