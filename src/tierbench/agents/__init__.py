"""Agent adapters by name.

Adapters are imported lazily: the demo agent must work even when an optional adapter (or its
dependencies) is broken or still being written, and `tierbench --help` should not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierbench.agents.base import Agent

AGENT_NAMES: tuple[str, ...] = ("demo", "command", "claude-code")


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
    raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(AGENT_NAMES)}")


__all__ = ["AGENT_NAMES", "get_agent"]
