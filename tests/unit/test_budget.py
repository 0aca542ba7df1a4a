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
    assert "spent $5.00 and $1.25 committed to runs in flight of --budget-usd $6.25" in budget_message(
        6.25, 5.0, 7.5, 2, committed=1.25)


# --- The shared (batch) budget on real files and real processes ---------------------------------

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from tierbench.models import RunKey, RunResult, RunStatus  # noqa: E402
from tierbench.store.layout import ExperimentLayout  # noqa: E402
from tierbench.store.shared_budget import sibling_spend  # noqa: E402
from tierbench.store.results import load_state  # noqa: E402
from tierbench.store.state import StateStore  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def _experiment(scope: Path, name: str, runs: int = 40) -> tuple[ExperimentLayout, list[RunKey]]:
    layout = ExperimentLayout(scope / name)
    (layout.root / "config").mkdir(parents=True)
    (layout.root / "config" / "experiment.json").write_text("{}")
    return layout, [RunKey(tier="T0", subtest="00", run=i) for i in range(1, runs + 1)]


def test_sibling_spend_reads_the_journal_tail_and_unbudgeted_files(tmp_path: Path):
    a, keys = _experiment(tmp_path, "a")
    store, _ = StateStore.open(a, experiment_id="a", config_hash="h", planned=keys)
    store.set_budget(10.0)
    store.set_spent(1.0)
    store.commit_budget(keys[0], 0.5)
    store.commit_budget(keys[1], 0.25)
    store.record_run(keys[0], RunStatus.FAILED, cost_usd=0.75)  # ends the first commitment
    # Not snapshotted yet: a reader must replay the journal after checkpoint.json.
    state = load_state(a, strict=False)
    assert state.spent_usd == 1.75 and state.budget_commitments == {"T0/00/2": 0.25}
    b, bkeys = _experiment(tmp_path, "b")  # ran without a budget: its files say what it cost
    for key, cost in zip(bkeys[:2], (0.5, 1.5)):
        b.run_dir(key).mkdir(parents=True)
        b.run_result(key).write_text(RunResult(tier="T0", subtest="00", run_number=key.run,
                                               status=RunStatus.PASSED, cost_usd=cost).model_dump_json())
    c, _ = _experiment(tmp_path, "c")
    assert sibling_spend(tmp_path, c.root) == (1.75 + 2.0, 0.25, 1 + 2)
    assert sibling_spend(tmp_path, a.root) == (2.0, 0.0, 2)  # its own state is not a sibling's
    store.close()


WORKER = r"""
import sys, time
from pathlib import Path
from tierbench.models import RunKey
from tierbench.store.layout import ExperimentLayout
from tierbench.store.shared_budget import budget_lock, sibling_spend
from tierbench.store.state import StateStore

scope, name, budget = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
layout = ExperimentLayout(scope / name)
keys = [RunKey(tier="T0", subtest="00", run=i) for i in range(1, 41)]
store, _ = StateStore.open(layout, experiment_id=name, config_hash="h", planned=keys)
store.set_budget(budget)
mine = 0.0
for key in keys:
    with budget_lock(scope):
        spent, committed, _ = sibling_spend(scope, layout.root)
        if spent + committed + mine + 1.0 > budget:
            break
        time.sleep(0.02)  # widen the window between reading and committing
        store.commit_budget(key, 1.0)
        mine += 1.0
store.close()
"""


def test_concurrent_coordinators_never_commit_past_a_shared_budget(tmp_path: Path):
    """Four processes, each committing $1 runs against one $10 budget as fast as they can."""
    for name in "abcd":
        _experiment(tmp_path, name)
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), name, "10"], env=env)
             for name in "abcd"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    committed = [sum(json.loads((tmp_path / n / "checkpoint.json").read_text())["budget_commitments"].values())
                 for n in "abcd"]
    assert sum(committed) == 10.0, committed
