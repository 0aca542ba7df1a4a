"""The manipulation check of an ablation: did the runs use what their subtest offered?

From each result's `usage` (counted from its transcript, see tierbench.transcript) and the skills,
sub-agents and MCP servers each subtest puts in the workspace, one row per (tier, subtest, kind,
name): how many of the subtest's runs used it at least once, and how many calls they made.
"T1/00 offered skill debug-small-bug; 7 of 10 runs invoked it." An offered item no run used
still gets its row (0 of N): that is the finding the table exists for.

    usage_rows(data) -> list[UsageRow]
    usage_report(data) -> (title, text lines, tables) for the report renderer
    usage_csv_rows(data) -> (headers, rows) for usage.csv
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from tierbench.models import RunResult

if TYPE_CHECKING:
    from tierbench.report.aggregate import ExperimentData

KINDS = (("skill", "skills"), ("sub-agent", "subagents"), ("MCP tool", "mcp_tools"))


@dataclass
class UsageRow:
    tier: str
    subtest: str
    kind: str  # "skill" | "sub-agent" | "MCP tool"
    name: str
    offered: bool  # the subtest's files provide it
    runs_used: int  # runs that called it at least once
    runs: int  # the subtest's results
    calls: int  # calls over all those runs

    @property
    def share(self) -> float | None:
        return self.runs_used / self.runs if self.runs else None


def offered_by_files(files: dict[str, str]) -> dict[str, set[str]]:
    """Skills, sub-agents and MCP servers a subtest's workspace files offer, by kind."""
    offered: dict[str, set[str]] = {"skill": set(), "sub-agent": set(), "MCP server": set()}
    for rel, content in files.items():
        parts = PurePosixPath(rel).parts
        if len(parts) == 4 and parts[:2] == (".claude", "skills") and parts[3] == "SKILL.md":
            offered["skill"].add(parts[2])
        elif len(parts) == 3 and parts[:2] == (".claude", "agents") and parts[2].endswith(".md"):
            offered["sub-agent"].add(parts[2][:-3])
        elif rel == ".mcp.json":
            try:
                servers = json.loads(content).get("mcpServers") or {}
                offered["MCP server"].update(str(name) for name in servers)
            except (ValueError, AttributeError):
                pass
    return offered


def _offered(data: "ExperimentData") -> dict[tuple[str, str], dict[str, set[str]]]:
    """(tier, subtest) -> what its files offer, read from the experiment's snapshot of the test."""
    from tierbench.plan import merge_inherited
    from tierbench.spec import SpecError, load_test

    snapshot = data.exp_dir / "config" / "test"
    try:
        test = load_test(snapshot)
    except (SpecError, OSError):
        return {}
    offered = {}
    for tier, subtests in test.subtests.items():
        for sub in subtests:
            inherited = []
            for source in sub.inherit_best_from:
                best = data.best_subtests.get(source)
                if best:
                    try:
                        inherited.append(test.subtest(source, best))
                    except KeyError:
                        pass
            resolved = merge_inherited(sub, inherited) if inherited else sub
            offered[(tier, sub.id)] = offered_by_files(resolved.files)
    return offered


def usage_rows(data: "ExperimentData") -> list[UsageRow]:
    by_subtest: dict[tuple[str, str], list[RunResult]] = {}
    for result in data.results:
        by_subtest.setdefault((result.tier, result.subtest), []).append(result)
    offered = _offered(data)
    rows: list[UsageRow] = []
    for (tier, subtest), results in sorted(by_subtest.items()):
        offers = offered.get((tier, subtest), {})
        for kind, field in KINDS:
            names: set[str] = set()
            for result in results:
                names.update(getattr(result.usage, field))
            offered_names = offers.get(kind, set())
            servers = offers.get("MCP server", set()) if kind == "MCP tool" else set()
            for name in sorted(names | offered_names):
                counts = [getattr(r.usage, field).get(name, 0) for r in results]
                is_offered = name in offered_names or name.split("/", 1)[0] in servers
                rows.append(UsageRow(tier, subtest, kind, name, is_offered, sum(1 for c in counts if c),
                                     len(results), sum(counts)))
            for server in sorted(servers):
                if not any(n.split("/", 1)[0] == server for n in names):
                    rows.append(UsageRow(tier, subtest, kind, f"{server}/*", True, 0, len(results), 0))
    return rows


def _mean_calls(results: list[RunResult]) -> str:
    totals = [sum(r.usage.tool_calls.values()) for r in results]
    return f"{sum(totals) / len(totals):.1f}" if totals else "–"


USAGE_HEADERS = ["Tier", "Subtest", "Kind", "Name", "Offered", "Runs that used it", "Share", "Calls"]


def usage_section_parts(data: "ExperimentData") -> tuple[list[str], list[str], list[list[str]]]:
    rows = usage_rows(data)
    text = ["Counted from each run's agent/transcript.jsonl: the share of runs that used each skill, "
            "sub-agent and MCP tool (the ablation's manipulation check). 'offered' means the subtest's "
            "files provide it; an offered item that no run used shows 0."]
    with_transcript = [r for r in data.results if r.usage.tool_calls or r.usage.turns]
    if not with_transcript:
        text.append("No run recorded tool usage (the agent kept no transcript).")
    elif not rows:
        text.append("No run used a skill, sub-agent or MCP tool, and no subtest offered one.")
    table = [[r.tier, r.subtest, r.kind, r.name, "yes" if r.offered else "no", f"{r.runs_used} of {r.runs}",
              "–" if r.share is None else f"{r.share:.0%}", str(r.calls)] for r in rows]
    return text, USAGE_HEADERS, table


def usage_csv_rows(data: "ExperimentData") -> tuple[list[str], list[list[object]]]:
    headers = ["tier", "subtest", "kind", "name", "offered", "runs_used", "runs", "share", "calls"]
    return headers, [[r.tier, r.subtest, r.kind, r.name, r.offered, r.runs_used, r.runs,
                      "" if r.share is None else round(r.share, 4), r.calls] for r in usage_rows(data)]


def tool_call_summary(data: "ExperimentData") -> list[list[str]]:
    """Tier, subtest, runs, mean tool calls per run, the most used tools: a line per subtest."""
    by_subtest: dict[tuple[str, str], list[RunResult]] = {}
    for result in data.results:
        by_subtest.setdefault((result.tier, result.subtest), []).append(result)
    lines = []
    for (tier, subtest), results in sorted(by_subtest.items()):
        totals: dict[str, int] = {}
        for result in results:
            for name, count in result.usage.tool_calls.items():
                totals[name] = totals.get(name, 0) + count
        top = ", ".join(f"{name} {count}" for name, count in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
        turns = [r.usage.turns for r in results if r.usage.turns is not None]
        mean_turns = f"{sum(turns) / len(turns):.1f}" if turns else "–"
        lines.append([tier, subtest, str(len(results)), _mean_calls(results), mean_turns, top or "–"])
    return lines


USAGE_TITLE = "What the agents used"


def usage_report(data: "ExperimentData") -> tuple[str, list[str], list[tuple[list[str], list[list[str]]]]]:
    """(title, text lines, tables as (headers, rows)) of the report section; render.py lays it out."""
    text, headers, rows = usage_section_parts(data)
    tables = [(headers, rows)] if rows else []
    summary = tool_call_summary(data)
    if summary and any(row[3] != "0.0" for row in summary):
        tables.append((["Tier", "Subtest", "Runs", "Tool calls per run", "Turns per run",
                        "Most used tools (calls)"], summary))
    return USAGE_TITLE, text, tables
