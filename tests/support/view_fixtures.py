"""Experiments made by the real CLI for the viewer's tests, and the viewer run as a real server.

`make_batch` runs `tierbench batch` with the `command` agent driving tests/support/scripted_agent.py,
so every file the viewer reads (run_result.json, transcripts, diffs, judgments, checks, journal,
checkpoint, batch_summary.json) is written by tierbench itself. `Viewer` starts `tierbench view
--port 0` as a subprocess, reads the URL it prints, and stops it with SIGINT.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support.cli import cli_env, run_cli, tierbench_cmd
from tests.support.testdirs import make_test_dir

SCRIPTED_AGENT = Path(__file__).resolve().parent / "scripted_agent.py"
AGENT_CMD = f"{sys.executable} {SCRIPTED_AGENT}"
HOSTILE_MARK = "[hostile]"


def make_tests(root: Path, hostile: bool = True) -> Path:
    """calc (T0, T1; two subtests each) and, with `hostile`, a test whose agent writes markup."""
    tests = root / "tests"
    make_test_dir(tests, "calc", tiers=("T0", "T1"), subtests=2)
    if hostile:
        hostile_dir = make_test_dir(tests, "hostile", tiers=("T0",), subtests=1)
        (hostile_dir / "prompt.md").write_text(f"Fix calc.py. {HOSTILE_MARK}\n")
    return tests


def make_batch(root: Path, runs: int = 2) -> Path:
    """A finished batch results directory (real `tierbench batch`)."""
    tests = make_tests(root)
    results = root / "results"
    done = run_cli("batch", tests, "--results-dir", results, "--agent", "command", "--agent-opt", f"cmd={AGENT_CMD}",
                   "--runs", runs, "--threads", 2, "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    return results


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under root: what 'the viewer wrote nothing' compares."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            info = path.lstat()
            state[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return state


class Viewer:
    """`tierbench view PATH --port 0` as a subprocess; `url` is what it printed."""

    def __init__(self, path: Path, *extra: str):
        self.proc = subprocess.Popen(tierbench_cmd("view", path, "--port", "0", *extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=cli_env())
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"tierbench view printed no URL: {line!r} {self.proc.stderr.read()}")
        self.url = line[line.index("http://"):].split()[0].rstrip("/")

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if not stream.closed:
                stream.close()
        return self.proc.returncode

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_big_transcript(path: Path, megabytes: int) -> int:
    """A Claude Code stream-json transcript of about `megabytes` MB; returns its line count.
    Each turn is an assistant text, a Bash tool call and its (large) result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import json

    filler = "x" * 2000
    lines = 0
    target = megabytes * 1024 * 1024
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        turn = 0
        while written < target:
            turn += 1
            chunk = "".join(json.dumps(event) + "\n" for event in (
                {"type": "assistant", "message": {"content": [{"type": "text", "text": f"Turn {turn}: checking."}]}},
                {"type": "assistant", "message": {"content": [{"type": "tool_use", "id": f"t{turn}", "name": "Bash",
                                                               "input": {"command": f"echo turn {turn}"}}]}},
                {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": f"t{turn}",
                                                          "content": f"turn {turn} output {filler}"}]}},
            ))
            handle.write(chunk)
            written += len(chunk)
            lines += 3
    return lines
