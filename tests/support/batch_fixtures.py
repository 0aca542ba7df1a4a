"""Helpers for the `tierbench batch` integration tests: a folder of real tests copied from
examples/tests, batch invocations as real subprocesses, and a command agent that hits a usage
limit once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import yaml

from tests.support.cli import run_cli, start_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tests"
SMALL = ("--runs", 1, "--tiers", "T0", "T1", "--max-subtests", 1)  # two runs per test


def make_tests_folder(root: Path, count: int = 4) -> Path:
    """`root/tests` with every example test, plus copies under new ids until there are `count`."""
    examples = sorted(p for p in EXAMPLES.iterdir() if (p / "test.yaml").is_file())
    assert examples, f"no example tests in {EXAMPLES}"
    folder = root / "tests"
    folder.mkdir(parents=True)
    for source in examples:
        shutil.copytree(source, folder / source.name)
    copy = 1
    while len(test_ids(folder)) < count:
        source = examples[(copy - 1) % len(examples)]
        target = folder / f"{source.name}-copy{copy}"
        shutil.copytree(source, target)
        spec = yaml.safe_load((target / "test.yaml").read_text())
        spec["id"] = target.name
        (target / "test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        copy += 1
    return folder


def test_ids(folder: Path) -> list[str]:
    return sorted(yaml.safe_load((p / "test.yaml").read_text())["id"] for p in folder.iterdir()
                  if (p / "test.yaml").is_file())


test_ids.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def break_test(test_dir: Path) -> str:
    """Make test.yaml invalid (an unknown field); returns the original text to restore it."""
    original = (test_dir / "test.yaml").read_text()
    (test_dir / "test.yaml").write_text(original + "\nnot_a_field: 1\n")
    return original


def batch(tests: Path, results: Path, *extra: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli("batch", tests, "--results-dir", results, "--threads", 2, *extra, timeout=timeout)


def start_batch(tests: Path, results: Path, *extra: object) -> subprocess.Popen[str]:
    """A batch in its own session, so the test can signal or kill its whole process group."""
    return start_cli("batch", tests, "--results-dir", results, "--threads", 2, *extra,
                     start_new_session=True)


def summary(results: Path) -> dict:
    return json.loads((results / "batch_summary.json").read_text())


def entries(results: Path) -> dict[str, dict]:
    """{test_id: entry}; asserts that no test has two entries."""
    found = summary(results)["results"]
    ids = [e["test_id"] for e in found]
    assert len(ids) == len(set(ids)), f"a test has more than one entry: {ids}"
    return {e["test_id"]: e for e in found}


def _live(paths):
    """Paths inside the current experiment dirs (not inside `--fresh` backups)."""
    return [p for p in paths if ".backup-" not in p.as_posix()]


def run_result_mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns
            for p in _live(results.glob("*/T[0-6]/[0-9][0-9]/run_*/run_result.json"))}


def journal_sizes(results: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_size for p in _live(results.glob("*/journal.jsonl"))}


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (read from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found += children
        frontier += children
    return found


def crash(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the batch's process group and everything it started (each `run` child and agent
    lives in its own session), like a power cut: nobody gets to clean up."""
    tree = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=30)
    for pid in tree:  # reaped by init once their parents are gone; make sure none survives
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), 10, f"PID {pid} to die")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def limited_once_agent(root: Path, reset_in: int = 3) -> str:
    """A command agent whose first call (across all runs) reports a Claude usage limit resetting in
    `reset_in` seconds and exits 1; every later call writes a file and reports success.
    Returns the shell command for `--agent-opt cmd=...`."""
    marker = root / "limited.marker"
    script = root / "limited_once_agent.py"
    script.write_text(textwrap.dedent(f"""\
        import json, os, pathlib, sys, time
        try:
            os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            first = True
        except FileExistsError:
            first = False
        if first:
            reset = int(time.time()) + {reset_in}
            print(json.dumps({{"type": "result", "subtype": "success", "is_error": True,
                              "result": f"Claude AI usage limit reached|{{reset}}"}}))
            sys.exit(1)
        pathlib.Path("agent_was_here.txt").write_text("done\\n")
        print(json.dumps({{"type": "result", "subtype": "success", "is_error": False, "result": "done",
                          "total_cost_usd": 0.01, "usage": {{"input_tokens": 10, "output_tokens": 5}}}}))
        """))
    return f"python3 {script}"


__all__ = ["EXAMPLES", "SMALL", "batch", "break_test", "crash", "entries", "journal_sizes",
           "limited_once_agent", "make_tests_folder", "run_result_mtimes", "start_batch", "summary",
           "test_ids", "wait_for"]
