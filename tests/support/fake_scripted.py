"""What the fake model APIs for the other agents share: a script of turns, error modes, request
recording and the loopback lifecycle. Each protocol lives in its own module:

    fake_responses.py   OpenAI Responses API, streaming SSE          (Codex CLI)
    fake_chat.py        Chat Completions, SSE and non-streaming      (OpenCode, Aider, mini-swe-agent)
    fake_gemini.py      Gemini streamGenerateContent SSE             (Gemini CLI)

A script is a list of `Turn`s: a turn with `calls` asks the agent to run tools, a turn without
them is the final message. Which turn answers a request is decided by the conversation the agent
sends (how many assistant turns it already holds), never by a counter, so a retried request gets
the same turn again and a side request (a title, a classifier) can never consume one. Past the
end of the script every main request gets `final_text`.

Errors: `error=ErrorMode(429, retry_after=2)` answers every model request with that status (or
only the first `count`), in the protocol's own error body; `rate_limited()` and `auth_error()`
are the usual two. Usage: each turn reports its `Usage`, and `reported_usage()` sums what the
agent was told, so a test can compare it with what tierbench recorded.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from collections.abc import Callable
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 100  # including cached
    output_tokens: int = 20  # including reasoning
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cached_tokens + other.cached_tokens, self.reasoning_tokens + other.reasoning_tokens)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    text: str | None = None
    calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)


def tool_turn(name: str, arguments: dict[str, Any], *, text: str | None = None,
              usage: Usage | None = None) -> Turn:
    return Turn(text=text, calls=(ToolCall(name, arguments),), usage=usage or Usage())


def text_turn(text: str, *, usage: Usage | None = None) -> Turn:
    return Turn(text=text, usage=usage or Usage())


@dataclass(frozen=True)
class ErrorMode:
    status: int = 429
    retry_after: float | None = 2
    count: int | None = None  # only the first `count` model requests fail; None: all of them
    message: str | None = None  # None: the protocol's usual text for the status


def rate_limited(retry_after: float | None = 2, count: int | None = None) -> ErrorMode:
    return ErrorMode(429, retry_after=retry_after, count=count)


def auth_error(count: int | None = None) -> ErrorMode:
    return ErrorMode(401, retry_after=None, count=count)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    route: str  # "main", "side", "error", "other"
    status: int = 200
    turn_index: int | None = None
    at: float = field(default_factory=time.monotonic)


_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


class ScriptedServer(LoopbackServer):
    """Base of the fake APIs. Subclasses implement `handle_post` (and may override `handle_get`)."""

    def __init__(self, script: list[Turn], *, error: ErrorMode | None = None, final_text: str = "Done.",
                 side_text: str = "ok", model_version: str = "fake-model-001"):
        self.script = list(script)
        self.error = error
        self.final_text = final_text
        self.side_text = side_text
        self.model_version = model_version
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._errors_sent = 0

    # -- what tests read
    def main_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == "main"]

    def error_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == "error"]

    def answered_turns(self) -> list[Turn]:
        """Each scripted turn the agent received, once per turn (retries of one turn count once)."""
        seen: dict[int, Turn] = {}
        for request in self.main_requests():
            if request.turn_index is not None and request.turn_index < len(self.script):
                seen[request.turn_index] = self.script[request.turn_index]
        return [seen[i] for i in sorted(seen)]

    def reported_usage(self) -> Usage:
        """The usage of the main turns the agent was sent (each once)."""
        total = Usage(0, 0, 0, 0)
        for turn in self.answered_turns():
            total = total + turn.usage
        final_requests = {r.turn_index for r in self.main_requests()
                          if r.turn_index is not None and r.turn_index >= len(self.script)}
        for _ in final_requests:
            total = total + Usage()
        return total

    def turn(self, index: int) -> Turn:
        return self.script[index] if index < len(self.script) else text_turn(self.final_text)

    # -- error mode
    def take_error(self) -> ErrorMode | None:
        with self._lock:
            if self.error is None:
                return None
            if self.error.count is not None and self._errors_sent >= self.error.count:
                return None
            self._errors_sent += 1
            return self.error

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- the request flow every protocol shares
    def not_found(self, handler: "ScriptedHandler", path: str, body: Any, payload: Any) -> None:
        """A route the fake does not serve: recorded as "other", answered 404 in the protocol's shape."""
        self.record(RecordedRequest("POST", path, dict(handler.headers), body, "other"))
        handler.send_json(404, payload)

    def answer_model_request(self, handler: "ScriptedHandler", path: str, body: Any, *,
                             error_body: Callable[[ErrorMode], Any], is_main: Callable[[dict[str, Any]], bool],
                             turn_index: Callable[[dict[str, Any]], int],
                             answer: Callable[[dict[str, Any], Turn], None], side_turn: Turn) -> None:
        """A model call: a pending error mode answers first (in `error_body`'s shape); a request that
        is not a main turn (`is_main` false: a title, a classifier) gets `side_turn`; a main request
        gets the script's turn for its position in the conversation (`turn_index`)."""
        headers = dict(handler.headers)
        mode = self.take_error()
        if mode is not None:
            self.record(RecordedRequest("POST", path, headers, body, "error", status=mode.status))
            handler.send_error_mode(mode, error_body(mode))
            return
        body = body if isinstance(body, dict) else {}
        if not is_main(body):
            self.record(RecordedRequest("POST", path, headers, body, "side"))
            answer(body, side_turn)
            return
        index = turn_index(body)
        self.record(RecordedRequest("POST", path, headers, body, "main", turn_index=index))
        answer(body, self.turn(index))

    # -- protocol hooks
    def handle_post(self, handler: "ScriptedHandler", path: str, body: Any) -> None:
        raise NotImplementedError

    def handle_get(self, handler: "ScriptedHandler", path: str) -> None:
        self.record(RecordedRequest("GET", path, dict(handler.headers), None, "other"))
        handler.send_json(200, {"object": "list", "data": [], "models": []})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(ScriptedHandler):
            owner = server

        return Handler


class ScriptedHandler(BaseHTTPRequestHandler):
    owner: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.owner.handle_get(self, self.path)

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.owner.handle_post(self, self.path, body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_sse(self, events: list[tuple[str | None, Any]]) -> None:
        """Server-sent events: (event name or None, JSON payload or a raw string such as [DONE])."""
        chunks = []
        for name, payload in events:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            chunks.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
        body = "".join(chunks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_mode(self, mode: ErrorMode, payload: Any) -> None:
        headers = {}
        if mode.retry_after is not None:
            headers["Retry-After"] = str(int(mode.retry_after)) if float(mode.retry_after).is_integer() \
                else str(mode.retry_after)
        self.send_json(mode.status, payload, headers)
