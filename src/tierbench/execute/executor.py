"""Where runs execute: the interface between the coordinator and an executor.

The coordinator decides *what* runs and records every outcome; an executor only decides *where*
a run executes. Two implementations: `LocalExecutor` (a fixed pool of threads on this machine) and
`RayExecutor` (tasks on a Ray cluster). Every method is called from the coordinator's thread.

Contract of a `Completion`: when `poll` hands it back, the run's directory in the experiment holds
everything the attempt wrote (`run_result.json` last, for a result), so the coordinator only has to
record it in the journal. A completion is never handed back twice, and a run submitted once gives
exactly one completion unless `cancel_queued` returned its key first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from tierbench.models import RunKey, RunResult
from tierbench.run.attempt import RunRequest

EXECUTORS = ("local", "ray")


class ExecutorUnavailable(RuntimeError):
    """The executor cannot start (Ray missing, cluster unreachable); the message says what to do."""


@dataclass(frozen=True)
class Completion:
    key: RunKey
    result: RunResult
    # True when the attempt was lost with the machine that ran it (node died, worker crashed, object
    # lost): an infrastructure error the coordinator may relaunch, unlike an error the run reported.
    lost: bool = False


class Executor(ABC):
    name: str = "executor"
    # How many runs the coordinator may keep submitted beyond --parallel. An executor that
    # prepares queued runs ahead (the local one checks out their workspaces) asks for some.
    queue_ahead: int = 0
    # True when the executor says which submitted runs have started (`take_started`); otherwise a
    # run counts as started when it is submitted.
    reports_starts: bool = False

    def take_started(self) -> list[RunKey]:
        """The submitted runs whose agent started since the last call (see `reports_starts`)."""
        return []

    @abstractmethod
    def submit(self, request: RunRequest) -> None:
        """Start (or queue) one attempt of a run. Returns at once."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Completion]:
        """Wait up to `timeout` seconds for at least one attempt to end; return every ended one."""

    @abstractmethod
    def cancel_queued(self) -> list[RunKey]:
        """Withdraw the submitted runs that have not started; they give no completion. Running ones
        are left alone (a rate limit stops new launches, it does not kill paid work in progress)."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ctrl+C: kill every running agent and check; their attempts still complete (interrupted)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release threads, connections and processes this executor started. Safe to call twice."""
