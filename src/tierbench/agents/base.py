"""The agent adapter protocol. (Claude-Code-style JSON results are parsed in jsonresult.py.)

`--agent-opt` options belong to the experiment's agent; a subtest that names another agent runs
it with that agent's defaults. An adapter drives one agent once in a prepared workspace and reports an `AgentOutcome`. It writes
only inside `ctx.agent_dir` (prompt.md, stdout.log, stderr.log, command.json) and the workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tierbench.process import ProcessRegistry
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
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


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
