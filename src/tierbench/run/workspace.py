"""Git plumbing: the experiment's base clone, one worktree per run, the subtest commit, the diff.

The base repository is cloned once into `<exp>/repo`. Each run gets a detached worktree at the
test's commit; the subtest's files are committed on top so the agent's diff excludes them.
`git worktree add/remove` mutate shared metadata in repo/.git, so they are serialised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from tierbench.spec import LoadedTest
from tierbench.store.repair import forget_stale_worktrees  # noqa: F401  (the store owns repo/ metadata)

_WORKTREE_LOCK = threading.Lock()

# Fixed identity and dates so commits tierbench makes are reproducible and need no user config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "tierbench",
    "GIT_AUTHOR_EMAIL": "tierbench@localhost",
    "GIT_COMMITTER_NAME": "tierbench",
    "GIT_COMMITTER_EMAIL": "tierbench@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_TERMINAL_PROMPT": "0",
}


class WorkspaceError(RuntimeError):
    pass


def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
    )
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def prepare_base_repo(test: LoadedTest, repo: Path) -> str:
    """Create `repo` once (idempotent, crash-safe via a temp dir + rename). Returns the base commit."""
    marker = repo / ".git" / "tierbench-base"
    if marker.exists():
        return marker.read_text().strip()
    staging = repo.with_name(repo.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if repo.exists():  # a crash between rename and marker: rebuild from scratch
        shutil.rmtree(repo)
    source = test.spec.source
    if source.path:
        shutil.copytree(test.test_dir / source.path, staging, ignore=shutil.ignore_patterns(".git"))
        git("init", "-q", "-b", "main", cwd=staging)
        git("add", "-A", cwd=staging)
        git("commit", "-q", "--allow-empty", "-m", f"tierbench: {test.spec.id} task source", cwd=staging)
        commit = git("rev-parse", "HEAD", cwd=staging).strip()
    else:
        assert source.repo and source.hash
        url = source.repo
        if "://" not in url and not url.startswith("git@"):
            url = str((test.test_dir / url).resolve())
        git("clone", "-q", "--no-checkout", url, str(staging), cwd=staging.parent)
        commit = git("rev-parse", "--verify", f"{source.hash}^{{commit}}", cwd=staging, check=False).strip()
        if not commit:
            shutil.rmtree(staging, ignore_errors=True)
            raise WorkspaceError(f"commit {source.hash} not found in {source.repo}: fix source.hash in test.yaml")
    (staging / ".git" / "tierbench-base").write_text(commit + "\n")
    os.replace(staging, repo)
    return commit


def forget_worktree(repo: Path, workspace: Path) -> bool:
    """Drop git's metadata for `workspace`, even when locked. A `git worktree add` killed midway
    (SIGKILL, crash) leaves it locked as "initializing", which `prune` never clears and which makes
    every later `add` at that path fail. Only the coordinator holding the experiment lock calls this."""
    admin = repo / ".git" / "worktrees"
    target = str(workspace / ".git")
    forgotten = False
    if admin.is_dir():
        for entry in admin.iterdir():
            try:
                points_to = (entry / "gitdir").read_text().strip()
            except OSError:
                points_to = ""
            if points_to == target or not points_to:
                shutil.rmtree(entry, ignore_errors=True)
                forgotten = True
    return forgotten


def create_worktree(repo: Path, workspace: Path, commit: str) -> None:
    with _WORKTREE_LOCK:
        if workspace.exists():  # left over from a crash: start this attempt clean
            git("worktree", "remove", "--force", str(workspace), cwd=repo, check=False)
            shutil.rmtree(workspace, ignore_errors=True)
        forget_worktree(repo, workspace)
        git("worktree", "prune", cwd=repo)
        workspace.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "-q", "--detach", str(workspace), commit, cwd=repo)


def remove_worktree(repo: Path, workspace: Path) -> None:
    with _WORKTREE_LOCK:
        git("worktree", "remove", "--force", str(workspace), cwd=repo, check=False)
        shutil.rmtree(workspace, ignore_errors=True)
        forget_worktree(repo, workspace)
        git("worktree", "prune", cwd=repo, check=False)


def commit_subtest_files(workspace: Path, files: dict[str, str], label: str,
                         executable: list[str] | tuple[str, ...] = ()) -> str:
    """Write the subtest's files and commit them; returns the commit the agent's diff starts from.
    Files listed in `executable` (scripts from the resource library) are made executable."""
    for rel, content in files.items():
        target = workspace / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        if rel in executable:
            target.chmod(target.stat().st_mode | 0o111)
    if files:
        git("add", "-A", cwd=workspace)
        git("commit", "-q", "--allow-empty", "-m", f"tierbench: subtest files for {label}", cwd=workspace)
    return git("rev-parse", "HEAD", cwd=workspace).strip()


def capture_diff(workspace: Path, base: str) -> str:
    """Everything the agent changed since `base`, including new files (staged to be seen)."""
    git("add", "-A", cwd=workspace)
    return git("diff", "--cached", "--binary", base, cwd=workspace)
