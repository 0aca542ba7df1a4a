"""Git plumbing: the experiment's base clone, one worktree per run, the subtest commit, the diff.

The base repository is cloned once into `<exp>/repo`. Each run gets a detached worktree at its
subtest's commit: the test's commit plus the subtest's files, built once per subtest in the base
repository (`subtest_commit`), so the agent's diff excludes them and a run spends no git process on
them. `git worktree add` and the metadata clean-up mutate shared state in repo/.git, so they are
serialised; the checkout itself is not (see `create_worktree`). Per run that is three git
processes: the checkout (`read-tree -u`), `add -A` and `diff`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from tierbench.spec import LoadedTest
from tierbench.store.repair import forget_stale_worktrees  # noqa: F401  (the store owns repo/ metadata)

_WORKTREE_LOCK = threading.Lock()
_SUBTEST_COMMITS: dict[tuple[str, str, str], str] = {}  # (repo identity, base, files digest) -> commit

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


@contextlib.contextmanager
def _worktree_metadata_lock(repo: Path) -> Iterator[None]:
    """Serialise changes to git's worktree metadata between threads and between processes (several
    Ray workers of one node share that node's copy of the repository)."""
    with _WORKTREE_LOCK, open(repo / ".git" / "tierbench-worktrees.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def create_worktree(repo: Path, workspace: Path, commit: str) -> None:
    """A detached worktree of `commit` at `workspace`, registered in `repo` like `git worktree add`.

    `git worktree add` costs three git processes (itself, then `update-ref` and `reset --hard`),
    about 14 ms, all under the metadata lock. Its registration is three small files in the layout
    gitrepository-layout(5) documents (`worktrees/<id>/{gitdir,commondir,HEAD}`) plus the
    workspace's `.git` pointer; those are written here under the lock, and the one process that
    remains, the checkout (`read-tree -u --reset`, about 4 ms), touches only this worktree's index
    and files, so it runs outside the lock and parallel runs check out at the same time.
    """
    with _worktree_metadata_lock(repo):
        if workspace.exists():  # left over from a crash: start this attempt clean
            shutil.rmtree(workspace, ignore_errors=True)
        # Only metadata for this very path can block the add; other stale entries are cleared at
        # coordinator start (forget_stale_worktrees), so no `worktree prune` per run.
        forget_worktree(repo, workspace)
        admin = repo / ".git" / "worktrees" / _worktree_id(workspace)
        shutil.rmtree(admin, ignore_errors=True)
        admin.mkdir(parents=True)
        workspace.mkdir(parents=True)
        (workspace / ".git").write_text(f"gitdir: {admin}\n")
        (admin / "commondir").write_text("../..\n")
        (admin / "HEAD").write_text(f"{commit}\n")  # detached at the commit
        (admin / "gitdir").write_text(f"{workspace / '.git'}\n")  # last: an entry without it is stale
    # HEAD already names the commit, so only the index and the files are needed: read-tree does
    # just that, where `reset --hard` also rewrites HEAD and ORIG_HEAD (about 1 ms more).
    git("read-tree", "-u", "--reset", commit, cwd=workspace)


def _worktree_id(workspace: Path) -> str:
    """The entry's name under .git/worktrees: readable, and unique per workspace path (every run's
    workspace has the same basename, so git's own naming would only number them)."""
    digest = hashlib.sha256(str(workspace).encode()).hexdigest()[:10]
    return f"{workspace.parent.name}-{digest}"


def remove_worktree(repo: Path, workspace: Path) -> None:
    """Delete the worktree and git's metadata for it: what `git worktree remove --force` does, without
    the process."""
    shutil.rmtree(workspace, ignore_errors=True)
    with _worktree_metadata_lock(repo):
        forget_worktree(repo, workspace)


def subtest_commit(repo: Path, base: str, files: dict[str, str], label: str,
                   executable: list[str] | tuple[str, ...] = ()) -> str:
    """The commit a run of this subtest starts from: `base` plus the subtest's files, committed once
    per subtest with one `git fast-import` (identity and dates are fixed, so the same files always
    give the same commit). Returns `base` itself when the subtest has no files."""
    if not files:
        return base
    digest = hashlib.sha256(repr((sorted(files.items()), sorted(executable))).encode()).hexdigest()
    cache_key = (_repo_identity(repo), base, digest)
    cached = _SUBTEST_COMMITS.get(cache_key)
    if cached is not None:
        return cached
    with _worktree_metadata_lock(repo):  # several processes may share the repository (Ray workers)
        cached = _SUBTEST_COMMITS.get(cache_key)
        if cached is not None:
            return cached
        ref = f"refs/tierbench/subtests/{digest[:24]}"
        message = b"tierbench: subtest files\n"  # no label: equal files give one commit whichever subtest
        stream = [f"commit {ref}\n".encode(),
                  f"author {GIT_ENV['GIT_AUTHOR_NAME']} <{GIT_ENV['GIT_AUTHOR_EMAIL']}> 946684800 +0000\n".encode(),
                  f"committer {GIT_ENV['GIT_COMMITTER_NAME']} <{GIT_ENV['GIT_COMMITTER_EMAIL']}> "
                  "946684800 +0000\n".encode(),
                  f"data {len(message)}\n".encode(), message, f"from {base}\n".encode()]
        for rel, content in sorted(files.items()):
            data = content.encode("utf-8")
            mode = "100755" if rel in executable else "100644"
            stream += [f"M {mode} inline {_fast_import_path(rel)}\n".encode(), f"data {len(data)}\n".encode(),
                       data, b"\n"]
        stream.append(b"\n")
        proc = subprocess.run(["git", "fast-import", "--quiet", "--force"], input=b"".join(stream), cwd=repo,
                              env={**os.environ, **GIT_ENV}, capture_output=True)
        if proc.returncode != 0:
            raise WorkspaceError(f"git fast-import failed in {repo} for subtest {label}: "
                                 f"{proc.stderr.decode(errors='replace').strip()}")
        commit = git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=repo).strip()
        _SUBTEST_COMMITS[cache_key] = commit
        return commit


def _repo_identity(repo: Path) -> str:
    """The repository's path and the identity of its base marker: a process that outlives an experiment
    (a Ray worker, a test) must not reuse a commit cached for a deleted repository at the same path."""
    try:
        marker = os.stat(repo / ".git" / "tierbench-base")
    except OSError:
        return f"{repo}:-"
    return f"{repo}:{marker.st_ino}:{marker.st_ctime_ns}"  # an inode number alone can be reused


def _fast_import_path(rel: str) -> str:
    path = Path(rel).as_posix()
    if path.startswith("/") or ".." in Path(path).parts:
        raise WorkspaceError(f"subtest file {rel!r} is outside the workspace: use a relative path")
    if path.startswith('"') or "\n" in path or "\\" in path:
        return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return path


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
