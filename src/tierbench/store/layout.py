"""Every path inside an experiment directory, in one place.

    <exp>/config/experiment.json   the frozen ExperimentConfig
    <exp>/config/test/             snapshot of the test directory (resume needs nothing else)
    <exp>/checkpoint.json          snapshot of state (atomic)
    <exp>/journal.jsonl            append-only event log (fsync per event)
    <exp>/.lock                    flock'd by the one coordinator
    <exp>/repo/                    base clone; run workspaces are worktrees of it
    <exp>/T0/00/run_01/            run_result.json, agent/, judge/judge_01/, attempts/01/, workspace/
    <exp>/T0/best_subtest.json
    <exp>/stats.json               judge concurrency history, pause accounting
    <exp>/report.*, runs.csv ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierbench.models import RunKey

RUN_RESULT_NAME = "run_result.json"
WORKSPACE_NAME = "workspace"


def run_dir_name(run: int) -> str:
    """`run_01`: two digits at least, so directory listings sort naturally up to 99 runs."""
    return f"run_{run:02d}"


def backup_path(path: Path, stamp: str, tag: str = "bak") -> Path:
    """`<path>.<tag>-<stamp>`, or `...-<stamp>-2`, `-3` ...: never an existing file, so a backup can
    never overwrite an earlier one (two repairs in the same second)."""
    candidate = path.with_name(f"{path.name}.{tag}-{stamp}")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.name}.{tag}-{stamp}-{counter}")
    return candidate


@dataclass(frozen=True)
class ExperimentLayout:
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "experiment.json"

    @property
    def test_snapshot(self) -> Path:
        return self.config_dir / "test"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.json"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def stats_file(self) -> Path:
        return self.root / "stats.json"

    def tier_dir(self, tier: str) -> Path:
        return self.root / tier

    def best_subtest_file(self, tier: str) -> Path:
        return self.tier_dir(tier) / "best_subtest.json"

    def run_dir(self, key: RunKey) -> Path:
        return self.root / key.tier / key.subtest / run_dir_name(key.run)

    def run_result(self, key: RunKey) -> Path:
        return self.run_dir(key) / RUN_RESULT_NAME

    def run_config(self, key: RunKey) -> Path:
        """The resolved configuration of the run's subtest, with provenance (written by run/attempt)."""
        return self.run_dir(key) / "config.json"

    def agent_dir(self, key: RunKey) -> Path:
        return self.run_dir(key) / "agent"

    def judge_dir(self, key: RunKey, index: int) -> Path:
        return self.run_dir(key) / "judge" / f"judge_{index:02d}"

    def attempts_dir(self, key: RunKey) -> Path:
        return self.run_dir(key) / "attempts"

    @property
    def private_root(self) -> Path:
        """Per-attempt private spaces (agent home, /tmp); removed after each run and at start."""
        return self.root / ".private"

    def private_dir(self, key: RunKey) -> Path:
        return self.private_root / f"{key.tier}-{key.subtest}-{run_dir_name(key.run)}"

    def workspace(self, key: RunKey) -> Path:
        return self.run_dir(key) / WORKSPACE_NAME

    def run_result_str(self, tier: str, subtest: str, run: int) -> str:
        """`run_result(key)` as a plain string, built without pathlib or a RunKey: resume stats this
        for every recorded run (100k of them must take well under a second)."""
        return f"{self.root}/{tier}/{subtest}/{run_dir_name(run)}/{RUN_RESULT_NAME}"

    def run_result_glob(self) -> str:
        """Relative glob matching every run_result.json (used by repair/check/report)."""
        return "T[0-6]/[0-9][0-9]/run_*/run_result.json"

    def key_from_result_path(self, path: Path) -> RunKey:
        rel = Path(path).relative_to(self.root).parent
        return RunKey.parse(str(rel))
