"""A fake Anthropic Messages API on 127.0.0.1, good enough to drive the real Claude Code CLI.

    script = [tool_turn("Bash", {"command": "echo hi > hello.txt"}), text_turn("done")]
    with FakeAnthropic(script) as api:
        env["ANTHROPIC_BASE_URL"] = api.url
        ... run claude ...
    api.requests          # every request, in order, with its parsed JSON body and how it was routed
    api.bodies_text()     # every request body as one string, e.g. to grep for leaked markers

With `log_path=`, every request is also appended to that file as it arrives, one JSON line each
({"method", "path", "route", "status", "body"}), so a test (or a person) can grep what reached the API.

What it serves:
  POST /v1/messages               streaming (SSE) and non-streaming, from the script
  POST /v1/messages/count_tokens  a rough estimate
  anything else                   200 `{}` for GET/HEAD and POST (recorded, so tests can see it)

Routing. The script advances only on the *main conversation*: a /v1/messages request that offers
tools, or whose last message carries a tool_result. Anything else is a side request (title/topic
generation, quota probes, a `--tools ""` preflight, ...) and gets `side_text`; pass `main_when=` to
route differently. For a main request the scripted turn is chosen by the number of assistant
messages already in the conversation, not by a counter: a retried request gets the same turn again
and a side request can never consume a turn. Past the end of the script the answer is `final_text`.

What the pinned CLI (2.1.330, print mode, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1) actually sends:
only `POST /v1/messages?beta=true` with `stream: true` (plus `HEAD /api/hello` when nonessential
traffic is allowed). Conversation messages may include `role: "system"` entries; they are not
counted as turns.

MCP. `mcp_tool_turn("probe", "whoami")` scripts a call of an MCP server's tool by the name the CLI
gives it (`mcp__probe__whoami`); `offered_mcp_tools(request.body)` lists the MCP tools a request offered.

Errors. `error=rate_limited(retry_after=3)` answers every /v1/messages* request with 429 and a
`retry-after` header (or only the first `count` of them); `auth_error()` does the same with 401.

Usage. Each turn reports the `Usage` it was given (defaults below), so tests know exactly how many
tokens the CLI was told about. Side requests report `side_usage`.

The server runs in a daemon thread and stops on `__exit__`, on `stop()`, or by itself after
`max_lifetime` seconds, so a test that forgets it cannot leave it running.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable

from tests.support.loopback import LoopbackServer

__all__ = [
    "ErrorMode",
    "FakeAnthropic",
    "RecordedRequest",
    "ToolUse",
    "Turn",
    "Usage",
    "auth_error",
    "mcp_tool_name",
    "mcp_tool_turn",
    "offered_mcp_tools",
    "rate_limited",
    "text_turn",
    "tool_turn",
]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 100
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str | None = None  # generated when None


@dataclass(frozen=True)
class Turn:
    """One scripted assistant message: optional text, then any tool calls."""

    text: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()
    usage: Usage = field(default_factory=Usage)

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_uses else "end_turn"


def tool_turn(name: str, input: dict[str, Any], *, text: str | None = None, usage: Usage | None = None) -> Turn:
    return Turn(text=text, tool_uses=(ToolUse(name, input),), usage=usage or Usage())


def mcp_tool_name(server: str, tool: str) -> str:
    """The name Claude Code gives an MCP server's tool (checked with CLI 2.1.330)."""
    return f"mcp__{server}__{tool}"


def mcp_tool_turn(server: str, tool: str, input: dict[str, Any] | None = None, *, text: str | None = None,
                  usage: Usage | None = None) -> Turn:
    """A turn that calls the tool `tool` of the MCP server `server` by name."""
    return tool_turn(mcp_tool_name(server, tool), input or {}, text=text, usage=usage)


def offered_mcp_tools(body: Any) -> set[str]:
    """Every MCP tool name a request offers the model. The CLI defers MCP tools behind ToolSearch,
    so their names appear in the request text rather than only in `tools`; search all of it."""
    return set(re.findall(r"mcp__[A-Za-z0-9_-]+?__[A-Za-z0-9_-]+", json.dumps(body)))


def text_turn(text: str, *, usage: Usage | None = None) -> Turn:
    return Turn(text=text, usage=usage or Usage())


@dataclass(frozen=True)
class ErrorMode:
    """Answer /v1/messages* with an API error: every request, or only the first `count`."""

    status: int = 429
    error_type: str = "rate_limit_error"
    message: str = "This request would exceed your organization's rate limit. Please try again later."
    retry_after: float | None = 3
    count: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers


def rate_limited(retry_after: float | None = 3, count: int | None = None,
                 message: str | None = None) -> ErrorMode:
    return ErrorMode(retry_after=retry_after, count=count,
                     **({"message": message} if message is not None else {}))


def auth_error(count: int | None = None) -> ErrorMode:
    return ErrorMode(status=401, error_type="authentication_error", message="invalid x-api-key",
                     retry_after=None, count=count)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, raw text when not JSON, None when empty
    route: str  # "main", "side", "count_tokens", "error", "other"
    status: int = 200
    turn_index: int | None = None  # the script index answered, for main requests
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream")) if isinstance(self.body, dict) else False


_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):020d}"


class FakeAnthropic(LoopbackServer):
    def __init__(
        self,
        script: list[Turn] | None = None,
        *,
        error: ErrorMode | None = None,
        final_text: str = "(fake server: script exhausted)",
        side_text: str = "ok",
        side_usage: Usage = Usage(input_tokens=0, output_tokens=0),
        max_lifetime: float = 300.0,
        main_when: Callable[[dict[str, Any]], bool] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.script = list(script or [])
        self.error = error
        self.final_text = final_text
        self.side_text = side_text
        self.side_usage = side_usage
        self.max_lifetime = max_lifetime
        self.main_when = main_when
        self.requests: list[RecordedRequest] = []
        self.log_path = log_path
        self._lock = threading.Lock()
        self._errors_sent = 0

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})

    # -- views for tests -------------------------------------------------------------------------

    def requests_for(self, route: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == route]

    @property
    def main_requests(self) -> list[RecordedRequest]:
        return self.requests_for("main")

    def reported_usage(self, routes: tuple[str, ...] = ("main",)) -> Usage:
        """Sum of the usage this server reported in successful responses of the given routes."""
        totals = dict.fromkeys(Usage().as_dict(), 0)
        with self._lock:
            answered = [r for r in self.requests if r.route in routes and r.status == 200]
        for req in answered:
            usage = self._turn_for(req.turn_index).usage if req.route == "main" else self.side_usage
            for k, v in usage.as_dict().items():
                totals[k] += v
        return Usage(**totals)

    def bodies_text(self) -> str:
        with self._lock:
            return "\n".join(json.dumps(r.body) for r in self.requests)

    def paths(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path} -> {r.status} ({r.route})" for r in self.requests]

    # -- behaviour -------------------------------------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)
            if self.log_path is not None:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"method": req.method, "path": req.path, "route": req.route,
                                          "status": req.status, "body": req.body}) + "\n")

    def _take_error(self) -> ErrorMode | None:
        with self._lock:
            if self.error is None:
                return None
            if self.error.count is not None and self._errors_sent >= self.error.count:
                return None
            self._errors_sent += 1
            return self.error

    def _turn_for(self, index: int | None) -> Turn:
        if index is not None and 0 <= index < len(self.script):
            return self.script[index]
        return Turn(text=self.final_text)

    def is_main(self, body: Any) -> bool:
        if not isinstance(body, dict):
            return False
        if self.main_when is not None:
            return bool(self.main_when(body))
        if body.get("tools"):
            return True
        messages = body.get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        content = last.get("content")
        return isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content)

    @staticmethod
    def turn_index(body: dict[str, Any]) -> int:
        return sum(1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant")


def _message(turn: Turn, model: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The non-streaming message and its content blocks (tool ids filled in)."""
    blocks: list[dict[str, Any]] = []
    if turn.text is not None:
        blocks.append({"type": "text", "text": turn.text})
    for tool in turn.tool_uses:
        blocks.append({"type": "tool_use", "id": tool.id or _new_id("toolu"), "name": tool.name, "input": tool.input})
    message = {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": turn.stop_reason,
        "stop_sequence": None,
        "usage": turn.usage.as_dict(),
    }
    return message, blocks


def _sse(turn: Turn, model: str) -> bytes:
    message, blocks = _message(turn, model)
    events: list[tuple[str, dict[str, Any]]] = []
    start_usage = {**turn.usage.as_dict(), "output_tokens": 1}
    events.append(("message_start", {"type": "message_start",
                                     "message": {**message, "content": [], "stop_reason": None, "usage": start_usage}}))
    events.append(("ping", {"type": "ping"}))
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            text = block["text"]
            for piece in [text[i:i + 16] for i in range(0, len(text), 16)] or [""]:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "text_delta", "text": piece}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {**block, "input": {}}}))
            raw = json.dumps(block["input"])
            for piece in [raw[i:i + 16] for i in range(0, len(raw), 16)]:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": turn.usage.output_tokens}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnthropic
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _send(self, status: int, payload: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("request-id", _new_id("req"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def do_GET(self) -> None:
        self._other(None)

    def do_HEAD(self) -> None:
        self._other(None)

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if not path.startswith("/v1/messages"):
            self._other(body)
            return
        fake = self.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        error = fake._take_error()
        if error is not None:
            fake._record(RecordedRequest("POST", self.path, headers, body, "error", error.status))
            extra = {"retry-after": f"{error.retry_after:g}"} if error.retry_after is not None else {}
            if error.status == 429:
                extra["anthropic-ratelimit-requests-remaining"] = "0"
            extra.update(dict(error.headers))
            self._json(error.status, {"type": "error", "error": {"type": error.error_type, "message": error.message}},
                       headers=extra)
            return
        if path.startswith("/v1/messages/count_tokens"):
            fake._record(RecordedRequest("POST", self.path, headers, body, "count_tokens"))
            self._json(200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
            return
        if path.rstrip("/") != "/v1/messages":
            fake._record(RecordedRequest("POST", self.path, headers, body, "other"))
            self._json(200, {})
            return
        if not isinstance(body, dict):
            fake._record(RecordedRequest("POST", self.path, headers, body, "error", 400))
            self._json(400, {"type": "error",
                             "error": {"type": "invalid_request_error", "message": "body must be JSON"}})
            return
        model = str(body.get("model") or "claude-fake")
        if fake.is_main(body):
            index = fake.turn_index(body)
            fake._record(RecordedRequest("POST", self.path, headers, body, "main", turn_index=index))
            turn = fake._turn_for(index)
        else:
            fake._record(RecordedRequest("POST", self.path, headers, body, "side"))
            turn = Turn(text=fake.side_text, usage=fake.side_usage)
        if body.get("stream"):
            self._send(200, _sse(turn, model), content_type="text/event-stream",
                       headers={"Cache-Control": "no-cache"})
        else:
            self._json(200, _message(turn, model)[0])

    def _other(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake._record(RecordedRequest(self.command, self.path, headers, body, "other"))
        self._json(200, {})
