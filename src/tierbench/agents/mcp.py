"""MCP server configuration for agents that support MCP.

A subtest's `mcp_servers` (composed from the library or given inline) are written in Claude Code's
`{"mcpServers": {...}}` format. Values that name environment variables (`${NAME}`) are written as
they are: the agent expands them when it starts the server, so a secret never reaches a file.
The variables themselves are passed to the agent's process from tierbench's own environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tierbench.resources import McpServer
from tierbench.store.atomic import atomic_write_text

# `${NAME}` without a `:-default` must be set; `${NAME:-x}` may be missing.
_REQUIRED_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def mcp_config(servers: dict[str, McpServer]) -> dict:
    return {"mcpServers": {name: server.model_dump(mode="json", exclude_defaults=True)
                           for name, server in sorted(servers.items())}}


def write_mcp_config(path: Path, servers: dict[str, McpServer]) -> Path:
    atomic_write_text(path, json.dumps(mcp_config(servers), indent=2) + "\n")
    return path


def referenced_env(servers: dict[str, McpServer], environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(the referenced variables that are set, "server: NAME" for required ones that are not)."""
    present: dict[str, str] = {}
    missing: list[str] = []
    for name, server in sorted(servers.items()):
        texts = [server.command or "", server.url or "", *server.args, *server.env.values(), *server.headers.values()]
        required = {m for text in texts for m in _REQUIRED_REF.findall(text)}
        for var in server.env_refs():
            if var in environ:
                present[var] = environ[var]
            elif var in required:
                missing.append(f"MCP server {name!r} needs the environment variable {var}")
    return present, missing
