"""The coordinator's rate-limit gate is a read-only query; clearing a passed reset is one explicit
step (`_expire_rate_limit`) that writes `rate_limit_cleared` once and resumes the view once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tierbench.execute.coordinator import Coordinator
from tierbench.experiment import new_config
from tierbench.models import RateLimitInfo, RateLimitKind
from tierbench.plan import plan_runs
from tierbench.progress import QuietProgress
from tierbench.spec import load_test
from tierbench.store.layout import ExperimentLayout
from tierbench.store.state import StateStore
from tests.support.testdirs import make_test_dir


class CountingProgress(QuietProgress):
    def __init__(self) -> None:
        super().__init__()
        self.resumes = 0

    def resumed(self) -> None:
        self.resumes += 1


def _events(layout: ExperimentLayout) -> list[str]:
    import json

    return [json.loads(line)["ev"] for line in layout.journal.read_text().splitlines()]


def test_the_gate_only_reads_and_expiry_is_one_step(tmp_path: Path) -> None:
    test = load_test(make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1))
    config = new_config(test, {"runs_per_subtest": 1})
    layout = ExperimentLayout(tmp_path / "exp")
    store, _ = StateStore.open(layout, experiment_id=config.experiment_id, config_hash=config.config_hash(),
                               planned=plan_runs(config, test))
    progress = CountingProgress()
    coordinator = Coordinator(layout, config, test, store, progress)
    now = datetime.now(timezone.utc)

    ahead = now + timedelta(hours=1)
    store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="agent", reset_at=ahead, message="x"))
    before = _events(layout)
    assert coordinator._gate_until() == ahead and coordinator._gate_until() == ahead
    coordinator._expire_rate_limit()  # not passed yet: nothing to clear
    assert _events(layout) == before and progress.resumes == 0

    store.record_rate_limit(RateLimitInfo(kind=RateLimitKind.QUOTA, source="agent",
                                          reset_at=now - timedelta(seconds=1), message="x"))
    before = _events(layout)
    for _ in range(3):
        assert coordinator._gate_until() is None  # the query never writes, however often it is asked
    assert _events(layout) == before and progress.resumes == 0
    coordinator._expire_rate_limit()
    coordinator._expire_rate_limit()
    assert _events(layout) == [*before, "rate_limit_cleared"] and progress.resumes == 1
    assert store.checkpoint.rate_limit_until is None
    store.close()
