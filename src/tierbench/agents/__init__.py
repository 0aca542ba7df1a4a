"""Agent adapters by name.

Adapters are imported lazily: the demo agent must work even when an optional adapter (or its
dependencies) is broken or still being written, and `tierbench --help` should not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierbench.agents.base import Agent

AGENT_NAMES: tuple[str, ...] = ("demo", "command", "claude-code", "codex", "gemini", "opencode", "aider",
                                 "mini-swe-agent")
# name -> (module, class) of the adapters of the other agent CLIs, imported on first use
_CLI_ADAPTERS: dict[str, tuple[str, str]] = {
    "codex": ("tierbench.agents.codex", "CodexAgent"),
    "gemini": ("tierbench.agents.gemini", "GeminiAgent"),
    "opencode": ("tierbench.agents.opencode", "OpenCodeAgent"),
    "aider": ("tierbench.agents.aider", "AiderAgent"),
    "mini-swe-agent": ("tierbench.agents.mini_swe_agent", "MiniSweAgent"),
}


def get_agent(name: str) -> "Agent":
    """A fresh adapter for `name`. Raises ValueError naming the known agents for anything else."""
    if name == "demo":
        from tierbench.agents.demo import DemoAgent

        return DemoAgent()
    if name == "command":
        from tierbench.agents.command import CommandAgent

        return CommandAgent()
    if name == "claude-code":
        from tierbench.agents.claude_code import ClaudeCodeAgent

        return ClaudeCodeAgent()
    if name in _CLI_ADAPTERS:
        import importlib

        module, cls = _CLI_ADAPTERS[name]
        return getattr(importlib.import_module(module), cls)()
    raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(AGENT_NAMES)}")


__all__ = ["AGENT_NAMES", "get_agent"]
