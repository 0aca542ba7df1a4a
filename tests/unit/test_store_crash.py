"""SIGKILL a real writer process at random moments (mid-append, mid-snapshot): nothing it recorded is
lost, nothing is recorded twice, and the files and the state agree after every restart."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from tierbench.models import RunKey
from tierbench.store.layout import ExperimentLayout
from tierbench.store.repair import check_experiment
from tierbench.store.state import StateStore

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tierbench.models import RunKey, RunResult, RunStatus
    from tierbench.store import state
    from tierbench.store.atomic import atomic_write_json
    from tierbench.store.layout import ExperimentLayout
    from tierbench.store.lock import ExperimentLock

    state.SNAPSHOT_EVERY_EVENTS = 3  # snapshot often, so kills land inside snapshots too
    layout = ExperimentLayout(Path(sys.argv[1]))
    keys = [RunKey(tier=f"T{i % 3}", subtest=f"{i // 3 % 4:02d}", run=i // 12 + 1) for i in range(int(sys.argv[2]))]
    with ExperimentLock(layout.lock_file):
        store, _ = state.StateStore.open(layout, experiment_id="e", config_hash="h", planned=keys)
        for number, key in enumerate(keys):
            if key in store.completed:
                continue
            status = RunStatus.PASSED if number % 2 else RunStatus.FAILED
            atomic_write_json(layout.run_result(key), RunResult(tier=key.tier, subtest=key.subtest,
                                                                run_number=key.run, status=status))
            store.record_attempt(key, RunStatus.ERROR)  # more journal traffic between results
            store.record_run(key, status)
            print(key, flush=True)  # only after record_run returned: this one must survive
        store.close("completed")
""")
TOTAL = 3000  # more than the kill cycles can finish, so every kill lands mid-recording


def planned() -> list[RunKey]:
    return [RunKey(tier=f"T{i % 3}", subtest=f"{i // 3 % 4:02d}", run=i // 12 + 1) for i in range(TOTAL)]


@pytest.mark.slow
def test_sigkill_during_recording_loses_nothing_and_records_nothing_twice(tmp_path: Path) -> None:
    layout = ExperimentLayout(tmp_path / "exp")
    rng = random.Random(7)
    confirmed: set[str] = set()
    for cycle in range(12):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(layout.root), str(TOTAL)],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.15, 0.5))
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        confirmed |= {line for line in out.splitlines() if line.endswith(tuple("0123456789"))}
        store, notes = StateStore.open(layout, experiment_id="e", config_hash="h", planned=planned())
        recorded = {str(key) for key in store.completed}
        assert confirmed <= recorded, f"cycle {cycle}: lost {sorted(confirmed - recorded)}"
        for key in store.completed:
            assert layout.run_result(key).exists()
        store.close("interrupted")
        assert not [p for p in check_experiment(layout) if p.kind != "temp_file"], notes.fixed
    finisher = subprocess.run([sys.executable, "-c", WRITER, str(layout.root), str(TOTAL)],
                              capture_output=True, text=True, timeout=120)
    assert finisher.returncode == 0, finisher.stderr
    store, _ = StateStore.open(layout, experiment_id="e", config_hash="h", planned=planned())
    assert len(store.completed) == TOTAL
    store.close()
    recorded_events: Counter = Counter()
    for line in layout.journal.read_text().splitlines():
        event = json.loads(line)
        if event["ev"] == "run" or (event["ev"] == "reconcile" and event["action"] == "adopt"):
            recorded_events[(event["tier"], event["subtest"], event["run"])] += 1
        assert not (event["ev"] == "reconcile" and event["action"] == "drop"), event
    assert len(recorded_events) == TOTAL and set(recorded_events.values()) == {1}
    assert check_experiment(layout) == []
