"""The sandbox, as a user meets it: `tierbench run` with a command agent that tries to do harm.

Under `--sandbox bwrap` every write outside the run's worktree, agent home and private /tmp fails
(the researcher's home, /usr/local, another run's worktree, the experiment's own journal), the
runs still complete and the experiment state stays intact; a rubric check (code the agent wrote)
is confined the same way; `network: none` leaves only the sandbox's own loopback. With
`--sandbox none` the same agent succeeds at all of it, so the test can fail.
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.testdirs import FIXED, make_test_dir
from tierbench.sandbox import find_bwrap, probe_bwrap

pytestmark = pytest.mark.skipif(probe_bwrap(find_bwrap()) is not None,
                                reason=f"bubblewrap cannot run here: {probe_bwrap(find_bwrap())}")

# The agent: tries each write and the connection, prints one JSON line per attempt, fixes calc.py.
PROBE = r'''
import errno, json, os, socket, sys
targets = json.loads(os.environ["PROBE_TARGETS"])
run = int(os.environ["TIERBENCH_RUN"])
other = targets["worktree_of_run"].replace("RUN", "%02d" % (1 if run == 2 else 2))
attempts = {"user_home": targets["user_home_file"],
            "usr_local": targets["usr_local"], "journal": targets["journal"],
            "other_worktree": os.path.join(other, "agent-was-here"),
            "own_home": os.path.join(os.environ["HOME"], "ok"), "own_tmp": "/tmp/ok-%d" % run}
report = {}
for name, path in attempts.items():
    try:
        with open(path, "a") as handle:
            handle.write("probe\n")
        report[name] = "written"
    except OSError as exc:
        report[name] = errno.errorcode.get(exc.errno, type(exc).__name__)
try:
    socket.create_connection(("127.0.0.1", int(targets["port"])), timeout=5).close()
    report["loopback"] = "connected"
except OSError as exc:
    report["loopback"] = type(exc).__name__
report["home"] = os.environ["HOME"]
print("PROBE " + json.dumps(report), flush=True)
open("calc.py", "w").write(sys.argv[1])
'''

JOURNAL_CHECK = "journal_is_read_only"


class _Listener:
    """A TCP server on 127.0.0.1 that accepts and closes connections, and counts them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = _Listener()
    yield server
    server.close()


def _setup(tmp_path: Path, port: int) -> tuple[Path, Path, dict]:
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=2)
    (test_dir / "repo" / "probe.py").write_text(PROBE)
    results = tmp_path / "results"
    exp = results / "calc"
    user_home = tmp_path / "userhome"
    user_home.mkdir()
    # The researcher's real home directory (not under /tmp, which the sandbox replaces).
    targets = {"user_home": str(user_home), "user_home_file": str(Path.home() / f".tierbench-probe-{uuid.uuid4().hex}"),
               "usr_local": f"/usr/local/tierbench-probe-{uuid.uuid4().hex}",
               "journal": str(exp / "journal.jsonl"), "port": str(port),
               "worktree_of_run": str(exp / "T0" / "00" / "run_RUN" / "workspace")}
    tiers = test_dir / "tiers" / "T0"
    for path in tiers.iterdir():
        body = yaml.safe_load(path.read_text()) or {}
        body["env"] = {"PROBE_TARGETS": json.dumps(targets)}
        if path.name.startswith("00"):
            body["network"] = "none"
        path.write_text(yaml.safe_dump(body))
    # A check runs code from the workspace: it must not be able to touch the journal either.
    rubric = yaml.safe_load((test_dir / "rubric.yaml").read_text())
    rubric["categories"]["quality"]["items"].append(
        {"id": JOURNAL_CHECK, "check": "the check cannot write the journal", "points": 1,
         "command": f"! sh -c {shlex.quote('echo check >> ' + shlex.quote(targets['journal']))}"})
    (test_dir / "rubric.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False))
    return test_dir, results, targets


def _run(test_dir: Path, results: Path, user_home: str, sandbox: str):
    cmd = f"{shlex.quote(sys.executable)} probe.py {shlex.quote(FIXED)}"
    return run_cli("run", test_dir, "--results-dir", results, "--agent", "command", "--agent-opt", f"cmd={cmd}",
                   "--tiers", "T0", "--runs", 2, "--parallel", 1, "--keep-workspaces", "--no-report",
                   "--sandbox", sandbox, env=cli_env(HOME=user_home), timeout=240)


def _probes(exp: Path) -> dict[str, dict]:
    found = {}
    for log in sorted(exp.glob("T0/*/run_*/agent/stdout.log")):
        line = next(l for l in log.read_text().splitlines() if l.startswith("PROBE "))
        found[str(log.parents[1].relative_to(exp))] = json.loads(line[len("PROBE "):])
    return found


def test_bwrap_confines_agent_and_checks(tmp_path, listener):
    test_dir, results, targets = _setup(tmp_path, listener.port)
    proc = _run(test_dir, results, targets["user_home"], "bwrap")
    assert proc.returncode == 0, proc.stderr
    exp = results / "calc"
    assert completed_runs(exp) == {f"T0/0{s}/run_0{r}": "passed" for s in (0, 1) for r in (1, 2)}
    probes = _probes(exp)
    assert len(probes) == 4
    for run, probe in probes.items():
        for target in ("user_home", "usr_local", "journal"):
            assert probe[target] == "EROFS", f"{run}: the sandbox let the agent write {target}: {probe}"
        assert probe["own_home"] == "written" and probe["own_tmp"] == "written", probe
        assert probe["home"] != targets["user_home"], "the agent must get a private HOME"
    # network: none (subtest 00) leaves only the sandbox's loopback; subtest 01 shares the host network.
    # run_02 sees run_01's kept worktree, read-only (run_01 ran first: run_02's does not exist yet).
    assert {probes[f"T0/0{s}/run_02"]["other_worktree"] for s in (0, 1)} == {"EROFS"}
    assert {probes[f"T0/00/run_0{r}"]["loopback"] for r in (1, 2)} == {"ConnectionRefusedError"}
    assert {probes[f"T0/01/run_0{r}"]["loopback"] for r in (1, 2)} == {"connected"}
    assert listener.accepted == 2
    assert not Path(targets["user_home_file"]).exists() and not Path(targets["usr_local"]).exists()
    journal = (exp / "journal.jsonl").read_text()
    for line in journal.splitlines():
        assert isinstance(json.loads(line), dict), f"a foreign line in the journal: {line!r}"
    check = run_cli("check", exp)
    assert check.returncode == 0, check.stdout + check.stderr
    for result in exp.glob("T0/*/run_*/run_result.json"):
        data = json.loads(result.read_text())
        assert data["isolation"]["sandbox"] == "bwrap" and data["isolation"]["private_home"] is True
        items = {i["id"]: i for j in data["judges"] for i in j["items"]}
        assert items[JOURNAL_CHECK]["passed"] is True, "the check must not be able to write the journal"
    # Nothing of the private space (home, /tmp) is kept after the runs.
    assert not (exp / ".private").exists() or not any((exp / ".private").iterdir())


def test_without_sandbox_the_same_agent_succeeds(tmp_path, listener):
    test_dir, results, targets = _setup(tmp_path, listener.port)
    try:
        proc = _run(test_dir, results, targets["user_home"], "none")
        assert proc.returncode == 0, proc.stderr
        probes = _probes(results / "calc")
        assert len(probes) == 4
        for run, probe in probes.items():
            assert probe["user_home"] == "written" and probe["usr_local"] == "written", probe
            assert probe["journal"] == "written", probe
            assert probe["loopback"] == "connected", "network: none needs the sandbox"
        assert probes["T0/00/run_02"]["other_worktree"] == "written"  # run_01's kept worktree
        assert Path(targets["usr_local"]).exists() and Path(targets["user_home_file"]).exists()
        result = json.loads((results / "calc/T0/00/run_01/run_result.json").read_text())
        assert result["isolation"]["sandbox"] == "none" and "needs the sandbox" in result["isolation"]["note"]
    finally:
        Path(targets["usr_local"]).unlink(missing_ok=True)
        Path(targets["user_home_file"]).unlink(missing_ok=True)
