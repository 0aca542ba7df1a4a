"""The example tests are real: their checks fail on the pristine repo and pass with the solution.

Also: the demo agent's "forgot a line" failures really fail a check, so a demo experiment shows
genuine failures rather than accidental passes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tierbench.agents.demo import patch_added_lines
from tierbench.models import ALL_TIERS
from tierbench.spec import Rubric, load_test

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tests"
EXAMPLE_DIRS = sorted(path.parent for path in EXAMPLES.glob("*/test.yaml"))
CHECK_TIMEOUT = 60


def test_there_are_at_least_three_examples_in_different_languages():
    languages = {yaml.safe_load((d / "test.yaml").read_text())["language"] for d in EXAMPLE_DIRS}
    assert len(EXAMPLE_DIRS) >= 3 and len(languages) >= 3


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


def pristine_workspace(test_dir: Path, tmp_path: Path) -> Path:
    """A git repo made from the example's repo/ folder, the way tierbench prepares one."""
    workspace = tmp_path / "ws"
    shutil.copytree(test_dir / "repo", workspace)
    git(workspace, "init", "-q")
    git(workspace, "add", "-A")
    git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return workspace


def load_rubric(test_dir: Path) -> Rubric:
    return Rubric.model_validate(yaml.safe_load((test_dir / "rubric.yaml").read_text()))


def run_checks(rubric: Rubric, workspace: Path) -> dict[str, bool]:
    # /bin/sh, like the judges' shell=True: the commands must not rely on bash.
    return {
        item.id: subprocess.run(item.command, shell=True, cwd=workspace, capture_output=True,
                                timeout=CHECK_TIMEOUT).returncode == 0
        for item in rubric.items() if item.command
    }


def command_score(rubric: Rubric, passed: dict[str, bool]) -> float:
    """Weighted share of command-check points earned (items without a command left out)."""
    total = weight_sum = 0.0
    for category in rubric.categories:
        items = [item for item in category.items if item.command]
        if items:
            earned = sum(item.points for item in items if passed[item.id])
            total += category.weight * earned / sum(item.points for item in items)
            weight_sum += category.weight
    return total / weight_sum


def apply_solution(test_dir: Path, workspace: Path) -> None:
    git(workspace, "apply", str(test_dir / "expected" / "solution.patch"))


@pytest.mark.parametrize("test_dir", EXAMPLE_DIRS, ids=lambda d: d.name)
def test_example_loads_with_the_spec_loader(test_dir: Path):
    loaded = load_test(test_dir)
    assert loaded.spec.id == test_dir.name
    if loaded.spec.resources_dir:  # composed from the shared library: see the test below
        return
    assert tuple(loaded.subtests) == ALL_TIERS
    assert [sub.id for sub in loaded.subtests["T0"]] == ["00", "01"]
    assert loaded.subtests["T5"][0].inherit_best_from == ["T0", "T1", "T2", "T3", "T4"]
    assert loaded.solution_patch.is_file()


@pytest.mark.parametrize("test_dir", EXAMPLE_DIRS, ids=lambda d: d.name)
def test_example_shape(test_dir: Path):
    assert not (test_dir / "repo" / ".git").exists(), "repo/ is a plain folder; tierbench makes it a git repo"
    rubric = load_rubric(test_dir)
    items = rubric.items()
    assert len([item for item in items if item.command]) >= 3
    assert any(item.command is None for item in items), "keep an item for LLM judges"
    assert rubric.grading.pass_threshold == 0.6


@pytest.mark.parametrize("test_dir", EXAMPLE_DIRS, ids=lambda d: d.name)
def test_checks_fail_before_and_pass_after_the_solution(test_dir: Path, tmp_path: Path):
    rubric = load_rubric(test_dir)
    workspace = pristine_workspace(test_dir, tmp_path)
    before = run_checks(rubric, workspace)
    assert not all(before.values()), before
    assert command_score(rubric, before) < rubric.grading.pass_threshold, before
    apply_solution(test_dir, workspace)
    after = run_checks(rubric, workspace)
    assert all(after.values()), after


@pytest.mark.parametrize("test_dir", EXAMPLE_DIRS, ids=lambda d: d.name)
def test_a_solution_missing_any_line_fails_a_check(test_dir: Path, tmp_path: Path):
    rubric = load_rubric(test_dir)
    candidates = patch_added_lines((test_dir / "expected" / "solution.patch").read_text())
    assert candidates
    for index, (rel, line) in enumerate(candidates):
        workspace = pristine_workspace(test_dir, tmp_path / str(index))
        apply_solution(test_dir, workspace)
        target = workspace / rel
        lines = target.read_text().splitlines(keepends=True)
        lines.remove(next(existing for existing in lines if existing.rstrip("\n") == line))
        target.write_text("".join(lines))
        results = run_checks(rubric, workspace)
        assert not all(results.values()), f"dropping {line!r} from {rel} still passes every check"


def test_library_example_composes_every_kind_of_resource():
    loaded = load_test(EXAMPLES / "py-roman")
    assert loaded.spec.resources_dir == "../../resources"
    t0 = loaded.subtests["T0"]
    assert "CLAUDE.md" not in t0[0].files and t0[1].files["CLAUDE.md"].startswith("# Project")
    assert t0[2].config_size().claude_md_lines > t0[1].config_size().claude_md_lines
    assert [s.config_size().skills for s in loaded.subtests["T1"]] == [2, 3]
    assert list(loaded.subtests["T2"][0].mcp_servers) == ["git"]
    assert [s.config_size().agents for s in loaded.subtests["T3"]] == [2, 3]
    assert all(s.extends_previous for tier in ("T1", "T2", "T3") for s in loaded.subtests[tier])
