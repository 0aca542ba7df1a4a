"""Records that cross module boundaries and land on disk.

Every field name here is part of the on-disk contract described in DESIGN.md: `run_result.json`,
`judgment.json` and the rate-limit records are these models serialised with `model_dump_json`.
Keeping them in one module means the writer (run), the reader (store, report, batch) and the
checker (repair) can never disagree about a field.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TIER_NAMES: dict[str, str] = {
    "T0": "Prompts",
    "T1": "Skills",
    "T2": "Tooling",
    "T3": "Delegation",
    "T4": "Hierarchy",
    "T5": "Hybrid",
    "T6": "Super",
}
ALL_TIERS: tuple[str, ...] = tuple(TIER_NAMES)

# A tier may start only when every tier it depends on is complete.
TIER_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "T5": ("T0", "T1", "T2", "T3", "T4"),
    "T6": ("T5",),
}

DEFAULT_PASS_THRESHOLD = 0.60

_RUN_KEY_RE = re.compile(r"^(T[0-6])/(\d{2})/run_(\d{2,})$")


class RunKey(BaseModel):
    """One planned run: tier, subtest id and 1-based run number. `str(key)` is its relative path."""

    model_config = ConfigDict(frozen=True)

    tier: str
    subtest: str
    run: int

    def __str__(self) -> str:
        return f"{self.tier}/{self.subtest}/run_{self.run:02d}"

    @property
    def path(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, text: str) -> "RunKey":
        match = _RUN_KEY_RE.match(text.strip().strip("/"))
        if not match:
            raise ValueError(f"not a run key (expected like T0/00/run_01): {text!r}")
        return cls(tier=match[1], subtest=match[2], run=int(match[3]))

    def sort_key(self) -> tuple[str, str, int]:
        return (self.tier, self.subtest, self.run)


class RunStatus(str, Enum):
    """How a run ended. Only PASSED and FAILED are results; the others leave the run pending."""

    PASSED = "passed"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"  # the attempt hit a rate limit or quota: never a result
    ERROR = "error"  # infrastructure error (binary missing, auth, no valid judge): never a result
    INTERRUPTED = "interrupted"  # killed by SIGINT/SIGTERM: never a result

    @property
    def is_result(self) -> bool:
        return self in (RunStatus.PASSED, RunStatus.FAILED)


class ExperimentStatus(str, Enum):
    """Where an experiment stands (checkpoint.json `status`)."""

    RUNNING = "running"
    PAUSED_RATE_LIMIT = "paused_rate_limit"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"
    BUDGET_REACHED = "budget_reached"  # --budget-usd stopped it; a rerun with more continues


def grade_for(score: float) -> str:
    """Letter grade for a 0..1 score, per the scale in DESIGN.md."""
    if score >= 1.0:
        return "S"
    for letter, floor in (("A", 0.8), ("B", 0.6), ("C", 0.4), ("D", 0.2)):
        if score >= floor:
            return letter
    return "F"


class TokenStats(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    # Reasoning tokens as the agent reports them. OpenAI-style APIs count them inside output_tokens,
    # so they are shown on their own and never added to the total a second time.
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens

    def __add__(self, other: "TokenStats") -> "TokenStats":
        return TokenStats(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


CostSource = Literal["agent", "price_table", "unknown"]


class ToolUsage(BaseModel):
    """What the agent used during a run, counted from its transcript: the ablation's manipulation check
    ("T1 offered skill X; 7 of 10 runs invoked it"). Names are the agent's own tool names."""

    tool_calls: dict[str, int] = Field(default_factory=dict)  # every tool call by tool name
    skills: dict[str, int] = Field(default_factory=dict)  # skills invoked, by skill name
    subagents: dict[str, int] = Field(default_factory=dict)  # sub-agents started, by agent name
    mcp_tools: dict[str, int] = Field(default_factory=dict)  # MCP tool calls, by server/tool name
    turns: int | None = None


class ConfigSize(BaseModel):
    """How big a run's resolved configuration was, so outcomes can be related to it."""

    claude_md_lines: int = 0
    skills: int = 0
    agents: int = 0
    mcp_servers: int = 0
    files: int = 0


class Isolation(BaseModel):
    """How a run was kept apart from the researcher's machine. Names only, never values."""

    sandbox: str = "none"  # "bwrap" | "none"
    network: str = "shared"  # "shared" | "none" (loopback only; needs the sandbox)
    note: str = ""  # why the sandbox is what it is, e.g. "sandbox off: bubblewrap ... (--sandbox auto)"
    private_home: bool = False  # the agent ran with a fresh home/config directory of its own
    carried_env: list[str] = Field(default_factory=list)  # host environment variables passed through
    carried_files: list[str] = Field(default_factory=list)  # files copied into the agent home


class RateLimitKind(str, Enum):
    TRANSIENT = "transient"  # 429 / overloaded: a short wait
    QUOTA = "quota"  # usage limit, 5-hour or weekly quota: a long wait


class RateLimitInfo(BaseModel):
    """A detected rate limit: what kind, until when, who said so, and the evidence."""

    kind: RateLimitKind
    source: Literal["agent", "judge", "preflight"]
    reset_at: datetime  # timezone-aware UTC
    reset_known: bool = True  # False when reset_at is the configured default fallback
    message: str = ""


class AgentOutcome(BaseModel):
    """What an agent adapter reports after driving the agent once in a workspace."""

    exit_code: int | None = None  # None when the process could not be started
    timed_out: bool = False
    duration_seconds: float = 0.0
    token_stats: TokenStats = Field(default_factory=TokenStats)
    cost_usd: float = 0.0
    cost_source: CostSource = "unknown"
    num_turns: int | None = None
    usage: ToolUsage = Field(default_factory=ToolUsage)
    is_error: bool = False
    api_error_status: int | None = None
    result_text: str = ""
    rate_limit: RateLimitInfo | None = None
    infra_error: str | None = None  # set when the agent could not do its job for a non-task reason
    command: list[str] = Field(default_factory=list)
    carried_files: list[str] = Field(default_factory=list)  # credentials etc. copied into the agent home


class ItemScore(BaseModel):
    id: str
    score: float | None  # 0..1 fraction of the item's points earned; None when not applicable (na)
    passed: bool | None = None
    reasoning: str = ""
    na: bool = False  # the item's na_condition held: it leaves the score's denominator


class JudgeResult(BaseModel):
    """One judge's verdict on one run; saved as judge/judge_NN/judgment.json."""

    judge_id: str  # "judge_01"
    spec: str  # "command", "anthropic:claude-sonnet-4-5", "openai:gpt-4o@http://..."
    is_valid: bool
    score: float | None = None
    passed: bool | None = None
    grade: str | None = None
    reasoning: str = ""
    items: list[ItemScore] = Field(default_factory=list)
    error: str | None = None
    duration_seconds: float = 0.0
    token_stats: TokenStats = Field(default_factory=TokenStats)
    cost_usd: float = 0.0


class RunResult(BaseModel):
    """The last thing a run writes, atomically: T*/NN/run_NN/run_result.json."""

    tier: str
    subtest: str
    run_number: int
    status: RunStatus
    exit_code: int | None = None
    timed_out: bool = False
    token_stats: TokenStats = Field(default_factory=TokenStats)
    total_tokens: int = 0
    cost_usd: float = 0.0  # agent cost plus judge cost
    agent_cost_usd: float = 0.0
    agent_cost_source: CostSource = "unknown"
    judge_cost_usd: float = 0.0
    num_turns: int | None = None
    usage: ToolUsage = Field(default_factory=ToolUsage)
    duration_seconds: float = 0.0
    agent_duration_seconds: float = 0.0
    judge_duration_seconds: float = 0.0
    judge_score: float | None = None
    judge_passed: bool | None = None
    judge_grade: str | None = None
    judge_reasoning: str = ""
    judges: list[JudgeResult] = Field(default_factory=list)
    error: str | None = None
    rate_limit: RateLimitInfo | None = None
    agent: str = ""
    model: str | None = None
    config_size: ConfigSize | None = None  # of the resolved subtest; details in the run's config.json
    isolation: Isolation | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def key(self) -> RunKey:
        return RunKey(tier=self.tier, subtest=self.subtest, run=self.run_number)


def model_to_jsonable(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
