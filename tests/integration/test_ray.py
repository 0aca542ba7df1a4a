"""--executor ray against a real multi-node Ray cluster on loopback, in its own network namespace.

One cluster for the module: a head (no CPUs, no run slots) and two worker nodes `a` and `b`, each
with two `tierbench_slot`s and a workdir of its own (no shared filesystem between nodes). The CLI
runs inside the namespace too. The tests run in file order; the last one kills node a's raylet.
The `batch` tests without an address start no cluster fixture: the batch starts its own head, in a
network namespace of its own, so whatever outlives it can be found by namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli_env, completed_runs, result_files, tierbench_cmd
from tests.support.ray_cluster import LocalRayCluster, namespaces_available
from tests.support.testdirs import make_test_dir

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tierbench[ray]' (make test installs it)")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

FAKE_OPENAI_KEY = "sk-fake-ray-test-4b1d"  # only ever sent to the fake judge API on the cluster's loopback
_NO_NAMESPACE = namespaces_available()
if _NO_NAMESPACE:  # never run Ray outside a private namespace: it would advertise the host's address
    pytest.skip(_NO_NAMESPACE, allow_module_level=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("raycluster")
    with LocalRayCluster(root, {"a": {"tierbench_slot": 2}, "b": {"tierbench_slot": 2}},
                         worker_env={"OPENAI_API_KEY": FAKE_OPENAI_KEY}) as running:
        yield running
    assert running.pids() == [], "a Ray process of the test cluster survived stop()"
    assert _processes_under(root) == [], "a process started by the cluster survived stop()"


def _cli(cluster: LocalRayCluster, *args: object, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cluster.prefix, *tierbench_cmd(*args)], capture_output=True, text=True,
                          timeout=timeout, env=cluster.env(cli_env()))


_DRIVERS: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_driver_left():
    """A failed test must not leave its coordinator (and its agents) running."""
    yield
    while _DRIVERS:
        driver = _DRIVERS.pop()
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()


def _start_cli(cluster: LocalRayCluster, *args: object) -> subprocess.Popen[str]:
    driver = subprocess.Popen([*cluster.prefix, *tierbench_cmd(*args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cluster.env(cli_env()), start_new_session=True)
    _DRIVERS.append(driver)
    return driver


def _run_args(test_dir: Path, results: Path, cluster: LocalRayCluster, *agent: str, runs: int = 2) -> list[object]:
    return ["run", test_dir, "--results-dir", results, "--runs", runs, "--parallel", 4, "--executor", "ray",
            "--ray-address", cluster.address, "--no-preflight", "--no-report", "--sandbox", "none", *agent]


def _plan(tiers=("T0", "T1"), subtests=2, runs=2) -> set[str]:
    return {f"{t}/{s:02d}/run_{r:02d}" for t in tiers for s in range(subtests) for r in range(1, runs + 1)}


def _node_copies(cluster: LocalRayCluster) -> set[Path]:
    """Everything in the worker nodes' workdirs (node id / experiment / ...)."""
    return {path for name in cluster.workers for path in cluster.node_workdir(name).glob("**/*")}


def _journal_results(exp: Path) -> Counter:
    """How often each run was recorded as a result (`run`, or adopted on load)."""
    events: Counter = Counter()
    for line in (exp / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("ev") == "run" or (event.get("ev") == "reconcile" and event.get("action") == "adopt"):
            events[f"{event['tier']}/{event['subtest']}/run_{int(event['run']):02d}"] += 1
    return events


def _processes_under(path: Path) -> list[int]:
    """Live PIDs whose working directory lies inside `path` (agents run in their node's workspaces)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(str(path)) and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def _assert_whole(exp: Path, plan: set[str], cluster: LocalRayCluster) -> dict[str, dict]:
    """Every planned run has exactly one result, recorded exactly once, and `check` agrees."""
    assert set(completed_runs(exp)) == plan
    on_disk = result_files(exp)
    assert set(on_disk) == plan
    recorded = _journal_results(exp)
    assert set(recorded) == plan and set(recorded.values()) == {1}, f"recorded other than once: {recorded}"
    check = _cli(cluster, "check", exp)
    assert check.returncode == 0, check.stdout + check.stderr
    return on_disk


def test_runs_land_on_both_worker_nodes_and_the_experiment_checks(tmp_path, cluster):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    results = tmp_path / "results"
    before = _node_copies(cluster)
    driver = _start_cli(cluster, *_run_args(test_dir, results, cluster, "--agent", "demo", "--agent-opt", "delay=0.5",
                                            runs=3))
    # No shared filesystem: each worker node builds its own copy of the repository from the bundle.
    _wait_for(lambda: all(list(cluster.node_workdir(name).glob("*/*/repo/.git/tierbench-base")) for name in "ab")
              or driver.poll() is not None, 240, "both worker nodes to hold a copy of the experiment")
    assert all(list(cluster.node_workdir(name).glob("*/*/repo/.git/tierbench-base")) for name in "ab"), \
        "a node ran runs without a copy of its own"
    # A node removes each run's directory once it is shipped back: at no moment do the nodes hold
    # more run directories than --parallel 4 runs in flight, though 12 runs pass through them.
    most_on_nodes, deadline = 0, time.monotonic() + 400
    while driver.poll() is None and time.monotonic() < deadline:
        on_nodes = [run for name in cluster.workers for run in cluster.node_workdir(name).glob("*/*/T*/*/run_*")]
        most_on_nodes = max(most_on_nodes, len(on_nodes))
        time.sleep(0.05)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err[-4000:]
    assert 0 < most_on_nodes <= 4, f"the nodes held {most_on_nodes} run directories at once"
    # Once the experiment is done, no node keeps anything of it (repository, snapshot, run dirs).
    assert _node_copies(cluster) <= before, f"left on the nodes: {sorted(_node_copies(cluster) - before)[:10]}"
    exp = results / "calc"
    on_disk = _assert_whole(exp, _plan(runs=3), cluster)
    nodes = {data["node_id"] for data in on_disk.values()}
    assert None not in nodes and len(nodes) >= 2, f"runs did not spread over both worker nodes: {nodes}"
    # Each run's directory came back whole from its node: agent logs, judgment, diff.
    for key in on_disk:
        assert (exp / key / "agent" / "diff.patch").is_file() and (exp / key / "judge" / "judge_01" / "judgment.json").is_file()
    # The same experiment run locally gives the same results (the demo agent is deterministic).
    local = _cli(cluster, "run", test_dir, "--results-dir", tmp_path / "local", "--runs", 3, "--parallel", 4,
                 "--agent", "demo", "--no-preflight", "--no-report")
    assert local.returncode == 0, local.stderr[-3000:]
    assert completed_runs(tmp_path / "local" / "calc") == completed_runs(exp)


def test_driver_sigkill_then_resume_runs_nothing_twice(tmp_path, cluster):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    results = tmp_path / "results"
    exp = results / "calc"
    args = _run_args(test_dir, results, cluster, "--agent", "command", "--agent-opt", "cmd=sleep 3", runs=3)
    driver = _start_cli(cluster, *args)
    nodes_dir = cluster.root / "nodes"
    _wait_for(lambda: (exp / "journal.jsonl").exists() and _journal_results(exp) and _processes_under(nodes_dir),
              240, "a recorded run and agents running on the cluster")
    assert _processes_under(nodes_dir), "no agent was in flight when the driver was killed"
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=60)
    # The job's workers die with their driver, and their agents with them.
    _wait_for(lambda: not _processes_under(nodes_dir), 30, "the in-flight agents to die with the driver")
    done_before = set(_journal_results(exp))
    assert done_before and done_before != _plan(runs=3)
    resumed = _cli(cluster, "resume", exp, "--ray-address", cluster.address)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    _assert_whole(exp, _plan(runs=3), cluster)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_exits_130_keeps_completed_runs_kills_agents_and_resumes(tmp_path, cluster, sig):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    results = tmp_path / "results"
    exp = results / "calc"
    driver = _start_cli(cluster, *_run_args(test_dir, results, cluster, "--agent", "command",
                                            "--agent-opt", "cmd=sleep 3", runs=3))
    nodes_dir = cluster.root / "nodes"
    before = _node_copies(cluster)
    _wait_for(lambda: (exp / "journal.jsonl").exists() and _journal_results(exp) and _processes_under(nodes_dir),
              240, "a recorded run and agents running on the cluster")
    driver.send_signal(sig)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-8000:]
    assert json.loads((exp / "checkpoint.json").read_text())["status"] == "interrupted"
    done_before = set(_journal_results(exp))
    assert done_before and done_before != _plan(runs=3)
    assert set(completed_runs(exp)) == done_before, "a completed run was lost, or an interrupted one kept"
    _wait_for(lambda: not _processes_under(nodes_dir), 30, "the interrupted agents on the nodes to die")
    assert not list(exp.glob("T*/*/run_*/attempts/*")), "an interrupted run is not an attempt"
    assert _node_copies(cluster) <= before, f"left on the nodes: {sorted(_node_copies(cluster) - before)[:10]}"
    resumed = _cli(cluster, "resume", exp, "--ray-address", cluster.address)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    _assert_whole(exp, _plan(runs=3), cluster)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(_state(p) not in ("Z", "") for p in _members(pgid))


def _started(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    members.append(int(entry.name))
            except OSError:
                continue
    return members


GATE_AGENT = """
import json, pathlib, sys, time
calls = pathlib.Path(sys.argv[1])
with calls.open("a") as f:
    f.write("x\\n")
n = len(calls.read_text().splitlines())
if n == 1:  # the first agent to start hits a quota while three others are busy and two runs queue
    time.sleep(1.5)
    print(json.dumps({"type": "result", "subtype": "success", "is_error": True,
                      "result": "Claude AI usage limit reached|%d" % int(time.time() + 600)}))
    sys.exit(1)
time.sleep(6)
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "done"}))
"""


def test_a_rate_limit_on_one_node_closes_the_gate_for_the_cluster(tmp_path, cluster):
    """Six runs, four slots: two runs queue. The first agent is rate limited; the coordinator stops
    launching everywhere and cancels what has not started (the agent script counts its calls on
    this machine's filesystem, which both test nodes share)."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    script = tmp_path / "gate_agent.py"
    script.write_text(GATE_AGENT)
    calls = tmp_path / "calls"
    results = tmp_path / "results"
    exp = results / "calc"
    proc = _cli(cluster, "run", test_dir, "--results-dir", results, "--runs", 6, "--parallel", 6,
                "--executor", "ray", "--ray-address", cluster.address, "--no-preflight", "--no-report",
                "--on-rate-limit", "exit", "--sandbox", "none", "--agent", "command", "--agent-opt", f"cmd={sys.executable} {script} {calls}")
    assert proc.returncode == 2, proc.stderr[-4000:]
    assert "Rate limited until" in proc.stderr
    started = len(calls.read_text().splitlines())
    # Four started at once; the freed slot may have been taken before the gate closed; the last
    # queued run was withdrawn, never started.
    assert 4 <= started <= 5, f"{started} agents started"
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    assert checkpoint["status"] == "paused_rate_limit" and checkpoint["rate_limited_attempts"] == 1
    assert checkpoint["error_attempts"] == 0, "a withdrawn run is not an attempt"
    assert len(completed_runs(exp)) == started - 1
    limited = list(exp.glob("T0/00/run_*/attempts/*/run_result.json"))
    assert len(limited) == 1 and json.loads(limited[0].read_text())["status"] == "rate_limited"

# A fake OpenAI judge API inside the cluster's network namespace (the test process is outside it):
# prints its base URL, serves slow replies until stdin closes, then prints what it saw.
FAKE_JUDGE_SERVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.support.fake_llm_judges import FakeJudgeAPI, scores
api = FakeJudgeAPI(default=scores({"add": 1, "mul": 1, "style": 1, "compiles": 1}), delay=1.5,
                   max_lifetime=600).start()
print(api.openai_url, flush=True)
sys.stdin.read()
print(json.dumps({"max_in_flight": api.max_in_flight, "requests": len(api.requests)}), flush=True)
api.stop()
"""


@contextlib.contextmanager
def _judge_server(cluster: LocalRayCluster, script: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run a fake judge API `script` in the cluster's network namespace; yield (process, its base
    URL). The script answers until its stdin closes; it is killed if still running on the way out."""
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen([*cluster.prefix, sys.executable, "-c", script, str(root)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield server, url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()


def test_a_judge_providers_limit_holds_across_the_cluster(tmp_path, cluster):
    """Four runs in four slots on two nodes, each judged by the same OpenAI-compatible API whose
    limit is 1: the API never sees two requests at once, whichever node or worker sends them."""
    with _judge_server(cluster, FAKE_JUDGE_SERVER) as (server, url):
        judge = f"openai:gpt-4o@{url}"
        test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1, judges=[judge])
        results = tmp_path / "results"
        proc = subprocess.run([*cluster.prefix, *tierbench_cmd(*_run_args(test_dir, results, cluster, "--agent", "demo",
                                                                          runs=4))],
                              capture_output=True, text=True, timeout=400,
                              env=cluster.env(cli_env(TIERBENCH_JUDGE_MAX_CONCURRENCY="1")))
        assert proc.returncode == 0, proc.stderr[-4000:]
        seen = json.loads(server.communicate(input="", timeout=30)[0].strip().splitlines()[-1])
    exp = results / "calc"
    on_disk = _assert_whole(exp, _plan(tiers=("T0",), subtests=1, runs=4), cluster)
    for key in on_disk:
        judgment = json.loads((exp / key / "judge" / "judge_01" / "judgment.json").read_text())
        assert judgment["is_valid"], judgment
    assert seen["requests"] == 4, seen
    assert seen["max_in_flight"] == 1, f"the judge API saw {seen['max_in_flight']} requests at once"
    # The coordinator saved the cluster's limiter history: one provider, held at 1.
    history = json.loads((exp / "stats.json").read_text())["judge_limiter_history"]
    assert list(history) == [f"openai@{url}"], history
    assert {event["limit"] for event in history[f"openai@{url}"]} == {1}


# The first judge request is held open (its worker is killed meanwhile); the server says when it
# arrived. Later requests are answered at once.
HOLDING_JUDGE_SERVER = """
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from tests.support.fake_llm_judges import FakeJudgeAPI, scores
good = scores({"add": 1, "mul": 1, "style": 1, "compiles": 1})
api = FakeJudgeAPI([scores({"add": 1, "mul": 1, "style": 1, "compiles": 1}, delay=20)], default=good,
                   max_lifetime=600).start()
print(api.openai_url, flush=True)
def tell():
    while api.max_in_flight < 1:
        time.sleep(0.05)
    print("in flight", flush=True)
threading.Thread(target=tell, daemon=True).start()
sys.stdin.read()
print(json.dumps({"requests": len(api.requests)}), flush=True)
api.stop()
"""


def _task_workers() -> list[int]:
    """Ray workers executing a run task right now (Ray names the process after the task)."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _cmdline(int(entry.name)).startswith(b"ray::_run_on_node")]


def test_a_worker_killed_holding_a_judge_slot_gives_it_back(tmp_path, cluster):
    """The judge provider's limit is 1. The only run's worker is SIGKILLed while its judge request
    is in flight, holding the cluster's one slot; the relaunched attempt must get that slot back
    (a leaked slot would make its judge wait forever)."""
    with _judge_server(cluster, HOLDING_JUDGE_SERVER) as (server, url):
        assert server.stdout is not None
        test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1,
                                 judges=[f"openai:gpt-4o@{url}"])
        results = tmp_path / "results"
        driver = subprocess.Popen([*cluster.prefix, *tierbench_cmd(*_run_args(test_dir, results, cluster, "--agent",
                                                                            "demo", runs=1))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                  env=cluster.env(cli_env(TIERBENCH_JUDGE_MAX_CONCURRENCY="1")))
        _DRIVERS.append(driver)
        assert server.stdout.readline().strip() == "in flight"
        workers = _task_workers()
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        out, err = driver.communicate(timeout=120)  # a leaked slot: the relaunch's judge waits forever
        assert driver.returncode == 0, err[-4000:]
        seen = json.loads(server.communicate(input="", timeout=60)[0].strip().splitlines()[-1])
    exp = results / "calc"
    _assert_whole(exp, _plan(tiers=("T0",), subtests=1, runs=1), cluster)
    attempts = [json.loads(p.read_text()) for p in exp.glob("T0/00/run_01/attempts/*/run_result.json")]
    assert len(attempts) == 1 and "WorkerCrashedError" in attempts[0]["error"], attempts
    assert seen["requests"] == 2, seen


def _ray_worker_of(pid: int) -> int:
    """The Ray worker process an agent descends from."""
    current = pid
    while current > 1:
        cmdline = _cmdline(current)
        if b"ray::" in cmdline or b"default_worker.py" in cmdline:
            return current
        current = int(Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise LookupError(f"process {pid} does not descend from a Ray worker")


def test_worker_sigkill_kills_its_agent_and_the_run_is_relaunched(tmp_path, cluster):
    """The OOM killer's way: SIGKILL the Ray worker running an agent. Ray cannot clean up after a
    SIGKILLed worker; the run's guard must kill the agent, and the run completes elsewhere."""
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    results = tmp_path / "results"
    exp = results / "calc"
    driver = _start_cli(cluster, *_run_args(test_dir, results, cluster, "--agent", "command",
                                            "--agent-opt", "cmd=sleep 25", runs=1))
    nodes_dir = cluster.root / "nodes"
    agents: list[int] = []

    def agent_started() -> bool:
        agents[:] = [pid for pid in _processes_under(nodes_dir) if _cmdline(pid).startswith(b"sleep")]
        return bool(agents)

    _wait_for(agent_started, 240, "an agent running on the cluster")
    agent = agents[0]
    group = os.getpgid(agent)
    os.kill(_ray_worker_of(agent), signal.SIGKILL)
    _wait_for(lambda: not _group_alive(group), 15, f"agent {agent}'s process group to die with its worker")
    out, err = driver.communicate(timeout=400)
    assert driver.returncode == 0, err[-4000:]
    _assert_whole(exp, _plan(runs=1), cluster)
    attempts = [json.loads(p.read_text()) for p in exp.glob("T*/*/run_*/attempts/*/run_result.json")]
    assert len(attempts) == 1 and "WorkerCrashedError" in attempts[0]["error"] and attempts[0]["node_id"], attempts


# -- tierbench batch --executor ray: one cluster for every test of the batch --------------------------
def _namespaced(cmd: list[str]) -> list[str]:
    """`cmd` in a network namespace of its own, loopback up: the batch's Ray head can reach nothing else."""
    return ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def _netns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def _in_netns(netns: str) -> list[int]:
    """Live processes (not zombies) in the network namespace `netns`."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _netns(int(entry.name)) == netns and _state(int(entry.name)) not in ("Z", "")]


def _start_namespaced_batch(tmp_path: Path, *agent: str,
                            make_tests: bool = True) -> tuple[subprocess.Popen[str], str, Path, Path]:
    tests = tmp_path / "tests"
    for test_id in ("calc", "calc2") if make_tests else ():
        make_test_dir(tests, test_id, tiers=("T0",), subtests=1)
    results = tmp_path / "results"
    workdir = tmp_path / "nodes"
    batch = subprocess.Popen(_namespaced(tierbench_cmd("batch", tests, "--results-dir", results, "--threads", 2,
                                                       "--runs", 2, "--parallel", 2, "--executor", "ray",
                                                       "--no-preflight", "--sandbox", "none", "--quiet", *agent)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env=cli_env(TIERBENCH_RAY_WORKDIR=str(workdir), RAY_USAGE_STATS_ENABLED="0"))
    _DRIVERS.append(batch)
    ours = _netns(os.getpid())
    _wait_for(lambda: _netns(batch.pid) not in ("", ours), 10, "the batch to enter its network namespace")
    return batch, _netns(batch.pid), results, workdir


def test_batch_runs_every_test_on_one_cluster_it_starts_and_stops(tmp_path):
    batch, netns, results, workdir = _start_namespaced_batch(tmp_path, "--agent", "demo")
    out, err = batch.communicate(timeout=400)
    assert batch.returncode == 0, (out + err)[-4000:]
    left = _in_netns(netns)
    assert not left, f"processes outlived the batch: {[_cmdline(p)[:120] for p in left]}"
    nodes: dict[str, set[str]] = {}
    for test_id in ("calc", "calc2"):
        exp = results / test_id
        assert set(completed_runs(exp)) == _plan(tiers=("T0",), subtests=1), test_id
        nodes[test_id] = {record["node_id"] for record in result_files(exp).values()}
    # One head with every run slot: both tests' runs ran on its one node (a cluster per child
    # would give each test a node id of its own).
    assert nodes["calc"] == nodes["calc2"] and len(nodes["calc"]) == 1 and None not in nodes["calc"], nodes
    # Each child was told the batch's cluster, not left to start one.
    log = "".join(p.read_text() for p in (results / "thread_logs").glob("*.log"))
    addresses = {line.split("--ray-address=", 1)[1].split()[0] for line in log.splitlines() if "--ray-address=" in line}
    assert len(addresses) == 1 and next(iter(addresses)).startswith("127.0.0.1:"), addresses
    assert "RAY_AUTH" not in log and "auth_token" not in log
    assert not (results / ".ray_head").exists(), "the stopped head's directory is still recorded"


def test_batch_sigkill_takes_its_ray_head_and_runs_down(tmp_path):
    batch, netns, results, _ = _start_namespaced_batch(tmp_path, "--agent", "command", "--agent-opt", "cmd=sleep 60")
    _wait_for(lambda: any(_cmdline(p).startswith(b"sleep") for p in _in_netns(netns)), 240,
              "agents of the batch running on its Ray head")
    assert any(b"raylet" in _cmdline(p) or b"gcs_server" in _cmdline(p) for p in _in_netns(netns))
    batch.send_signal(signal.SIGKILL)
    batch.communicate(timeout=30)

    def children(pid: int) -> bool:
        return b"tierbench.cli\0run" in _cmdline(pid)

    # The head (GCS, raylet, agents), its workers and their agents die with the batch.
    _wait_for(lambda: all(children(p) for p in _in_netns(netns)), 30, "the SIGKILLed batch's Ray processes to die")
    # Its children stop on their own (they checkpoint first); Ray bounds how long one that was still
    # joining the cluster waits for the dead head.
    _wait_for(lambda: not _in_netns(netns), 120, "the SIGKILLed batch's children to stop")
    for test_id in ("calc", "calc2"):
        checkpoint = results / test_id / "checkpoint.json"
        if checkpoint.exists():
            assert json.loads(checkpoint.read_text())["status"] == "interrupted", test_id
    # The killed head's files (logs, sockets, token) are removed by the next batch of these results.
    stale = Path((results / ".ray_head").read_text().strip())
    assert stale.is_dir()
    again, _, _, _ = _start_namespaced_batch(tmp_path, "--fresh", "--agent", "demo", make_tests=False)
    out, err = again.communicate(timeout=400)
    assert again.returncode == 0, (out + err)[-4000:]
    assert not stale.exists() and not (results / ".ray_head").exists()


def _raylet_node_id(cluster: LocalRayCluster, name: str) -> str:
    args = _cmdline(cluster.raylet_pid(name)).split(b"\0")
    return next(arg.split(b"=", 1)[1].decode() for arg in args if arg.startswith(b"--node_id="))


def test_batch_with_an_address_runs_every_test_on_that_cluster(tmp_path, cluster):
    tests = tmp_path / "tests"
    for test_id in ("calc", "calc2"):
        make_test_dir(tests, test_id, tiers=("T0",), subtests=1)
    results = tmp_path / "results"
    proc = _cli(cluster, "batch", tests, "--results-dir", results, "--threads", 2, "--runs", 2, "--parallel", 2,
                "--executor", "ray", "--ray-address", cluster.address, "--no-preflight", "--sandbox", "none",
                "--quiet", "--agent", "demo")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    workers = {_raylet_node_id(cluster, name) for name in cluster.workers}
    for test_id in ("calc", "calc2"):
        nodes = {record["node_id"] for record in result_files(results / test_id).values()}
        assert nodes and nodes <= workers, f"{test_id} ran on {nodes}, not on the cluster's worker nodes {workers}"
    log = "".join(p.read_text() for p in (results / "thread_logs").glob("*.log"))
    assert log.count(f"--ray-address={cluster.address}") == 2, log[-2000:]


def test_raylet_kill_turns_runs_into_lost_attempts_that_complete_on_the_other_node(tmp_path, cluster):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0", "T1"), subtests=2)
    results = tmp_path / "results"
    exp = results / "calc"
    driver = _start_cli(cluster, *_run_args(test_dir, results, cluster, "--agent", "command",
                                            "--agent-opt", "cmd=sleep 6", runs=2))
    node_a = cluster.node_workdir("a")
    _wait_for(lambda: len(_processes_under(node_a)) >= 1, 240, "agents running on node a")
    victims = {pid: _started(pid) for pid in _processes_under(node_a)}
    os.kill(cluster.raylet_pid("a"), signal.SIGKILL)
    # No agent process of the dead node lives on (a PID reused by another process does not count).
    _wait_for(lambda: not _processes_under(node_a), 60, "node a's agents to die with their node")
    # A process in the middle of exiting has no cwd any more but is not a zombie yet: give it a moment.
    def survivors() -> list[int]:
        return [pid for pid, started in victims.items() if _state(pid) not in ("Z", "") and _started(pid) == started]

    deadline = time.monotonic() + 2  # well within the agents' 6 s: a live one would still be there
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors(), f"agents of the dead node still run: {[(p, _cmdline(p)[:80]) for p in survivors()]}"
    out, err = driver.communicate(timeout=400)
    assert driver.returncode == 0, err[-4000:]
    on_disk = _assert_whole(exp, _plan(runs=2), cluster)
    lost = []
    for attempt in sorted(exp.glob("T*/*/run_*/attempts/*/run_result.json")):
        data = json.loads(attempt.read_text())
        assert data["status"] == "error" and data["node_id"], data
        lost.append((str(attempt.parent.parent.parent.relative_to(exp)), data["node_id"], data["error"]))
    assert lost, "killing node a's raylet mid-run produced no infrastructure-error attempt"
    dead = {node for _, node, _ in lost}
    assert len(dead) == 1, f"lost attempts name more than one node: {lost}"
    for key, node, error in lost:
        assert any(name in error for name in ("NodeDiedError", "WorkerCrashedError", "ObjectLostError")), error
        assert on_disk[key]["node_id"] != node, f"{key} completed on the node that died"
    assert "relaunching" in err
