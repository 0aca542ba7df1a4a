"""The budget arithmetic: expected cost per subtest and the launch decision."""

from __future__ import annotations

from tierbench.execute.budget import CostModel, budget_message, decide


def test_expected_cost_is_the_subtest_mean_else_the_experiment_mean():
    costs = CostModel()
    assert costs.expected("T0", "00") is None
    costs.add("T0", "00", 1.0)
    costs.add("T0", "00", 3.0)
    costs.add("T1", "00", 5.0)
    assert costs.expected("T0", "00") == 2.0
    assert costs.expected("T1", "00") == 5.0
    assert costs.expected("T2", "00") == 3.0  # no run of its own yet: the mean of all


def test_decision_counts_spent_committed_and_this_run():
    assert decide(5.0, 3.0, 1.0, 1.0, in_flight=1).launch  # exactly at the budget: allowed
    assert not decide(5.0, 3.0, 1.0, 1.01, in_flight=1).launch
    assert not decide(5.0, 4.0, 0.0, 1.5, in_flight=0).launch
    assert decide(5.0, 0.1 + 0.2, 4.7, 0.0, in_flight=0).launch  # float noise does not stop a run
    stop = decide(5.0, 4.5, 0.0, 1.0, in_flight=0)
    assert stop.forecast == 5.5 and stop.expected == 1.0


def test_without_an_estimate_one_run_at_a_time_while_money_is_left():
    assert decide(5.0, 0.0, 0.0, None, in_flight=0).launch
    assert not decide(5.0, 0.0, 0.0, None, in_flight=1).launch
    assert not decide(5.0, 5.0, 0.0, None, in_flight=0).launch


def test_budget_message_is_one_exact_line():
    assert budget_message(6.25, 6.25, 7.5, 7) == (
        "Budget reached: spent $6.25 of --budget-usd $6.25; the next run would bring the forecast "
        "to $7.50. 7 run(s) not started. Run the same command with a higher --budget-usd to "
        "continue; it resumes where it left off.")
    assert "spent $0.0400 of --budget-usd $0.0500" in budget_message(0.05, 0.04, 0.06, 1)
