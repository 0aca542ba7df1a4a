"""checkpoint.json: a snapshot of the experiment state, rewritten atomically now and then.

The snapshot is only a shortcut for loading: the state is the snapshot plus the journal events after
`journal_offset` (see journal.py). Losing or corrupting checkpoint.json therefore loses nothing;
StateStore rebuilds it from the whole journal and the run_result.json files.

Field names are part of the on-disk contract (DESIGN.md). `completed_runs` is nested as
{tier: {subtest: {"<run>": "passed"|"failed"}}} with the run number unpadded ("1", "12").
`journal_seq` (the seq of the last journal event folded into the snapshot) is an addition to the
contract fields: it lets a load skip events already in the snapshot even when `journal_offset` no
longer points into the same journal file (journal replaced or truncated by hand).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierbench.models import ExperimentStatus
from tierbench.store.atomic import atomic_write_bytes

CHECKPOINT_VERSION = 1

CHECKPOINT_STATUSES: tuple[str, ...] = tuple(status.value for status in ExperimentStatus)
ResultStatus = Literal["passed", "failed"]
CompletedRuns = dict[str, dict[str, dict[str, ResultStatus]]]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Checkpoint(BaseModel):
    # Unknown fields are ignored rather than rejected so an older tierbench can still resume from a
    # snapshot written by a newer one; the journal and run_result.json files remain the truth.
    model_config = ConfigDict(extra="ignore")

    version: int = CHECKPOINT_VERSION
    experiment_id: str
    experiment_dir: str  # absolute path at the time of writing (informational; layouts use their own root)
    config_hash: str
    status: ExperimentStatus = ExperimentStatus.RUNNING
    completed_runs: CompletedRuns = Field(default_factory=dict)
    started_at: datetime
    last_updated_at: datetime
    rate_limit_until: datetime | None = None
    rate_limit_source: str | None = None
    rate_limit_message: str | None = None
    pause_count: int = 0
    total_pause_seconds: float = 0.0
    rate_limited_attempts: int = 0
    error_attempts: int = 0
    # --budget-usd (execute/budget.py). Costs of finished attempts are in their run_result.json
    # files; what only the journal knows is the money committed to runs in flight and the money
    # lost with runs that died with their process (settled at their forecast).
    budget_usd: float | None = None
    budget_history: list[dict[str, Any]] = Field(default_factory=list)  # {at, usd, previous}
    budget_scope: str | None = None  # a batch's results dir when the budget covers all its tests
    spent_usd: float = 0.0  # finished attempts plus settled commitments, while a budget is in force
    budget_commitments: dict[str, float] = Field(default_factory=dict)  # "T0/00/1" -> expected USD
    unrecorded_spend_usd: float = 0.0  # settled commitments of runs that died with their process
    pid: int | None = None  # the coordinator's PID while it runs; None after a clean close
    journal_offset: int = 0  # journal.jsonl size when this snapshot was taken
    journal_seq: int = 0  # seq of the last journal event included in this snapshot

    @classmethod
    def empty(cls, *, experiment_id: str, experiment_dir: Path | str, config_hash: str,
              started_at: datetime | None = None) -> "Checkpoint":
        now = utc_now()
        return cls(experiment_id=experiment_id, experiment_dir=str(experiment_dir), config_hash=config_hash,
                   started_at=started_at or now, last_updated_at=now)

    def completed_count(self) -> int:
        return sum(len(runs) for subtests in self.completed_runs.values() for runs in subtests.values())

    def iter_completed(self) -> Iterator[tuple[str, str, int, str]]:
        """(tier, subtest, run, status) for every recorded result."""
        for tier, subtests in self.completed_runs.items():
            for subtest, runs in subtests.items():
                for run, status in runs.items():
                    yield tier, subtest, int(run), status

    def set_completed(self, tier: str, subtest: str, run: int, status: str) -> None:
        self.completed_runs.setdefault(tier, {}).setdefault(subtest, {})[str(run)] = status  # type: ignore[assignment]

    def get_completed(self, tier: str, subtest: str, run: int) -> str | None:
        return self.completed_runs.get(tier, {}).get(subtest, {}).get(str(run))

    def drop_completed(self, tier: str, subtest: str, run: int) -> None:
        subtests = self.completed_runs.get(tier)
        if subtests is None or subtest not in subtests:
            return
        subtests[subtest].pop(str(run), None)
        # Empty containers would make counts_by_tier and reports show tiers with nothing in them.
        if not subtests[subtest]:
            del subtests[subtest]
        if not subtests:
            del self.completed_runs[tier]

    def counts_by_tier(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for tier in sorted(self.completed_runs):
            tally = {"passed": 0, "failed": 0}
            for runs in self.completed_runs[tier].values():
                for status in runs.values():
                    tally[status] += 1
            counts[tier] = tally
        return counts


class CheckpointCorrupt(Exception):
    """checkpoint.json exists but cannot be used (truncated, not JSON, wrong fields or version)."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: corrupt checkpoint ({reason})")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and validate checkpoint.json. FileNotFoundError if it does not exist."""
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise CheckpointCorrupt(path, "empty file")
    try:
        checkpoint = Checkpoint.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise CheckpointCorrupt(path, f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None
    if checkpoint.version != CHECKPOINT_VERSION:
        raise CheckpointCorrupt(path, f"version {checkpoint.version}; this tierbench reads version "
                                      f"{CHECKPOINT_VERSION}")
    return checkpoint


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomic write: a crash leaves the old snapshot or the new one, never a mix. Raises OSError."""
    atomic_write_bytes(Path(path), checkpoint.model_dump_json(indent=1).encode() + b"\n")
