"""A run directory packed on a node and installed into the experiment: whole, renumbered, result last."""

from __future__ import annotations

import io
import tarfile

import pytest

from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.run.transfer import TransferError, install_run_dir, pack_run_dir, record_lost_attempt
from tierbench.store.layout import ExperimentLayout

KEY = RunKey(tier="T0", subtest="00", run=1)


def _node_run_dir(tmp_path):
    node = ExperimentLayout(tmp_path / "node")
    run_dir = node.run_dir(KEY)
    (run_dir / "agent").mkdir(parents=True)
    (run_dir / "agent" / "stdout.log").write_text("out\n")
    (run_dir / "judge" / "judge_01").mkdir(parents=True)
    (run_dir / "judge" / "judge_01" / "judgment.json").write_text("{}\n")
    (run_dir / "attempts" / "01").mkdir(parents=True)
    (run_dir / "attempts" / "01" / "run_result.json").write_text('{"status": "rate_limited"}\n')
    (run_dir / "transcript.jsonl").write_text("{}\n")  # sorts after run_result.json in the pack
    (run_dir / "workspace").mkdir()
    (run_dir / "workspace" / "big.bin").write_bytes(b"x" * 1000)
    result = RunResult(tier="T0", subtest="00", run_number=1, status=RunStatus.PASSED, node_id="n1")
    (run_dir / "run_result.json").write_text(result.model_dump_json())
    return run_dir


def test_install_writes_everything_but_the_workspace_result_last_and_renumbers_attempts(tmp_path):
    packed = pack_run_dir(_node_run_dir(tmp_path))
    exp = ExperimentLayout(tmp_path / "exp")
    # What an earlier attempt left: an archived attempt (kept) and a partial agent log (cleared).
    (exp.attempts_dir(KEY) / "01").mkdir(parents=True)
    (exp.attempts_dir(KEY) / "01" / "run_result.json").write_text('{"status": "error"}\n')
    (exp.agent_dir(KEY)).mkdir(parents=True)
    (exp.agent_dir(KEY) / "partial.log").write_text("stale\n")
    written = install_run_dir(exp, KEY, packed)
    assert written[-1] == exp.run_result(KEY)
    assert RunResult.model_validate_json(exp.run_result(KEY).read_text()).node_id == "n1"
    assert (exp.agent_dir(KEY) / "stdout.log").read_text() == "out\n"
    assert not (exp.agent_dir(KEY) / "partial.log").exists()
    assert (exp.judge_dir(KEY, 1) / "judgment.json").exists() and (exp.run_dir(KEY) / "transcript.jsonl").exists()
    assert (exp.attempts_dir(KEY) / "01" / "run_result.json").read_text() == '{"status": "error"}\n'
    assert (exp.attempts_dir(KEY) / "02" / "run_result.json").read_text() == '{"status": "rate_limited"}\n'
    assert not exp.workspace(KEY).exists()


def test_lost_attempt_is_archived_with_its_node(tmp_path):
    exp = ExperimentLayout(tmp_path / "exp")
    result = RunResult(tier="T0", subtest="00", run_number=1, status=RunStatus.ERROR, error="NodeDiedError: x",
                       node_id="dead")
    first = record_lost_attempt(exp, KEY, result)
    second = record_lost_attempt(exp, KEY, result)
    assert (first.parent.name, second.parent.name) == ("01", "02")
    assert RunResult.model_validate_json(second.read_text()).node_id == "dead"
    assert not exp.run_result(KEY).exists()


def test_a_packed_path_leaving_the_run_directory_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(TransferError):
        install_run_dir(ExperimentLayout(tmp_path / "exp"), KEY, buffer.getvalue())
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "exp" / "escape.txt").exists()
