"""Test directories: the models of test.yaml, subtests and rubrics, and loading them with errors
that name the file, the field and the fix.

A test directory looks like:

    test.yaml            id, name, language, source, task, validation, tiers, [subtests_dir, judges]
    prompt.md            the task prompt (task.prompt_file)
    rubric.yaml          categories -> weight + items {id, check, points, [command]}; grading
    tiers/T0/00-empty.yaml ...   one subtest per file; the id is the two-digit prefix
    expected/solution.patch      optional; the demo agent applies it
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tierbench.models import ALL_TIERS, DEFAULT_PASS_THRESHOLD


class SpecError(Exception):
    """A test directory is invalid. `str()` names the file, the field and the fix."""

    def __init__(self, path: Path | str, field: str | None, problem: str, fix: str, line: int | None = None):
        self.path, self.field, self.problem, self.fix, self.line = str(path), field, problem, fix, line
        where = self.path + (f":{line}" if line else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {problem}. Fix: {fix}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    repo: str | None = None  # git URL, or a path relative to the test dir
    hash: str | None = None  # commit to check out; required with `repo`
    path: str | None = None  # a plain folder relative to the test dir, turned into a git repo

    @model_validator(mode="after")
    def _one_kind(self) -> "SourceSpec":
        if bool(self.repo) == bool(self.path):
            raise ValueError("give exactly one of 'repo' (with 'hash') or 'path'")
        if self.repo and not self.hash:
            raise ValueError("'repo' needs 'hash', the commit to check out")
        return self


class TaskSpec(_Strict):
    prompt_file: str
    timeout_seconds: int = Field(default=600, gt=0)


class ValidationSpec(_Strict):
    rubric_file: str


class TestSpec(_Strict):
    id: str
    name: str
    language: str
    description: str = ""
    source: SourceSpec
    task: TaskSpec
    validation: ValidationSpec
    tiers: list[str]
    subtests_dir: str | None = None
    judges: list[str] = Field(default_factory=lambda: ["command"])

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("use letters, digits, '.', '_' or '-' (it names a directory)")
        return value

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in ALL_TIERS]
        if unknown:
            raise ValueError(f"unknown tier(s) {unknown}; known tiers are {list(ALL_TIERS)}")
        if len(set(value)) != len(value):
            raise ValueError("a tier is listed twice")
        if not value:
            raise ValueError("list at least one tier")
        return sorted(value)


class ToolsSpec(_Strict):
    enabled: list[str] | None = None
    disabled: list[str] = Field(default_factory=list)


class Subtest(_Strict):
    """One agent configuration inside a tier. Files are committed before the agent starts."""

    id: str = ""  # two-digit prefix of the file name; filled in by the loader
    tier: str = ""  # filled in by the loader
    name: str = ""  # rest of the file name unless given
    description: str = ""
    files: dict[str, str] = Field(default_factory=dict)
    agent_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    tools: ToolsSpec | None = None
    system_prompt_mode: Literal["none", "default"] | None = None
    agent: str | None = None
    model: str | None = None
    max_turns: int | None = Field(default=None, gt=0)
    inherit_best_from: list[str] = Field(default_factory=list)
    inherited_from: list[str] = Field(default_factory=list)  # "T0/01" etc, set when merged

    @field_validator("files")
    @classmethod
    def _relative_files(cls, value: dict[str, str]) -> dict[str, str]:
        for rel in value:
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or (parts and parts[0] == ".git"):
                raise ValueError(f"file path {rel!r} must stay inside the workspace (relative, no '..', not .git)")
        return value


class RubricItem(_Strict):
    id: str
    check: str
    points: float = Field(default=1.0, gt=0)
    command: str | None = None  # objective check run in the workspace; passes on exit 0
    timeout_seconds: int = Field(default=300, gt=0)


class RubricCategory(_Strict):
    name: str
    weight: float = Field(default=1.0, gt=0)
    items: list[RubricItem]


class Grading(_Strict):
    pass_threshold: float = Field(default=DEFAULT_PASS_THRESHOLD, ge=0, le=1)


class Rubric(_Strict):
    categories: list[RubricCategory]
    grading: Grading = Field(default_factory=Grading)

    @field_validator("categories", mode="before")
    @classmethod
    def _mapping_to_list(cls, value: Any) -> Any:
        # Accept `categories: {correctness: {weight, items}}` as well as a list with `name`.
        if isinstance(value, dict):
            return [{"name": name, **(body or {})} for name, body in value.items()]
        return value

    @model_validator(mode="after")
    def _unique_items(self) -> "Rubric":
        seen: set[str] = set()
        for category in self.categories:
            for item in category.items:
                if item.id in seen:
                    raise ValueError(f"rubric item id {item.id!r} is used twice")
                seen.add(item.id)
        if not seen:
            raise ValueError("the rubric has no items")
        return self

    def items(self) -> list[RubricItem]:
        return [item for category in self.categories for item in category.items]


class LoadedTest(BaseModel):
    """A validated test directory, with every referenced file read."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    test_dir: Path
    spec: TestSpec
    prompt: str
    rubric: Rubric
    subtests: dict[str, list[Subtest]]  # tier -> subtests sorted by id

    def subtest(self, tier: str, subtest_id: str) -> Subtest:
        for sub in self.subtests.get(tier, []):
            if sub.id == subtest_id:
                return sub
        raise KeyError(f"{tier}/{subtest_id}")

    @property
    def solution_patch(self) -> Path:
        return self.test_dir / "expected" / "solution.patch"
