"""One coordinator per experiment directory, enforced by flock on `<exp>/.lock`.

The OS drops a flock when its holder dies (even on SIGKILL), so there is no stale-PID guessing:
whoever can take the lock is the only live coordinator. The holder writes its PID into the file
purely so messages and `status` can name it; the lock itself is the truth.

The lock file is never deleted: unlinking it would let a second process lock a fresh inode while
the first still holds the old one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from tierbench.errors import TierbenchError

# A probe from `status`/`check` (is_held) holds the lock for microseconds. A coordinator starting in
# that instant must not be told "already running", so acquire retries briefly while the file names no
# live process (no PID yet, or the PID of a holder that died).
_PROBE_RETRIES = 10
_PROBE_RETRY_SECONDS = 0.02


class LockHeld(TierbenchError):
    """Another live process holds the experiment lock. `pid` is its PID when it could be read."""

    def __init__(self, path: Path, pid: int | None):
        self.path = Path(path)
        self.pid = pid
        holder = f"PID {pid}" if pid is not None else "another process (PID unknown)"
        super().__init__(f"{self.path.parent} is already being run by another tierbench process ({holder})",
                         "Wait for it to finish, or stop it first.")


class ExperimentLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld at once; never waits for a running coordinator."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            for attempt in range(_PROBE_RETRIES + 1):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    pid = self.holder_pid()
                    if (pid is not None and _alive(pid)) or attempt == _PROBE_RETRIES:
                        raise LockHeld(self.path, pid) from None
                    time.sleep(_PROBE_RETRY_SECONDS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the flock if we got it
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # so a later reader does not see a PID that no longer holds it
        except OSError:
            pass
        finally:
            os.close(fd)  # drops the flock

    @property
    def acquired(self) -> bool:
        """True when this object holds the lock."""
        return self._fd is not None

    def holder_pid(self) -> int | None:
        """The PID written by the current (or last) holder, read without locking."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_held(self) -> bool:
        """True if some process (this one included) holds the lock right now. Never creates the file."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            # LOCK_SH: two concurrent probes do not see each other, only an exclusive holder.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        finally:
            os.close(fd)  # also releases the probe's shared lock
        return False

    def __enter__(self) -> "ExperimentLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
