"""A corrupt config/experiment.json, checkpoint.json or journal.jsonl, met by every command that
reads it: a one-line error naming the file and the fix (exit 1), or a repair where repairing is the
command's job. Never a traceback, and `check` never says OK about a corrupt file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.testdirs import make_test_dir

COMMANDS = ("status", "check", "resume", "report", "repair")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    test_dir = make_test_dir(root / "tests", "calc", tiers=("T0",), subtests=2)
    proc = run_cli("run", test_dir, "--results-dir", root / "results", "--runs", 2, "--agent", "demo",
                   "--quiet", "--no-report")
    assert proc.returncode == 0, proc.stderr
    exp = root / "results" / "calc"
    assert run_cli("check", exp).returncode == 0
    return exp


def _truncate(path: Path) -> None:
    path.write_text('{"experiment_id": "calc-1", "tiers": ["T0"')


def _garbage_line_inside(path: Path) -> None:
    """Damage a line the checkpoint's snapshot already covers (the journal is the record)."""
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = b"\x00\x00 not json at all\n"
    path.write_bytes(b"".join(lines))


CORRUPTIONS = {
    "config": ("config/experiment.json", _truncate),
    "checkpoint": ("checkpoint.json", _truncate),
    "journal-replaced": ("journal.jsonl", _truncate),
    "journal-line": ("journal.jsonl", _garbage_line_inside),
}

# What each command does. "error": exit 1 and one line naming the file and the fix.
# "repairs": exit 0 and says what it fixed, naming the file. "resumes": exit 0 (the state it needs
# is whole; a damaged covered journal line changes nothing it reads).
EXPECTED = {
    "config": dict.fromkeys(COMMANDS, "error"),
    "checkpoint": {"status": "error", "check": "error", "resume": "repairs", "report": "error",
                   "repair": "repairs"},
    "journal-replaced": {"status": "error", "check": "error", "resume": "repairs", "report": "error",
                         "repair": "repairs"},
    "journal-line": {"status": "error", "check": "error", "resume": "resumes", "report": "error",
                     "repair": "repairs"},
}
FIX_WORDS = {"config": ("--fresh", "backup"), "checkpoint": ("tierbench repair",),
             "journal-replaced": ("tierbench repair",), "journal-line": ("tierbench repair",)}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_every_command_meets_a_corrupt_state_file_cleanly(pristine, tmp_path, corruption, command):
    exp = tmp_path / "calc"
    shutil.copytree(pristine, exp, symlinks=True)
    rel, corrupt = CORRUPTIONS[corruption]
    corrupt(exp / rel)
    proc = run_cli(*([command, exp, "--no-report"] if command == "resume" else [command, exp]),
                   timeout=300)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    name = Path(rel).name
    expected = EXPECTED[corruption][command]
    if command == "check":
        assert proc.returncode == 1, output
        assert not proc.stdout.startswith("OK") and "OK:" not in output
        assert name in proc.stdout, output
        return
    if expected == "error":
        assert proc.returncode == 1, output
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("tierbench: "), proc.stderr
        assert name in lines[0], lines[0]
        assert any(word in lines[0] for word in FIX_WORDS[corruption]), lines[0]
        assert proc.stdout == "", proc.stdout
    elif expected == "repairs":
        assert proc.returncode == 0, output
        assert name in output, output
        assert run_cli("check", exp).returncode == 0, "after the repair the state and the files agree"
    else:
        assert proc.returncode == 0, output
