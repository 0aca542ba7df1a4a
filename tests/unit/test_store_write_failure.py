"""Writes that fail for real (EFBIG under RLIMIT_FSIZE, in a child process): a clear StoreWriteError,
the previous checkpoint.json untouched, and no garbage left in the journal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tierbench.models import RunKey
from tierbench.store.checkpoint import load_checkpoint
from tierbench.store.layout import ExperimentLayout
from tierbench.store.state import StateStore

CHILD = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from tierbench.models import ExperimentStatus, RunKey, RunResult, RunStatus
    from tierbench.store.layout import ExperimentLayout
    from tierbench.store.state import StateStore, StoreWriteError

    layout, mode = ExperimentLayout(Path(sys.argv[1])), sys.argv[2]
    keys = [RunKey(tier="T0", subtest=f"{i // 3:02d}", run=i % 3 + 1) for i in range(60)]
    store, _ = StateStore.open(layout, experiment_id="e", config_hash="h", planned=keys)
    for key in keys[:40]:
        layout.run_dir(key).mkdir(parents=True)
        result = RunResult(tier=key.tier, subtest=key.subtest, run_number=key.run, status=RunStatus.PASSED)
        layout.run_result(key).write_text(result.model_dump_json())
        store.record_run(key, RunStatus.PASSED)
    store.snapshot()
    journal_size = layout.journal.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so an oversized write fails with EFBIG instead of killing us
    # snapshot: no new checkpoint fits; journal: room for only 10 more bytes, so an append is cut short
    limit = 1000 if mode == "snapshot" else journal_size + 10
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    errors = []
    for action in ((store.snapshot, lambda: store.close(ExperimentStatus.INTERRUPTED)) if mode == "snapshot"
                   else (lambda: store.record_run(keys[50], RunStatus.FAILED),)):
        try:
            action()
            errors.append(None)
        except StoreWriteError as exc:
            errors.append(str(exc))
    print(json.dumps({"errors": errors, "journal_size": journal_size,
                      "journal_after": layout.journal.stat().st_size,
                      "completed": len(store.completed)}))
""")


def run_child(root: Path, mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_failed_snapshot_raises_store_write_error_and_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "exp"
    report = run_child(root, "snapshot")
    assert all(report["errors"]), report
    message = report["errors"][0]
    assert "could not write the checkpoint" in message
    assert "File too large" in message
    assert "previous checkpoint.json is intact" in message
    assert "ulimit -f" in message and "run the same command again" in message
    layout = ExperimentLayout(root)
    cp = load_checkpoint(layout.checkpoint)  # still the old, valid snapshot with all 40 runs
    assert cp.completed_count() == 40 and cp.status == "running"
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]  # the failed temp file is gone
    planned = [RunKey(tier="T0", subtest=f"{i // 3:02d}", run=i % 3 + 1) for i in range(60)]
    store, notes = StateStore.open(layout, experiment_id="e", config_hash="h", planned=planned)
    assert notes.fixed == [] and len(store.completed) == 40
    store.close()


def test_failed_journal_append_leaves_no_partial_line(tmp_path: Path) -> None:
    root = tmp_path / "exp"
    report = run_child(root, "journal")
    message = report["errors"][0]
    assert message and "could not append to the journal" in message
    assert "T0/16/run_03 was not recorded" in message
    assert report["journal_after"] == report["journal_size"]  # the 10 bytes that fitted were cut off again
    assert report["completed"] == 40
    layout = ExperimentLayout(root)
    planned = [RunKey(tier="T0", subtest=f"{i // 3:02d}", run=i % 3 + 1) for i in range(60)]
    store, notes = StateStore.open(layout, experiment_id="e", config_hash="h", planned=planned)
    assert notes.fixed == [] and len(store.completed) == 40
    store.close()
