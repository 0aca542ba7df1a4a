"""The judge protocol. A judge grades one run's workspace against the rubric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from tierbench.process import ProcessRegistry
from tierbench.models import JudgeResult, RateLimitInfo, RunKey
from tierbench.spec import Rubric


class CommandCheckResult(BaseModel):
    """The outcome of one rubric item's `command:`, run once per run, shared by all judges."""

    item_id: str
    command: str
    exit_code: int | None
    passed: bool
    timed_out: bool = False
    duration_seconds: float = 0.0
    output_tail: str = ""  # last few KB of combined output, for LLM judges and humans


class JudgeRateLimited(Exception):
    """A judge API stayed rate limited beyond the client's own short retries: close the gate."""

    def __init__(self, info: RateLimitInfo):
        super().__init__(info.message)
        self.info = info


@dataclass
class JudgeContext:
    key: RunKey
    workspace: Path
    judge_dir: Path  # run_dir/judge/judge_NN: judgment.json is written by the caller
    judge_id: str  # "judge_01"
    task_prompt: str
    rubric: Rubric
    diff: str
    command_results: list[CommandCheckResult]
    registry: ProcessRegistry
    timeout_seconds: float = 300.0
    criteria: str = ""  # the test's criteria file, if any


class Judge(Protocol):
    @property
    def spec(self) -> str:
        """The judge spec it was made from (e.g. `anthropic:<model>`)."""
        ...

    def judge(self, ctx: JudgeContext) -> JudgeResult:
        """Grade the run. Unusable output gives `is_valid=False` (never a score of 0).
        Raises JudgeRateLimited when the provider's limit outlasts short retries."""
        ...
