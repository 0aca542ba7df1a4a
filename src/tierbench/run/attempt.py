"""One run: worktree -> subtest files -> agent -> diff -> checks -> judges -> run_result.json.

Runs in a worker thread and writes only inside its own run directory. Its last write is the atomic
`run_result.json`, which only ever holds a result (passed/failed). An attempt that hit a rate limit
or an infrastructure error is moved under `attempts/NN/` for audit and the run stays pending; a run
cut short by an interrupt leaves no result at all.

Each attempt gets a private space (run/private.py: the agent's own home and /tmp, removed when the
attempt ends) and a sandbox policy (sandbox.py) that the agent and the command checks run under:
writable only the worktree (with its git metadata), the agent home and the private /tmp.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tierbench.agents.base import Agent, AgentContext
from tierbench.config import ExperimentConfig
from tierbench.process import ProcessRegistry
from tierbench.run.workspace import capture_diff, create_worktree, remove_worktree, subtest_commit
from tierbench.judges.base import Judge, JudgeContext, JudgeRateLimited
from tierbench.judges.command import run_command_checks
from tierbench.judges.consensus import consensus
from tierbench.models import AgentOutcome, Isolation, JudgeResult, RunKey, RunResult, RunStatus
from tierbench.run.private import PrivateSpace, agent_env, create_private_space, remove_private_space
from tierbench.sandbox import NO_SANDBOX, SandboxChoice, SandboxPolicy, install_paths
from tierbench.spec import LoadedTest, Subtest
from tierbench.store.atomic import atomic_write_json, atomic_write_text
from tierbench.store.layout import ExperimentLayout


@dataclass
class RunRequest:
    key: RunKey
    layout: ExperimentLayout
    config: ExperimentConfig
    test: LoadedTest  # the experiment's snapshot of the test
    subtest: Subtest  # resolved (inheritance merged)
    base_commit: str
    agent: Agent
    judges: list[Judge]
    registry: ProcessRegistry
    sandbox: SandboxChoice | None = None  # what --sandbox resolved to at start; None: no sandbox
    isolation: Isolation | None = None  # set by execute_run once the attempt is confined


@dataclass
class _Confinement:
    """The attempt's private space, sandbox policy and base environment."""

    space: PrivateSpace
    policy: SandboxPolicy
    env: dict[str, str]
    isolation: Isolation


@dataclass
class PreparedRun:
    """A run whose workspace, private space and prompt are ready and whose agent has not started.

    The local executor prepares queued runs while other runs' agents work, so a slot that frees
    starts its next agent at once. `failure` is what went wrong while preparing; the attempt then
    fails as an infrastructure error when it is run (finish_run), exactly as if it had failed there.
    """

    req: RunRequest
    workspace: Path
    private: Path
    setup_seconds: float = 0.0
    base: str = ""
    confinement: _Confinement | None = None
    agent_dir: Path | None = None
    prompt_file: Path | None = None
    failure: Exception | None = None


def execute_run(req: RunRequest) -> RunResult:
    """Perform one attempt of a run and return its result (never raises for agent/judge trouble)."""
    return finish_run(prepare_run(req))


def prepare_run(req: RunRequest) -> PreparedRun:
    """The attempt up to its agent: the subtest's worktree, the private space and sandbox policy, the
    resolved config and the prompt. Never raises; a failure is kept for finish_run to record."""
    layout, key = req.layout, req.key
    clock = time.monotonic()
    _clear_partial_attempt(layout.run_dir(key))
    prepared = PreparedRun(req, layout.workspace(key), layout.private_dir(key))
    try:
        atomic_write_json(layout.run_config(key), resolved_config_record(req.subtest), durable=False)
        prepared.base = subtest_commit(layout.repo, req.base_commit, req.subtest.files,
                                       f"{key.tier}/{key.subtest}", req.subtest.executable)
        create_worktree(layout.repo, prepared.workspace, prepared.base)
        prepared.confinement = _confine(req, prepared.workspace, create_private_space(prepared.private))
        req.isolation = prepared.confinement.isolation
        prepared.agent_dir = layout.agent_dir(key)
        prepared.agent_dir.mkdir(parents=True, exist_ok=True)
        prepared.prompt_file = prepared.agent_dir / "prompt.md"
        atomic_write_text(prepared.prompt_file, req.test.prompt, durable=False)
    except Exception as exc:  # infrastructure trouble (git, disk): recorded when the attempt is run
        prepared.failure = exc
    prepared.setup_seconds = time.monotonic() - clock
    return prepared


def discard_prepared(prepared: PreparedRun) -> None:
    """Undo a prepared run that will not start (withdrawn by a rate limit, a stop): no workspace,
    private space or partial file of it stays, as if it had never been handed out."""
    req = prepared.req
    remove_private_space(prepared.private)
    if prepared.workspace.exists():
        _remove_workspace(req.layout.repo, prepared.workspace)
    run_dir = req.layout.run_dir(req.key)
    _clear_partial_attempt(run_dir)
    try:
        run_dir.rmdir()  # only when nothing else (earlier attempts) is in it
    except OSError:
        pass


def finish_run(prepared: PreparedRun) -> RunResult:
    """Run a prepared attempt: agent -> diff -> checks -> judges -> run_result.json. The attempt's
    clock covers its preparation and this, not the time it waited prepared for a free slot."""
    req = prepared.req
    layout, key, workspace = req.layout, req.key, prepared.workspace
    clock = time.monotonic() - prepared.setup_seconds
    started_at = datetime.now(timezone.utc) - timedelta(seconds=prepared.setup_seconds)
    try:
        if prepared.failure is not None:
            raise prepared.failure
        confinement, agent_dir, prompt_file = prepared.confinement, prepared.agent_dir, prepared.prompt_file
        assert confinement is not None and agent_dir is not None and prompt_file is not None
        base = prepared.base
        outcome = req.agent.run(_agent_context(req, workspace, agent_dir, prompt_file, confinement))
        confinement.isolation.carried_files = list(outcome.carried_files)
        if req.registry.closed:
            return _result(req, RunStatus.INTERRUPTED, outcome, started_at, clock, error="interrupted")
        if outcome.rate_limit is not None:
            return _archive_attempt(req, _result(req, RunStatus.RATE_LIMITED, outcome, started_at, clock,
                                                 error=outcome.rate_limit.message))
        if outcome.infra_error:
            return _archive_attempt(req, _result(req, RunStatus.ERROR, outcome, started_at, clock,
                                                 error=outcome.infra_error))
        diff = capture_diff(workspace, base)
        atomic_write_text(agent_dir / "diff.patch", diff, durable=False)
        judge_clock = time.monotonic()
        try:
            judgments = _judge(req, workspace, diff, confinement)
        except JudgeRateLimited as limited:
            result = _result(req, RunStatus.RATE_LIMITED, outcome, started_at, clock, error=limited.info.message)
            result.rate_limit = limited.info
            return _archive_attempt(req, result)
        if req.registry.closed:
            return _result(req, RunStatus.INTERRUPTED, outcome, started_at, clock, error="interrupted")
        result = _graded_result(req, outcome, judgments, started_at, clock, time.monotonic() - judge_clock)
        if result.status is RunStatus.ERROR:
            return _archive_attempt(req, result)
        if not req.config.keep_workspaces:  # before the result: a recorded run never leaves a workspace
            _remove_workspace(layout.repo, workspace)
        atomic_write_json(layout.run_result(key), result)
        return result
    except Exception as exc:  # infrastructure trouble (git, disk): an error attempt, never a result
        if req.registry.closed:
            return _result(req, RunStatus.INTERRUPTED, AgentOutcome(), started_at, clock, error="interrupted")
        result = _result(req, RunStatus.ERROR, AgentOutcome(), started_at, clock,
                         error=f"{type(exc).__name__}: {exc}")
        try:
            return _archive_attempt(req, result)
        except Exception:
            return result
    finally:
        remove_private_space(prepared.private)  # a carried credential never outlives the attempt
        if not req.config.keep_workspaces and workspace.exists():
            _remove_workspace(layout.repo, workspace)


def _remove_workspace(repo: Path, workspace: Path) -> None:
    try:
        remove_worktree(repo, workspace)
    except Exception:
        pass  # `check` reports stale worktrees; a failed cleanup must not lose the result


def resolved_config_record(sub: Subtest) -> dict:
    """The run's config.json: the fully resolved subtest and where each piece came from. File
    contents are summarised (sha256, lines); the contents themselves are in the test snapshot."""
    record = sub.model_dump(mode="json", exclude={"files", "provenance", "resources"})
    record["files"] = {rel: {"sha256": hashlib.sha256(text.encode()).hexdigest(), "lines": len(text.splitlines()),
                             "from": sub.provenance.get(f"files/{rel}", "")}
                       for rel, text in sorted(sub.files.items())}
    record["resources"] = sub.resources.model_dump(mode="json", exclude_defaults=True) if sub.resources else None
    record["provenance"] = dict(sorted(sub.provenance.items()))
    record["config_size"] = sub.config_size().model_dump()
    return record


def _confine(req: RunRequest, workspace: Path, space: PrivateSpace) -> _Confinement:
    choice = req.sandbox
    network = req.subtest.network or req.test.spec.network or "shared"
    env, carried = agent_env(dict(os.environ), space)
    # Variables the subtest's MCP servers name (`${NAME}`) are carried by name; their values reach
    # only the agent's environment, never a file (the server config keeps the names).
    for name in sorted({ref for server in req.subtest.mcp_servers.values() for ref in server.env_refs()}):
        if name in os.environ and name not in env:
            env[name] = os.environ[name]
            carried.append(name)
    if choice is not None and choice.kind == "bwrap":
        writable = [workspace, space.home, *_git_dirs(workspace)]
        policy = SandboxPolicy(kind="bwrap", bwrap=choice.bwrap, writable=tuple(writable),
                               readable=(req.layout.root.resolve(), *install_paths()), private_tmp=space.tmp, network=network)
        env["TMPDIR"] = "/tmp"
    else:
        policy = NO_SANDBOX
    note = choice.note if choice is not None else "sandbox off"
    if network == "none" and not policy.active:
        note += "; network: none needs the sandbox, so the network was shared"
    isolation = Isolation(sandbox=policy.kind, network=network if policy.active else "shared", note=note,
                          private_home=True, carried_env=carried)
    return _Confinement(space, policy, env, isolation)


def _git_dirs(workspace: Path) -> list[Path]:
    """The worktree's own git metadata and the shared object store: `git add`/`commit` by the agent
    need them. Other worktrees' metadata, refs and config stay read-only."""
    try:
        pointer = (workspace / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return []
    if not pointer.startswith("gitdir:"):
        return []
    admin = Path(pointer.split(":", 1)[1].strip())
    common = admin.parent.parent  # repo/.git/worktrees/<name> -> repo/.git
    return [p for p in (admin, common / "objects") if p.is_dir()]


def _agent_context(req: RunRequest, workspace: Path, agent_dir: Path, prompt_file: Path,
                   confinement: _Confinement) -> AgentContext:
    return AgentContext(
        key=req.key, workspace=workspace, agent_dir=agent_dir, prompt_file=prompt_file,
        subtest=req.subtest, test_dir=req.test.test_dir, model=req.subtest.model or req.config.model,
        timeout_seconds=float(req.config.timeout_seconds or req.test.spec.task.timeout_seconds),
        thinking=req.config.thinking, seed=req.config.seed,
        # --agent-opt values belong to the experiment's agent; another agent runs with its defaults
        options=dict(req.config.agent_options) if req.agent.name == req.config.agent else {},
        registry=req.registry, default_rate_limit_wait=req.config.default_rate_limit_wait_seconds,
        test_id=req.config.test_id, home=confinement.space.home, base_env=dict(confinement.env),
        sandbox=confinement.policy, tmp=confinement.space.tmp,
    )


def _judge(req: RunRequest, workspace: Path, diff: str, confinement: _Confinement) -> list[JudgeResult]:
    run_dir = req.layout.run_dir(req.key)
    checks = run_command_checks(req.test.rubric, workspace, run_dir / "judge" / "checks", req.registry,
                                env=confinement.env, sandbox=confinement.policy)
    atomic_write_json(run_dir / "judge" / "checks.json", [c.model_dump(mode="json") for c in checks], durable=False)
    judgments = []
    for index, judge in enumerate(req.judges, start=1):
        judge_dir = req.layout.judge_dir(req.key, index)
        judge_dir.mkdir(parents=True, exist_ok=True)
        ctx = JudgeContext(key=req.key, workspace=workspace, judge_dir=judge_dir, judge_id=f"judge_{index:02d}",
                           task_prompt=req.test.prompt, rubric=req.test.rubric, diff=diff,
                           command_results=checks, registry=req.registry, criteria=req.test.criteria)
        started = time.monotonic()
        try:
            judgment = judge.judge(ctx)
        except JudgeRateLimited:
            raise
        except Exception as exc:  # a judge bug must not sink the run: it is simply not valid
            judgment = JudgeResult(judge_id=ctx.judge_id, spec=judge.spec, is_valid=False,
                                   error=f"{type(exc).__name__}: {exc}")
        if not judgment.duration_seconds:
            judgment.duration_seconds = time.monotonic() - started
        atomic_write_json(judge_dir / "judgment.json", judgment, durable=False)
        judgments.append(judgment)
    return judgments


def _graded_result(req: RunRequest, outcome: AgentOutcome, judgments: list[JudgeResult],
                   started_at: datetime, clock: float, judge_seconds: float) -> RunResult:
    verdict = consensus(judgments, req.test.rubric.grading.pass_threshold)
    if verdict.score is None:
        errors = "; ".join(f"{j.judge_id} ({j.spec}): {j.error or 'invalid'}" for j in judgments)
        return _result(req, RunStatus.ERROR, outcome, started_at, clock, judgments=judgments,
                       error=f"no valid judgment: {errors}", judge_seconds=judge_seconds)
    status = RunStatus.PASSED if verdict.passed else RunStatus.FAILED
    result = _result(req, status, outcome, started_at, clock, judgments=judgments, judge_seconds=judge_seconds)
    result.judge_score, result.judge_passed = verdict.score, verdict.passed
    result.judge_grade, result.judge_reasoning = verdict.grade, verdict.reasoning
    return result


def _result(req: RunRequest, status: RunStatus, outcome: AgentOutcome, started_at: datetime, clock: float,
            *, judgments: list[JudgeResult] | None = None, error: str | None = None,
            judge_seconds: float = 0.0) -> RunResult:
    judgments = judgments or []
    judge_cost = sum(j.cost_usd for j in judgments)
    return RunResult(
        tier=req.key.tier, subtest=req.key.subtest, run_number=req.key.run, status=status,
        exit_code=outcome.exit_code, timed_out=outcome.timed_out, token_stats=outcome.token_stats,
        total_tokens=outcome.token_stats.total_tokens, cost_usd=outcome.cost_usd + judge_cost,
        agent_cost_usd=outcome.cost_usd, agent_cost_source=outcome.cost_source,
        usage=outcome.usage, judge_cost_usd=judge_cost, num_turns=outcome.num_turns,
        duration_seconds=time.monotonic() - clock, agent_duration_seconds=outcome.duration_seconds,
        judge_duration_seconds=judge_seconds, judges=judgments, error=error, rate_limit=outcome.rate_limit,
        agent=req.subtest.agent or req.config.agent, model=req.subtest.model or req.config.model,
        config_size=req.subtest.config_size(), isolation=req.isolation, started_at=started_at,
        finished_at=datetime.now(timezone.utc),
    )


def _clear_partial_attempt(run_dir: Path) -> None:
    """A retry starts clean; earlier attempts under attempts/ are kept for audit."""
    if not run_dir.exists():
        return
    for child in run_dir.iterdir():
        if child.name in ("attempts", "workspace"):
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _archive_attempt(req: RunRequest, result: RunResult) -> RunResult:
    """Keep a non-result attempt under attempts/NN/ (agent logs, judgments, its run_result.json)."""
    run_dir = req.layout.run_dir(req.key)
    attempts = req.layout.attempts_dir(req.key)
    attempts.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.name) for p in attempts.iterdir() if p.name.isdigit()), default=0)
    target = attempts / f"{number:02d}"
    target.mkdir()
    for child in list(run_dir.iterdir()):
        if child.name not in ("attempts", "workspace"):
            shutil.move(str(child), target / child.name)
    atomic_write_json(target / "run_result.json", result)
    return result


clear_partial_attempt = _clear_partial_attempt  # also used when a run executed elsewhere is installed
