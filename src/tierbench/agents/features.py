"""Which tier features each agent supports, and the check that refuses a subtest asking for one its
agent lacks before anything runs.

A subtest asks for a feature through its fields and the files it writes (the tier conventions are
Claude Code's, so test suites stay agent-neutral):

    instructions      CLAUDE.md, AGENTS.md or GEMINI.md at the workspace root
    skills            files under .claude/skills/
    subagents         files under .claude/agents/
    mcp               a .mcp.json file, or `mcp_servers:`
    tool_restriction  `tools:` (enabled / disabled, in the agent's own tool names)
    system_prompt     `system_prompt_mode: none`
    max_turns         `max_turns:`

Each adapter maps what it supports to its agent's own convention (see `HOW` and the README
table, which tests/unit/test_agent_features.py checks against this module). "no" means the agent
has no such thing; "not mapped" means the agent has one but tierbench does not drive it yet.
Either way the subtest is rejected, never silently run without it.
"""

from __future__ import annotations

from typing import Literal

from tierbench.spec import Subtest

Support = Literal["yes", "no", "not mapped"]

FEATURES: tuple[str, ...] = ("instructions", "skills", "subagents", "mcp", "tool_restriction", "system_prompt",
                             "max_turns")
INSTRUCTION_FILES: tuple[str, ...] = ("CLAUDE.md", "AGENTS.md", "GEMINI.md")

# The versions `make agents` installs (Makefile *_VERSION) and the e2e tests run.
PINNED_VERSIONS: dict[str, str] = {
    "claude-code": "2.1.330",
    "codex": "0.169.0",
    "gemini": "0.61.0",
    "opencode": "1.18.33",
    "aider": "0.86.2",
    "mini-swe-agent": "2.4.6",
}

_ALL_YES: dict[str, Support] = {feature: "yes" for feature in FEATURES}

SUPPORT: dict[str, dict[str, Support]] = {
    "demo": dict(_ALL_YES),  # offline stand-in: accepts every tier so `make demo` runs every example
    "command": dict(_ALL_YES),  # an arbitrary command: the files are in the workspace, the rest is its own business
    "claude-code": dict(_ALL_YES),
    "codex": {"instructions": "yes", "skills": "yes", "subagents": "not mapped", "mcp": "not mapped",
              "tool_restriction": "no", "system_prompt": "not mapped", "max_turns": "no"},
    "gemini": {"instructions": "yes", "skills": "yes", "subagents": "not mapped", "mcp": "not mapped",
               "tool_restriction": "yes", "system_prompt": "not mapped", "max_turns": "yes"},
    "opencode": {"instructions": "yes", "skills": "yes", "subagents": "not mapped", "mcp": "not mapped",
                 "tool_restriction": "yes", "system_prompt": "not mapped", "max_turns": "not mapped"},
    "aider": {"instructions": "yes", "skills": "no", "subagents": "no", "mcp": "no", "tool_restriction": "no",
              "system_prompt": "no", "max_turns": "no"},
    "mini-swe-agent": {"instructions": "yes", "skills": "no", "subagents": "no", "mcp": "no",
                       "tool_restriction": "no", "system_prompt": "not mapped", "max_turns": "yes"},
}

# How each supported feature reaches the agent (the README table's cells).
HOW: dict[str, dict[str, str]] = {
    "claude-code": {"instructions": "`CLAUDE.md` in the workspace", "skills": "`.claude/skills/`",
                    "subagents": "`.claude/agents/`", "mcp": "`.mcp.json`", "tool_restriction": "`--tools`, "
                    "`--disallowedTools`", "system_prompt": "`--system-prompt \"\"`", "max_turns": "`--max-turns`"},
    "codex": {"instructions": "`AGENTS.md` (workspace, else `$CODEX_HOME/AGENTS.md`)",
              "skills": "`$CODEX_HOME/skills/`"},
    "gemini": {"instructions": "`GEMINI.md` (workspace, else `~/.gemini/GEMINI.md`)",
               "skills": "`~/.gemini/skills/`",
               "tool_restriction": "settings `tools.core` / `tools.exclude`",
               "max_turns": "settings `model.maxSessionTurns`"},
    "opencode": {"instructions": "`AGENTS.md` or `CLAUDE.md` in the workspace (`GEMINI.md` -> "
                 "`~/.config/opencode/AGENTS.md`)", "skills": "`.claude/skills/` (read natively)",
                 "tool_restriction": "config `permission` (`deny` removes a tool)"},
    "aider": {"instructions": "a read-only conventions file (`--read`)"},
    "mini-swe-agent": {"instructions": "appended to the system template", "max_turns": "`agent.step_limit`"},
}


def requested_features(subtest: Subtest) -> list[str]:
    """The features `subtest` asks for, in FEATURES order."""
    paths = [path.replace("\\", "/").removeprefix("./") for path in subtest.files]
    asked = set()
    if any(path in INSTRUCTION_FILES for path in paths):
        asked.add("instructions")
    if any(path.startswith(".claude/skills/") for path in paths):
        asked.add("skills")
    if any(path.startswith(".claude/agents/") for path in paths):
        asked.add("subagents")
    if any(path == ".mcp.json" for path in paths) or getattr(subtest, "mcp_servers", None):
        asked.add("mcp")  # `mcp_servers:` where the subtest format has it (resource library)
    if subtest.tools is not None and (subtest.tools.enabled is not None or subtest.tools.disabled):
        asked.add("tool_restriction")
    if subtest.system_prompt_mode == "none":
        asked.add("system_prompt")
    if subtest.max_turns is not None:
        asked.add("max_turns")
    return [feature for feature in FEATURES if feature in asked]


def unsupported(agent: str, subtest: Subtest) -> list[tuple[str, Support]]:
    """(feature, "no" | "not mapped") for each feature `subtest` asks for that `agent` cannot honour."""
    table = SUPPORT.get(agent)
    if table is None:
        return []  # an unknown agent is refused elsewhere, by name
    return [(feature, table[feature]) for feature in requested_features(subtest) if table[feature] != "yes"]


def describe_unsupported(agent: str, subtest: Subtest, where: str) -> str | None:
    """A one-line refusal naming the subtest, the feature(s) and the agent, or None when all is fine."""
    missing = unsupported(agent, subtest)
    if not missing:
        return None
    parts = [f"{feature} ({'the agent has none' if support == 'no' else 'not mapped by tierbench yet'})"
             for feature, support in missing]
    return (f"subtest {where} asks for {', '.join(parts)}, which the {agent} agent does not support. "
            f"Fix: run this tier with another agent (--agent or the subtest's `agent:`), or drop the "
            f"{'feature' if len(missing) == 1 else 'features'} from the subtest")


# Agents whose adapter maps --thinking (None/Low/High/UltraThink) onto a setting of the agent.
THINKING_AGENTS = frozenset({"demo", "command", "claude-code", "codex"})


def describe_thinking(agent: str, thinking: str | None, where: str) -> str | None:
    """A refusal for a thinking level the agent's adapter cannot set, or None."""
    if not thinking or thinking == "None" or agent in THINKING_AGENTS or agent not in SUPPORT:
        return None
    return (f"{where}: --thinking {thinking} is not mapped for the {agent} agent (only "
            f"{', '.join(sorted(THINKING_AGENTS - {'demo', 'command'}))} map it). Fix: leave --thinking at None "
            f"for this agent, or pass the agent's own setting through the subtest's agent_args or env")


def readme_table() -> str:
    """The README's feature table, generated from SUPPORT and HOW."""
    agents = ["claude-code", "codex", "gemini", "opencode", "aider", "mini-swe-agent"]
    lines = ["| feature | " + " | ".join(f"{a} {PINNED_VERSIONS[a]}" for a in agents) + " |",
             "|---|" + "---|" * len(agents)]
    for feature in FEATURES:
        cells = []
        for agent in agents:
            support = SUPPORT[agent][feature]
            cells.append(HOW.get(agent, {}).get(feature, "yes") if support == "yes" else support)
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
