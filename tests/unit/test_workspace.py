"""Worktree set-up survives what a crash leaves in git's metadata."""

from __future__ import annotations

import os
import shutil
import subprocess

from tierbench.run.workspace import commit_subtest_files, capture_diff, create_worktree, forget_stale_worktrees


def _repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
    return repo, head


def test_add_killed_midway_leaves_locked_metadata_that_is_recovered(tmp_path):
    repo, head = _repo(tmp_path)
    workspace = tmp_path / "run_01" / "workspace"
    other = tmp_path / "run_02" / "workspace"
    create_worktree(repo, workspace, head)
    create_worktree(repo, other, head)
    admin = repo / ".git" / "worktrees"
    entries = {p.name: p for p in admin.iterdir()}
    assert len(entries) == 2
    # What a SIGKILL during `git worktree add` leaves: the directory gone, the entry locked as
    # "initializing", and (for a second, parallel add) an entry without commondir.
    shutil.rmtree(workspace)
    for entry in entries.values():
        (entry / "locked").write_text("initializing")
    broken = next(e for e in entries.values() if (e / "gitdir").read_text().strip() == str(other / ".git"))
    (broken / "commondir").unlink()
    assert forget_stale_worktrees(repo) == 2
    create_worktree(repo, workspace, head)
    create_worktree(repo, other, head)
    assert (workspace / "a.txt").exists() and (other / "a.txt").exists()


def test_subtest_files_are_not_in_the_agent_diff(tmp_path):
    repo, head = _repo(tmp_path)
    workspace = tmp_path / "ws"
    create_worktree(repo, workspace, head)
    base = commit_subtest_files(workspace, {"CLAUDE.md": "rules\n", ".claude/agents/x.md": "agent\n"}, "T0/01")
    (workspace / "a.txt").write_text("changed\n")
    (workspace / "new.txt").write_text("new\n")
    diff = capture_diff(workspace, base)
    assert "a.txt" in diff and "new.txt" in diff
    assert "CLAUDE.md" not in diff and ".claude/agents" not in diff


def test_library_scripts_are_committed_executable(tmp_path):
    repo, head = _repo(tmp_path)
    workspace = tmp_path / "ws"
    create_worktree(repo, workspace, head)
    script = ".claude/skills/s/scripts/run.sh"
    base = commit_subtest_files(workspace, {script: "#!/bin/sh\necho ran\n", ".claude/skills/s/SKILL.md": "s\n"},
                                "T1/00", [script])
    assert os.access(workspace / script, os.X_OK) and not os.access(workspace / ".claude/skills/s/SKILL.md", os.X_OK)
    assert subprocess.run([str(workspace / script)], capture_output=True, text=True).stdout == "ran\n"
    assert capture_diff(workspace, base) == ""  # the mode is committed, not a change by the agent
