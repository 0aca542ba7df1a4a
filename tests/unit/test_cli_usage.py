"""Bad command lines exit 1: exit code 2 is reserved for "rate limited, run again later"."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli


@pytest.mark.parametrize("args", [
    ("run", "x", "--tiers", "T9"),
    ("run", "x", "--runs", "0"),
    ("run", "x", "--agent-opt", "novalue"),
    ("frobnicate",),
    ("resume",),
])
def test_usage_errors_exit_1(args):
    proc = run_cli(*args, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "error" in proc.stderr
