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

from tierbench import resources
from tierbench.errors import TierbenchError
from tierbench.judgespec import validate_judge_spec
from tierbench.models import ALL_TIERS, DEFAULT_PASS_THRESHOLD, ConfigSize
from tierbench.resources import McpServer, ResourceError


class SpecError(TierbenchError):
    """A test directory is invalid. `str()` names the file, the field and the fix."""

    def __init__(self, path: Path | str, field: str | None, problem: str, fix: str, line: int | None = None):
        self.path, self.field, self.problem, self.line = str(path), field, problem, line
        where = self.path + (f":{line}" if line else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {problem}", f"Fix: {fix}")


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
    criteria_file: str | None = None  # prose criteria given to LLM judges with the rubric


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
    # The resource library subtests compose from (blocks/, skills/, agents/, mcp/). Relative to the
    # test directory and may lie outside it (a library shared by many tests); default `resources/`.
    resources_dir: str | None = None
    judges: list[str] = Field(default_factory=lambda: ["command"])
    network: Literal["shared", "none"] | None = None  # none: loopback only (under the sandbox)

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
    enabled: list[str] | None = None  # None (or "all"): every built-in tool
    disabled: list[str] = Field(default_factory=list)

    @field_validator("enabled", mode="before")
    @classmethod
    def _all_tools(cls, value: Any) -> Any:
        return None if value == "all" else value


class McpServerRef(_Strict):
    name: str


class ClaudeMdRef(_Strict):
    blocks: list[str] = Field(default_factory=list)


class SkillsRef(_Strict):
    categories: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)


class AgentsRef(_Strict):
    levels: list[int | str] = Field(default_factory=list)  # 2 or "L2": the directory agents/L2
    names: list[str] = Field(default_factory=list)  # with or without .md


class ResourcesSpec(_Strict):
    """What a subtest takes from the resource library; composed into files and servers at load."""

    claude_md: ClaudeMdRef | None = None
    skills: SkillsRef | None = None
    agents: AgentsRef | None = None
    mcp_servers: list[McpServerRef] = Field(default_factory=list)


class Subtest(_Strict):
    """One agent configuration inside a tier. Files are committed before the agent starts."""

    id: str = ""  # two-digit prefix of the file name; filled in by the loader
    tier: str = ""  # filled in by the loader
    name: str = ""  # rest of the file name unless given
    description: str = ""
    files: dict[str, str] = Field(default_factory=dict)
    executable: list[str] = Field(default_factory=list)  # files to mark executable (library scripts)
    agent_args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    tools: ToolsSpec | None = None
    system_prompt_mode: Literal["none", "default"] | None = None
    agent: str | None = None
    model: str | None = None
    max_turns: int | None = Field(default=None, gt=0)
    resources: ResourcesSpec | None = None  # composed into files/mcp_servers by the loader
    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)  # inline, plus composed ones
    extends_previous: bool = False  # start from the resolved best subtest of the tier before
    network: Literal["shared", "none"] | None = None  # overrides the test's `network`
    inherit_best_from: list[str] = Field(default_factory=list)
    inherited_from: list[str] = Field(default_factory=list)  # "T0/01" etc, set when merged
    extends_from: list[str] = Field(default_factory=list)  # chain of extends_previous, nearest first
    # Where each piece of the resolved configuration came from: "files/CLAUDE.md", "env/X",
    # "mcp_servers/NAME", "tools", "agent_args", scalars -> "T0/02 resources.claude_md: ...".
    provenance: dict[str, str] = Field(default_factory=dict)

    def config_size(self) -> ConfigSize:
        claude_md = self.files.get("CLAUDE.md", "")
        skills = {Path(p).parts[2] for p in self.files if Path(p).parts[:2] == (".claude", "skills")
                  and len(Path(p).parts) > 3}
        agents = [p for p in self.files if Path(p).parent == Path(".claude/agents") and p.endswith(".md")]
        return ConfigSize(claude_md_lines=len(claude_md.splitlines()), skills=len(skills), agents=len(agents),
                          mcp_servers=len(self.mcp_servers), files=len(self.files))

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
    # When this holds, an LLM judge answers "N/A" and the item leaves the denominator.
    na_condition: str | None = None


class RubricCategory(_Strict):
    name: str
    weight: float = Field(default=1.0, gt=0)
    # checklist: each item is met or not (score 0 or 1); subjective: a judgment of degree (0..1)
    scoring_type: Literal["checklist", "subjective"] = "subjective"
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
    criteria: str = ""  # validation.criteria_file, for LLM judges

    def subtest(self, tier: str, subtest_id: str) -> Subtest:
        for sub in self.subtests.get(tier, []):
            if sub.id == subtest_id:
                return sub
        raise KeyError(f"{tier}/{subtest_id}")

    @property
    def solution_patch(self) -> Path:
        return self.test_dir / "expected" / "solution.patch"


# ---------------------------------------------------------------------------------------------
# Loading


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse YAML, keeping the node tree so validation errors can point at a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(path, None, "file not found", "create it or fix the path that refers to it") from None
    except OSError as exc:
        raise SpecError(path, None, f"cannot read file ({exc.strerror})", "check its permissions") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(path, None, f"malformed YAML ({problem})", "fix the YAML syntax", line) from None


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the YAML node at a pydantic error location."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node, line = match, match.start_mark.line + 1
    return line


_FIXES = {
    "missing": "add the field",
    "extra_forbidden": "remove it, or check its spelling against the README's test format",
}


def _validate(model: type[BaseModel], path: Path, data: Any, node: yaml.Node | None, **extra: Any) -> Any:
    if not isinstance(data, dict):
        raise SpecError(path, None, "expected a mapping of fields at the top level", "see the README's test format")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(p for p in error["loc"] if p != "__root__")
        field = ".".join(str(p) for p in loc) or None
        problem = error["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(error["type"], "correct the value")
        raise SpecError(path, field, problem, fix, _line_of(node, loc)) from None


def _inside(test_dir: Path, rel: str, path: Path, field: str, must_exist: bool = True) -> Path:
    """Resolve a path from a test file; it must stay inside the test directory."""
    target = (test_dir / rel).resolve()
    if not target.is_relative_to(test_dir.resolve()):
        raise SpecError(path, field, f"path {rel!r} escapes the test directory",
                        "use a path inside the test directory")
    if must_exist and not target.exists():
        raise SpecError(path, field, f"{rel!r} does not exist", "create it or fix the path")
    return target


_SUBTEST_FILE = re.compile(r"^(\d{2})-([A-Za-z0-9][A-Za-z0-9._-]*)\.ya?ml$")


_RESERVED = ("provenance", "inherited_from", "extends_from")


def _load_subtests(tiers_root: Path, tiers: list[str], composer: Any = None) -> dict[str, list[Subtest]]:
    """`composer(subtest, file) -> Subtest` composes `resources:` (see tierbench.resources)."""
    subtests: dict[str, list[Subtest]] = {}
    for tier in tiers:
        tier_dir = tiers_root / tier
        if not tier_dir.is_dir():
            raise SpecError(tier_dir, None, f"tier {tier} is listed in test.yaml but has no directory",
                            f"create {tier_dir} with subtest files like 00-baseline.yaml, or drop {tier} from 'tiers'")
        found: dict[str, Subtest] = {}
        for file in sorted(tier_dir.iterdir()):
            if file.suffix not in (".yaml", ".yml"):
                continue
            match = _SUBTEST_FILE.match(file.name)
            if not match:
                raise SpecError(file, None, "a subtest file name must start with a two-digit id",
                                "rename it like 00-empty.yaml")
            sub_id = match[1]
            if sub_id in found:
                raise SpecError(file, "id", f"duplicate subtest id {sub_id} in {tier}",
                                f"give it an unused two-digit prefix (also used by {found[sub_id].name})")
            data, node = _read_yaml(file)
            data = {} if data is None else data
            reserved = [k for k in _RESERVED if isinstance(data, dict) and k in data]
            if reserved:
                raise SpecError(file, reserved[0], "is set by tierbench when it resolves a subtest",
                                "remove it", _line_of(node, (reserved[0],)))
            sub = _validate(Subtest, file, data, node, id=sub_id, tier=tier)
            if not sub.name:
                sub = sub.model_copy(update={"name": match[2]})
            if composer is not None:
                sub = composer(sub, file)
            unknown = [t for t in sub.inherit_best_from if t not in ALL_TIERS]
            if unknown:
                raise SpecError(file, "inherit_best_from", f"unknown tier(s) {unknown}",
                                f"use tiers from {list(ALL_TIERS)}")
            later = [t for t in sub.inherit_best_from if t >= tier]
            if later:
                raise SpecError(file, "inherit_best_from", f"{tier} cannot inherit from {later}",
                                "inherit only from lower tiers")
            found[sub_id] = sub
        if not found:
            raise SpecError(tier_dir, None, f"tier {tier} has no subtests", "add a file like 00-baseline.yaml")
        subtests[tier] = list(found.values())
    for tier, subs in subtests.items():
        for sub in subs:
            missing = [t for t in sub.inherit_best_from if t not in subtests]
            if missing:
                raise SpecError(tiers_root / tier, "inherit_best_from",
                                f"subtest {sub.id} inherits from {missing}, which the test does not run",
                                "add those tiers to test.yaml 'tiers'")
    return subtests


def load_test(test_dir: Path) -> LoadedTest:
    """Load and validate a whole test directory before anything runs. Raises SpecError."""
    test_dir = Path(test_dir).resolve()
    test_file = test_dir / "test.yaml"
    if not test_dir.is_dir():
        raise SpecError(test_dir, None, "not a directory", "pass a test directory containing test.yaml")
    data, node = _read_yaml(test_file)
    spec: TestSpec = _validate(TestSpec, test_file, data, node)
    prompt_path = _inside(test_dir, spec.task.prompt_file, test_file, "task.prompt_file")
    rubric_path = _inside(test_dir, spec.validation.rubric_file, test_file, "validation.rubric_file")
    criteria = ""
    if spec.validation.criteria_file:
        criteria = _inside(test_dir, spec.validation.criteria_file, test_file,
                           "validation.criteria_file").read_text(encoding="utf-8")
    if spec.source.path:
        source = _inside(test_dir, spec.source.path, test_file, "source.path")
        if not source.is_dir():
            raise SpecError(test_file, "source.path", f"{spec.source.path!r} is not a directory",
                            "point it at the folder holding the task's code")
    elif spec.source.repo and "://" not in spec.source.repo and not spec.source.repo.startswith("git@"):
        _inside(test_dir, spec.source.repo, test_file, "source.repo")
    tiers_root = test_dir / "tiers"
    if spec.subtests_dir:
        tiers_root = _inside(test_dir, spec.subtests_dir, test_file, "subtests_dir")
    composer = _composer(test_dir, spec, test_file, node)
    rubric_data, rubric_node = _read_yaml(rubric_path)
    rubric = _validate(Rubric, rubric_path, rubric_data, rubric_node)
    for index, judge in enumerate(spec.judges):
        try:
            validate_judge_spec(judge)
        except ValueError as exc:
            raise SpecError(test_file, f"judges.{index}", str(exc), "use command, anthropic:<model> or "
                            "openai:<model>[@base_url]", _line_of(node, ("judges", index))) from None
    return LoadedTest(test_dir=test_dir, spec=spec, prompt=prompt_path.read_text(encoding="utf-8"),
                      rubric=rubric, subtests=_load_subtests(tiers_root, spec.tiers, composer),
                      criteria=criteria)


def _composer(test_dir: Path, spec: TestSpec, test_file: Path, node: yaml.Node | None) -> Any:
    """How `resources:` is composed: from an experiment snapshot's recorded composition when there is
    one, else from the library (`resources_dir`, default `resources/` when it exists)."""
    snapshot = test_dir / resources.COMPOSED_FILE
    if snapshot.exists():
        try:
            return _as_spec_errors(resources.Composed(snapshot).apply)
        except ResourceError as exc:
            raise SpecError(exc.path, exc.field, exc.problem, exc.fix) from None
    library = None
    if spec.resources_dir:
        root = (test_dir / spec.resources_dir).resolve()
        if not root.is_dir():
            raise SpecError(test_file, "resources_dir", f"{spec.resources_dir!r} is not a directory",
                            "create the resource library there or fix the path",
                            _line_of(node, ("resources_dir",)))
        library = resources.Library(root)
    elif (test_dir / "resources").is_dir():
        library = resources.Library(test_dir / "resources")
    return _as_spec_errors(lambda sub, file: resources.compose(sub, library, file))


def _as_spec_errors(compose: Any) -> Any:
    def wrapped(sub: Subtest, file: Path) -> Subtest:
        try:
            return compose(sub, file)
        except ResourceError as exc:
            raise SpecError(exc.path, exc.field, exc.problem, exc.fix) from None
    return wrapped
