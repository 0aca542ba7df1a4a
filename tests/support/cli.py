"""Running the real `tierbench` CLI as a subprocess, the way users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no real API keys inherited, only those a test passes."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    return {**env, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1", **extra}


def tierbench_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "tierbench.cli", *map(str, args)]


def run_cli(*args: object, timeout: float = 300, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tierbench_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), cwd=cwd)


def start_cli(*args: object, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(tierbench_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or cli_env(), **popen)


def completed_runs(exp_dir: Path) -> dict[str, str]:
    """{'T0/00/run_01': 'passed', ...} from checkpoint.json."""
    checkpoint = json.loads((exp_dir / "checkpoint.json").read_text())
    flat = {}
    for tier, subtests in checkpoint["completed_runs"].items():
        for subtest, runs in subtests.items():
            for run, status in runs.items():
                flat[f"{tier}/{subtest}/run_{int(run):02d}"] = status
    return flat


def result_files(exp_dir: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(exp_dir)): json.loads(p.read_text())
            for p in sorted(exp_dir.glob("T[0-6]/[0-9][0-9]/run_*/run_result.json"))}
