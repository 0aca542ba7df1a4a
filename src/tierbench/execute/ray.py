"""The Ray executor: each run is a Ray task on some node of a cluster; state stays with the coordinator.

Shipped once per experiment through Ray's object store: the base repository as a git bundle (only
the base commit) and the experiment's test snapshot as a tar. A node unpacks both once per
experiment into its own directory (no shared filesystem needed) and runs each run there with the
same `execute_run` as a local run: worktree -> agent -> judges, with the per-run home, sandbox and
transcript that function gives. It sends back the run directory as a tar; the coordinator installs
it into the experiment (`run/transfer.py`, `run_result.json` last) and records it in the journal.
The node removes a run's directory once it is sent back (or its task was cancelled), and at
shutdown one small task pinned to each node that ran a run removes the experiment's copy there.

Failures are attempts, never silent retries: tasks use `max_retries=0` (a run spends money). A task
lost with its node or worker (`NodeDiedError`, `WorkerCrashedError`, a lost object) comes back as a
`lost` completion naming the node; the coordinator records an infrastructure-error attempt and
relaunches the run up to its stated limit. Each task first yields the id of the node it started
on (a streaming generator), so the coordinator knows which tasks have started: a rate limit
cancels only those still queued. The agent processes of a task whose worker dies are killed by the
run's own ProcessRegistry reaper (process.py), which outlives the worker and kills every process the
run marked once the worker is gone (any death, SIGKILL included).

Judge rate limits: the adaptive per-provider limits of `judges/limiter.py` live in one Ray actor per
experiment (`_JudgeLimits`, named after the experiment), created by the coordinator. Every task
installs a limiter backend that acquires and releases slots through it, so a provider's limit holds
across the cluster, not per worker; the coordinator saves the actor's history into stats.json.

Placement: every task asks for `run_cpus` CPUs and one `tierbench_slot` when the cluster offers
that resource (`ray start --resources='{"tierbench_slot": 4}'`: a node takes at most 4 runs).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierbench.execute.executor import Completion, Executor, ExecutorUnavailable
from tierbench.judges.limiter import AdaptiveLimiter, concurrency_cap, configured_limits, local_history, set_limiter_backend
from tierbench.models import RunKey, RunResult, RunStatus
from tierbench.process import ProcessRegistry
from tierbench.reaper import new_session
from tierbench.run.attempt import RunRequest
from tierbench.run.workspace import git
from tierbench.store.layout import RUN_RESULT_NAME, ExperimentLayout

SLOT_RESOURCE = "tierbench_slot"
# Where a node keeps its copy of each experiment's repository and test, and its runs in progress.
WORKDIR_ENV = "TIERBENCH_RAY_WORKDIR"
_BASE_REF = "refs/tierbench/base"
# A worker that exits because its raylet died SIGKILLs its direct children, the run's reaper among
# them, which would leave the agents' own children running. Our workers leave that to the reaper,
# which kills each agent's whole process group once the worker is gone, however it died.
_RUNTIME_ENV = {"env_vars": {"RAY_kill_child_processes_on_worker_exit": "false"}}


class RayUnavailable(ExecutorUnavailable):
    """Ray is not installed or the cluster cannot be reached; the message says what to do."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'tierbench[ray]'") from None
    return ray


@dataclass
class _Task:
    key: RunKey
    generator: Any  # ray.ObjectRefGenerator
    lease: str  # owner of the judge slots this attempt takes (the run key and a submission number)
    node_id: str | None = None  # set once the task reports that it started
    withdrawn: bool = False
    interrupted: bool = False


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, *, layout: ExperimentLayout, experiment_key: str, base_commit: str,
                 address: str | None, run_cpus: float, parallel: int):
        ray = _import_ray()
        self._ray = ray
        address = address or os.environ.get("RAY_ADDRESS") or None  # e.g. set by `tierbench batch`
        self.layout = layout
        self.run_cpus = run_cpus
        # Joining can wait a long time on a cluster that is gone (e.g. the batch that started it was
        # killed): a stop signal meanwhile is handled as usual and then aborts the join.
        handlers = _stop_handlers()
        _abort_on_stop(handlers)
        try:
            self._join(ray, address, parallel, run_cpus)
            _abort_on_stop(handlers)  # ray.init installed its own SIGTERM handler
            self._setup(ray, layout, experiment_key, base_commit, run_cpus)
        except _JoinInterrupted:
            _reassert_signal_handlers(handlers)
            try:
                ray.shutdown()
            except Exception:
                pass
            raise RayUnavailable("interrupted while starting or joining the Ray cluster") from None
        finally:
            _reassert_signal_handlers(handlers)

    def _join(self, ray: Any, address: str | None, parallel: int, run_cpus: float) -> None:
        try:
            if address is None:  # a local instance with one slot per parallel run
                ray.init(num_cpus=max(1, int(parallel * run_cpus + 0.999)), resources={SLOT_RESOURCE: parallel},
                         include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                         runtime_env=_RUNTIME_ENV)
            else:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False, runtime_env=_RUNTIME_ENV)
        except Exception as exc:
            raise RayUnavailable(f"cannot start or join Ray at {address or 'a new local instance'} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                                 "Fix --ray-address (host:port or auto), or start the cluster first") from None

    def _setup(self, ray: Any, layout: ExperimentLayout, experiment_key: str, base_commit: str,
               run_cpus: float) -> None:
        self._gcs = str(ray.get_runtime_context().gcs_address or "")
        self._slots = SLOT_RESOURCE in ray.cluster_resources()
        self._context = {
            "experiment_key": experiment_key,
            "base_commit": base_commit,
            "bundle": ray.put(_bundle(layout.repo, base_commit)),
            "test": ray.put(_pack_dir(layout.test_snapshot)),
        }
        self._limits = _RayLimiterBackend.create(ray, experiment_key)
        self._context["judge_limits"] = self._limits.actor
        set_limiter_backend(self._limits)  # the coordinator's stats read the cluster's history
        self._remote = ray.remote(_run_on_node).options(
            num_returns="streaming", max_retries=0, num_cpus=run_cpus,
            resources={SLOT_RESOURCE: 1} if self._slots else None)
        self._tasks: dict[int, _Task] = {}  # by id() of the task's generator
        self._submitted = 0
        self._nodes: set[str] = set()  # nodes that started a run: their copy is removed at shutdown
        self._early: list[Completion] = []  # ended while cancel_queued took in start reports
        self._closed = False

    @property
    def uses_slots(self) -> bool:
        return self._slots

    # -- Executor ----------------------------------------------------------------------------
    def submit(self, request: RunRequest) -> None:
        self._submitted += 1
        lease = f"{request.key}#{self._submitted}"
        spec = {"key": request.key, "config": request.config, "subtest": request.subtest,
                "agent": request.agent.name, "base_commit": request.base_commit, "lease": lease}
        generator = self._remote.remote(spec, [self._context])  # nested: refs resolve on the node, once
        self._tasks[id(generator)] = _Task(request.key, generator, lease)

    def poll(self, timeout: float) -> list[Completion]:
        completions, self._early = self._early, []
        if not self._tasks:
            return completions
        ray = self._ray
        generators = [task.generator for task in self._tasks.values()]
        ready, _ = ray.wait(generators, num_returns=1, timeout=0 if completions else timeout, fetch_local=True)
        if ready:
            ready, _ = ray.wait(generators, num_returns=len(generators), timeout=0, fetch_local=True)
        for generator in ready:
            task = self._tasks.get(id(generator))
            if task is None:
                continue
            completion = self._step(task)
            if completion is not None:
                completions.append(completion)
        return completions

    def _step(self, task: _Task) -> Completion | None:
        """Consume one item of a ready task: its start report, or its end."""
        ray = self._ray
        try:
            ref = next(task.generator)
            item = ray.get(ref)
        except StopIteration:  # ended without a payload (cannot happen for a task that ran to its end)
            self._tasks.pop(id(task.generator), None)
            self._limits.release_owner(task.lease)
            return self._error(task, "the Ray task ended without sending its run back", lost=True)
        except Exception as exc:
            self._tasks.pop(id(task.generator), None)
            # A task that died (worker or node lost, cancelled, crashed) may have held judge slots:
            # give them back before the run is recorded, and relaunched.
            self._limits.release_owner(task.lease)
            return self._failure(task, exc)
        if "started_on" in item:
            task.node_id = item["started_on"]
            self._nodes.add(task.node_id)
            return None
        self._tasks.pop(id(task.generator), None)
        from tierbench.run.transfer import install_run_dir

        install_run_dir(self.layout, task.key, item["files"])
        result = RunResult.model_validate_json(item["result"])
        return Completion(task.key, result)

    def _failure(self, task: _Task, exc: Exception) -> Completion | None:
        exceptions = self._ray.exceptions
        if isinstance(exc, exceptions.TaskCancelledError) or "TaskCancelledError" in type(exc).__name__:
            if task.withdrawn:
                return None
            return self._error(task, "interrupted", status=RunStatus.INTERRUPTED)
        lost_types = tuple(t for t in (getattr(exceptions, name, None) for name in (
            "NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError",
            "ObjectFetchTimedOutError", "ReferenceCountingAssertionError")) if isinstance(t, type))
        node = getattr(exc, "node_id", None) or task.node_id or _node_from_message(str(exc))
        if task.node_id is None and node:
            task.node_id = node
        cause = getattr(exc, "cause", None)  # RayTaskError: the exception the task raised
        shown = cause if isinstance(cause, BaseException) else exc
        lines = [line for line in str(shown).strip().splitlines() if line.strip()]
        message = f"{type(shown).__name__}: {lines[-1] if shown is cause and lines else (lines[0] if lines else '')}"
        if isinstance(exc, lost_types):
            return self._error(task, f"{message} (node {task.node_id or 'unknown'})", lost=True)
        return self._error(task, message)

    def _error(self, task: _Task, message: str, *, lost: bool = False,
               status: RunStatus = RunStatus.ERROR) -> Completion:
        """An attempt that sent nothing back. An error is archived as attempts/NN/run_result.json
        (naming the node when known), like any infrastructure error."""
        from tierbench.run.transfer import record_lost_attempt

        result = RunResult(tier=task.key.tier, subtest=task.key.subtest, run_number=task.key.run, status=status,
                           error=message, node_id=task.node_id, agent="", finished_at=_now())
        if status is RunStatus.ERROR:
            record_lost_attempt(self.layout, task.key, result)
        return Completion(task.key, result, lost=lost)

    def cancel_queued(self) -> list[RunKey]:
        # First take in every start report already sent, so a run that has just started is not
        # mistaken for a queued one (cancelling it would kill an agent that is spending money).
        quiet = [task.generator for task in self._tasks.values() if task.node_id is None and not task.withdrawn]
        if quiet:
            ready, _ = self._ray.wait(quiet, num_returns=len(quiet), timeout=0.2, fetch_local=True)
            for generator in ready:
                task = self._tasks.get(id(generator))
                if task is not None:
                    completion = self._step(task)
                    if completion is not None:
                        self._early.append(completion)
        withdrawn = []
        for task in self._tasks.values():
            if task.node_id is None and not task.withdrawn:
                task.withdrawn = True
                self._ray.cancel(task.generator, force=False)
                withdrawn.append(task.key)
        return withdrawn

    def interrupt(self) -> None:
        for task in self._tasks.values():
            if not task.withdrawn:
                task.interrupted = True
                try:
                    self._ray.cancel(task.generator, force=False)
                except Exception:
                    pass

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks.values()):
            try:
                self._ray.cancel(task.generator, force=True)
            except Exception:
                pass
        self._tasks.clear()
        if _reachable(self._gcs):  # a cluster that is gone (e.g. the batch's head was killed) is not waited on
            self._limits.close()  # stats.json was written before: the coordinator's _finish
            self._clean_nodes()
        set_limiter_backend(None)
        self._ray.shutdown()

    def _clean_nodes(self, timeout: float = 30.0) -> None:
        """Remove this experiment's copy (repository, test snapshot, runs left by killed tasks) from
        every node that ran a run: one small task pinned to each node. A node that is gone keeps its
        copy; a later coordinator of the same experiment reuses and then removes it."""
        try:
            alive = {node["NodeID"] for node in self._ray.nodes() if node.get("Alive")}
        except Exception:
            return
        nodes = sorted(self._nodes & alive)
        if not nodes:
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        digest = _experiment_digest(self._context["experiment_key"], self._context["base_commit"])
        clean = self._ray.remote(_clean_node_copy)
        refs = [clean.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node_id=node, soft=False)).remote(node, digest) for node in nodes]
        try:
            self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        except Exception:
            pass


def _reachable(address: str, timeout: float = 2.0) -> bool:
    """Whether the cluster's GCS (host:port) still accepts connections."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return True  # unknown: try, as before
    import socket

    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


class _JoinInterrupted(BaseException):
    """A stop signal arrived while the executor was still starting or joining Ray."""


def _abort_on_stop(handlers: dict[int, Any]) -> None:
    """Until `_reassert_signal_handlers`: a stop signal runs the coordinator's handler, then aborts."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return

    def abort(signum: int, frame: Any) -> None:
        previous = handlers.get(signum)
        if callable(previous):
            previous(signum, frame)
        raise _JoinInterrupted()

    for signum in handlers:
        signal.signal(signum, abort)


def _stop_handlers() -> dict[int, Any]:
    import signal

    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}


def _reassert_signal_handlers(handlers: dict[int, Any]) -> None:
    """`ray.init` replaces the driver's SIGTERM handler with one that exits with status 15 at once,
    and Ray's core worker installs native handlers for fatal signals (SIGTERM among them); put the
    coordinator's handlers from before `ray.init` back, so SIGINT/SIGTERM still stop it cleanly."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in handlers.items():
        if callable(handler) or handler in (signal.SIG_IGN, signal.SIG_DFL):
            signal.signal(signum, handler)


def _now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _node_from_message(text: str) -> str | None:
    marker = "node ID: "
    if marker in text:
        return text.split(marker, 1)[1].split(".", 1)[0].split()[0].strip(",") or None
    return None


# -- judge limits shared by the cluster -------------------------------------------------------
class _JudgeLimits:
    """The Ray actor holding every provider's limit for one experiment (threaded: acquire waits).
    `cap` is the coordinator's TIERBENCH_JUDGE_MAX_CONCURRENCY: the nodes' environments may differ."""

    def __init__(self, cap: int | None) -> None:
        self._cap = cap
        self._limiters: dict[str, AdaptiveLimiter] = {}
        self._lock = threading.Lock()
        # Every slot handed out is leased to its owner (one attempt of a run): owner -> provider -> count.
        # An owner whose task died is released as a whole and then closed: a late acquire of it (one
        # that was waiting when it died) gets nothing, a late release frees nothing.
        self._leases: dict[str, dict[str, int]] = {}
        self._closed: set[str] = set()

    def _get(self, key: str, initial: int, maximum: int) -> AdaptiveLimiter:
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                if self._cap is not None:
                    initial, maximum = configured_limits(initial, maximum, self._cap)
                limiter = self._limiters[key] = AdaptiveLimiter(key, initial, maximum)
            return limiter

    def acquire(self, key: str, initial: int, maximum: int, timeout: float, owner: str) -> int | None:
        limiter = self._get(key, initial, maximum)
        ticket = limiter.acquire(timeout=timeout)
        if ticket is None:
            return None
        with self._lock:
            if owner not in self._closed:
                held = self._leases.setdefault(owner, {})
                held[key] = held.get(key, 0) + 1
                return ticket
        limiter.release()
        return None

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(owner, {})
            if not held.get(key):
                return  # not leased (any more): released with its owner already
            held[key] -= 1
            if not held[key]:
                del held[key]
            if not held:
                self._leases.pop(owner, None)
            limiter = self._limiters.get(key)
        if limiter is not None:
            limiter.release()

    def release_owner(self, owner: str) -> int:
        """Give back every slot `owner` still holds (its task died holding them); returns how many."""
        with self._lock:
            self._closed.add(owner)
            held = self._leases.pop(owner, {})
            limiters = [(self._limiters[key], count) for key, count in held.items()]
        for limiter, count in limiters:
            for _ in range(count):
                limiter.release()
        return sum(count for _, count in limiters)

    def in_flight(self, key: str) -> int:
        with self._lock:
            limiter = self._limiters.get(key)
        return limiter.in_flight if limiter is not None else 0

    def on_success(self, key: str) -> None:
        with self._lock:
            limiter = self._limiters.get(key)
        if limiter is not None:
            limiter.on_success()

    def on_rate_limited(self, key: str, ticket: int | None) -> None:
        with self._lock:
            limiter = self._limiters.get(key)
        if limiter is not None:
            limiter.on_rate_limited(ticket)

    def history(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            limiters = dict(self._limiters)
        return local_history(limiters)


_ACQUIRE_WAIT = 5.0  # seconds an acquire call waits in the actor before the caller asks again


class _RemoteLimiter:
    """A judge's handle on one provider's limit in the `_JudgeLimits` actor."""

    def __init__(self, ray: Any, actor: Any, key: str, initial: int, maximum: int, owner: str) -> None:
        self._ray, self._actor, self._key = ray, actor, key
        self._initial, self._maximum = initial, maximum
        self._owner = owner

    @contextmanager
    def slot(self) -> Iterator[int]:
        while True:  # short waits, so a cancelled task is not stuck in one endless remote call
            ticket = self._ray.get(self._actor.acquire.remote(self._key, self._initial, self._maximum, _ACQUIRE_WAIT,
                                                              self._owner))
            if ticket is not None:
                break
        try:
            yield ticket
        finally:
            self._ray.get(self._actor.release.remote(self._key, self._owner))

    def on_success(self) -> None:
        self._ray.get(self._actor.on_success.remote(self._key))

    def on_rate_limited(self, ticket: int | None = None) -> None:
        self._ray.get(self._actor.on_rate_limited.remote(self._key, ticket))


class _RayLimiterBackend:
    """The limiter backend (judges/limiter.py) that shares every limit through the actor."""

    def __init__(self, ray: Any, actor: Any, owner: str = "coordinator") -> None:
        self._ray = ray
        self.actor = actor
        self._owner = owner  # whose slots this backend's limiters lease (one attempt of a run on a node)

    @classmethod
    def create(cls, ray: Any, experiment_key: str) -> "_RayLimiterBackend":
        # Named per experiment; owned by this driver, so it goes away with the coordinator. It lives
        # on the coordinator's own node (not a worker node that may die mid-experiment), and is
        # restarted with fresh limits if it dies all the same.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        name = "tierbench-judge-limits-" + hashlib.sha256(experiment_key.encode()).hexdigest()[:16]
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
        actor = ray.remote(_JudgeLimits).options(
            name=name, get_if_exists=True, max_concurrency=1000, num_cpus=0, scheduling_strategy=here,
            max_restarts=-1, max_task_retries=-1).remote(concurrency_cap())
        return cls(ray, actor)

    def limiter(self, provider_key: str, initial: int, maximum: int) -> _RemoteLimiter:
        return _RemoteLimiter(self._ray, self.actor, provider_key, initial, maximum, self._owner)

    def history(self) -> dict[str, list[dict[str, Any]]]:
        try:
            return self._ray.get(self.actor.history.remote(), timeout=30)
        except Exception:  # the actor and its history are lost; the stats must still be written
            return {}

    def release_owner(self, owner: str) -> None:
        """Free the slots an attempt's task still held when it died. Fire and forget: the coordinator
        does not wait on the actor, and a relaunched attempt leases its slots under an owner of its own."""
        try:
            self.actor.release_owner.remote(owner)
        except Exception:
            pass

    def close(self) -> None:
        try:
            self._ray.kill(self.actor)
        except Exception:
            pass


# -- shipping ---------------------------------------------------------------------------------
def _bundle(repo: Path, commit: str) -> bytes:
    """A git bundle holding the base commit and its history, under refs/tierbench/base."""
    git("update-ref", _BASE_REF, commit, cwd=repo)
    with tempfile.TemporaryDirectory(prefix="tierbench-bundle-") as tmp:
        path = Path(tmp) / "base.bundle"
        git("bundle", "create", "-q", str(path), _BASE_REF, cwd=repo)
        return path.read_bytes()


def _pack_dir(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


# -- on the node ------------------------------------------------------------------------------
def _run_on_node(spec: dict[str, Any], shipped: list[dict[str, Any]]) -> Any:
    """The Ray task (a generator): report the node, run, send the run directory back."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    yield {"started_on": node_id}
    yield _execute_here(spec, shipped[0], node_id)


def _execute_here(spec: dict[str, Any], context: dict[str, Any], node_id: str) -> dict[str, Any]:
    from tierbench.agents import get_agent
    from tierbench.judges import make_judge
    from tierbench.run.attempt import execute_run
    from tierbench.run.transfer import pack_run_dir
    from tierbench.spec import load_test

    root = _node_experiment(context, node_id)
    set_limiter_backend(_RayLimiterBackend(ray_module(), context["judge_limits"], owner=spec["lease"]))
    layout = ExperimentLayout(root)
    config = spec["config"]
    key: RunKey = spec["key"]
    registry = ProcessRegistry(session=new_session(root))  # its reaper outlives a SIGKILLed worker
    test = _TESTS.get(root)
    if test is None:
        test = _TESTS[root] = load_test(layout.test_snapshot)
    sandbox = _SANDBOXES.get(config.sandbox)
    if sandbox is None:  # each node decides what --sandbox means there, once per worker process
        from tierbench.sandbox import choose_sandbox

        sandbox = _SANDBOXES[config.sandbox] = choose_sandbox(config.sandbox)
    request = RunRequest(key=key, layout=layout, config=config, test=test, sandbox=sandbox,
                         subtest=spec["subtest"], base_commit=spec["base_commit"], agent=get_agent(spec["agent"]),
                         judges=[make_judge(judge) for judge in config.judges], registry=registry)
    run_dir = layout.run_dir(key)
    try:
        try:
            result = execute_run(request)
        finally:
            registry.kill_all()
            registry.shutdown()
        result.node_id = node_id
        _stamp_node(run_dir, node_id)
        return {"result": result.model_dump_json(), "files": pack_run_dir(run_dir)}
    finally:  # sent back, or the task was cancelled: the node keeps nothing of the run
        shutil.rmtree(run_dir, ignore_errors=True)


def _workdir() -> Path:
    return Path(os.environ.get(WORKDIR_ENV) or Path(tempfile.gettempdir()) / "tierbench-ray")


def _experiment_digest(experiment_key: str, base_commit: str) -> str:
    return hashlib.sha256(f"{experiment_key}:{base_commit}".encode()).hexdigest()[:16]


def _clean_node_copy(node_id: str, digest: str) -> None:
    """On one node: remove an experiment's copy, and the node's directory once it is empty."""
    root = _workdir() / node_id[:16] / digest
    shutil.rmtree(root, ignore_errors=True)
    try:
        root.parent.rmdir()
    except OSError:
        pass
    _TESTS.pop(root, None)


def ray_module() -> Any:
    import ray

    return ray


def _stamp_node(run_dir: Path, node_id: str) -> None:
    """Name the node in every run record this attempt wrote (the result, or its archived attempt)."""
    from tierbench.store.atomic import atomic_write_json

    for path in [run_dir / RUN_RESULT_NAME, *run_dir.glob(f"attempts/*/{RUN_RESULT_NAME}")]:
        if not path.is_file():
            continue
        record = RunResult.model_validate_json(path.read_text())
        if record.node_id is None:
            record.node_id = node_id
            atomic_write_json(path, record)


_NODE_SETUP_LOCK = threading.Lock()
_TESTS: dict[Path, Any] = {}  # this worker's loaded test snapshots, by node experiment root
_SANDBOXES: dict[str, Any] = {}  # --sandbox mode -> what it resolved to on this node


def _node_experiment(context: dict[str, Any], node_id: str) -> Path:
    """This node's copy of the experiment (repository from the bundle, test snapshot), made once per
    node and experiment under a file lock: several workers of one node share it."""
    import ray

    root = _workdir() / node_id[:16] / _experiment_digest(context["experiment_key"], context["base_commit"])
    ready = root / ".ready"
    if ready.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with _NODE_SETUP_LOCK, open(root / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return root
        layout = ExperimentLayout(root)
        shutil.rmtree(layout.repo, ignore_errors=True)
        shutil.rmtree(layout.test_snapshot, ignore_errors=True)
        bundle = root / "base.bundle"
        bundle.write_bytes(ray.get(context["bundle"]))
        layout.repo.mkdir()
        git("init", "-q", cwd=layout.repo)
        git("fetch", "-q", str(bundle), f"{_BASE_REF}:{_BASE_REF}", cwd=layout.repo)
        (layout.repo / ".git" / "tierbench-base").write_text(context["base_commit"] + "\n")
        bundle.unlink()
        layout.test_snapshot.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(ray.get(context["test"])), mode="r:gz") as tar:
            tar.extractall(layout.test_snapshot, filter="data")
        ready.write_text("ok\n")
    return root
