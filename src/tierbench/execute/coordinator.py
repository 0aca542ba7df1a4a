"""The coordinator: schedules runs, owns all experiment state, handles interrupts and rate limits.

Only the coordinator's main thread writes experiment state (journal, checkpoint, best_subtest.json,
stats.json). An executor (execute/executor.py: a local thread pool, or Ray tasks) performs the runs
and hands back completions. Scheduling keeps ready queues and counters per tier (execute/schedule.py),
so launching and recording a run never walk the plan.

Exit codes: 0 done, 1 error (infrastructure errors left runs pending, the stall breaker tripped,
or the budget was reached), 2 rate limited and not waiting, 130 interrupted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_RATE_LIMITED
from tierbench.execute import budget as budgeting
from tierbench.agents import get_agent
from tierbench.agents.base import Agent
from tierbench.config import ExperimentConfig
from tierbench.process import ProcessRegistry
from tierbench.execute.executor import Completion, Executor, ExecutorUnavailable
from tierbench.execute.local import LocalExecutor
from tierbench.execute.schedule import RunQueues
from tierbench.run.attempt import RunRequest
from tierbench.reaper import experiment_prefix, kill_marked, new_session
from tierbench.run.private import clear_private_spaces
from tierbench.sandbox import SandboxChoice, SandboxUnavailable, choose_sandbox
from tierbench.run.workspace import forget_stale_worktrees, prepare_base_repo
from tierbench.judges import make_judge
from tierbench.options import should_wait
from tierbench.models import ExperimentStatus, RateLimitInfo, RunKey, RunResult, RunStatus
from tierbench.plan import (BestSubtest, SubtestScores, choose_best, experiment_tiers, merge_inherited,
                            plan_runs, previous_tier, tier_dependencies)
from tierbench.progress import ProgressSink
from tierbench.ratelimit import local_reset_time
from tierbench.spec import LoadedTest, Subtest
from tierbench.store.layout import ExperimentLayout
from tierbench.store.shared_budget import budget_lock, sibling_spend
from tierbench.store.state import StateStore

_POLL_SECONDS = 0.25
# A run whose attempt is lost with its machine (a Ray node died) is relaunched in the same session at
# most this many times; after that it stays pending for the next command, like any infrastructure error.
LOST_ATTEMPT_RELAUNCHES = 3


@dataclass
class Outcome:
    exit_code: int
    message: str = ""
    errors: list[str] = field(default_factory=list)


class Coordinator:
    def __init__(self, layout: ExperimentLayout, config: ExperimentConfig, test: LoadedTest,
                 store: StateStore, progress: ProgressSink, budget_usd: float | None = None,
                 budget_scope: Path | None = None,
                 executor_factory: Callable[["Coordinator", str], Executor] | None = None):
        self.layout, self.config, self.test, self.store, self.progress = layout, config, test, store, progress
        self.budget_usd = budget_usd
        self.budget_scope = budget_scope  # a batch's results dir: the budget covers all its tests
        self._others = (0.0, 0.0, 0)  # (spent, committed, results) of the batch's other tests
        self._costs = budgeting.CostModel()
        self._spent = 0.0
        self._committed: dict[RunKey, float] = {}
        self._budget_stop: budgeting.Decision | None = None
        self.registry = ProcessRegistry(session=new_session(layout.root))
        self._sandbox: SandboxChoice | None = None
        self.plan = plan_runs(config, test)
        self.tiers = experiment_tiers(config, test)
        self.queues = RunQueues(self.plan, self.tiers,
                                {tier: tier_dependencies(tier, self.tiers, self.test) for tier in self.tiers},
                                store.completed)
        self._executor_factory = executor_factory
        self.executor: Executor | None = None
        self._stop = threading.Event()
        self._in_flight: dict[RunKey, float] = {}
        self._lost: dict[RunKey, int] = {}  # attempts lost with their machine this session, per run
        self._errored: set[RunKey] = set()  # infrastructure errors this session: retried on the next command
        self._agents: dict[str, Agent] = {}
        self._judges = [make_judge(spec) for spec in config.judges]
        self._best: dict[str, BestSubtest | None] = {}
        self._stall: tuple[str, int] = ("", 0)
        self._paused_at: float | None = None  # monotonic start of a pause this process waited through

    # -- signals -----------------------------------------------------------------------------
    def request_stop(self) -> None:
        """First SIGINT/SIGTERM: stop launching and kill every agent's process group (remote runs are
        cancelled by the main loop, which sees the stop at its next turn)."""
        self._stop.set()
        self.registry.kill_all()

    def make_executor(self, base_commit: str) -> Executor:
        if self._executor_factory is not None:
            return self._executor_factory(self, base_commit)
        return LocalExecutor(self.config.parallel, self.registry)

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            try:
                self._sandbox = choose_sandbox(self.config.sandbox)
            except SandboxUnavailable as exc:
                self.store.close(ExperimentStatus.FAILED)
                return Outcome(EXIT_ERROR, str(exc), [str(exc)])
            self.progress.message(self._sandbox.note)
            self._reap_earlier_sessions()
            return self._run()
        finally:
            self._record_launches()
            if self.executor is not None:
                self.executor.shutdown()
            self.registry.shutdown()

    def _reap_earlier_sessions(self) -> None:
        """Before any run is (re)launched: nothing an earlier coordinator of this experiment started
        may still run (we hold the experiment lock, so any such process is an orphan), and no private
        space (which may hold a copied credential) is left behind."""
        killed = kill_marked(experiment_prefix(self.layout.root))
        if killed:
            self.store.record_reap(killed, "left running by an earlier coordinator of this experiment")
            self.progress.message(f"killed {len(killed)} process(es) an earlier coordinator left running")
        clear_private_spaces(self.layout.private_root)

    def _record_launches(self) -> None:
        if not self.store.closed:
            self.store.record_launches(self.registry.drain_started(), self.registry.session)

    def _run(self) -> Outcome:
        self._expire_rate_limit()
        persisted = self._gate_until()
        if persisted is not None:  # a pause recorded by an earlier process: apply it without a request
            self.progress.message(f"Still rate limited until {local_reset_time(persisted)} "
                                  f"({self.store.checkpoint.rate_limit_source}); no request spent.")
        else:
            self.store.set_status(ExperimentStatus.RUNNING)
            limited = self._preflight()
            if limited is not None:
                self.store.record_rate_limit(limited)
        if self.budget_usd is not None:
            self._open_budget()
        base_commit = prepare_base_repo(self.test, self.layout.repo)
        forget_stale_worktrees(self.layout.repo)  # left by a crash; no run is being set up yet
        try:
            self.executor = self.make_executor(base_commit)
        except ExecutorUnavailable as exc:
            if self._stop.is_set():  # stopped while the executor was starting (e.g. joining a cluster)
                return self._finish_interrupted()
            self.store.close(ExperimentStatus.FAILED)
            return Outcome(EXIT_ERROR, str(exc), [str(exc)])
        self.progress.start(self.config.test_id, self._totals(), self._done_by_tier(),
                            self._passed(), self._cost_so_far())
        stall_error: str | None = None
        while True:
            if self._stop.is_set():
                return self._finish_interrupted()
            self._expire_rate_limit()  # the one place a passed reset is cleared (journal + view)
            gate = self._gate_until()
            if gate is not None and not self._in_flight:
                exit_outcome = self._wait_or_exit(gate)
                if exit_outcome is not None:
                    return exit_outcome
                continue
            if gate is None and stall_error is None:
                self._launch_ready(base_commit)
            if not self._in_flight:
                break
            completions = self.executor.poll(_POLL_SECONDS)
            self._record_launches()
            for started in self.executor.take_started():  # before their completions, if any
                self.progress.run_started(str(started))
            if not completions:
                self.progress.tick()
                continue
            for completion in completions:
                stall_error = self._absorb(completion) or stall_error
        return self._finish(stall_error)

    def _launch_ready(self, base_commit: str) -> None:
        assert self.executor is not None
        # Runs queued beyond --parallel are prepared, not started: at most --parallel agents run.
        # Not under a budget: a launch journals a commitment that a killed process's successor
        # counts as spent, and a run that was only prepared has spent nothing.
        ahead = self.executor.queue_ahead if self.budget_usd is None else 0
        while len(self._in_flight) < self.config.parallel + ahead:
            key = self.queues.next_ready()
            if key is None:
                return
            if self.budget_usd is not None and not self._within_budget(key):
                self.queues.give_back(key)  # re-examined on the next pass
                return
            subtest = self._resolved_subtest(key.tier, key.subtest)
            request = RunRequest(key=key, layout=self.layout, config=self.config, test=self.test,
                                 subtest=subtest, base_commit=base_commit,
                                 agent=self._agent(subtest.agent or self.config.agent),
                                 judges=self._judges, registry=self.registry, sandbox=self._sandbox)
            self._in_flight[key] = time.monotonic()
            if not self.executor.reports_starts:
                self.progress.run_started(str(key))
            self.executor.submit(request)

    def _absorb(self, completion: Completion) -> str | None:
        """Record one finished attempt. Returns an error message when the stall breaker trips."""
        key, result = completion.key, completion.result
        self._in_flight.pop(key, None)
        status = result.status
        self.progress.run_finished(str(key), status, result.judge_score, result.cost_usd,
                                   result.duration_seconds)
        if completion.lost:
            self._absorb_lost(key, result)
            return None
        spend = self._spend(key, result)
        if status.is_result:
            if key not in self.store.completed:
                self.store.record_run(key, status, cost_usd=spend)
                self.queues.completed(key)
                self._costs.add(key.tier, key.subtest, result.cost_usd)
                self._show_budget()
            self._stall = ("", 0)
            self._maybe_finish_tier(key.tier)
        elif status is RunStatus.RATE_LIMITED:
            self.store.record_attempt(key, status, cost_usd=spend)
            self.queues.give_back(key)  # runs again once the gate opens
            info, gate = result.rate_limit, self._gate_until()
            if info is not None and (gate is None or info.reset_at > gate):
                self.store.record_rate_limit(info)
                self.progress.paused(info.reset_at, info.source, info.message)
            for withdrawn in reversed(self._withdraw_queued()):  # each goes to the front: keep their order
                self.queues.give_back(withdrawn)
        elif status is RunStatus.INTERRUPTED:
            self.queues.give_back(key)
        elif status is RunStatus.ERROR:
            self.store.record_attempt(key, status, cost_usd=spend)
            self._errored.add(key)
            self.queues.set_aside([key])  # retried by the next command, not in a loop
            signature = (result.error or "unknown error").splitlines()[0][:200]
            count = self._stall[1] + 1 if self._stall[0] == signature else 1
            self._stall = (signature, count)
            self.progress.message(f"{key}: infrastructure error: {signature}", error=True)
            if count >= self.config.stall_limit:
                self._stop_launching()
                return (f"stopped after {count} consecutive runs failed with the same infrastructure error: "
                        f"{signature}")
        return None

    def _absorb_lost(self, key: RunKey, result: RunResult) -> None:
        """An attempt lost with its machine (the executor archived it, naming the node): an
        infrastructure-error attempt, and the run is relaunched up to LOST_ATTEMPT_RELAUNCHES times."""
        self.store.record_attempt(key, RunStatus.ERROR)
        lost = self._lost[key] = self._lost.get(key, 0) + 1
        if lost <= LOST_ATTEMPT_RELAUNCHES:
            self.queues.give_back(key)
            self.progress.message(f"{key}: {result.error}; relaunching ({lost}/{LOST_ATTEMPT_RELAUNCHES})",
                                  error=True)
        else:
            self.queues.set_aside([key])
            self.progress.message(f"{key}: {result.error}; lost {lost} times, left pending", error=True)

    def _stop_launching(self) -> None:
        self.queues.set_aside_all()  # nothing new launches in this session
        self._withdraw_queued()  # submitted but not started: not run either

    def _withdraw_queued(self) -> list[RunKey]:
        """Withdraw the submitted runs that have not started (in submission order). They are no
        longer in flight, and not attempts: nothing of them is recorded."""
        withdrawn = self.executor.cancel_queued() if self.executor is not None else []
        for key in withdrawn:
            self._in_flight.pop(key, None)
        return withdrawn

    # -- rate-limit gate ---------------------------------------------------------------------
    def _gate_until(self) -> datetime | None:
        """The recorded reset still ahead, or None: a pure query (it writes and shows nothing)."""
        until = self.store.checkpoint.rate_limit_until
        if until is None or until <= datetime.now(timezone.utc):
            return None
        return until

    def _expire_rate_limit(self) -> None:
        """Once per loop: a recorded reset that has passed is cleared in the store (with the time
        this process waited for it) and the view resumes."""
        until = self.store.checkpoint.rate_limit_until
        if until is None or until > datetime.now(timezone.utc):
            return
        paused = time.monotonic() - self._paused_at if self._paused_at is not None else 0.0
        self._paused_at = None
        self.store.clear_rate_limit(paused)
        self.progress.resumed()

    def _preflight(self) -> RateLimitInfo | None:
        if not self.config.preflight or self.store.checkpoint.rate_limit_until:
            return None
        if self.queues.all_complete():
            return None
        agent = self._agent(self.config.agent)
        try:
            return agent.preflight(dict(self.config.agent_options), self.config.model, self.registry,
                                   self.layout.root, default_wait=self.config.default_rate_limit_wait_seconds)
        except Exception as exc:  # a probe that errors is not a rate limit
            self.progress.message(f"pre-flight probe failed ({exc}); continuing")
            return None

    def _wait_or_exit(self, until: datetime) -> Outcome | None:
        cp = self.store.checkpoint
        if not self._should_wait(until):
            self.store.close(ExperimentStatus.PAUSED_RATE_LIMIT)
            message = (f"Rate limited until {local_reset_time(until)} ({cp.rate_limit_source}): "
                       f"{cp.rate_limit_message or 'rate limit'}. Run the same command again after that; "
                       "it resumes where it left off.")
            return Outcome(EXIT_RATE_LIMITED, message)
        self.progress.paused(until, cp.rate_limit_source or "agent", cp.rate_limit_message or "")
        if self._paused_at is None:
            self._paused_at = time.monotonic()
        while datetime.now(timezone.utc) < until:
            if self._stop.is_set():
                return self._finish_interrupted()
            self.progress.tick()
            time.sleep(_POLL_SECONDS)
        return None

    def _should_wait(self, until: datetime) -> bool:
        return should_wait(self.config.on_rate_limit, self.config.max_wait_seconds, until,
                           default_wait=self.config.default_rate_limit_wait_seconds)

    # -- tiers -------------------------------------------------------------------------------
    def _tier_keys(self, tier: str) -> list[RunKey]:
        return [k for k in self.plan if k.tier == tier]

    def _tier_complete(self, tier: str) -> bool:
        return self.queues.tier_complete(tier)

    def _maybe_finish_tier(self, tier: str) -> None:
        if self.queues.tier_complete(tier):
            self._best.pop(tier, None)
            self._best_of(tier, recompute=True)

    def _best_of(self, tier: str, recompute: bool = False) -> BestSubtest | None:
        if tier in self._best and not recompute:
            return self._best[tier]
        best = None if recompute else self.store.best_subtest(tier)
        if best is None:
            best = choose_best(tier, self._scores(tier))
            if best is not None:
                self.store.save_best_subtest(best)
        self._best[tier] = best
        return best

    def _scores(self, tier: str) -> list[SubtestScores]:
        by_subtest: dict[str, list[RunResult]] = {}
        for result in self.store.run_results(self._tier_keys(tier)):
            by_subtest.setdefault(result.subtest, []).append(result)
        return [SubtestScores(sub, [r.judge_score for r in runs if r.judge_score is not None],
                              sum(r.total_tokens for r in runs) / max(len(runs), 1))
                for sub, runs in by_subtest.items()]

    def _resolved_subtest(self, tier: str, subtest_id: str) -> Subtest:
        subtest = self.test.subtest(tier, subtest_id)
        base = None
        if subtest.extends_previous and (previous := previous_tier(tier, self.tiers)) is not None:
            best = self._best_of(previous)
            if best is not None:  # cumulative: the best subtest as it ran, itself resolved
                base = self._resolved_subtest(previous, best.subtest)
        if not subtest.inherit_best_from and base is None:
            return subtest
        inherited = []
        for source_tier in subtest.inherit_best_from:
            best = self._best_of(source_tier)
            if best is not None:
                inherited.append(self.test.subtest(source_tier, best.subtest))
        return merge_inherited(subtest, inherited, base)

    def _agent(self, name: str) -> Agent:
        if name not in self._agents:
            self._agents[name] = get_agent(name)
        return self._agents[name]

    # -- accounting and endings --------------------------------------------------------------
    def _totals(self) -> dict[str, int]:
        return self.queues.totals()

    def _done_by_tier(self) -> dict[str, int]:
        return self.queues.done_by_tier()

    def _passed(self) -> int:
        return sum(1 for s in self.store.completed.values() if s is RunStatus.PASSED)

    def _cost_so_far(self) -> float:
        """Cost of runs completed by earlier sessions, read from their results (bounded work)."""
        keys = list(self.store.completed)
        if len(keys) > 5000:  # the live view is not worth a long start-up on huge experiments
            return 0.0
        return sum(result.cost_usd for result in self.store.run_results(keys))

    def _finish_interrupted(self) -> Outcome:
        self.registry.kill_all()
        self._withdraw_queued()
        if self.executor is not None:
            self.executor.interrupt()
        deadline = time.monotonic() + 15
        while self._in_flight and time.monotonic() < deadline and self.executor is not None:
            for completion in self.executor.poll(_POLL_SECONDS):
                key, result = completion.key, completion.result
                self._in_flight.pop(key, None)
                if completion.lost:
                    continue
                spend = self._spend(key, result)
                if result.status.is_result and key not in self.store.completed:  # finished before the signal
                    self.store.record_run(key, result.status, cost_usd=spend)
                elif spend is not None:
                    self.store.record_spend(key, spend)
        self.store.close(ExperimentStatus.INTERRUPTED)
        return Outcome(EXIT_INTERRUPTED, "Interrupted. Run the same command again; it resumes where it left off.")

    def _finish(self, stall_error: str | None) -> Outcome:
        self._write_stats()
        pending = [k for k in self.plan if k not in self.store.completed] if self.queues.remaining() else []
        if stall_error:
            self.store.close(ExperimentStatus.FAILED)
            return Outcome(EXIT_ERROR, stall_error, [stall_error])
        if pending and self._budget_stop is not None and not self._errored_pending(pending):
            self.store.close(ExperimentStatus.BUDGET_REACHED)
            stop = self._budget_stop
            message = budgeting.budget_message(self.budget_usd or 0.0, stop.spent, stop.forecast,
                                               len(pending), stop.committed)
            return Outcome(EXIT_ERROR, message, [message])
        if pending:
            self.store.close(ExperimentStatus.FAILED)
            message = (f"{len(pending)} run(s) hit infrastructure errors and stay pending (see their "
                       "attempts/ directories). Fix the cause and run the same command again.")
            return Outcome(EXIT_ERROR, message)
        self.store.close(ExperimentStatus.COMPLETED)
        return Outcome(EXIT_OK, "Experiment complete.")

    # -- budget ------------------------------------------------------------------------------
    def _open_budget(self) -> None:
        """Record the budget in force, settle commitments a dead process left open, and recompute
        what was spent from the files: every run_result.json of a result or an attempt."""
        self.store.set_budget(self.budget_usd, str(self.budget_scope) if self.budget_scope else None)
        cp = self.store.checkpoint
        for key_text, expected in list(cp.budget_commitments.items()):
            tier, subtest, run = key_text.split("/")
            key = RunKey(tier=tier, subtest=subtest, run=int(run))
            # A result adopted from its file is counted from the file; any other run died with
            # the process after its agent may have spent money: count its forecast.
            self.store.settle_commitment(key_text, 0.0 if key in self.store.completed else expected)
        spent = self.store.checkpoint.unrecorded_spend_usd
        for result in self.store.run_results(list(self.store.completed)):
            spent += result.cost_usd
            self._costs.add(result.tier, result.subtest, result.cost_usd)
        for key in self.plan:
            spent += sum(attempt.cost_usd for attempt in self.store.attempts(key))
        self._spent = spent
        self.store.set_spent(spent)
        self._show_budget()

    def _within_budget(self, key: RunKey) -> bool:
        """Commit and return True when `key` may launch; otherwise remember why not."""
        if self.budget_scope is None:
            return self._decide(key)
        with budget_lock(self.budget_scope):  # one decision at a time across the batch
            self._others = sibling_spend(self.budget_scope, self.layout.root)
            return self._decide(key)

    def _decide(self, key: RunKey) -> bool:
        expected = self._costs.expected(key.tier, key.subtest)
        if expected is None and self._others[2]:  # nothing of our own yet: the batch's mean run
            expected = self._others[0] / self._others[2]
        decision = budgeting.decide(self.budget_usd or 0.0, self._others[0] + self._spent,
                                    self._others[1] + sum(self._committed.values()), expected,
                                    len(self._in_flight))
        if not decision.launch:
            if expected is not None or not self._in_flight:
                self._budget_stop = decision
            return False
        self._committed[key] = expected or 0.0
        self.store.commit_budget(key, expected or 0.0)
        return True

    def _spend(self, key: RunKey, result: RunResult) -> float | None:
        """The cost to record with a finished attempt (None without a budget)."""
        self._committed.pop(key, None)
        if self.budget_usd is None:
            return None
        self._spent += result.cost_usd
        return result.cost_usd

    def _errored_pending(self, pending: list[RunKey]) -> bool:
        return any(k in self._errored for k in pending)

    def budget_view(self) -> dict[str, float] | None:
        """Spent, committed and the forecast of the whole plan (None without a budget)."""
        if self.budget_usd is None:
            return None
        pending = [k for k in self.plan if k not in self.store.completed and k not in self._in_flight]
        committed = sum(self._committed.values())
        rest = sum(self._costs.expected(k.tier, k.subtest) or 0.0 for k in pending)
        spent = self._others[0] + self._spent
        committed += self._others[1]
        return {"budget": self.budget_usd, "spent": spent, "committed": committed,
                "forecast": spent + committed + rest}

    def _show_budget(self) -> None:
        view = self.budget_view()
        if view is not None:
            self.progress.budget(view["budget"], view["spent"], view["committed"], view["forecast"])

    def _write_stats(self) -> None:
        from tierbench.judges.limiter import limiter_history

        cp = self.store.checkpoint
        self.store.save_stats({
            "judge_limiter_history": limiter_history(),
            "pause_count": cp.pause_count,
            "total_pause_seconds": cp.total_pause_seconds,
            "rate_limited_attempts": cp.rate_limited_attempts,
            "error_attempts": cp.error_attempts,
        })
