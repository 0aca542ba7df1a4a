"""The local executor: runs execute in a fixed pool of threads on this machine.

No thread is started per run: at most `workers` run threads, started on demand and reused, take
submitted runs from one queue and put completions on another. A run writes its files straight
into the experiment directory (run/attempt.py), so a completion needs no further copying.

Preparing ahead. The coordinator may keep `queue_ahead` runs submitted beyond `workers`. While
every run thread is busy, one preparer thread prepares those queued runs (worktree checkout,
private space, prompt: `prepare_run`), so a run thread that frees starts its next agent at once
instead of checking out a repository first. When many runs end together, their successors no
longer all check out at the same moment on a busy machine; with large repositories the checkout
is hidden behind other runs' agents altogether. A prepared run has not started: `cancel_queued`
withdraws it and removes what was prepared, and it never counts as running (`take_started`).
"""

from __future__ import annotations

import queue
import threading
from collections import deque

from tierbench.execute.executor import Completion, Executor
from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.process import ProcessRegistry
from tierbench.run.attempt import PreparedRun, RunRequest, discard_prepared, finish_run, prepare_run


class LocalExecutor(Executor):
    name = "local"
    reports_starts = True

    def __init__(self, workers: int, registry: ProcessRegistry, *, prepare_ahead: int | None = None):
        if workers <= 0:
            raise ValueError("workers must be positive")
        self.workers = workers
        # One extra workspace per run thread at most: enough for a whole wave of runs that end
        # together, and the disk cost stays within twice that of --parallel.
        self.queue_ahead = workers if prepare_ahead is None else prepare_ahead
        self.registry = registry
        self._cond = threading.Condition()
        self._waiting: deque[RunRequest] = deque()  # submitted, not prepared
        self._prepared: deque[PreparedRun] = deque()  # prepared by the preparer, agent not started
        self._preparing: RunKey | None = None  # the run the preparer is preparing now
        self._preparing_claimed = False  # a free run thread waits for that run
        self._idle = 0  # run threads waiting for work
        self._threads: list[threading.Thread] = []
        self._preparer: threading.Thread | None = None
        self._started: list[RunKey] = []  # agents started since the last take_started
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._finished = 0  # completions put on _done so far
        self._handed = 0  # completions poll has handed to the coordinator so far
        self._absorbed = 0  # completions the coordinator has absorbed (it polls again only after)
        self._closed = False

    def submit(self, request: RunRequest) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._waiting.append(request)
            start_thread = self._idle == 0 and len(self._threads) < self.workers
            start_preparer = self._preparer is None and self.queue_ahead > 0 and len(self._threads) >= self.workers
            self._cond.notify_all()
        if start_thread:
            thread = threading.Thread(target=self._run_loop, name=f"tierbench run worker {len(self._threads) + 1}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        if start_preparer:
            self._preparer = threading.Thread(target=self._prepare_loop, name="tierbench run preparer", daemon=True)
            self._preparer.start()

    def _run_loop(self) -> None:
        finished = 0  # the number of this thread's last completion
        while True:
            with self._cond:
                # The next run starts only once the coordinator has absorbed the one this thread
                # just finished: a rate limit it reported withdraws the queued runs first, and the
                # stall breaker stops them, exactly as when runs were submitted one slot at a time.
                while self._absorbed < finished and not self._closed:
                    self._cond.wait()
                work = self._next_work()
                if work is None:
                    return  # shut down and nothing left
                key = work.req.key if isinstance(work, PreparedRun) else work.key
                self._started.append(key)
                self._cond.notify_all()  # the preparer may refill
            try:
                with self.registry.label(str(key)):  # names the run's process groups in the journal
                    prepared = work if isinstance(work, PreparedRun) else prepare_run(work)
                    result = finish_run(prepared)
            except BaseException as exc:  # never let a worker die silently: an error attempt
                result = RunResult(tier=key.tier, subtest=key.subtest, run_number=key.run,
                                   status=RunStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
            with self._cond:
                self._finished += 1
                finished = self._finished
                self._done.put(Completion(key, result))

    def _next_work(self) -> PreparedRun | RunRequest | None:
        """The run this free thread starts next (called holding the lock; None once shut down).

        Runs are handed out in submission order: the prepared ones, then the one the preparer is
        preparing, then the rest. One free thread waits for the run being prepared rather than
        overtake it (so at --parallel 1 runs go in order); any other free thread prepares the next
        queued run itself, so slow checkouts never queue behind the one preparer.
        """
        self._idle += 1
        claimed = False  # this thread waits for the run being prepared
        try:
            while True:
                if self._prepared:
                    return self._prepared.popleft()
                if self._closed:
                    return None
                if self._waiting and (self._preparing is None or (self._preparing_claimed and not claimed)):
                    return self._waiting.popleft()
                if self._preparing is not None and not self._preparing_claimed:
                    self._preparing_claimed = claimed = True
                self._cond.wait()
        finally:
            if claimed:
                self._preparing_claimed = False
            self._idle -= 1

    def _prepare_loop(self) -> None:
        """Prepare queued runs while no run thread is free to take them (one at a time, in order)."""
        while True:
            with self._cond:
                while not self._closed and not (self._waiting and self._idle == 0
                                                and len(self._prepared) < self.queue_ahead):
                    self._cond.wait()
                if self._closed:
                    return
                request = self._waiting.popleft()
                self._preparing = request.key
            try:
                prepared: PreparedRun | None = prepare_run(request)  # a failure is kept for finish_run
            except BaseException:
                prepared = None
            with self._cond:
                self._preparing = None
                orphan = prepared is not None and self._closed  # shut down meanwhile: nobody will run it
                if prepared is None:
                    self._waiting.appendleft(request)  # a run thread prepares it itself
                elif not orphan:
                    self._prepared.append(prepared)
                self._cond.notify_all()
            if orphan and prepared is not None:
                discard_prepared(prepared)

    def take_started(self) -> list[RunKey]:
        with self._cond:
            started, self._started = self._started, []
        return started

    def poll(self, timeout: float) -> list[Completion]:
        with self._cond:  # the coordinator polls again only after absorbing what it was handed
            self._absorbed = self._handed
            self._cond.notify_all()
        try:
            ended = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                ended.append(self._done.get_nowait())
            except queue.Empty:
                break
        with self._cond:
            self._handed += len(ended)
        return ended

    def cancel_queued(self) -> list[RunKey]:
        """Withdraw submitted runs whose agent has not started, and remove what was prepared for
        them before returning, so a withdrawn run handed out again starts from nothing."""
        with self._cond:
            while self._preparing is not None:  # let it land, then withdraw it with the rest
                self._cond.wait()
            waiting, prepared = list(self._waiting), list(self._prepared)
            self._waiting.clear()
            self._prepared.clear()
            self._cond.notify_all()
        for run in prepared:
            discard_prepared(run)
        # In submission order: the prepared runs were submitted before those still waiting.
        return [run.req.key for run in prepared] + [request.key for request in waiting]

    def interrupt(self) -> None:
        self.registry.kill_all()

    def shutdown(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            leftover = list(self._prepared)  # only when the coordinator left without withdrawing
            self._prepared.clear()
            self._waiting.clear()
            self._cond.notify_all()
        for run in leftover:
            discard_prepared(run)
        if self._preparer is not None:
            self._preparer.join(timeout=30)
