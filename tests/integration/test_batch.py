"""`tierbench batch` end to end: real `tierbench run` children, real signals, the offline demo agent
(and a shell-command agent that hits a usage limit once)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.batch_fixtures import (SMALL, batch, break_test, crash, descendants, entries, journal_sizes,
                                          limited_once_agent, make_tests_folder, run_result_mtimes, start_batch,
                                          summary, test_ids, wait_for)

RESULT_FIELDS = {"test_id", "thread_id", "status", "exit_code", "result_dir", "error", "best_tier", "best_score",
                 "frontier_cop", "total_cost", "total_duration"}
DEMO = ("--agent", "demo", *SMALL)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One completed 4-test batch on 2 threads, shared by the tests that only read it (in order)."""
    root = tmp_path_factory.mktemp("batch")
    tests = make_tests_folder(root)
    results = root / "results"
    proc = batch(tests, results, *DEMO)
    return proc, tests, results


def test_summary_has_one_complete_entry_per_test(done):
    proc, tests, results = done
    assert proc.returncode == 0, proc.stderr
    ids = test_ids(tests)
    assert len(ids) >= 4
    found = entries(results)
    assert sorted(found) == ids
    for test_id, entry in found.items():
        assert RESULT_FIELDS <= set(entry)
        assert entry["status"] in ("pass", "fail") and entry["exit_code"] == 0 and entry["error"] is None
        assert entry["thread_id"] in (1, 2)
        assert Path(entry["result_dir"]) == results / test_id
        report = json.loads((results / test_id / "report.json").read_text())
        best = next(t for t in report["tiers"] if t["tier"] == report["best_tier"])
        assert entry["status"] == ("pass" if best["n_passed"] > 0 else "fail"), test_id
        for name in ("best_tier", "best_score", "frontier_cop", "total_cost", "total_duration"):
            assert entry[name] == report[name], name
    data = summary(results)
    assert data["started_at"] and data["completed_at"]
    assert data["config"]["runs_per_subtest"] == 1 and data["config"]["agent"] == "demo"
    threads = {t["thread_id"]: t for t in data["threads"]}
    assert sorted(threads) == [1, 2]
    assert sorted(t for th in threads.values() for t in th["tests"]) == ids
    for thread_id, thread in threads.items():
        assert thread["completed"] == len(thread["tests"]) and thread["failed"] == 0
        assert all(found[t]["thread_id"] == thread_id for t in thread["tests"])
        log = (results / "thread_logs" / f"thread_{thread_id}.log").read_text()
        assert [line.split()[2] for line in log.splitlines() if line.startswith("===== 20")] == thread["tests"]
    assert f"Summary: {results / 'batch_summary.json'}" in proc.stdout
    assert "Report: " in proc.stdout and (results / "report.md").exists()


def test_second_identical_invocation_runs_nothing(done):
    _, tests, results = done
    before = (run_result_mtimes(results), journal_sizes(results), summary(results)["results"],
              {p.name: p.read_text() for p in (results / "thread_logs").iterdir()})
    assert len(before[0]) == 2 * len(test_ids(tests))
    started = time.monotonic()
    proc = batch(tests, results, *DEMO)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "already have results" in proc.stderr
    after = (run_result_mtimes(results), journal_sizes(results), summary(results)["results"],
             {p.name: p.read_text() for p in (results / "thread_logs").iterdir()})
    assert after == before
    assert elapsed < 10, f"a batch with nothing to do took {elapsed:.1f}s"


def test_differing_options_are_ignored_on_resume(done):
    _, tests, results = done
    proc = batch(tests, results, "--agent", "demo", "--runs", 5)
    assert proc.returncode == 0, proc.stderr
    assert "ignored on resume: --runs 5, batch uses 1" in proc.stderr
    assert summary(results)["config"]["runs_per_subtest"] == 1


def test_fresh_reruns_everything_and_keeps_a_backup(done):
    _, tests, results = done
    old_ids = {t: json.loads((results / t / "config" / "experiment.json").read_text())["experiment_id"]
               for t in test_ids(tests)}
    old_mtimes = run_result_mtimes(results)
    proc = batch(tests, results, *DEMO, "--fresh")
    assert proc.returncode == 0, proc.stderr
    assert sorted(entries(results)) == test_ids(tests)
    for test_id, old in old_ids.items():
        backups = list(results.glob(f"{test_id}.backup-*"))
        assert len(backups) == 1, test_id
        assert json.loads((backups[0] / "config" / "experiment.json").read_text())["experiment_id"] == old
        assert json.loads((results / test_id / "config" / "experiment.json").read_text())["experiment_id"] != old
    assert len(list(results.glob("batch_summary.json.backup-*"))) == 1
    assert len(list(results.glob("thread_logs.backup-*"))) == 1
    new_mtimes = run_result_mtimes(results)
    assert set(new_mtimes) == set(old_mtimes)
    assert all(new_mtimes[k] > old_mtimes[k] for k in new_mtimes)


def test_unknown_test_id_is_refused_naming_the_available_ones(done):
    _, tests, results = done
    proc = batch(tests, results, *DEMO, "--tests", "py-fizzbuzz", "no-such-test")
    assert proc.returncode == 1
    assert "no-such-test" in proc.stderr and all(t in proc.stderr for t in test_ids(tests))


def test_invalid_test_is_an_error_until_fixed_and_retried(tmp_path):
    tests = make_tests_folder(tmp_path)
    broken = tests / "py-fizzbuzz"
    original = break_test(broken)
    results = tmp_path / "results"
    proc = batch(tests, results, *DEMO)
    assert proc.returncode == 1, proc.stderr
    found = entries(results)
    assert sorted(found) == test_ids(tests)
    bad = found["py-fizzbuzz"]
    assert bad["status"] == "error" and bad["thread_id"] is None and bad["exit_code"] is None
    assert "test.yaml" in bad["error"] and "not_a_field" in bad["error"]
    assert all(e["status"] in ("pass", "fail") for t, e in found.items() if t != "py-fizzbuzz")
    assert "py-fizzbuzz" in proc.stderr

    again = batch(tests, results, *DEMO)  # errors are kept (not rerun) without --retry-errors
    assert again.returncode == 1 and "--retry-errors" in again.stderr

    (broken / "test.yaml").write_text(original)
    before = run_result_mtimes(results)
    proc = batch(tests, results, *DEMO, "--retry-errors")
    assert proc.returncode == 0, proc.stderr
    found = entries(results)
    assert sorted(found) == test_ids(tests)
    assert found["py-fizzbuzz"]["status"] in ("pass", "fail") and found["py-fizzbuzz"]["thread_id"] in (1, 2)
    after = run_result_mtimes(results)
    assert {k: v for k, v in after.items() if not k.startswith("py-fizzbuzz/")} == before


def test_crash_then_rerun_resumes_without_rerunning_anything(tmp_path):
    tests = make_tests_folder(tmp_path)
    results = tmp_path / "results"
    proc = start_batch(tests, results, *DEMO, "--agent-opt", "delay=2")
    try:
        # Crash once a test has finished while others are mid-run, inside their agents. (A kill inside
        # `git worktree add` is the run's own durability concern, tested with `run`.)
        wait_for(lambda: (results / "batch_summary.json").exists() and entries(results), 90, "a finished test")
        wait_for(lambda: _all_in_agents(results), 30, "tests in progress, inside their agents")
    finally:
        crash(proc)
    finished = entries(results)
    assert 0 < len(finished) < len(test_ids(tests))
    cut_short = _in_progress(results)
    assert cut_short, "no experiment was cut short by the crash"
    kept = run_result_mtimes(results)

    rerun = batch(tests, results, *DEMO, "--agent-opt", "delay=2")
    assert rerun.returncode == 0, (rerun.stderr, summary(results)["results"])
    found = entries(results)
    assert sorted(found) == test_ids(tests)
    for test_id, entry in finished.items():
        assert found[test_id] == entry, f"{test_id} was rerun"
    after = run_result_mtimes(results)
    assert {k: after[k] for k in kept} == kept, "a completed run was run again"
    assert len(after) == 2 * len(found)
    for entry in found.values():
        assert entry["status"] in ("pass", "fail")
    for test_id in cut_short:  # resumed in place, not started anew
        assert json.loads((results / test_id / "config" / "experiment.json").read_text())["experiment_id"] == \
            cut_short[test_id]


def _all_in_agents(results: Path) -> bool:
    """Some experiment is in progress, and every one that is has both its runs inside the agent."""
    running = [p.parents[1] for p in results.glob("*/config/experiment.json")
               if p.parents[1].name not in set(entries(results))]
    return bool(running) and all(len(list(d.glob("T*/*/run_*/agent/prompt.md"))) == 2
                                 and not list(d.glob("T*/*/run_*/run_result.json")) for d in running)


def _in_progress(results: Path) -> dict[str, str]:
    """{test id: experiment id} of experiments with a run started but no summary entry yet."""
    finished = set(entries(results)) if (results / "batch_summary.json").exists() else set()
    return {p.parents[1].name: json.loads(p.read_text())["experiment_id"]
            for p in results.glob("*/config/experiment.json")
            if p.parents[1].name not in finished and any(p.parents[1].glob("T*/*/run_*/agent/prompt.md"))}


def test_sigint_records_interrupted_tests_and_a_rerun_finishes_them(tmp_path):
    tests = make_tests_folder(tmp_path)
    results = tmp_path / "results"
    proc = start_batch(tests, results, *DEMO, "--agent-opt", "delay=2")
    try:
        wait_for(lambda: len(list(results.glob("*/T*/*/run_*/agent/prompt.md"))) >= 2, 60, "two tests running")
        second = batch(tests, results, *DEMO)  # one batch per results dir
        assert second.returncode == 1 and f"PID {proc.pid}" in second.stderr, second.stderr
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            crash(proc)
    assert proc.returncode == 130, stderr
    found = entries(results)
    assert found and all(e["status"] == "interrupted" and e["exit_code"] == 130 for e in found.values())
    assert len(found) <= 2 < len(test_ids(tests))  # nothing new started after the signal
    assert summary(results)["completed_at"]

    rerun = batch(tests, results, *DEMO, "--agent-opt", "delay=0")  # the saved options win: delay=2
    assert rerun.returncode == 0, rerun.stderr
    found = entries(results)
    assert sorted(found) == test_ids(tests) and all(e["status"] in ("pass", "fail") for e in found.values())


def _reset_of(exp_dir: Path) -> datetime:
    return datetime.fromisoformat(json.loads((exp_dir / "checkpoint.json").read_text())["rate_limit_until"])


def test_rate_limited_child_under_exit_policy_stops_the_batch_with_exit_2(tmp_path):
    tests = make_tests_folder(tmp_path)
    results = tmp_path / "results"
    # The agent keeps its state in the test's tmp dir, which the sandbox hides: run it unsandboxed.
    agent = ("--agent", "command", "--agent-opt", f"cmd={limited_once_agent(tmp_path, reset_in=10)}",
             "--sandbox", "none", *SMALL, "--tests", "py-fizzbuzz", "sh-wordcount", "--threads", 1, "--on-rate-limit", "exit")
    proc = batch(tests, results, *agent)
    assert proc.returncode == 2, proc.stderr
    assert "Rate limited until" in proc.stderr and "Run the same command again" in proc.stderr
    found = entries(results)
    assert list(found) == ["py-fizzbuzz"]  # the second test never started
    assert found["py-fizzbuzz"]["status"] == "rate_limited" and found["py-fizzbuzz"]["exit_code"] == 2
    reset = _reset_of(results / "py-fizzbuzz")

    if (reset - datetime.now(timezone.utc)).total_seconds() > 2:  # else the machine was too slow to try
        logs = (results / "thread_logs" / "thread_1.log").read_text()
        early = batch(tests, results, *agent)  # before the reset: pre-flight exits at once, no child
        assert early.returncode == 2 and "Rate limited until" in early.stderr, early.stderr
        assert (results / "thread_logs" / "thread_1.log").read_text() == logs

    time.sleep(max(0.0, (reset - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    proc = batch(tests, results, *agent)
    assert proc.returncode == 0, proc.stderr
    found = entries(results)
    assert sorted(found) == ["py-fizzbuzz", "sh-wordcount"]
    assert all(e["status"] in ("pass", "fail") for e in found.values())


def test_rate_limited_child_under_wait_policy_continues_by_itself(tmp_path):
    tests = make_tests_folder(tmp_path)
    results = tmp_path / "results"
    # The agent keeps its state in the test's tmp dir, which the sandbox hides: run it unsandboxed.
    agent = ("--agent", "command", "--agent-opt", f"cmd={limited_once_agent(tmp_path, reset_in=3)}",
             "--sandbox", "none", *SMALL, "--tests", "py-fizzbuzz", "sh-wordcount", "--on-rate-limit", "wait")
    proc = batch(tests, results, *agent)
    assert proc.returncode == 0, proc.stderr
    found = entries(results)
    assert sorted(found) == ["py-fizzbuzz", "sh-wordcount"]
    assert all(e["status"] in ("pass", "fail") for e in found.values())
    assert (tmp_path / "limited.marker").exists()
    assert list(results.glob("*/T*/*/run_*/attempts/*")), "the rate-limited attempt is archived, not a result"


def test_batch_holds_launches_until_a_childs_reset_then_reruns_it(tmp_path, monkeypatch):
    """A child that exits 2 under the wait policy: nothing new launches before its reset, then the
    same test runs again. (A real `run` child waits by itself under `wait`; this covers the batch's
    own gate with a stand-in child that exits 2 once.)"""
    import sys

    from tierbench.batch import runner as batch_mod
    from tierbench.batch.selection import BatchTest
    from tierbench.batch.summary import BatchSummary, SummaryWriter
    from tierbench.batch.view import BatchProgress
    from tierbench.options import GivenOptions

    fake = tmp_path / "fake_run.py"
    fake.write_text(
        "import json, sys, time, datetime as dt, pathlib\n"
        "exp = pathlib.Path(sys.argv[1]); exp.mkdir(parents=True, exist_ok=True)\n"
        "with open(sys.argv[2], 'a') as f: f.write(f'{exp.name} {time.time()}\\n')\n"
        "if exp.name == 'a' and not (exp / 'checkpoint.json').exists():\n"
        "    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5)\n"
        "    now = dt.datetime.now(dt.timezone.utc).isoformat()\n"
        "    (exp / 'checkpoint.json').write_text(json.dumps({'rate_limit_until': until.isoformat(),\n"
        "        'experiment_id': 'a', 'experiment_dir': str(exp), 'config_hash': 'h', 'started_at': now,\n"
        "        'last_updated_at': now}))\n"
        "    sys.exit(2)\n"
        "time.sleep(0.7 if exp.name == 'c' else 0)\n"
        "(exp / 'report.json').write_text(json.dumps({'best_tier': 'T0', 'best_score': 1.0, 'n_passed': 1,\n"
        "    'tiers': [{'tier': 'T0', 'name': 'Prompts', 'n_runs': 1, 'n_passed': 1}], 'total_cost': 0.5}))\n")
    starts = tmp_path / "starts.log"
    results = tmp_path / "results"
    monkeypatch.setattr(batch_mod, "child_command",
                        lambda test_dir, results_dir, options: [sys.executable, str(fake),
                                                                str(results_dir / test_dir.name), str(starts)])
    a, b, c = (BatchTest(name, tmp_path / name, 10) for name in ("a", "b", "c"))
    options = GivenOptions(on_rate_limit="wait")
    writer = SummaryWriter(results / "batch_summary.json", BatchSummary(config=options))
    runner = batch_mod.BatchRunner(results, options, writer, BatchProgress({}, 2, quiet=True))
    runner.run({1: [a], 2: [c, b]})  # c is running when a hits the limit; b must wait for the reset

    launches = [line.split() for line in starts.read_text().splitlines()]
    assert sorted(name for name, _ in launches) == ["a", "a", "b", "c"]
    reset = datetime.fromisoformat(json.loads((results / "a" / "checkpoint.json").read_text())["rate_limit_until"])
    later = [float(at) for name, at in launches if name in ("a", "b")][1:]  # a's rerun and b
    assert len(later) == 2 and all(at >= reset.timestamp() for at in later)
    found = {e.test_id: e for e in writer.snapshot().results}
    assert [found[t].status for t in "abc"] == ["pass"] * 3 and found["a"].total_cost == 0.5
    assert runner.rate_limited is None and not runner.interrupted.is_set()


def test_assignment_is_longest_timeout_first_to_the_least_loaded_worker(tmp_path):
    from tierbench.batch.selection import BatchTest, assign_threads

    tests = [BatchTest(name, tmp_path / name, timeout)
             for name, timeout in [("a", 100), ("b", 600), ("c", 300), ("d", 300), ("e", 50)]]
    plan = assign_threads(tests, 2)
    assert {n: [t.test_id for t in ts] for n, ts in plan.items()} == {1: ["b", "a"], 2: ["c", "d", "e"]}
    assert list(assign_threads(tests[:1], 4)) == [1]  # no idle workers


def test_child_command_carries_only_the_given_options(tmp_path):
    from tierbench.batch.children import child_command
    from tierbench.options import GivenOptions

    bare = child_command(tmp_path / "t", tmp_path / "r", GivenOptions())
    assert bare[3:] == ["run", str(tmp_path / "t"), "--results-dir", str(tmp_path / "r"), "--quiet"]
    full = child_command(tmp_path / "t", tmp_path / "r", GivenOptions(
        tiers=["T0", "T1"], runs_per_subtest=2, agent="command", agent_options={"cmd": "-x y", "k": ""},
        judges=["command", "anthropic:m"], model="", on_rate_limit="exit", max_wait_seconds=60.0))
    assert "" not in full and "--model" not in " ".join(full)
    assert full[full.index("--tiers") + 1:full.index("--tiers") + 3] == ["T0", "T1"]
    for arg in ("--runs=2", "--agent=command", "--agent-opt=cmd=-x y", "--agent-opt=k=", "--judge=command",
                "--judge=anthropic:m", "--on-rate-limit=exit", "--max-wait=60.0", "--quiet"):
        assert arg in full
    from tierbench.cli import build_parser  # and `run` parses it back to the same options

    parsed = build_parser().parse_args(full[3:])
    assert parsed.agent_options == [("cmd", "-x y"), ("k", "")] and parsed.max_wait_seconds == 60.0


def test_children_stop_cleanly_when_only_the_batch_process_is_killed(tmp_path):
    """A SIGKILL of the batch alone (its children live in their own sessions) must not leave
    experiments running unseen: each child gets SIGTERM from the kernel and stops, releasing its
    experiment lock, and the rerun resumes every experiment."""
    tests = make_tests_folder(tmp_path)
    results = tmp_path / "results"
    proc = start_batch(tests, results, *DEMO, "--agent-opt", "delay=6")
    wait_for(lambda: len(list(results.glob("*/T*/*/run_*/agent/prompt.md"))) >= 2, 60, "agents running")
    time.sleep(0.5)
    children = descendants(proc.pid)
    assert children
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    # The agents have ~5 s of work left: stopping well before that shows the kernel's signal worked.
    wait_for(lambda: not [p for p in children if Path(f"/proc/{p}").exists() and not _zombie(p)], 3,
             "the batch's children to stop")
    rerun = batch(tests, results, *DEMO, "--agent-opt", "delay=6")
    assert rerun.returncode == 0, (rerun.stderr, summary(results)["results"])
    assert "already being run" not in rerun.stderr
    assert sorted(entries(results)) == test_ids(tests)
    assert all(e["status"] in ("pass", "fail") for e in entries(results).values())


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
