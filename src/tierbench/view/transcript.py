"""A transcript, a page at a time.

`agent/transcript.jsonl` is the agent's raw event stream, one JSON object a line; it can reach
hundreds of megabytes. It is never read whole: `LineIndex` streams the file once to record where
each line starts (numpy over 4 MiB chunks), extends itself when the file grows (a run in flight),
and a page is one seek and one read of the lines it covers.

`entries()` turns one line into entries to show, through the reader `tierbench.transcript` registered
for the run's agent (text, tool call, tool result, result, with token usage); a line the reader has
no entry for is shown as raw JSON, never dropped. Nothing here builds HTML: the templates escape every string.
"""

from __future__ import annotations

import json
import os
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tierbench import transcript as agent_transcripts
from tierbench.agents import transcripts as agent_readers

# The adapters register their readers when they write a transcript; the viewer runs no adapter,
# so it registers every agent's reader itself (idempotent).
agent_readers.register()

PAGE_LINES = 100  # lines per page
BLOCK_CAP = 32 * 1024  # characters of one text block, tool input or output shown inline
_CHUNK = 4 * 1024 * 1024


class LineIndex:
    """Byte offsets of the line starts of one file, built by streaming and extended on growth."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.starts = array("q")
        self.indexed = 0  # bytes scanned; always just after a newline (or 0)
        self.ino: int | None = None
        self.lock = threading.Lock()

    def update(self) -> None:
        with self.lock:
            info = os.stat(self.path)
            if info.st_ino != self.ino or info.st_size < self.indexed:
                self.starts, self.indexed, self.ino = array("q"), 0, info.st_ino
            if info.st_size == self.indexed:
                return
            with open(self.path, "rb") as handle:
                handle.seek(self.indexed)
                position = self.indexed
                pending_start = position  # start of the line being scanned
                while True:
                    chunk = handle.read(_CHUNK)
                    if not chunk:
                        break
                    newlines = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
                    if len(newlines):
                        ends = newlines.astype(np.int64) + position + 1
                        starts = np.concatenate(([pending_start], ends[:-1]))
                        self.starts.frombytes(starts.astype(np.int64).tobytes())
                        pending_start = int(ends[-1])
                    position += len(chunk)
                # A last line without its newline is still being written: index it next time.
                self.indexed = pending_start

    @property
    def lines(self) -> int:
        return len(self.starts)

    def read_lines(self, first: int, count: int) -> list[tuple[int, bytes]]:
        """(line number from 1, raw bytes) for lines [first, first + count), first counted from 0."""
        with self.lock:
            if first >= len(self.starts):
                return []
            last = min(len(self.starts), first + count)
            begin = self.starts[first]
            end = self.starts[last] if last < len(self.starts) else self.indexed
        with open(self.path, "rb") as handle:
            handle.seek(begin)
            data = handle.read(end - begin)
        return [(first + number + 1, line) for number, line in enumerate(data.split(b"\n")[: last - first])]


_INDEXES: OrderedDict[str, LineIndex] = OrderedDict()
_INDEXES_LOCK = threading.Lock()
_MAX_INDEXES = 64


def line_index(path: Path) -> LineIndex:
    """The (cached) index of a transcript, brought up to date with the file."""
    key = str(Path(path))
    with _INDEXES_LOCK:
        index = _INDEXES.pop(key, None) or LineIndex(Path(path))
        _INDEXES[key] = index
        while len(_INDEXES) > _MAX_INDEXES:
            _INDEXES.popitem(last=False)
    index.update()
    return index


@dataclass
class Entry:
    kind: str  # text | thinking | tool_call | tool_result | usage | system | result | prompt | raw
    line: int
    text: str = ""
    name: str = ""  # tool name
    tool_id: str = ""
    is_error: bool = False
    truncated: int = 0  # characters not shown
    meta: dict[str, Any] = field(default_factory=dict)


def _cap(text: str) -> tuple[str, int]:
    if len(text) <= BLOCK_CAP:
        return text, 0
    return text[:BLOCK_CAP], len(text) - BLOCK_CAP


def _as_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict) and block.get("type") == "image":
                parts.append("[image]")
            else:
                parts.append(json.dumps(block, ensure_ascii=False))
        return "\n".join(parts)
    if content is None:
        return ""
    return json.dumps(content, ensure_ascii=False, indent=1)


def _entry(kind: str, line: int, text: str, **extra: Any) -> Entry:
    shown, cut = _cap(text)
    return Entry(kind=kind, line=line, text=shown, truncated=cut, **extra)


def entries(line_number: int, raw: bytes, fmt: str | None = "claude-code",
            seen_messages: set[str] | None = None) -> list[Entry]:
    """Entries of one transcript line, normalised by the reader `tierbench.transcript` registered for
    the run's agent (`fmt`). A line the reader has no entry for (an init or rate-limit event, an
    unknown agent) is shown as it is, never dropped. `seen_messages` puts a message's token usage
    on its first line only."""
    try:
        event = json.loads(raw)
    except ValueError:
        return [_entry("raw", line_number, raw.decode("utf-8", errors="replace"), is_error=True,
                       meta={"note": "unreadable line"})]
    if not isinstance(event, dict):
        return [_entry("raw", line_number, json.dumps(event, ensure_ascii=False))]
    normalised: list[agent_transcripts.TranscriptEntry] = []
    if fmt is not None:
        try:
            normalised = agent_transcripts.parse_events([event], fmt)
        except Exception:  # a reader's bug must not hide the line: it is shown raw below
            normalised = []
    if normalised:
        seen = seen_messages if seen_messages is not None else set()
        out: list[Entry] = []
        for item in normalised:
            out.append(_from_normalised(line_number, item, event))
            if item.usage is not None and item.kind != "result" and item.message_id not in seen:
                if item.message_id:
                    seen.add(item.message_id)
                out.append(Entry(kind="usage", line=line_number, meta=_token_meta(item.usage)))
        return out
    if event.get("type") == "system":
        tools = event.get("tools") or []
        servers = [s.get("name", "?") if isinstance(s, dict) else str(s) for s in event.get("mcp_servers") or []]
        summary = f"{event.get('subtype', 'system')}: model {event.get('model', '?')}, {len(tools)} tools"
        if servers:
            summary += f", MCP servers {', '.join(servers)}"
        return [_entry("system", line_number, summary, meta={"tools": ", ".join(map(str, tools))})]
    return [_entry("raw", line_number, json.dumps(event, ensure_ascii=False, indent=1))]


def _from_normalised(line_number: int, item: "agent_transcripts.TranscriptEntry", event: dict[str, Any]) -> Entry:
    if item.kind == "tool_call":
        return _entry("tool_call", line_number, json.dumps(item.tool_input, ensure_ascii=False, indent=1),
                      name=item.tool_name or "?", tool_id=item.tool_id or "",
                      meta={"summary": _input_summary(item.tool_input)})
    if item.kind == "tool_result":
        return _entry("tool_result", line_number, item.text, tool_id=item.tool_id or "", is_error=item.is_error)
    if item.kind == "result":
        meta: dict[str, Any] = {"cost": event.get("total_cost_usd"), "turns": event.get("num_turns"),
                                "subtype": event.get("subtype", "result")}
        return _entry("result", line_number, item.text, is_error=item.is_error, meta=meta)
    kind = {"assistant": "text", "user": "prompt", "system": "system"}.get(item.role, "text")
    return _entry(kind, line_number, item.text, meta={"tools": ""} if kind == "system" else {})


def _token_meta(usage: Any) -> dict[str, Any]:
    return {name: value for name, value in usage.model_dump().items() if value}


def _input_summary(value: Any) -> str:
    """A one-line hint of a tool call's input for the collapsed view (the command, the file...)."""
    if isinstance(value, dict):
        for name in ("command", "file_path", "path", "pattern", "url", "description", "prompt"):
            if isinstance(value.get(name), str):
                text = value[name].strip().splitlines()[0] if value[name].strip() else ""
                return text[:160]
        return ", ".join(list(value)[:5])[:160]
    return str(value)[:160]


@dataclass
class Page:
    entries: list[Entry]
    first: int  # first line of the page, from 0
    next: int | None  # first line of the next page, None at the end (for now)
    total: int  # lines indexed so far
    size: int  # bytes indexed so far


def page(path: Path, first: int = 0, count: int = PAGE_LINES, fmt: str | None = "claude-code") -> Page:
    """Lines [first, first + count) of a transcript as entries, read with the reader of `fmt`."""
    index = line_index(path)
    first = max(0, first)
    lines = index.read_lines(first, count)
    out: list[Entry] = []
    seen: set[str] = set()
    for number, raw in lines:
        if raw.strip():
            out.extend(entries(number, raw, fmt, seen))
    after = first + len(lines)
    return Page(entries=out, first=first, next=after if after < index.lines else None, total=index.lines,
                size=index.indexed)
