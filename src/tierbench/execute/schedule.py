"""Ready queues and counters per tier: the coordinator's scheduling state, O(1) amortised per run.

Built once from the plan and the recorded results (O(planned runs)); afterwards taking the next
ready run, recording one and asking whether a tier is complete never walk the plan. Each tier keeps
a queue of its runs not yet handed out, in plan order, and two counters (planned, completed). A tier
may start when every tier it depends on is complete, which is a comparison of counters.

Pure bookkeeping, no I/O: the coordinator owns it and calls it from one thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Iterable, Mapping

from tierbench.models import RunKey


class RunQueues:
    def __init__(self, plan: Iterable[RunKey], tiers: list[str], dependencies: Mapping[str, set[str]],
                 completed: Container[RunKey]):
        self.tiers = list(tiers)
        self._deps = {tier: set(dependencies.get(tier, ())) for tier in self.tiers}
        self.planned: dict[str, int] = {tier: 0 for tier in self.tiers}
        self.done: dict[str, int] = {tier: 0 for tier in self.tiers}
        self._queues: dict[str, deque[RunKey]] = {tier: deque() for tier in self.tiers}
        self._held: set[tuple[str, str, int]] = set()  # handed out, or set aside for this session
        for key in plan:
            if key.tier not in self.planned:
                continue
            self.planned[key.tier] += 1
            if key in completed:
                self.done[key.tier] += 1
            else:
                self._queues[key.tier].append(key)

    # -- tiers -------------------------------------------------------------------------------
    def tier_complete(self, tier: str) -> bool:
        return self.done.get(tier, 0) >= self.planned.get(tier, 0)

    def tier_ready(self, tier: str) -> bool:
        return all(self.tier_complete(dep) for dep in self._deps.get(tier, ()))

    def all_complete(self) -> bool:
        return all(self.tier_complete(tier) for tier in self.tiers)

    # -- handing out and taking back ---------------------------------------------------------
    def next_ready(self) -> RunKey | None:
        """The next run to launch: the first queued run of the first tier that may start. Runs
        handed out or set aside are skipped (each at most once per hand-out, so O(1) amortised)."""
        for tier in self.tiers:
            queue = self._queues[tier]
            if not queue or not self.tier_ready(tier):
                continue
            while queue:
                key = queue.popleft()
                ident = (key.tier, key.subtest, key.run)
                if ident in self._held:
                    continue
                self._held.add(ident)
                return key
        return None

    def give_back(self, key: RunKey) -> None:
        """A handed-out run goes back to the front of its tier's queue (cancelled before it started,
        or its attempt was lost with a node and it is relaunched)."""
        self._held.discard((key.tier, key.subtest, key.run))
        if key.tier in self._queues:
            self._queues[key.tier].appendleft(key)

    def completed(self, key: RunKey) -> None:
        """Count a newly recorded result. Call once per run, when the store recorded it."""
        if key.tier in self.done:
            self.done[key.tier] += 1
        self._held.add((key.tier, key.subtest, key.run))

    def set_aside(self, keys: Iterable[RunKey]) -> None:
        """Launch these no more in this session (they stay pending: the next command retries them)."""
        self._held.update((k.tier, k.subtest, k.run) for k in keys)

    def set_aside_all(self) -> None:
        """Stop handing out anything (the stall breaker)."""
        for queue in self._queues.values():
            queue.clear()

    # -- views -------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        return dict(self.planned)

    def done_by_tier(self) -> dict[str, int]:
        return dict(self.done)

    def remaining(self) -> int:
        return sum(self.planned[t] - self.done[t] for t in self.tiers)
