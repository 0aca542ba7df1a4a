"""Reading the final Claude-Code-style JSON result out of an agent's stdout.

Claude Code prints either one JSON object (`--output-format json`) or one JSON object per line
(`--output-format stream-json`), whose last `{"type": "result", ...}` line carries usage and cost.
Wrappers and shells often print noise around it, so both forms are read tolerantly: a result we
cannot find is `None`, never an exception.
"""

from __future__ import annotations

import json
from typing import Any

from tierbench.models import AgentOutcome, TokenStats


def _load_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_result_json(stdout: str) -> dict[str, Any] | None:
    """The final result object in `stdout`, or None.

    Order of preference: the whole stdout as one object; else the last line whose object has
    `type == "result"`; else the last line that is a JSON object with result-like fields.
    """
    text = stdout.strip()
    if not text:
        return None
    whole = _load_object(text)
    if whole is not None:
        return whole
    fallback: dict[str, Any] | None = None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        obj = _load_object(line)
        if obj is None:
            continue
        if obj.get("type") == "result":
            return obj
        # A single-object result printed after noise lines has no "type" in some versions.
        if fallback is None and "type" not in obj and ("usage" in obj or "result" in obj):
            fallback = obj
    return fallback


def _as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _as_float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def apply_result_fields(outcome: AgentOutcome, result: dict[str, Any]) -> AgentOutcome:
    """Copy usage, cost, turns, error flags and result text from a result object into `outcome`.

    Returns a new outcome; fields the result does not mention keep their current values.
    """
    update: dict[str, Any] = {}
    usage = result.get("usage")
    if isinstance(usage, dict):
        update["token_stats"] = TokenStats(
            input_tokens=_as_int(usage.get("input_tokens")),
            output_tokens=_as_int(usage.get("output_tokens")),
            cache_creation_tokens=_as_int(usage.get("cache_creation_input_tokens")),
            cache_read_tokens=_as_int(usage.get("cache_read_input_tokens")),
        )
    cost = result.get("total_cost_usd", result.get("cost_usd"))
    if cost is not None:
        update["cost_usd"] = _as_float(cost)
        update["cost_source"] = "agent"
    if result.get("num_turns") is not None:
        update["num_turns"] = _as_int(result["num_turns"])
    if "is_error" in result:
        update["is_error"] = bool(result["is_error"])
    status = result.get("api_error_status")
    if status is not None:
        try:
            update["api_error_status"] = int(status)
        except (TypeError, ValueError):
            pass
    text = result.get("result")
    if isinstance(text, str):
        update["result_text"] = text
    return outcome.model_copy(update=update)
