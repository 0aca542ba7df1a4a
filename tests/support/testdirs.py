"""Builds small, real test directories for the integration tests (a tiny Python task whose
rubric has real command checks, and a solution.patch made with git)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import yaml

BUGGY = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"


def _solution_patch(scratch: Path) -> str:
    """The git diff that turns BUGGY into FIXED, made by real git in a scratch repo."""
    work = scratch / "patchwork"
    work.mkdir()
    (work / "calc.py").write_text(BUGGY)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run([*git, "add", "-A"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=work, check=True)
    (work / "calc.py").write_text(FIXED)
    return subprocess.run(["git", "diff"], cwd=work, check=True, capture_output=True, text=True).stdout


def make_test_dir(root: Path, test_id: str = "calc", tiers: tuple[str, ...] = ("T0", "T1"),
                  subtests: int = 2, judges: list[str] | None = None, timeout: int = 60) -> Path:
    """Create `root/test_id` and return it."""
    test_dir = root / test_id
    (test_dir / "repo").mkdir(parents=True)
    (test_dir / "repo" / "calc.py").write_text(BUGGY)
    (test_dir / "expected").mkdir()
    (test_dir / "expected" / "solution.patch").write_text(_solution_patch(_scratch(root, test_id)))
    (test_dir / "prompt.md").write_text("Fix add() and mul() in calc.py.\n")
    rubric = {
        "categories": {
            "correctness": {"weight": 0.8, "items": [
                {"id": "add", "check": "add works", "points": 2,
                 "command": "python3 -c 'import calc; assert calc.add(2, 3) == 5'"},
                {"id": "mul", "check": "mul works", "points": 2,
                 "command": "python3 -c 'import calc; assert calc.mul(2, 3) == 6'"},
            ]},
            "quality": {"weight": 0.2, "items": [
                {"id": "style", "check": "the fix is minimal", "points": 1},
                {"id": "compiles", "check": "calc.py compiles", "points": 1,
                 "command": "python3 -m py_compile calc.py"},
            ]},
        },
        "grading": {"pass_threshold": 0.6},
    }
    (test_dir / "rubric.yaml").write_text(yaml.safe_dump(rubric, sort_keys=False))
    spec = {
        "id": test_id, "name": f"{test_id} fix", "language": "python",
        "source": {"path": "repo/"},
        "task": {"prompt_file": "prompt.md", "timeout_seconds": timeout},
        "validation": {"rubric_file": "rubric.yaml"},
        "tiers": list(tiers),
        "judges": judges or ["command"],
    }
    (test_dir / "test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for tier in tiers:
        tier_dir = test_dir / "tiers" / tier
        tier_dir.mkdir(parents=True)
        for index in range(subtests):
            body: dict = {"description": f"{tier} variant {index}"}
            if index:
                body["files"] = {"CLAUDE.md": f"# Guidance {tier}/{index}\nRun the checks before finishing.\n"}
            if tier == "T5":
                body["inherit_best_from"] = [t for t in tiers if t < "T5"]
            (tier_dir / f"{index:02d}-variant{index}.yaml").write_text(yaml.safe_dump(body))
    return test_dir


def _scratch(root: Path, test_id: str) -> Path:
    scratch = root / f".scratch-{test_id}"
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def write_yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
