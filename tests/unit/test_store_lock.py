"""ExperimentLock against a real second process: flock semantics, PID reporting, SIGKILL release."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tierbench.store.lock import ExperimentLock, LockHeld

HOLDER = textwrap.dedent("""
    import sys, time
    from tierbench.store.lock import ExperimentLock
    lock = ExperimentLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path: Path):
    """A second process holding the lock until the test kills it."""
    lock_file = tmp_path / ".lock"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    yield process, lock_file
    if process.poll() is None:
        process.kill()
    process.wait()


def test_second_process_gets_lock_held_with_the_holders_pid(holder) -> None:
    process, lock_file = holder
    lock = ExperimentLock(lock_file)
    with pytest.raises(LockHeld) as caught:
        lock.acquire()
    assert caught.value.pid == process.pid
    assert str(process.pid) in str(caught.value)
    assert lock.is_held()
    assert lock.holder_pid() == process.pid
    assert not lock.acquired


def test_lock_is_free_after_the_holder_is_sigkilled(holder) -> None:
    process, lock_file = holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    lock = ExperimentLock(lock_file)
    assert not lock.is_held()
    with lock:
        assert lock.holder_pid() == os.getpid()
        assert lock.is_held()
    assert not ExperimentLock(lock_file).is_held()
    assert ExperimentLock(lock_file).holder_pid() is None  # release clears the PID


def test_acquire_release_reacquire_in_one_process(tmp_path: Path) -> None:
    lock_file = tmp_path / "sub" / ".lock"
    first = ExperimentLock(lock_file)
    first.acquire()
    first.acquire()  # idempotent for the holder
    with pytest.raises(LockHeld) as caught:
        ExperimentLock(lock_file).acquire()  # a second open file description conflicts, even in-process
    assert caught.value.pid == os.getpid()
    first.release()
    first.release()
    with ExperimentLock(lock_file) as second:
        assert second.acquired


def test_is_held_does_not_create_the_lock_file(tmp_path: Path) -> None:
    lock = ExperimentLock(tmp_path / ".lock")
    assert not lock.is_held()
    assert lock.holder_pid() is None
    assert not (tmp_path / ".lock").exists()


def test_a_probe_with_a_dead_pid_in_the_file_does_not_block_a_starting_coordinator(tmp_path: Path) -> None:
    """is_held() holds a shared lock for an instant; acquire must retry rather than report the dead
    PID a SIGKILLed coordinator left in the file."""
    lock_file = tmp_path / ".lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file.write_text(f"{dead.pid}\n")
    probe = os.open(lock_file, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe caught mid-flight ...
    threading.Timer(0.05, os.close, args=(probe,)).start()  # ... that lets go 50 ms later
    with ExperimentLock(lock_file) as lock:
        assert lock.holder_pid() == os.getpid()
