"""Fake LLM judge APIs on 127.0.0.1: Anthropic Messages and OpenAI chat completions, scripted.

    with FakeJudgeAPI([rate_limited(1)] * 3, default=scores({"a": 1, "b": 0.5})) as api:
        AnthropicJudge("claude-x", base_url=api.url).judge(ctx)       # POST /v1/messages
        OpenAIJudge("gpt-x", base_url=api.openai_url).judge(ctx)      # POST /v1/chat/completions
    api.requests         # every request in arrival order: path, headers, parsed body, status answered
    api.max_in_flight    # the most requests the server was handling at the same moment

Both endpoints share one script, consumed in arrival order; past its end every request gets
`default` (a 500 when there is none, so a test that under-scripts fails loudly). A reply is
rendered in the envelope of the endpoint it answers, so one script works for both providers.
`delay` (per server, plus per reply) holds each request open, which makes concurrency observable.

The server runs in a daemon thread, stops on `__exit__`/`stop()`, or by itself after
`max_lifetime` seconds.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer

__all__ = [
    "FakeJudgeAPI",
    "RecordedRequest",
    "Reply",
    "fenced",
    "insufficient_quota",
    "malformed",
    "overloaded",
    "rate_limited",
    "scores",
    "server_error",
    "text_reply",
]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    text: str = ""  # the assistant's text, for a 200
    error_type: str = ""  # for errors: rate_limit_error, overloaded_error, insufficient_quota, api_error
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    input_tokens: int = 1200
    output_tokens: int = 150


def scores(item_scores: dict[str, float | Any], reasoning: str = "Solid work overall.", **kw: Any) -> Reply:
    """A valid judgment scoring exactly the given items."""
    return text_reply(_judgment_json(item_scores, reasoning), **kw)


def fenced(item_scores: dict[str, float | Any], reasoning: str = "Fine.", **kw: Any) -> Reply:
    """A valid judgment wrapped in prose and a ```json fence, as chatty models answer."""
    body = _judgment_json(item_scores, reasoning, indent=2)
    return text_reply(f"Here is my assessment of the change.\n\n```json\n{body}\n```\n\nLet me know if...", **kw)


def malformed(**kw: Any) -> Reply:
    return text_reply("I think the agent did a pretty good job, maybe 8/10. {not json", **kw)


def text_reply(text: str, **kw: Any) -> Reply:
    return Reply(text=text, **kw)


def rate_limited(retry_after: float | None = 1, **kw: Any) -> Reply:
    headers = (("retry-after", f"{retry_after:g}"),) if retry_after is not None else ()
    return Reply(status=429, error_type="rate_limit_error", headers=headers,
                 message="This request would exceed your rate limit. Please try again later.", **kw)


def overloaded(**kw: Any) -> Reply:
    return Reply(status=529, error_type="overloaded_error", message="Overloaded", **kw)


def insufficient_quota(**kw: Any) -> Reply:
    return Reply(status=429, error_type="insufficient_quota",
                 message="You exceeded your current quota, please check your plan and billing details.", **kw)


def server_error(status: int = 500, **kw: Any) -> Reply:
    return Reply(status=status, error_type="api_error", message="Internal server error", **kw)


def _judgment_json(item_scores: dict[str, Any], reasoning: str, indent: int | None = None) -> str:
    items = [{"id": item_id, "score": score, "reasoning": f"item {item_id} judged"}
             for item_id, score in item_scores.items()]
    return json.dumps({"items": items, "reasoning": reasoning}, indent=indent)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when not JSON
    status: int = 0  # what the server answered
    at: float = field(default_factory=time.monotonic)


_ids = itertools.count(1)
_SCRIPT_EXHAUSTED = Reply(status=500, error_type="api_error", message="fake judge API: script exhausted")


class FakeJudgeAPI(LoopbackServer):
    def __init__(self, script: list[Reply] | tuple[Reply, ...] = (), *, default: Reply | None = None,
                 delay: float = 0.0, max_lifetime: float = 120.0) -> None:
        self.script = list(script)
        self.default = default
        self.delay = delay
        self.max_lifetime = max_lifetime
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._served = 0
        self._lock = threading.Lock()

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI judges (they append /chat/completions)."""
        return self.url + "/v1"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    # -- serving -------------------------------------------------------------------------------

    def _next_reply(self) -> Reply:
        with self._lock:
            index, self._served = self._served, self._served + 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        if index < len(self.script):
            return self.script[index]
        return self.default or _SCRIPT_EXHAUSTED

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _render(reply: Reply, provider: str, model: str) -> dict[str, Any]:
    if reply.status != 200:
        if provider == "anthropic":
            return {"type": "error", "error": {"type": reply.error_type, "message": reply.message}}
        return {"error": {"message": reply.message, "type": reply.error_type, "code": reply.error_type}}
    if provider == "anthropic":
        return {"id": f"msg_fake_{next(_ids)}", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": reply.text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}}
    return {"id": f"chatcmpl-fake{next(_ids)}", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                      "total_tokens": reply.input_tokens + reply.output_tokens}}


_ROUTES = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}


def _handler_for(api: FakeJudgeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode("utf-8", "replace")
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            record = RecordedRequest(path=self.path, body=body,
                                     headers={k.lower(): v for k, v in self.headers.items()})
            with api._lock:
                api.requests.append(record)
            provider = _ROUTES.get(self.path.split("?")[0])
            if provider is None:
                record.status = 404
                self._send(404, {"error": {"type": "not_found_error", "message": f"no route {self.path}"}}, ())
                return
            reply = api._next_reply()
            try:
                time.sleep(api.delay + reply.delay)
            finally:
                # Counted out before answering: once the client has the answer it may send the next
                # request, which must not overlap this one in the count.
                api._done()
            model = body.get("model", "") if isinstance(body, dict) else ""
            record.status = reply.status
            self._send(reply.status, _render(reply, provider, model), reply.headers)

        def _send(self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
