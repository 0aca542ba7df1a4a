"""A tiny stdio MCP server for the e2e tests, written with the `mcp` Python SDK.

    python mcp_probe_server.py NAME

Tools:
  whoami()       -> "probe NAME answering; secret sha256 <first 12 hex of $PROBE_SECRET>"
                    (a digest, so the secret itself never reaches the transcript)
  add(a, b)      -> a + b

Every tool call is appended to $PROBE_LOG when it is set and writable (a debugging aid; a sandboxed
agent may not be able to write there).
"""

from __future__ import annotations

import hashlib
import os
import sys

from mcp.server.mcpserver import MCPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "probe"
server = MCPServer(NAME)


def _log(line: str) -> None:
    path = os.environ.get("PROBE_LOG")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"{NAME} {line}\n")
        except OSError:
            pass


def secret_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


@server.tool()
def whoami() -> str:
    """Say which probe server answers, and a digest of the secret it was given."""
    _log("whoami")
    return f"probe {NAME} answering; secret sha256 {secret_digest(os.environ.get('PROBE_SECRET', ''))}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _log(f"add {a} {b}")
    return a + b


if __name__ == "__main__":
    server.run("stdio")
