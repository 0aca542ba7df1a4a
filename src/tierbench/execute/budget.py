"""--budget-usd: never launch a run whose forecast would take the spend past the budget.

The forecast of launching a run is

    spent + committed + expected cost of this run

where `spent` is the cost recorded for every finished attempt (results, rate-limited and errored
attempts alike: the money is gone either way), `committed` is the expected cost of the runs in
flight, and a run's expected cost is the mean cost of the completed results of its subtest, else of
every completed result of the experiment. Before any run has finished there is no estimate: then a
run is launched only when nothing else is in flight, so at most one run's cost is unforeseen.

Spent and commitments live in the checkpoint (through the journal, see store/state.py), so a crash
cannot forget money: a commitment still open when a process starts belonged to a run that was in
flight when the previous process died, and it is settled as spent at its forecast unless the run's
own result says what it cost.

This module is arithmetic only; the coordinator owns the state and the decisions' side effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Costs are sums of floats: allow for rounding so that a budget of exactly five $1 runs runs five.
EPSILON_USD = 1e-9


def usd(value: float) -> str:
    return f"${value:,.2f}" if abs(value) >= 0.995 or value == 0 else f"${value:.4f}"


@dataclass
class CostModel:
    """Mean cost of completed results, per subtest and overall."""

    by_subtest: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    total: float = 0.0
    count: int = 0

    def add(self, tier: str, subtest: str, cost: float) -> None:
        total, count = self.by_subtest.get((tier, subtest), (0.0, 0))
        self.by_subtest[(tier, subtest)] = (total + cost, count + 1)
        self.total += cost
        self.count += 1

    def expected(self, tier: str, subtest: str) -> float | None:
        total, count = self.by_subtest.get((tier, subtest), (0.0, 0))
        if count:
            return total / count
        return self.total / self.count if self.count else None


@dataclass(frozen=True)
class Decision:
    launch: bool
    expected: float | None  # this run's expected cost (None: no estimate yet)
    forecast: float  # spent + committed + expected (expected counted as 0 when unknown)
    spent: float = 0.0
    committed: float = 0.0


def decide(budget: float, spent: float, committed: float, expected: float | None,
           in_flight: int) -> Decision:
    """May a run with this expected cost start now?"""
    forecast = spent + committed + (expected or 0.0)
    if expected is None:
        # No estimate: one run at a time, and only while something is left.
        return Decision(in_flight == 0 and spent + committed < budget - EPSILON_USD, None, forecast,
                        spent, committed)
    return Decision(forecast <= budget + EPSILON_USD, expected, forecast, spent, committed)


def budget_message(budget: float, spent: float, forecast: float, pending: int,
                   committed: float = 0.0) -> str:
    """The one line a command prints when the budget stops it (exit code 1). `committed`: what
    runs still in flight elsewhere (other tests of a batch) are expected to cost."""
    held = f" and {usd(committed)} committed to runs in flight" if committed > EPSILON_USD else ""
    return (f"Budget reached: spent {usd(spent)}{held} of --budget-usd {usd(budget)}; the next run would "
            f"bring the forecast to {usd(forecast)}. {pending} run(s) not started. Run the same "
            f"command with a higher --budget-usd to continue; it resumes where it left off.")
