"""`tierbench import scylla SCYLLA_ROOT OUT_DIR`: convert a ProjectScylla test suite.

ProjectScylla (HomericIntelligence/ProjectScylla, BSD-3) keeps its suite in

    tests/fixtures/tests/test-NNN/   test.yaml, config.yaml, prompt.md, expected/criteria.md,
                                     expected/rubric.yaml
    tests/claude-code/shared/        blocks/Bnn-*.md, agents/L<n>/*.md, skills/<category>/<skill>/,
                                     subtests/t0..t6/NN-name.yaml, tiers.yaml

and composes each subtest at run time. The import writes

    OUT_DIR/resources/               the shared library (blocks, agents, skills copied; mcp/<name>.json
                                     written with the command Scylla starts for that server)
    OUT_DIR/<test id>/               test.yaml (resources_dir: ../resources), prompt.md, expected/...,
                                     tiers/T0..T6/NN-name.yaml (tierbench subtests)
    OUT_DIR/<test id>/import_report.json    every source field: mapped, or unmapped with the reason
    OUT_DIR/import_report.json       all tests, plus what differs between the two runners

Nothing is dropped silently: every field of every source file is listed, mapped or unmapped.
The files are read, never copied wholesale except the library's content files (blocks, agents,
skills), which the tests compose from.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tierbench.errors import TierbenchError
from tierbench.models import ALL_TIERS, TIER_NAMES
from tierbench.store.atomic import atomic_write_json, atomic_write_text

FIXTURES = Path("tests/fixtures/tests")
SHARED = Path("tests/claude-code/shared")
# Scylla's runner uses config.yaml's top-level timeout_seconds, else this (scripts/manage_experiment.py).
SCYLLA_DEFAULT_TIMEOUT = 3600
SCYLLA_MCP_SOURCE = "modelcontextprotocol/servers"
SCYLLA_GRADE_SCALE = {"S": 1.0, "A": 0.8, "B": 0.6, "C": 0.4, "D": 0.2, "F": 0.0}  # = tierbench's scale
TEAMS_ENV = "CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS"

# How the two runners differ where a field maps but the runtime does not behave identically.
DIFFERENCES = [
    "CLAUDE.md: Scylla appends a generated suffix (resource hints, test-environment constraints, "
    "cleanup requirements) to the composed blocks; tierbench writes the blocks only.",
    "extends_previous: Scylla starts from the previous tier's best subtest's own resources (its "
    "CLAUDE.md, skills and agents; not its tools or MCP servers); tierbench starts from that subtest's "
    "fully resolved configuration (cumulative), including tools and MCP servers.",
    "T0 00/01: Scylla deletes a CLAUDE.md or .claude/ the repository itself has; tierbench leaves the "
    "repository's files as they are.",
    "MCP servers: Scylla writes `npx -y @<source>/<name>` into .claude/settings.json; tierbench passes "
    "the same command with --mcp-config --strict-mcp-config. Check that each package exists.",
]


class ImportError_(TierbenchError):
    """The Scylla suite cannot be read; the message names the file and what to do."""


@dataclass
class Report:
    """Per test: every source field and what became of it."""

    test_id: str
    entries: list[dict[str, str]] = field(default_factory=list)

    def mapped(self, source: str, field_: str, to: str) -> None:
        self.entries.append({"source": source, "field": field_, "status": "mapped", "to": to})

    def unmapped(self, source: str, field_: str, reason: str) -> None:
        self.entries.append({"source": source, "field": field_, "status": "unmapped", "reason": reason})

    @property
    def unmapped_entries(self) -> list[dict[str, str]]:
        return [e for e in self.entries if e["status"] == "unmapped"]


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ImportError_(f"{path}: malformed YAML ({exc})") from None


def _mapping(path: Path, data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ImportError_(f"{path}: expected a mapping at the top level")
    return data


# ---------------------------------------------------------------------------------------------
# The library


def import_library(shared: Path, out: Path) -> dict[str, Any]:
    """Copy blocks, agents and skills into out/resources; return what was found."""
    lib = out / "resources"
    found: dict[str, Any] = {"blocks": [], "agents": [], "skills": []}
    for kind in ("blocks", "agents", "skills"):
        src = shared / kind
        if src.is_dir():
            shutil.copytree(src, lib / kind, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
            found[kind] = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    (lib / "mcp").mkdir(parents=True, exist_ok=True)
    return found


def _mcp_command(server: dict[str, Any]) -> dict[str, Any]:
    """The server Scylla starts (tier_manager._create_settings_json): npx -y @<source>/<name>."""
    source = str(server.get("source") or SCYLLA_MCP_SOURCE)
    return {"command": "npx", "args": ["-y", f"@{source}/{server['name']}"]}


def _write_mcp(out: Path, server: dict[str, Any]) -> str:
    """mcp/<name>.json with the command Scylla starts for this server; returns the file name."""
    name = str(server["name"])
    atomic_write_text(out / "resources" / "mcp" / f"{name}.json", json.dumps(_mcp_command(server), indent=2) + "\n")
    return f"mcp/{name}.json"


def _servers_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = [*(data.get("mcp_servers") or []), *((data.get("resources") or {}).get("mcp_servers") or [])]
    return [{"name": s} if isinstance(s, str) else dict(s) for s in found]


def ambiguous_mcp_names(shared: Path) -> frozenset[str]:
    """Server names the suite starts with more than one command (e.g. two sources): these cannot
    share one library file, so the import defines them inline in each subtest."""
    commands: dict[str, set[str]] = {}
    for file in sorted((shared / "subtests").glob("t*/*.yaml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for server in _servers_of(data if isinstance(data, dict) else {}):
            commands.setdefault(str(server["name"]), set()).add(json.dumps(_mcp_command(server)))
    return frozenset(name for name, seen in commands.items() if len(seen) > 1)


# ---------------------------------------------------------------------------------------------
# Subtests


def _scylla_extends_default(tier: str, subtest_id: str) -> bool:
    # Scylla (subtest_provider.py): T0 00 and 01 do not extend, every other subtest does.
    return tier != "T0" or int(subtest_id) >= 2


def convert_subtest(path: Path, tier: str, library: Path, tier_info: dict[str, Any], out: Path,
                    report: Report, ambiguous: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A tierbench subtest (as a dict) for one Scylla subtest file, every field reported."""
    data = _mapping(path, _load_yaml(path))
    src = f"{SHARED.as_posix()}/subtests/{path.parent.name}/{path.name}"
    subtest_id = path.name[:2]
    result: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    rest = dict(data)
    for key in ("name", "description"):
        if key in rest:
            result[key] = str(rest.pop(key))
            report.mapped(src, key, key)
    extends = rest.pop("extends_previous", None)
    result["extends_previous"] = bool(_scylla_extends_default(tier, subtest_id) if extends is None else extends)
    report.mapped(src, "extends_previous", "extends_previous" + (" (Scylla's default for this subtest)"
                                                                 if extends is None else ""))
    mode = rest.pop("system_prompt_mode", None)
    if mode is not None:
        if mode in ("none", "default"):
            result["system_prompt_mode"] = mode
            report.mapped(src, "system_prompt_mode", "system_prompt_mode")
        elif mode == "custom":
            report.mapped(src, "system_prompt_mode", "(default: the agent's prompt plus the composed CLAUDE.md)")
        else:
            report.unmapped(src, "system_prompt_mode", f"unknown mode {mode!r}")
    if rest.pop("agent_teams", False):
        result["env"] = {TEAMS_ENV: "1"}
        report.mapped(src, "agent_teams", f"env {TEAMS_ENV}=1 (as Scylla sets it)")
    if "inherit_best_from" in rest:
        result["inherit_best_from"] = [str(t).upper() for t in rest.pop("inherit_best_from") or []]
        report.mapped(src, "inherit_best_from", "inherit_best_from")
    # Scylla accepts these both at the top level and inside resources: (subtest_provider.py).
    nested = _mapping(path, rest.pop("resources", None))
    merged: dict[str, Any] = {}
    for key in ("claude_md", "skills", "agents", "tools", "mcp_servers"):
        for where, holder in (("resources." + key, nested), (key, rest)):
            if key in holder:
                merged.setdefault(key, (where, holder.pop(key)))
    for where, value in [(f"resources.{k}", v) for k, v in nested.items()]:
        report.unmapped(src, where, "not a Scylla resource kind; Scylla ignores it too")
    lib = _LibraryIndex(library)
    if "claude_md" in merged:
        where, spec = merged["claude_md"]
        spec = dict(spec or {})
        blocks = []
        for block in spec.pop("blocks", []) or []:
            if lib.has_block(str(block)):
                blocks.append(str(block))
            else:
                report.unmapped(src, f"{where}.blocks", f"block {block} is not in the library; Scylla composes "
                                "nothing for it, so it was left out")
        resources["claude_md"] = {"blocks": blocks}
        report.mapped(src, f"{where}.blocks", "resources.claude_md.blocks")
        for key in spec:
            report.unmapped(src, f"{where}.{key}", "Scylla's composer reads only 'blocks'")
    for kind, keys in (("skills", ("categories", "names")), ("agents", ("levels", "names"))):
        if kind not in merged:
            continue
        where, spec = merged[kind]
        spec = dict(spec or {})
        converted: dict[str, list] = {}
        for key in keys:
            values = spec.pop(key, None)
            if values is None:
                continue
            kept = []
            for value in values:
                if lib.has(kind, key, value):
                    kept.append(value)
                else:
                    report.unmapped(src, f"{where}.{key}", f"{kind}.{key} entry {value!r} is not in the library; "
                                    "Scylla composes nothing for it, so it was left out")
            converted[key] = kept
            report.mapped(src, f"{where}.{key}", f"resources.{kind}.{key}")
        resources[kind] = converted
        for key in spec:
            report.unmapped(src, f"{where}.{key}", f"Scylla reads only {' and '.join(keys)} of {kind}")
    if "tools" in merged:
        where, spec = merged["tools"]
        spec = dict(spec or {})
        if "enabled" in spec:
            enabled = spec.pop("enabled")
            result["tools"] = {"enabled": "all" if enabled == "all" else list(enabled or [])}
            report.mapped(src, f"{where}.enabled", "tools.enabled")
        for key in spec:
            report.unmapped(src, f"{where}.{key}", "Scylla only restricts tools through 'enabled'")
    elif tier_info.get("tools_enabled") is False:
        result["tools"] = {"enabled": []}  # Scylla passes --tools "" for such a tier
    if "mcp_servers" in merged:
        where, servers = merged["mcp_servers"]
        refs = []
        for index, server in enumerate(servers or []):
            server = {"name": server} if isinstance(server, str) else dict(server)
            name = str(server["name"])
            if name in ambiguous:
                file = f"mcp_servers.{name} of this subtest (the suite starts {name!r} with several commands)"
                result.setdefault("mcp_servers", {})[name] = _mcp_command(server)
            else:
                file = "library " + _write_mcp(out, server)
                refs.append({"name": name})
            report.mapped(src, f"{where}.{index}.name", f"resources.mcp_servers ({file})"
                          if name not in ambiguous else file)
            if "source" in server:
                report.mapped(src, f"{where}.{index}.source", f"the npx package in {file}")
            for key in server:
                if key not in ("name", "source"):
                    report.unmapped(src, f"{where}.{index}.{key}", "Scylla does not use it when it starts the "
                                    "server; set the server up in the library's mcp/ file instead")
        if refs:
            resources["mcp_servers"] = refs
    if resources:
        result["resources"] = resources
    for key in rest:
        report.unmapped(src, key, "no tierbench subtest field has this meaning")
    return result


class _LibraryIndex:
    def __init__(self, root: Path):
        self.root = root

    def has_block(self, block: str) -> bool:
        return any((self.root / "blocks").glob(f"{block}-*.md")) or (self.root / "blocks" / f"{block}.md").exists()

    def has(self, kind: str, key: str, value: Any) -> bool:
        base = self.root / kind
        if kind == "skills" and key == "categories":
            return (base / str(value)).is_dir()
        if kind == "skills":
            return base.is_dir() and any((cat / str(value)).is_dir() for cat in base.iterdir())
        if key == "levels":
            return (base / (f"L{value}" if isinstance(value, int) else str(value))).is_dir()
        name = str(value).removesuffix(".md") + ".md"
        return base.is_dir() and any((lvl / name).is_file() for lvl in base.iterdir())


# ---------------------------------------------------------------------------------------------
# Tests


def convert_rubric(path: Path, report: Report, src: str) -> dict[str, Any]:
    data = _mapping(path, _load_yaml(path))
    out: dict[str, Any] = {"categories": {}}
    for name, body in (data.pop("categories", None) or {}).items():
        body = dict(body or {})
        category: dict[str, Any] = {}
        for key in ("weight", "scoring_type"):
            if key in body:
                category[key] = body.pop(key)
                report.mapped(src, f"categories.{name}.{key}", f"categories.{name}.{key}")
        items = []
        for index, item in enumerate(body.pop("items", None) or []):
            item = dict(item)
            converted = {}
            for key in ("id", "check", "points", "na_condition"):
                if key in item:
                    value = item.pop(key)
                    converted[key] = " ".join(str(value).split()) if key in ("check", "na_condition") else value
                    report.mapped(src, f"categories.{name}.items.{index}.{key}", key)
            for key in item:
                report.unmapped(src, f"categories.{name}.items.{index}.{key}", "no tierbench rubric item field")
            items.append(converted)
        category["items"] = items
        for key in body:
            report.unmapped(src, f"categories.{name}.{key}", "no tierbench rubric category field")
        out["categories"][name] = category
    if "requirements" in data:
        _convert_requirements(data.pop("requirements") or [], out, report, src)
    grading = dict(data.pop("grading", None) or {})
    out["grading"] = {}
    if "pass_threshold" in grading:
        out["grading"]["pass_threshold"] = grading.pop("pass_threshold")
        report.mapped(src, "grading.pass_threshold", "grading.pass_threshold")
    if "grade_scale" in grading:
        scale = {str(k): float(v) for k, v in (grading.pop("grade_scale") or {}).items()}
        if scale == SCYLLA_GRADE_SCALE:
            report.mapped(src, "grading.grade_scale", "tierbench's fixed grade scale (identical)")
        else:
            report.unmapped(src, "grading.grade_scale", f"{scale} differs from tierbench's fixed scale "
                            f"{SCYLLA_GRADE_SCALE}; grades use tierbench's")
    for key in grading:
        report.unmapped(src, f"grading.{key}", "no tierbench grading field")
    for key in data:
        report.unmapped(src, key, "no tierbench rubric field")
    return out


def _convert_requirements(requirements: list[Any], out: dict[str, Any], report: Report, src: str) -> None:
    """Scylla's older rubric form: `requirements: [{id, description, weight, evaluation, ...}]`,
    scored as sum(score * weight) / sum(weight) (scylla/judge/rubric.py). Binary requirements go to a
    checklist category, scaled ones (Scylla's default) to a subjective one, each category weighted by
    its total points, so the weighted mean is the same sum over all requirements."""
    groups: dict[str, list[dict[str, Any]]] = {"binary": [], "scaled": []}
    for index, requirement in enumerate(requirements):
        requirement = dict(requirement)
        where = f"requirements.{index}"
        item: dict[str, Any] = {}
        if "id" in requirement:
            item["id"] = str(requirement.pop("id")).strip()
            report.mapped(src, f"{where}.id", "id")
        check = " ".join(str(requirement.pop("description", "")).split())
        report.mapped(src, f"{where}.description", "check")
        criteria = requirement.pop("criteria", None)
        if criteria:
            check += " Criteria: " + "; ".join(" ".join(str(c).split()) for c in criteria) + "."
            report.mapped(src, f"{where}.criteria", "appended to check")
        item["check"] = check or item.get("id", "")
        weight = float(requirement.pop("weight", 1.0))
        report.mapped(src, f"{where}.weight", "points")
        evaluation = str(requirement.pop("evaluation", "scaled"))
        report.mapped(src, f"{where}.evaluation", f"a {'checklist' if evaluation == 'binary' else 'subjective'} "
                      "category weighted by its points (the same weighted mean as Scylla's)")
        if requirement.get("validation_command"):
            item["command"] = str(requirement.pop("validation_command"))
            report.mapped(src, f"{where}.validation_command", "command")
        for key in requirement:
            report.unmapped(src, f"{where}.{key}", "no tierbench rubric item field")
        if weight <= 0:
            report.unmapped(src, f"{where}.weight", "weight 0 counts for nothing in Scylla's score; the "
                            "requirement was left out (tierbench items need points > 0)")
            continue
        item["points"] = weight
        groups["binary" if evaluation == "binary" else "scaled"].append(item)
    for kind, items in groups.items():
        if items:
            name = "requirements" if not all(groups.values()) else f"requirements_{kind}"
            out["categories"][name] = {"weight": sum(i["points"] for i in items),
                                       "scoring_type": "checklist" if kind == "binary" else "subjective",
                                       "items": items}


def convert_test(test_dir: Path, shared: Path, out: Path, tiers_info: dict[str, Any], judge: str,
                 ambiguous: frozenset[str] = frozenset()) -> Report:
    test_file = test_dir / "test.yaml"
    spec = _mapping(test_file, _load_yaml(test_file))
    test_id = str(spec.get("id") or test_dir.name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", test_id):
        raise ImportError_(f"{test_file}: id {test_id!r} cannot name a directory")
    report = Report(test_id)
    src = f"{FIXTURES.as_posix()}/{test_dir.name}/test.yaml"
    dest = out / test_id
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    result: dict[str, Any] = {}
    for key in ("id", "name", "description", "language"):
        if key in spec:
            result[key] = str(spec[key]).strip()
            report.mapped(src, key, key)
    result.setdefault("id", test_id)
    result.setdefault("name", test_id)
    rest = {k: v for k, v in spec.items() if k not in ("id", "name", "description", "language")}
    source = dict(rest.pop("source", None) or {})
    result["source"] = {}
    for key in ("repo", "hash"):
        if key in source:
            result["source"][key] = str(source.pop(key))
            report.mapped(src, f"source.{key}", f"source.{key}")
    for key in source:
        report.unmapped(src, f"source.{key}", "tierbench takes repo and hash only")
    task = dict(rest.pop("task", None) or {})
    result["task"] = {}
    copied: list[str] = []
    if "prompt_file" in task:
        result["task"]["prompt_file"] = str(task.pop("prompt_file"))
        copied.append(result["task"]["prompt_file"])
        report.mapped(src, "task.prompt_file", "task.prompt_file")
    config_file = test_dir / "config.yaml"
    config = _mapping(config_file, _load_yaml(config_file)) if config_file.exists() else {}
    csrc = f"{FIXTURES.as_posix()}/{test_dir.name}/config.yaml"
    timeout = config.pop("timeout_seconds", None)
    result["task"]["timeout_seconds"] = int(timeout if timeout is not None else SCYLLA_DEFAULT_TIMEOUT)
    if timeout is not None:
        report.mapped(csrc, "timeout_seconds", "task.timeout_seconds (the per-run timeout Scylla's runner uses)")
    if "timeout_seconds" in task:
        value = task.pop("timeout_seconds")
        report.unmapped(src, "task.timeout_seconds", f"{value}: Scylla's runner does not use it (it takes "
                        f"config.yaml timeout_seconds, default {SCYLLA_DEFAULT_TIMEOUT}); task.timeout_seconds is "
                        f"{result['task']['timeout_seconds']}")
    for key in task:
        report.unmapped(src, f"task.{key}", "no tierbench task field")
    if "max_cost_usd" in config:
        value = config.pop("max_cost_usd")
        report.unmapped(csrc, "max_cost_usd", f"{value}: tierbench has no per-test cost cap and Scylla's runner "
                        "does not enforce it either; cap an experiment's spend with the run options")
    for key in config:
        report.unmapped(csrc, key, "no tierbench equivalent per test")
    validation = dict(rest.pop("validation", None) or {})
    result["validation"] = {}
    for key in ("rubric_file", "criteria_file"):
        if key in validation:
            result["validation"][key] = str(validation.pop(key))
            report.mapped(src, f"validation.{key}", f"validation.{key}")
    for key in validation:
        report.unmapped(src, f"validation.{key}", "no tierbench validation field")
    tiers = [str(t).upper() for t in rest.pop("tiers", None) or []]
    unknown = [t for t in tiers if t not in ALL_TIERS]
    if unknown:
        raise ImportError_(f"{test_file}: unknown tier(s) {unknown}")
    result["tiers"] = tiers
    report.mapped(src, "tiers", "tiers")
    for key in rest:
        report.unmapped(src, key, "no tierbench test field")
    result["resources_dir"] = "../resources"
    result["judges"] = [judge]

    if "prompt_file" in result["task"]:
        _copy(test_dir, dest, result["task"]["prompt_file"])
    if "criteria_file" in result["validation"]:
        _copy(test_dir, dest, result["validation"]["criteria_file"])
    if "rubric_file" in result["validation"]:
        rel = result["validation"]["rubric_file"]
        rubric = convert_rubric(test_dir / rel, report, f"{FIXTURES.as_posix()}/{test_dir.name}/{rel}")
        atomic_write_text(dest / rel, yaml.safe_dump(rubric, sort_keys=False, allow_unicode=True))
    for extra in sorted(p for p in test_dir.rglob("*") if p.is_file()):
        rel = extra.relative_to(test_dir).as_posix()
        known = {"test.yaml", "config.yaml", result["task"].get("prompt_file"),
                 result["validation"].get("rubric_file"), result["validation"].get("criteria_file")}
        if rel not in known:
            _copy(test_dir, dest, rel)
            report.mapped(f"{FIXTURES.as_posix()}/{test_dir.name}/{rel}", "(file)", f"copied to {rel}")

    for tier in tiers:
        tier_src = shared / "subtests" / tier.lower()
        files = sorted(tier_src.glob("*.yaml")) if tier_src.is_dir() else []
        files = [f for f in files if f.name[:2].isdigit()]
        if not files:
            raise ImportError_(f"{tier_src}: tier {tier} has no subtests (expected NN-name.yaml files)")
        for file in files:
            body = convert_subtest(file, tier, out / "resources", tiers_info.get(tier, {}), out, report, ambiguous)
            name = re.sub(r"[^A-Za-z0-9._-]", "-", file.stem[3:]) or "subtest"
            atomic_write_text(dest / "tiers" / tier / f"{file.name[:2]}-{name}.yaml",
                              yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
    atomic_write_text(dest / "test.yaml", yaml.safe_dump(result, sort_keys=False, allow_unicode=True))
    atomic_write_json(dest / "import_report.json", {"test": test_id, "source": str(test_dir),
                                                    "fields": report.entries, "differences": DIFFERENCES})
    return report


def _copy(src_dir: Path, dest_dir: Path, rel: str) -> None:
    source = (src_dir / rel)
    if not source.is_file():
        raise ImportError_(f"{src_dir / 'test.yaml'}: {rel} does not exist")
    target = dest_dir / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def tiers_yaml(shared: Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    path = shared / "tiers.yaml"
    entries: list[dict[str, str]] = []
    if not path.exists():
        return {}, entries
    data = _mapping(path, _load_yaml(path))
    src = f"{SHARED.as_posix()}/tiers.yaml"
    tiers = data.pop("tiers", None) or {}
    for tier, info in tiers.items():
        info = dict(info or {})
        for key, value in info.items():
            where = f"tiers.{tier}.{key}"
            if key == "name" and value == TIER_NAMES.get(tier):
                entries.append({"source": src, "field": where, "status": "mapped", "to": "tierbench's tier name"})
            elif key == "tools_enabled" and value in (None, True):
                entries.append({"source": src, "field": where, "status": "mapped",
                                "to": "no restriction (Scylla only acts on false)"})
            elif key == "tools_enabled" and value is False:
                entries.append({"source": src, "field": where, "status": "mapped",
                                "to": "tools.enabled [] on the tier's subtests without tools"})
            else:
                entries.append({"source": src, "field": where, "status": "unmapped",
                                "reason": f"{value!r}: descriptive in Scylla's tiers.yaml; tierbench has no "
                                          "per-tier setting for it"})
    for key in data:
        entries.append({"source": src, "field": key, "status": "unmapped", "reason": "not read by tierbench"})
    return tiers, entries


def import_scylla(root: Path, out: Path, *, tests: list[str] | None = None,
                  judge: str = "anthropic:claude-sonnet-4-6") -> dict[str, Any]:
    """Convert the suite under `root` into `out`; returns the overall report (also written)."""
    root, out = Path(root).resolve(), Path(out).resolve()
    fixtures, shared = root / FIXTURES, root / SHARED
    for needed in (fixtures, shared):
        if not needed.is_dir():
            raise ImportError_(f"{needed}: not found. Pass the root of a ProjectScylla checkout "
                               f"(it holds {FIXTURES} and {SHARED})")
    test_dirs = sorted(p for p in fixtures.iterdir() if (p / "test.yaml").is_file())
    if tests:
        missing = sorted(set(tests) - {p.name for p in test_dirs})
        if missing:
            raise ImportError_(f"{fixtures}: no test(s) {missing}; found {[p.name for p in test_dirs]}")
        test_dirs = [p for p in test_dirs if p.name in tests]
    if not test_dirs:
        raise ImportError_(f"{fixtures}: no test directories with a test.yaml")
    out.mkdir(parents=True, exist_ok=True)
    library = import_library(shared, out)
    tiers_info, tier_entries = tiers_yaml(shared)
    ambiguous = ambiguous_mcp_names(shared)
    reports = [convert_test(d, shared, out, tiers_info, judge, ambiguous) for d in test_dirs]
    from tierbench.spec import SpecError, load_test

    for report in reports:  # what was written must be a valid tierbench test
        try:
            load_test(out / report.test_id)
        except SpecError as exc:
            raise ImportError_(f"the imported test {report.test_id} is not valid: {exc}") from None
    summary = {
        "source": str(root),
        "library": {k: len(v) for k, v in library.items()},
        "tests": {r.test_id: {"mapped": sum(e["status"] == "mapped" for e in r.entries),
                              "unmapped": r.unmapped_entries} for r in reports},
        "shared": tier_entries,
        "judges": f"{judge} (Scylla's judge models are chosen per experiment, not per test; change with --judge)",
        "differences": DIFFERENCES,
    }
    atomic_write_json(out / "import_report.json", summary)
    return summary
