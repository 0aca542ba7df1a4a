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


def test_subtest_commit_carries_the_files_once_and_keeps_them_out_of_the_diff(tmp_path):
    from tierbench.run.workspace import remove_worktree, subtest_commit

    repo, head = _repo(tmp_path)
    files = {"CLAUDE.md": "rules\n", ".claude/skills/x/SKILL.md": "skill\n", "a.txt": "replaced\n"}
    commit = subtest_commit(repo, head, files, "T1/01")
    assert commit != head
    assert subtest_commit(repo, head, dict(reversed(list(files.items()))), "T1/02") == commit
    assert subtest_commit(repo, head, {}, "T0/00") == head
    parent = subprocess.run(["git", "rev-parse", f"{commit}^"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert parent == head
    workspace = tmp_path / "run_01" / "workspace"
    create_worktree(repo, workspace, commit)
    assert (workspace / ".claude/skills/x/SKILL.md").read_text() == "skill\n"
    assert (workspace / "a.txt").read_text() == "replaced\n"
    (workspace / "new.txt").write_text("new\n")
    diff = capture_diff(workspace, commit)
    assert "new.txt" in diff and "CLAUDE.md" not in diff and "SKILL.md" not in diff and "a.txt" not in diff
    remove_worktree(repo, workspace)
    assert not workspace.exists() and not list((repo / ".git" / "worktrees").iterdir())
    create_worktree(repo, workspace, commit)  # the same path again: nothing left to block it
    assert (workspace / "CLAUDE.md").exists()


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


def test_subtest_commit_keeps_library_scripts_executable(tmp_path):
    from tierbench.run.workspace import subtest_commit

    repo, head = _repo(tmp_path)
    script = ".claude/skills/s/scripts/run.sh"
    commit = subtest_commit(repo, head, {script: "#!/bin/sh\necho ran\n", ".claude/skills/s/SKILL.md": "s\n"},
                            "T1/00", [script])
    workspace = tmp_path / "run_02" / "workspace"
    create_worktree(repo, workspace, commit)
    assert os.access(workspace / script, os.X_OK) and not os.access(workspace / ".claude/skills/s/SKILL.md", os.X_OK)
    assert capture_diff(workspace, commit) == ""


def test_a_created_worktree_is_a_git_worktree_like_any_other(tmp_path):
    # tierbench writes git's worktree metadata itself; git must see exactly what `worktree add --detach`
    # makes: listed, detached at the commit, clean, committable without moving the base's HEAD, removable.
    repo, head = _repo(tmp_path)
    workspace = tmp_path / "run_01" / "workspace"
    create_worktree(repo, workspace, head)
    listing = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, check=True, capture_output=True,
                             text=True).stdout
    assert f"worktree {workspace}\nHEAD {head}\ndetached" in listing
    assert subprocess.run(["git", "status", "--porcelain"], cwd=workspace, check=True, capture_output=True,
                          text=True).stdout == ""
    (workspace / "b.txt").write_text("b\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "b.txt"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "agent"], cwd=workspace, check=True)
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip() == head
    subprocess.run(["git", "worktree", "remove", "--force", str(workspace)], cwd=repo, check=True)
    admin = repo / ".git" / "worktrees"
    assert not workspace.exists() and not (admin.exists() and any(admin.iterdir()))


def test_a_cached_subtest_commit_is_not_reused_for_a_new_repository_at_the_same_path(tmp_path):
    # A process that outlives an experiment (a Ray worker) must not hand out a commit cached for a
    # deleted repository: the same path and base commit, but the objects are gone.
    from tierbench.run.workspace import subtest_commit

    fixed = {**os.environ, "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}

    def fresh_repo():
        shutil.rmtree(tmp_path / "repo", ignore_errors=True)
        repo = tmp_path / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        (repo / "a.txt").write_text("a\n")
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True, env=fixed)
        subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True, env=fixed)
        (repo / ".git" / "tierbench-base").write_text("marker\n")  # what prepare_base_repo writes last
        return repo, subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                                    text=True).stdout.strip()

    repo, base = fresh_repo()
    first = subtest_commit(repo, base, {"CLAUDE.md": "rules\n"}, "T0/01")
    again, base_again = fresh_repo()
    assert (again, base_again) == (repo, base)
    second = subtest_commit(again, base_again, {"CLAUDE.md": "rules\n"}, "T0/01")
    assert second == first  # the same content gives the same commit...
    assert subprocess.run(["git", "cat-file", "-e", f"{second}^{{commit}}"], cwd=again).returncode == 0  # ...present
