"""`tierbench report --format`: every format the report writer knows is accepted (png included), and
an unknown one is a one-line error naming the option and the accepted list."""

from __future__ import annotations

from tests.support.cli import run_cli
from tests.support.testdirs import make_test_dir


def test_report_formats_come_from_the_report_writer(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    assert run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--runs", 1, "--agent", "demo",
                   "--no-report", "--quiet").returncode == 0
    exp = tmp_path / "results" / "calc"
    out = tmp_path / "png-only"
    proc = run_cli("report", exp, "--out", out, "--format", "png")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written and all(name.endswith(".png") for name in written), written
    assert not (out / "report.md").exists()

    bad = run_cli("report", exp, "--format", "md,pdf")
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "--format" in lines[0] and "pdf" in lines[0] and "png" in lines[0], bad.stderr
