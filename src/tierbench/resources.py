"""The resource library and composing subtests from it.

A library is a directory (the test's `resources_dir`, default `resources/` in the test):

    blocks/B01-project-overview.md ...        CLAUDE.md blocks; a subtest names them B01, B02, ...
    skills/<category>/<skill>/SKILL.md ...    a skill is a directory (with its scripts)
    agents/<level>/<name>.md ...              sub-agents; level directories like L0 .. L5
    mcp/<name>.json                           one MCP server (Claude Code's mcpServers entry format)

A subtest's `resources:` is composed at load time into ordinary files and servers:

    CLAUDE.md                     the blocks in the order listed, joined by a blank line
    .claude/skills/<skill>/...    every skill of each category (sorted), then the named skills
    .claude/agents/<name>.md      every agent of each level (sorted), then the named agents
    mcp_servers[<name>]           from mcp/<name>.json

Composition is deterministic and records where each piece came from (`Subtest.provenance`). The
experiment snapshot stores the composed result (`config/test/.composed.json`, see
`write_composed`), and a snapshot is loaded from it, so a resumed experiment never depends on the
library changing later.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierbench.store.atomic import atomic_write_json

if TYPE_CHECKING:  # spec imports this module (for McpServer); composition only reads Subtest fields
    from tierbench.spec import Subtest

class ResourceError(Exception):
    """A subtest's resources cannot be composed; the loader turns it into a SpecError (file:line)."""

    def __init__(self, path: Path | str, field: str | None, problem: str, fix: str):
        super().__init__(problem)
        self.path, self.field, self.problem, self.fix = path, field, problem, fix


# Env names whose value must come from the environment by name, never literally from a file.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


class McpServer(BaseModel):
    """One MCP server, in Claude Code's `mcpServers` entry format: a command (stdio) or a URL.

    Values may name environment variables as `${NAME}`; they are expanded by the agent when it
    starts the server, so a secret never reaches a file. A literal value under a secret-looking
    name (TOKEN, KEY, SECRET, PASSWORD, ...) is refused.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["stdio", "http", "sse"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _command_or_url(self) -> "McpServer":
        if bool(self.command) == bool(self.url):
            raise ValueError("give exactly one of 'command' (a stdio server) or 'url' (an http/sse server)")
        if self.command and self.type not in (None, "stdio"):
            raise ValueError(f"type {self.type!r} needs 'url', not 'command'")
        if self.url and self.type == "stdio":
            raise ValueError("type 'stdio' needs 'command', not 'url'")
        for where, values in (("env", self.env), ("headers", self.headers)):
            for name, value in values.items():
                if _SECRET_NAME.search(name) and not _ENV_REF.search(value):
                    raise ValueError(f"{where}.{name} holds a literal value; a secret must come from the "
                                     f"environment by name, like \"${{{name}}}\"")
        return self

    def env_refs(self) -> list[str]:
        """Names of the environment variables this server's definition refers to."""
        texts = [self.command or "", self.url or "", *self.args, *self.env.values(), *self.headers.values()]
        return sorted({m for text in texts for m in _ENV_REF.findall(text)})


COMPOSED_FILE = ".composed.json"
COMPOSED_VERSION = 1
BLOCK_SEPARATOR = "\n\n"


class Library:
    """A resource library on disk, indexed once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blocks: dict[str, Path] = {}
        for path in sorted((self.root / "blocks").glob("*.md")):
            block_id = path.stem.split("-", 1)[0]
            self.blocks.setdefault(block_id, path)
            self.blocks.setdefault(path.stem, path)
        self.skills: dict[str, dict[str, Path]] = {
            cat.name: {skill.name: skill for skill in sorted(cat.iterdir()) if skill.is_dir()}
            for cat in sorted((self.root / "skills").iterdir()) if cat.is_dir()
        } if (self.root / "skills").is_dir() else {}
        self.agents: dict[str, dict[str, Path]] = {
            level.name: {agent.stem: agent for agent in sorted(level.glob("*.md"))}
            for level in sorted((self.root / "agents").iterdir()) if level.is_dir()
        } if (self.root / "agents").is_dir() else {}
        self.mcp: dict[str, Path] = {p.stem: p for p in sorted((self.root / "mcp").glob("*.json"))}

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def block_ids(self) -> list[str]:
        return sorted({p.stem.split("-", 1)[0] for p in self.blocks.values()})


def _text(path: Path, origin: Path, field: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResourceError(origin, field, f"library file {path} is not UTF-8 text",
                        "keep only text files (scripts, markdown) in the resource library") from None


def _unknown(origin: Path, sub: Subtest, field: str, kind: str, name: Any, known: list[str], fix: str) -> ResourceError:
    shown = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "") if known else "none"
    return ResourceError(origin, field, f"subtest {sub.tier}/{sub.id} names unknown {kind} {name!r}; "
                     f"the library has: {shown}", fix)


def compose(sub: Subtest, library: Library | None, origin: Path) -> Subtest:
    """`sub` with its `resources` composed into files and mcp_servers (provenance recorded)."""
    label = f"{sub.tier}/{sub.id}"
    provenance = {f"files/{rel}": f"{label} files" for rel in sub.files}
    provenance.update({f"mcp_servers/{name}": f"{label} mcp_servers" for name in sub.mcp_servers})
    provenance.update({f"env/{name}": f"{label} env" for name in sub.env})
    for name in ("tools", "agent_args", "system_prompt_mode", "agent", "model", "max_turns"):
        if getattr(sub, name) not in (None, []):
            provenance[name] = f"{label} {name}"
    res = sub.resources
    if res is None:
        return sub.model_copy(update={"provenance": provenance})
    if library is None:
        raise ResourceError(origin, "resources", f"subtest {label} uses the resource library, but there is none",
                        "create resources/ next to test.yaml (blocks/, skills/, agents/, mcp/) or set "
                        "resources_dir in test.yaml")
    files = dict(sub.files)
    servers = dict(sub.mcp_servers)

    executable = list(sub.executable)

    def add(rel: str, content: str, source: str, field: str, path: Path | None = None) -> None:
        if rel in files and provenance.get(f"files/{rel}", "").startswith(f"{label} files"):
            raise ResourceError(origin, field, f"{rel} is given both in 'files' and by the resource library",
                            f"remove one of them from subtest {label}")
        if rel not in files:  # the first of two equal names wins, as listed
            files[rel] = content
            provenance[f"files/{rel}"] = source
            if path is not None and os.access(path, os.X_OK):
                executable.append(rel)

    if res.claude_md is not None and res.claude_md.blocks:
        parts, used = [], []
        for index, block in enumerate(res.claude_md.blocks):
            path = library.blocks.get(block)
            if path is None:
                raise _unknown(origin, sub, f"resources.claude_md.blocks.{index}", "block", block,
                               library.block_ids(), f"use a listed block or add blocks/{block}-<name>.md")
            parts.append(_text(path, origin, f"resources.claude_md.blocks.{index}"))
            used.append(library.rel(path))
        add("CLAUDE.md", BLOCK_SEPARATOR.join(parts), f"{label} resources.claude_md: library " + ", ".join(used),
            "resources.claude_md")
    if res.skills is not None:
        chosen: list[tuple[Path, str]] = []
        for index, category in enumerate(res.skills.categories):
            if category not in library.skills:
                raise _unknown(origin, sub, f"resources.skills.categories.{index}", "skill category", category,
                               sorted(library.skills), f"use a listed category or add skills/{category}/<skill>/")
            chosen += [(path, f"category {category}") for path in library.skills[category].values()]
        for index, name in enumerate(res.skills.names):
            found = [cat[name] for _, cat in sorted(library.skills.items()) if name in cat]
            if not found:
                known = sorted({s for cat in library.skills.values() for s in cat})
                raise _unknown(origin, sub, f"resources.skills.names.{index}", "skill", name, known,
                               "use a listed skill or add skills/<category>/" + name + "/SKILL.md")
            chosen.append((found[0], "name"))
        for skill_dir, why in chosen:
            for path in sorted(p for p in skill_dir.rglob("*") if p.is_file()):
                rel = f".claude/skills/{skill_dir.name}/{path.relative_to(skill_dir).as_posix()}"
                add(rel, _text(path, origin, "resources.skills"),
                    f"{label} resources.skills {why}: library {library.rel(path)}", "resources.skills", path)
    if res.agents is not None:
        picked: list[tuple[Path, str]] = []
        for index, level in enumerate(res.agents.levels):
            level_dir = f"L{level}" if isinstance(level, int) else str(level)
            if level_dir not in library.agents:
                raise _unknown(origin, sub, f"resources.agents.levels.{index}", "agent level", level,
                               sorted(library.agents), f"use a listed level or add agents/{level_dir}/<name>.md")
            picked += [(path, f"level {level_dir}") for path in library.agents[level_dir].values()]
        for index, name in enumerate(res.agents.names):
            stem = name.removesuffix(".md")
            found = [lvl[stem] for _, lvl in sorted(library.agents.items()) if stem in lvl]
            if not found:
                known = sorted({a for lvl in library.agents.values() for a in lvl})
                raise _unknown(origin, sub, f"resources.agents.names.{index}", "agent", name, known,
                               f"use a listed agent or add agents/<level>/{stem}.md")
            picked.append((found[0], "name"))
        for path, why in picked:
            add(f".claude/agents/{path.name}", _text(path, origin, "resources.agents"),
                f"{label} resources.agents {why}: library {library.rel(path)}", "resources.agents")
    for index, ref in enumerate(res.mcp_servers):
        path = library.mcp.get(ref.name)
        if path is None:
            raise _unknown(origin, sub, f"resources.mcp_servers.{index}.name", "MCP server", ref.name,
                           sorted(library.mcp), f"use a listed server or add mcp/{ref.name}.json")
        if ref.name in servers:
            raise ResourceError(origin, f"resources.mcp_servers.{index}", f"MCP server {ref.name!r} is defined "
                            "inline and taken from the library", f"remove one of them from subtest {label}")
        servers[ref.name] = load_mcp_server(path)
        provenance[f"mcp_servers/{ref.name}"] = f"{label} resources.mcp_servers: library {library.rel(path)}"
    return sub.model_copy(update={"files": files, "mcp_servers": servers, "provenance": provenance,
                                  "executable": sorted(set(executable))})


def load_mcp_server(path: Path) -> McpServer:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ResourceError(path, None, f"malformed JSON ({exc})", "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise ResourceError(path, None, "expected one server object", 'write {"command": ..., "args": [...]} '
                        'or {"type": "http", "url": ...}')
    try:
        return McpServer.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        problem = error["msg"].removeprefix("Value error, ")
        fix = ("write the variable's name instead and export it where tierbench runs" if "literal value" in problem
               else "correct the server definition (see the README's resource library section)")
        raise ResourceError(path, field, problem, fix) from None


# ---------------------------------------------------------------------------------------------
# The composed snapshot


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def composed_record(subtests: dict[str, list[Subtest]]) -> dict[str, Any]:
    """Every composed subtest's files (deduplicated by content), servers and provenance."""
    blobs: dict[str, str] = {}
    entries: dict[str, Any] = {}
    for tier, subs in subtests.items():
        for sub in subs:
            if sub.resources is None:
                continue
            files = {}
            for rel, content in sub.files.items():
                digest = _sha(content)
                blobs[digest] = content
                files[rel] = digest
            entries[f"{tier}/{sub.id}"] = {
                "files": files,
                "mcp_servers": {n: s.model_dump(mode="json", exclude_defaults=True) for n, s in sub.mcp_servers.items()},
                "provenance": sub.provenance,
                "executable": sub.executable,
            }
    return {"version": COMPOSED_VERSION, "subtests": entries, "blobs": blobs}


def write_composed(subtests: dict[str, list[Subtest]], snapshot_dir: Path) -> None:
    atomic_write_json(Path(snapshot_dir) / COMPOSED_FILE, composed_record(subtests))


class Composed:
    """Compositions read back from a snapshot's .composed.json."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.entries: dict[str, Any] = data["subtests"]
            self.blobs: dict[str, str] = data["blobs"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ResourceError(path, None, f"unreadable composed snapshot ({exc})",
                            "restore it from a backup, or start anew with --fresh") from None

    def apply(self, sub: Subtest, origin: Path) -> Subtest:
        if sub.resources is None:
            return compose(sub, None, origin)
        entry = self.entries.get(f"{sub.tier}/{sub.id}")
        if entry is None:
            raise ResourceError(self.path, None, f"no composition recorded for subtest {sub.tier}/{sub.id}",
                            "restore the snapshot from a backup, or start anew with --fresh")
        return sub.model_copy(update={
            "files": {rel: self.blobs[digest] for rel, digest in entry["files"].items()},
            "mcp_servers": {n: McpServer.model_validate(s) for n, s in entry["mcp_servers"].items()},
            "provenance": dict(entry["provenance"]),
            "executable": list(entry.get("executable", [])),
        })
