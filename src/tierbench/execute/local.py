"""The local executor: runs execute in a fixed pool of threads on this machine.

No thread is started per run: at most `workers` threads, started on demand and reused, take run
requests from one queue and put completions on another. A run writes its files straight into the
experiment directory (`execute_run`), so a completion needs no further copying.
"""

from __future__ import annotations

import queue
import threading

from tierbench.execute.executor import Completion, Executor
from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.process import ProcessRegistry
from tierbench.run.attempt import RunRequest, execute_run

_STOP = None


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int, registry: ProcessRegistry):
        if workers <= 0:
            raise ValueError("workers must be positive")
        self.workers = workers
        self.registry = registry
        self._jobs: queue.SimpleQueue[RunRequest | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job; changed under _lock
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, request: RunRequest) -> None:
        if self._closed:
            raise RuntimeError("the executor is shut down")
        with self._lock:
            start = self._idle <= 0 and len(self._threads) < self.workers
            if not start:
                self._idle -= 1  # this job is taken by an idle thread (or queues until one is free)
        if start:
            thread = threading.Thread(target=self._loop, name=f"tierbench run worker {len(self._threads) + 1}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        self._jobs.put(request)

    def _loop(self) -> None:
        while True:
            request = self._jobs.get()
            if request is _STOP:
                return
            try:
                with self.registry.label(str(request.key)):  # names the run's process groups in the journal
                    result = execute_run(request)
            except BaseException as exc:  # never let a worker die silently: an error attempt
                result = RunResult(tier=request.key.tier, subtest=request.key.subtest, run_number=request.key.run,
                                   status=RunStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._idle += 1
            self._done.put(Completion(request.key, result))

    def poll(self, timeout: float) -> list[Completion]:
        try:
            ended = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                ended.append(self._done.get_nowait())
            except queue.Empty:
                return ended

    def cancel_queued(self) -> list[RunKey]:
        withdrawn: list[RunKey] = []
        keep_stops = 0
        while True:
            try:
                request = self._jobs.get_nowait()
            except queue.Empty:
                break
            if request is _STOP:
                keep_stops += 1
                continue
            withdrawn.append(request.key)
        with self._lock:
            self._idle += len(withdrawn)
        for _ in range(keep_stops):
            self._jobs.put(_STOP)
        return withdrawn

    def interrupt(self) -> None:
        self.registry.kill_all()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(_STOP)
