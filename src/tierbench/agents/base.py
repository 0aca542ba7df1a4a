"""The agent adapter protocol. (Claude-Code-style JSON results are parsed in jsonresult.py.)

`--agent-opt` options belong to the experiment's agent; a subtest that names another agent runs
it with that agent's defaults. An adapter drives one agent once in a prepared workspace and reports an `AgentOutcome`. It writes
only inside `ctx.agent_dir` (prompt.md, stdout.log, stderr.log, command.json) and the workspace.

What every adapter does for a hermetic, observable run:
  * start from `ctx.base_env` (an allow-list of the host's, HOME/TMPDIR/XDG_* already in the run's
    private home) and point the agent's own config dir into `ctx.home` (Claude Code:
    CLAUDE_CONFIG_DIR); write there only what the subtest specifies; report copied credential
    files in `AgentOutcome.carried_files` (names only);
  * start every process with `run_process(..., registry=ctx.registry, sandbox=ctx.sandbox)`;
  * keep the agent's raw event stream as `agent/transcript.jsonl`, register a reader for its format
    in tierbench.transcript, and set `AgentOutcome.usage = count_usage(entries)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tierbench.process import ProcessRegistry
from tierbench.sandbox import SandboxPolicy
from tierbench.models import AgentOutcome, RateLimitInfo, RunKey
from tierbench.options import default_of
from tierbench.spec import Subtest

DEFAULT_RATE_LIMIT_WAIT: float = default_of("default_rate_limit_wait_seconds")


@dataclass
class AgentContext:
    key: RunKey
    workspace: Path  # the run's git worktree; the agent's cwd
    agent_dir: Path  # run_dir/agent: prompt.md, stdout.log, stderr.log, command.json
    prompt_file: Path  # agent_dir/prompt.md, already written
    subtest: Subtest  # resolved: inherit_best_from already merged
    test_dir: Path  # the experiment's snapshot of the test directory (expected/, rubric, ...)
    model: str | None
    timeout_seconds: float
    thinking: str  # None | Low | High | UltraThink
    options: dict[str, str]  # --agent-opt KEY=VALUE
    seed: int
    registry: ProcessRegistry
    default_rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT
    test_id: str = ""
    # The run's private home/config directory, created empty for each attempt. An adapter writes the
    # agent's configuration there and points HOME (and the agent's own config variables) at it, so
    # nothing of the researcher's own set-up reaches the agent. None only in unit tests.
    home: Path | None = None
    # The environment the agent starts from: an allow-list of the host's (run/private.py) with HOME
    # and TMPDIR pointing into the run's private space. Adapters add their own variables on top.
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # The sandbox every process of this run goes through: pass it on as
    # `run_process(..., sandbox=ctx.sandbox)`. None (unit tests) runs unsandboxed.
    sandbox: SandboxPolicy | None = None
    tmp: Path | None = None  # the run's private /tmp on the host (mounted at /tmp in the sandbox)


class Agent(Protocol):
    name: str

    def validate_options(self, options: dict[str, str]) -> None:
        """Raise ValueError naming the bad option and the accepted ones."""
        ...

    def run(self, ctx: AgentContext) -> AgentOutcome:
        """Drive the agent once. Never raises for agent failures: report them in the outcome."""
        ...

    def preflight(self, options: dict[str, str], model: str | None, registry: ProcessRegistry,
                  work_dir: Path, *, default_wait: float = DEFAULT_RATE_LIMIT_WAIT) -> RateLimitInfo | None:
        """A cheap probe that spends (almost) nothing; a rate limit it reveals, or None.
        A probe that times out or errors is not a rate limit. `default_wait` (--rate-limit-wait)
        is the pause for a limit that names no reset time."""
        ...
