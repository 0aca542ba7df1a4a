"""Rate-limit detection for agents and judges: one entry point per source, knowledge in tables.

A rate-limited run must never be scored as a failure, and a finished run must never be parked as
rate limited. So detection looks only at an agent's error channels, and three tables hold what we
know, so that a new form is one row (plus one test case in tests/data/ratelimit_cases.yaml):

* `_RULES` classifies an error text: transient (429, overloaded: a short wait), quota (usage,
  daily or weekly limit: a long wait), or permanent (a request larger than a per-minute token
  limit: no wait can let it through, so it is an infrastructure error). A `strong` rule is
  specific enough to believe on a noisy channel; a weak one counts only in text already known to
  be an error (an `is_error` result, an error event, the agent's own error line).
* `_CHANNELS` says, per agent, which channels carry its own error shapes (result object, JSONL
  events, stdout, stderr, exit code) and how far each can be trusted. A command agent's stdout
  and stderr are the task's own output (test runners print "429 Too Many Requests"), so only the
  agent's own error shapes count there.
* `_SUCCESS` says, per agent, what a finished run looks like. A run that says it finished is never
  a rate limit, however many retried 429s appear earlier in its log.

`_RESET_FORMS` turns the reset phrasing into a UTC instant ("resets 3pm (Europe/Berlin)",
"resets Mon 12:00am", "try again at 2:51 PM", "reset after 8h44m7s", "|1760000000").
`detect_agent()` is the one entry point for agent output, `classify_http()`/`detect_http()` for
judge HTTP replies (headers: `retry-after` wins, else the bucket that is exhausted). An adapter
hands over everything it saw and records the answer:

    output = AgentOutput.from_streams("codex", exit_code=proc.exit_code, stdout=stdout_text,
                                      stderr=stderr_text, result=None)  # events: stdout's JSONL
    detection = detect_agent(output, now=datetime.now(timezone.utc), default_wait=ctx.default_rate_limit_wait)
    if detection is not None:
        detection.apply(outcome)  # outcome.rate_limit, or outcome.infra_error for a permanent error

tests/support/agent_shapes.py builds each agent's own output shape for tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tierbench.models import AgentOutcome, RateLimitInfo, RateLimitKind

__all__ = ["AgentOutput", "Detection", "detect_agent", "classify_http", "detect_http", "parse_reset_time",
           "is_rate_limit_text", "parse_jsonl", "local_reset_time", "AGENT_SHAPES", "detect_agent_output"]

UTC = timezone.utc
_MAX_MESSAGE = 300
Kind = Literal["transient", "quota", "permanent"]
_Q: Literal["quota"] = "quota"
_T: Literal["transient"] = "transient"
_P: Literal["permanent"] = "permanent"
_PRIORITY = {_P: 0, _Q: 1, _T: 2}  # no wait helps a permanent error; a quota outlasts a 429


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    kind: Kind
    strong: bool  # True: trustworthy on a noisy channel, not just in known error text
    check: Callable[[re.Match[str]], bool] | None = None  # a further condition on the match
    reason: str = ""  # for a permanent error: why no wait helps, and what does


def _rule(regex: str, kind: Kind, strong: bool, check: Callable[[re.Match[str]], bool] | None = None,
          reason: str = "") -> _Rule:
    return _Rule(re.compile(regex, re.IGNORECASE), kind, strong, check, reason)


_TOO_LARGE = ("the request is larger than the provider's per-minute token limit, so no wait can let it through; "
              "shorten the prompt or context, or raise the limit")
_NO_QUOTA = ("the plan has no quota at all for this model (quota limit 0), so no wait can let it through; "
             "enable billing for the key or choose another model")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


# First match wins, so the order is the precedence: permanent, then the explicit "not a quota"
# wording, then quotas (a 429 whose text says "usage limit" is a long wait), then transient forms.
_RULES: tuple[_Rule, ...] = (
    # OpenAI: "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit
    # 30000, Requested 31000": one request above a per-minute limit never fits, however long we wait.
    _rule(r"\brequest\s+too\s+large\b[^\n]{0,200}?\bper\s+(?:min|minute|day)\b"
          r"|\bmust\s+be\s+reduced\s+in\s+order\s+to\s+run\s+successfully", _P, True, reason=_TOO_LARGE),
    # Groq and others: "Limit 7000, Used 0, Requested 7895": one request above the whole limit.
    _rule(r"\bLimit:?\s+([\d,]+),\s+Used:?\s+[\d,]+,\s+Requested:?\s+([\d,]+)", _P, True,
          check=lambda m: _number(m[2]) > _number(m[1]), reason=_TOO_LARGE),
    # Gemini: "Quota exceeded for metric: ...free_tier_requests, limit: 0, model: gemini-3.1-pro".
    _rule(r"\bQuota\s+exceeded\s+for\s+metric:\s*\S+,\s*limit:\s*0\b", _P, True, reason=_NO_QUOTA),
    # Claude Code: "Server is temporarily limiting requests (not your usage limit) · Rate limited".
    _rule(r"\bnot\s+your\s+usage\s+limit\b|\btemporarily\s+limiting\s+requests\b", _T, True),
    # Gemini reuses its quota wording for per-minute limits, but then names the window: "Please
    # retry in 59.44s" / retryDelay / a PerMinute quota id. An exhausted daily quota never does.
    _rule(r"\bPlease\s+retry\s+in\s+[\d.]+\s*s\b|\bretryDelay\b|\bPerMinute", _T, True),
    _rule(r"\b(?:usage|weekly|daily|monthly|session|(?:5|five)[-\s]hours?)\s+(?:usage\s+)?limit\s+"
          r"(?:reached|exceeded|hit)", _Q, True),
    _rule(r"\byou(?:'|’|\s+ha)?ve\s+(?:hit|reached)\s+your\s+(?:[\w.-]+\s+){0,2}(?:limit|quota)", _Q, True),
    # Claude Code's newer wording: "Limit reached · resets 11:30am (Asia/Calcutta) · /upgrade".
    _rule(r"\blimit\s+reached\s*[·∙•|:-]\s*resets?\b", _Q, True),
    # Anthropic's monthly spend cap: a 429 rate_limit_error whose details say so; lifts next month.
    _rule(r"insufficient_quota|usage_limit_reached|enforced_spend_limit_reached|\bTerminalQuotaError\b", _Q, True),
    _rule(r"\bquota\s+(?:exceeded|exhausted)|\bexceeded\s+(?:your\s+|the\s+)?(?:current\s+)?quota"
          r"|\bexhausted\s+your\s+(?:\w+\s+){0,2}(?:quota|capacity)|\bquota\s+will\s+reset\b", _Q, True),
    # Bare mentions ("weekly usage limit") also appear in warnings such as "approaching ...".
    _rule(r"\b(?:weekly|(?:5|five)[-\s]hours?)\s+(?:usage\s+)?limit|\busage\s+limit", _Q, False),
    _rule(r"rate_limit_error|rate_limit_exceeded|overloaded_error|\bRateLimitError\b|\bRetryableQuotaError\b"
          r"|\bRESOURCE_EXHAUSTED\b|\bresource\s+(?:has\s+been\s+)?exhausted\b"
          r"|\bmodel\s+is\s+(?:currently\s+)?overloaded\b|\bno\s+capacity\s+available\b", _T, True),
    # A 429/529 counts on a noisy channel only in a status-like position, not as any number in a log.
    _rule(r"(?:\b(?:error|status|code|http(?:/[\d.]+)?)\W{0,3}|\()(?:429|529)\b"
          r"|\b(?:429|529)\s+(?:too\s+many|overloaded|\{)", _T, True),
    _rule(r"too\s+many\s+requests|\brate[\s_-]?limited\b", _T, True),
    _rule(r"\brate[\s_-]?limits?\s+(?:exceeded|reached|hit)\b"
          r"|\bexceed(?:s|ed|ing)?\s+(?:the\s+|your\s+)?(?:account's\s+|request\s+)?rate[\s_-]?limit", _T, True),
    _rule(r"\b(?:429|529)\b|\brate[\s_-]?limits?\b|\boverloaded\b", _T, False),
)


def _snippet(text: str, start: int) -> str:
    """The evidence around a match: its line, whitespace-collapsed, at most 300 characters."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    lo = max(line_start, start - 120) if line_end - line_start > _MAX_MESSAGE else line_start
    return " ".join(text[lo:line_end].split())[:_MAX_MESSAGE]


def _classify(text: str, *, strong_only: bool) -> tuple[Kind, str] | None:
    for rule in _RULES:
        if strong_only and not rule.strong:
            continue
        for match in rule.pattern.finditer(text):
            if rule.check is None or rule.check(match):
                return rule.kind, _snippet(text, match.start())
    return None


def _permanent_reason(text: str) -> str:
    for rule in _RULES:
        if rule.kind == _P and any(rule.check is None or rule.check(m) for m in rule.pattern.finditer(text)):
            return rule.reason
    return ""


def is_rate_limit_text(text: str) -> tuple[RateLimitKind, str] | None:
    """Classify a known error text as a rate limit: (kind, matched evidence), or None (also for a
    permanent "request too large", which is not a rate limit)."""
    found = _classify(text or "", strong_only=False)
    if found is None or found[0] == _P:
        return None
    return RateLimitKind(found[0]), found[1]


# --------------------------------------------------------------------------- reset times

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = r"mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:rs?|rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?"
# What introduces a reset instant: "resets 3pm", "reset at 9am", "try again at 2:51 PM".
_LEAD = r"\b(?:resets?|try\s+again|available\s+again)\s+"
# Minute and AM/PM are both optional here; _clock() insists on one, so "resets 5" stays ambiguous.
_TIME = r"(?P<h>\d{1,2})(?!\d)(?::(?P<m>\d{2})(?!\d))?(?:\s*(?P<ap>[ap])\.?m\b\.?)?"
# "(Europe/Berlin)", or an offset after the time: "10:57 PM GMT-3" (Gemini CLI).
_TZ = r"(?:\s*\(\s*(?P<tz>[A-Za-z][\w+\-/]{0,63})\s*\)|\s+(?P<off>(?:GMT|UTC)[+-]\d{1,2}(?::?\d{2})?)\b)?"
_UNIT = r"(?:milliseconds?|ms|minutes?|mins?|m|seconds?|secs?|s|hours?|hrs?|h|days?|d)(?![a-z])"
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _offset_zone(text: str) -> tzinfo | None:
    match = re.fullmatch(r"(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?", text, re.IGNORECASE)
    if match is None:
        return None
    delta = timedelta(hours=int(match[2]), minutes=int(match[3] or 0))
    return timezone(-delta if match[1] == "-" else delta) if delta < timedelta(hours=15) else None


def _match_zone(match: re.Match[str]) -> tzinfo | None:
    return _offset_zone(match["off"]) if match["off"] else _zone(match["tz"])


def _zone(name: str | None) -> tzinfo | None:
    """A tz name from the message; None means the machine's local zone (also for unknown names)."""
    if not name:
        return None
    if name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _localize(naive: datetime, zone: tzinfo | None) -> datetime:
    # A naive datetime's astimezone() applies the system's local rules (honours TZ + tzset()),
    # including DST on the target date rather than today's offset.
    return (naive if zone is None else naive.replace(tzinfo=zone)).astimezone(UTC)


def _today(now: datetime, zone: tzinfo | None) -> date:
    return (now.astimezone() if zone is None else now.astimezone(zone)).date()


def _clock(match: re.Match[str]) -> time | None:
    hour, minute, ampm = int(match["h"]), int(match["m"] or 0), (match["ap"] or "").lower()
    if not ampm and match["m"] is None:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "p" else 0)
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _from_epoch(match: re.Match[str], now: datetime) -> datetime | None:
    value = int(match["epoch"])
    return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)


def _from_iso(match: re.Match[str], now: datetime) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(match["iso"].replace(" ", "T")))
    except ValueError:
        return None


def _on_date(match: re.Match[str], now: datetime) -> datetime | None:
    clock = _clock(match) if match["h"] else time(0)
    if clock is None:
        return None
    zone = _match_zone(match)
    today = _today(now, zone)
    month, day = _MONTHS.index(match["mon"][:3].lower()) + 1, int(match["day"])
    try:
        day_of = date(int(match["year"] or today.year), month, day)
        if not match["year"] and day_of < today:  # the message never names a date in the past
            day_of = date(today.year + 1, month, day)
    except ValueError:
        return None
    return _localize(datetime.combine(day_of, clock), zone)


CLOCK_ROUNDING_GRACE = timedelta(minutes=15)


def _at_clock(match: re.Match[str], now: datetime) -> datetime | None:
    clock = _clock(match)
    if clock is None:
        return None
    zone = _match_zone(match)
    today = _today(now, zone)
    reset = _localize(datetime.combine(today, clock), zone)
    # A clock time already gone today names tomorrow's occurrence, except just after it: messages
    # round the reset ("resets 3pm"), so at 15:04 the limit has just reset rather than being a day off.
    if reset < now - CLOCK_ROUNDING_GRACE:
        reset = _localize(datetime.combine(today + timedelta(days=1), clock), zone)
    return reset


def _on_weekday(match: re.Match[str], now: datetime) -> datetime | None:
    """ "resets Mon 12:00am": the next such weekday and time (today only if it is still ahead)."""
    clock = _clock(match) if match["h"] else time(0)
    if clock is None:
        return None
    zone = _match_zone(match)
    today = _today(now, zone)
    ahead = (_WEEKDAYS.index(match["wd"][:3].lower()) - today.weekday()) % 7
    reset = _localize(datetime.combine(today + timedelta(days=ahead), clock), zone)
    if reset < now - CLOCK_ROUNDING_GRACE:  # that weekday is today and its time has gone: next week
        reset = _localize(datetime.combine(today + timedelta(days=ahead + 7), clock), zone)
    return reset


def _next_month(match: re.Match[str], now: datetime) -> datetime | None:
    """Anthropic's spend cap lifts at 00:00 UTC on the first day of the next month."""
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


def _duration(text: str) -> float | None:
    """Seconds in "5 minutes", "1h 30m", "6m0s", "20ms"; None when no amount is given."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(" + _UNIT + ")", text, re.IGNORECASE)
    if not parts:
        return None
    total = 0.0
    for amount, unit in parts:
        unit = unit.lower()
        scale = 0.001 if unit == "ms" or unit.startswith("milli") else _SECONDS[unit[0]]
        total += float(amount) * scale
    return total


def _after(match: re.Match[str], now: datetime) -> datetime | None:
    seconds = _duration(match["dur"])
    return None if seconds is None else now + timedelta(seconds=seconds)


def _after_seconds(match: re.Match[str], now: datetime) -> datetime | None:
    return now + timedelta(seconds=float(match["secs"]))


@dataclass(frozen=True)
class _ResetForm:
    pattern: re.Pattern[str]
    resolve: Callable[[re.Match[str], datetime], datetime | None]


# Most specific first: an absolute instant beats a date beats a clock time beats a duration.
_RESET_FORMS: tuple[_ResetForm, ...] = tuple(
    _ResetForm(re.compile(regex, re.IGNORECASE), resolve)
    for regex, resolve in (
        (r"\|\s*(?P<epoch>\d{9,13})(?!\d)", _from_epoch),  # "usage limit reached|1760000000"
        # Structured fields in an error JSON: Codex/ChatGPT "resets_at": 1775317531, Claude "resetsAt".
        (r"\breset(?:s_at|sAt|_at)\W{1,4}(?P<epoch>\d{9,13})(?!\d)", _from_epoch),
        (r"\bresets?_in_seconds\W{1,4}(?P<secs>\d+(?:\.\d+)?)", _after_seconds),
        (r"\benforced_spend_limit_reached\b", _next_month),
        (r"\bretryDelay\W{1,5}(?P<dur>\d+(?:\.\d+)?s)\b", _after),  # Gemini's google.rpc.RetryInfo
        (r"\breset\w*\W{1,5}(?:at\s+|on\s+)?(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
         r"(?:Z|[+-]\d{2}:?\d{2})?)", _from_iso),
        (_LEAD + r"(?:on\s+|at\s+)?(?P<mon>" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(?P<day>\d{1,2})"
         r"(?:st|nd|rd|th)?(?!\d)(?:,?\s+(?P<year>\d{4}))?(?:,?\s+(?:at\s+)?" + _TIME + ")?" + _TZ, _on_date),
        (_LEAD + r"(?:on\s+|at\s+)?(?P<wd>" + _WEEKDAY_NAMES + r")\b\.?,?(?:\s+(?:at\s+)?" + _TIME + ")?"
         + _TZ, _on_weekday),
        (_LEAD + r"(?:at\s+)?" + _TIME + _TZ, _at_clock),
        (r"\b(?:try\s+again|retry(?:ing)?|resets?|wait)\s+(?:again\s+)?(?:in|after|for)\s+(?P<dur>\d+(?:\.\d+)?\s*"
         + _UNIT + r"(?:[\s,]*(?:and\s+)?\d+(?:\.\d+)?\s*" + _UNIT + ")*)", _after),
    )
)


def parse_reset_time(text: str, *, now: datetime) -> datetime | None:
    """Reset time from message text, in UTC (tz-aware); None when the text names none."""
    now = _utc(now)
    for form in _RESET_FORMS:
        for match in form.pattern.finditer(text or ""):
            reset = form.resolve(match, now)
            if reset is not None:
                return reset
    return None


# --------------------------------------------------------------------------- agent output

@dataclass(frozen=True)
class AgentOutput:
    """Everything an adapter saw of one agent run, channel by channel."""

    agent: str  # "claude-code", "codex", "gemini", "opencode", "aider", "mini-swe-agent", "command"
    exit_code: int | None = None
    result: Mapping[str, Any] | None = None  # final result object (Claude/Gemini JSON, mini-swe-agent traj info)
    events: Sequence[Mapping[str, Any]] = ()  # parsed JSONL events (Codex, OpenCode, stream-json, Aider analytics)
    stdout: str = ""  # text-mode output
    stderr: str = ""

    @classmethod
    def from_streams(cls, agent: str, *, exit_code: int | None, stdout: str, stderr: str,
                     result: Mapping[str, Any] | None = None,
                     events: Sequence[Mapping[str, Any]] | None = None) -> AgentOutput:
        """The usual case: events are the JSON-object lines of stdout unless given."""
        return cls(agent, exit_code, result, tuple(parse_jsonl(stdout) if events is None else events),
                   stdout, stderr)


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """The JSON objects among `text`'s lines (other lines are skipped, never an error)."""
    events: list[dict[str, Any]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


@dataclass(frozen=True)
class Detection:
    """What the detector concluded: a rate limit to wait out, or a permanent error to report."""

    kind: Kind
    message: str  # the evidence, at most 300 characters
    channel: str  # result | events | stdout | stderr | exit_code | http
    reset_at: datetime | None = None  # UTC; None for a permanent error
    reset_known: bool = False  # False: reset_at is the configured fallback wait
    reason: str = ""  # for a permanent error: why no wait helps, and what does

    @property
    def is_rate_limit(self) -> bool:
        return self.kind != _P

    def rate_limit(self, source: Literal["agent", "judge", "preflight"] = "agent") -> RateLimitInfo | None:
        if not self.is_rate_limit or self.reset_at is None:
            return None
        return RateLimitInfo(kind=RateLimitKind(self.kind), source=source, reset_at=self.reset_at,
                             reset_known=self.reset_known, message=self.message[:_MAX_MESSAGE])

    @property
    def infra_error(self) -> str | None:
        if self.is_rate_limit:
            return None
        return f"{self.reason or 'a permanent error: no wait can let it through'} ({self.message})"

    def apply(self, outcome: AgentOutcome) -> None:
        """Record this detection on an adapter's outcome: a rate limit, or an infrastructure error."""
        if self.is_rate_limit:
            outcome.rate_limit = self.rate_limit("agent")
        else:
            outcome.infra_error = f"{outcome.infra_error}; {self.infra_error}" if outcome.infra_error else self.infra_error


@dataclass(frozen=True)
class _Evidence:
    channel: str
    text: str
    trusted: bool  # the text is known to be an error: weak rules count too
    status: int | None = None  # an HTTP status the agent reported for this error
    reset: datetime | None = None  # a reset instant the agent gave in a structured field
    headers: Mapping[str, Any] | None = None  # HTTP reply headers the agent passed on (OpenCode)
    at: datetime | None = None  # when the agent received the reply (header durations count from it)
    kind: Kind | None = None  # the shape itself says the kind (e.g. a rejected rate_limit_event)


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _status(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _epoch(value: Any) -> datetime | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds / 1000 if seconds > 10**11 else seconds, UTC)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _lines(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if pattern.search(line)]


# ---- Claude Code (also the command agent's documented output contract)

def _claude_result_is_error(result: Mapping[str, Any]) -> bool:
    return result.get("is_error") is True or str(result.get("subtype") or "").startswith("error")


def _claude_result_evidence(result: Mapping[str, Any], channel: str) -> Iterator[_Evidence]:
    # Any result-like object counts, "type" or not: parse_result_json accepts both.
    if _claude_result_is_error(result):
        text = "\n".join(t for t in (_text(result.get(k)) for k in ("result", "error", "errors")) if t)
        yield _Evidence(channel, text, True, _status(result.get("api_error_status")))


def _claude_result(out: AgentOutput) -> Iterator[_Evidence]:
    if isinstance(out.result, Mapping):
        yield from _claude_result_evidence(out.result, "result")


def _claude_events(out: AgentOutput) -> Iterator[_Evidence]:
    for event in out.events:
        kind, subtype = event.get("type"), str(event.get("subtype") or "")
        if kind == "result" or (kind is None and ("is_error" in event or "result" in event)):
            if event != out.result:
                yield from _claude_result_evidence(event, "events")
        elif kind == "rate_limit_event":  # "allowed" is telemetry; "rejected" is the limit itself
            info = event.get("rate_limit_info") or {}
            if isinstance(info, Mapping) and info.get("status") == "rejected":
                yield _Evidence("events", f"rate_limit_event rejected: {_text(info.get('rateLimitType'))} limit",
                                True, reset=_epoch(info.get("resetsAt")), kind=_Q)
        elif (kind == "error" and isinstance(event.get("error"), Mapping)) or (kind == "system" and subtype == "api_error"):
            # An API error object ({"type":"error","error":{"type":"rate_limit_error",...}}), not any
            # JSON line that says "error": a command agent's stdout may carry the task's own logs.
            yield _Evidence("events", _text(event), True)
        elif event.get("error") and event.get("is_api_error_message", kind == "assistant"):
            # Synthetic API-error message ({"type":"assistant","error":"rate_limit",...}): the reset
            # ("resets 6am") is in its text. Retries (system/api_retry) are not failures.
            content = _get(event, "message", "content")
            parts = [c.get("text", "") for c in content or [] if isinstance(c, Mapping)]
            yield _Evidence("events", "\n".join([_text(event["error"]), *[p for p in parts if isinstance(p, str)]]),
                            True)


# Claude Code's own error lines, as printed in text mode (`claude -p`) or by the SDK.
_CLAUDE_LINE = re.compile(
    r"^\s*(?:Error:\s*)?(?:API Error:|Claude AI usage limit reached|Claude usage limit reached"
    r"|You(?:'|’)ve hit your\b|Limit reached\s*[·∙•]|(?:5|five)-hour limit reached|Weekly limit reached"
    r"|(?:429|529) \{\"type\":\s*\"error\")", re.IGNORECASE)


def _claude_text(out: AgentOutput) -> Iterator[_Evidence]:
    if out.exit_code in (0, None) or out.result is not None:
        return
    for channel, text in (("stdout", out.stdout), ("stderr", out.stderr)):
        lines = _lines(text, _CLAUDE_LINE)
        if lines:
            yield _Evidence(channel, "\n".join(lines), True)


def _noisy(channel: str) -> Callable[[AgentOutput], Iterator[_Evidence]]:
    """A channel of the agent's own (not the task's) chatter: only strong rules count there."""
    def read(out: AgentOutput) -> Iterator[_Evidence]:
        text = getattr(out, channel)
        if text:
            yield _Evidence(channel, text, False)
    return read


# ---- Codex: `codex exec --json` JSONL on stdout; plain mode prints "ERROR: ..." on stderr

def _codex_events(out: AgentOutput) -> Iterator[_Evidence]:
    for event in out.events:
        kind = event.get("type")
        if kind == "error":
            yield _Evidence("events", _text(event.get("message") or event), True)
        elif kind == "turn.failed":
            yield _Evidence("events", _text(_get(event, "error", "message") or event.get("error") or event), True)
        elif kind == "item.completed" and _get(event, "item", "type") == "error":
            yield _Evidence("events", _text(_get(event, "item", "message")), True)


_CODEX_LINE = re.compile(r"^\s*(?:ERROR:|\[[^\]]*\]\s*ERROR|■|🖐|stream error:)")


def _codex_stderr(out: AgentOutput) -> Iterator[_Evidence]:
    lines = _lines(out.stderr, _CODEX_LINE)
    if lines:
        yield _Evidence("stderr", "\n".join(lines), True)


# ---- Gemini CLI: JSON result {"error": {...}}, stream-json events, its own stderr lines, exit code

def _gemini_error(obj: Mapping[str, Any], channel: str) -> Iterator[_Evidence]:
    error = obj.get("error")
    if error:
        yield _Evidence(channel, _text(error), True, _status(_get(obj, "error", "code")))


def _gemini_result(out: AgentOutput) -> Iterator[_Evidence]:
    if isinstance(out.result, Mapping):
        yield from _gemini_error(out.result, "result")


def _gemini_events(out: AgentOutput) -> Iterator[_Evidence]:
    for event in out.events:
        if event.get("type") == "error":
            yield _Evidence("events", _text(event.get("message") or event), True)
        elif event.get("type") == "result" and event.get("status") == "error":
            yield from _gemini_error(event, "events")


_GEMINI_LINE = re.compile(r"\[API Error:|\bTerminalQuotaError\b|\bRetryableQuotaError\b|Error when talking to Gemini"
                          r"|Quota exceeded for quota metric|^\s*Error:|\"status\":\s*\"RESOURCE_EXHAUSTED\"")


def _from_first(text: str, pattern: re.Pattern[str]) -> str:
    """The text from the first line matching `pattern` to the end: error reports span lines."""
    lines = (text or "").splitlines()
    first = next((i for i, line in enumerate(lines) if pattern.search(line)), None)
    return "" if first is None else "\n".join(lines[first:])


def _gemini_stderr(out: AgentOutput) -> Iterator[_Evidence]:
    report = _from_first(out.stderr, _GEMINI_LINE)
    if report:
        yield _Evidence("stderr", report, True)


def _gemini_exit(out: AgentOutput) -> Iterator[_Evidence]:
    if out.exit_code == 429 & 0xFF:  # Gemini CLI exits with the HTTP status & 0xFF: 429 -> 173
        yield _Evidence("exit_code", f"gemini exited {out.exit_code} (HTTP 429 & 0xFF)", True, 429)


# ---- OpenCode: {"type":"error","error":{"name":"APIError","data":{"statusCode":429,...}}}

def _opencode_events(out: AgentOutput) -> Iterator[_Evidence]:
    for event in out.events:
        if event.get("type") != "error":
            continue
        data, headers = _get(event, "error", "data"), _get(event, "error", "data", "responseHeaders")
        text = "\n".join(t for t in (_text(_get(event, "error", "name")), _text(_get(data, "message")),
                                     _text(_get(data, "responseBody"))) if t) or _text(event)
        yield _Evidence("events", text, True, _status(_get(data, "statusCode")),
                        headers=headers if isinstance(headers, Mapping) and headers else None,
                        at=_epoch(event.get("timestamp")) if isinstance(event.get("timestamp"), (int, float)) else None)


# ---- Aider: exits 0 on 429/401; litellm's exception lines on stdout/stderr

_AIDER_LINE = re.compile(r"\blitellm\.\w+(?:Error|Exception)\b|The API provider has rate limited you"
                         r"|^\s*Retrying in [\d.]+ seconds")


def _aider_text(out: AgentOutput) -> Iterator[_Evidence]:
    for channel, text in (("stdout", out.stdout), ("stderr", out.stderr)):
        report = _from_first(text, _AIDER_LINE)
        if report:
            yield _Evidence(channel, report, True)


# ---- mini-swe-agent: traj.json info.exit_status (Submitted / RateLimitError / ...), submission

def _traj_info(result: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(result, Mapping):
        return {}
    info = result.get("info")
    return info if isinstance(info, Mapping) else result


def _mini_result(out: AgentOutput) -> Iterator[_Evidence]:
    info = _traj_info(out.result)
    status = _text(info.get("exit_status"))
    if status and status != "Submitted":
        yield _Evidence("result", f"{status}: {_text(info.get('submission'))}", True)


_LITELLM_LINE = re.compile(r"^\s*(?:litellm\.)?\w*(?:RateLimit|Quota)\w*Error\b")


def _litellm_stderr(out: AgentOutput) -> Iterator[_Evidence]:
    lines = _lines(out.stderr, _LITELLM_LINE)
    if lines:
        yield _Evidence("stderr", "\n".join(lines), True)


# ---- the tables

_Reader = Callable[[AgentOutput], Iterable[_Evidence]]

# Per agent: the channels that carry its own error shapes. One row per (agent, shape).
_CHANNELS: dict[str, tuple[_Reader, ...]] = {
    "claude-code": (_claude_result, _claude_events, _claude_text, _noisy("stderr")),
    # The command agent's output is the task's own: only Claude-Code-style results, events and
    # error lines (its documented contract) count, never a bare "429" in a test runner's output.
    "command": (_claude_result, _claude_events, _claude_text),
    "codex": (_codex_events, _codex_stderr),
    "gemini": (_gemini_result, _gemini_events, _gemini_stderr, _gemini_exit, _noisy("stderr")),
    "opencode": (_opencode_events, _noisy("stderr")),
    "aider": (_aider_text,),
    "mini-swe-agent": (_mini_result, _litellm_stderr),
}


def _claude_success(out: AgentOutput) -> bool:
    if isinstance(out.result, Mapping):
        return not _claude_result_is_error(out.result)
    return out.exit_code == 0


def _codex_success(out: AgentOutput) -> bool:
    # With --json, Codex can exit 0 after turn.failed and prints "Reconnecting..." errors it then
    # recovers from: the last turn event decides. Without events (plain mode) the exit code does.
    turns = [e.get("type") for e in out.events if str(e.get("type", "")).startswith("turn.")]
    return turns[-1] == "turn.completed" if turns else out.exit_code == 0


def _gemini_success(out: AgentOutput) -> bool:
    if any(e.get("type") == "result" and e.get("status") == "success" for e in out.events):
        return True
    if isinstance(out.result, Mapping) and "response" in out.result and not out.result.get("error"):
        return True
    return False


# Per agent: what a finished run looks like. A finished run is never a rate limit.
_SUCCESS: dict[str, Callable[[AgentOutput], bool]] = {
    "claude-code": _claude_success,
    "command": _claude_success,
    "codex": _codex_success,
    "gemini": _gemini_success,
    "opencode": lambda out: out.exit_code == 0 and not any(e.get("type") == "error" for e in out.events),
    # Aider exits 0 on 429 and 401; a reply it sent (`message_send` in its analytics log) is the proof.
    "aider": lambda out: any(e.get("event") == "message_send" for e in out.events),
    "mini-swe-agent": lambda out: _text(_traj_info(out.result).get("exit_status")) == "Submitted",
}

AGENT_SHAPES = tuple(_CHANNELS)


def detect_agent(output: AgentOutput, *, now: datetime, default_wait: float = 60.0) -> Detection | None:
    """The one detector for agent runs: a rate limit (transient or quota, with its reset), a
    permanent error no wait can fix, or None. Reads only the channels `_CHANNELS` lists for the
    agent; a run its agent reports as finished is never a rate limit."""
    if output.agent not in _CHANNELS:
        raise ValueError(f"no rate-limit shapes for agent {output.agent!r}; known: {', '.join(AGENT_SHAPES)}")
    now = _utc(now)
    if _SUCCESS[output.agent](output):
        return None
    hits: list[tuple[Kind, str, _Evidence]] = []
    for read in _CHANNELS[output.agent]:
        for evidence in read(output):
            found = _classify(evidence.text, strong_only=not evidence.trusted)
            if evidence.kind is not None:
                hits.append((evidence.kind, (found[1] if found else evidence.text)[:_MAX_MESSAGE], evidence))
            elif found:
                hits.append((found[0], found[1], evidence))
            elif evidence.status in (429, 529):
                first = _snippet(evidence.text, 0) if evidence.text else ""
                hits.append((_T, f"status {evidence.status}: {first}".strip()[:_MAX_MESSAGE], evidence))
    if not hits:
        return None
    hits.sort(key=lambda hit: _PRIORITY[hit[0]])  # stable: channel order breaks ties
    kind, message, strongest = hits[0]
    channel = strongest.channel
    if kind == _P:
        return Detection(_P, message, channel, reason=_permanent_reason(strongest.text))
    same = [h[2] for h in hits if h[0] == kind] + [h[2] for h in hits if h[0] != kind]
    reset = next((e.reset for e in same if e.reset is not None), None)
    for evidence in same:
        reset = reset or (_header_reset(evidence.headers, evidence.at or now) if evidence.headers else None)
    for evidence in same:
        reset = reset or parse_reset_time(evidence.text, now=now)
    known = reset is not None
    if channel != "result":
        message = f"{channel}: {message}"
    return Detection(kind, message[:_MAX_MESSAGE], channel,
                     reset if reset is not None else now + timedelta(seconds=default_wait), known)


def detect_agent_output(result: Mapping[str, Any] | None, stderr: str, *, now: datetime, default_wait: float = 60.0,
                        stdout_lines: Sequence[str] | None = None, agent: str = "claude-code",
                        exit_code: int | None = None) -> RateLimitInfo | None:
    """Transitional: the earlier signature, answered by `detect_agent` with Claude Code's shapes
    unless `agent` says otherwise. New code calls `detect_agent(AgentOutput(...))`, which also sees
    the exit code and reports permanent errors."""
    output = AgentOutput.from_streams(agent, exit_code=exit_code, stdout="\n".join(stdout_lines or ()),
                                      stderr=stderr or "", result=result)
    detection = detect_agent(output, now=now, default_wait=default_wait)
    return detection.rate_limit("agent") if detection is not None else None


# --------------------------------------------------------------------------- HTTP replies

_BUCKET_HEADER = re.compile(r"^(?:anthropic-ratelimit-(?P<a>[a-z-]+)-(?P<af>remaining|reset)"
                            r"|x-ratelimit-(?P<of>remaining|reset)-(?P<o>[a-z-]+))$")


def _header_time(name: str, value: str, now: datetime) -> datetime | None:
    try:
        if name.startswith("anthropic-"):
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        seconds = _duration(value)  # OpenAI: "20ms", "6m0s", "1s"
        if seconds is None:
            seconds = float(value)
        return now + timedelta(seconds=seconds)
    except (ValueError, TypeError, OverflowError):
        return None


def _header_reset(headers: Mapping[str, Any], now: datetime) -> datetime | None:
    """When to try again, from reply headers: `retry-after`(-ms) wins; else the reset of the bucket
    that is exhausted (`remaining: 0`); else, with no bucket known to be empty, the earliest reset
    (trying again then costs one request; waiting for the latest bucket could cost minutes)."""
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return now + timedelta(milliseconds=float(lowered["retry-after-ms"]))
    except ValueError:
        pass
    if "retry-after" in lowered:
        value = lowered["retry-after"]
        try:
            return now + timedelta(seconds=float(value))
        except ValueError:
            try:
                return _utc(parsedate_to_datetime(value))  # the HTTP-date form
            except (ValueError, TypeError, IndexError, OverflowError):
                pass  # one malformed header must not hide the others
    remaining: dict[str, float] = {}
    resets: dict[str, datetime] = {}
    for name, value in lowered.items():
        match = _BUCKET_HEADER.match(name)
        if not match:
            continue
        bucket = ("a:" + match["a"]) if match["a"] else ("o:" + match["o"])
        if (match["af"] or match["of"]) == "remaining":
            try:
                remaining[bucket] = float(value)
            except ValueError:
                continue
        elif (moment := _header_time(name, value, now)) is not None:
            resets[bucket] = moment
    exhausted = [resets[b] for b, left in remaining.items() if left <= 0 and b in resets]
    if exhausted:
        return max(exhausted)
    return min(resets.values()) if resets else None


def classify_http(status: int, headers: Mapping[str, Any] | None, body: str | Mapping[str, Any] | None, *,
                  now: datetime, default_wait: float = 60.0) -> Detection | None:
    """What a judge API's non-2xx reply means: a rate limit (429, 529, a 503 "overloaded", an
    explicit insufficient_quota), a permanent "request too large" error, or None. A 2xx body is
    model output and may say anything, so it is never read."""
    if status < 400:
        return None
    now = _utc(now)
    parsed: Any = body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    text = _text(body)
    found = _classify(text, strong_only=False)
    quota_coded = "insufficient_quota" in (error.get("code"), error.get("type"))
    overloaded = status == 503 and found is not None and found[0] == _T
    if status not in (429, 529) and not quota_coded and not overloaded:
        return None
    detail = ": ".join(_text(error.get(k)) for k in ("type", "message") if error.get(k))
    message = (f"HTTP {status}" + (f" {detail}" if detail else f" {found[1]}" if found else ""))[:_MAX_MESSAGE]
    if found is not None and found[0] == _P:
        return Detection(_P, message, "http", reason=_permanent_reason(text))
    kind: Kind = _Q if quota_coded or (found is not None and found[0] == _Q) else _T
    reset = _header_reset(headers or {}, now)
    for candidate in (_text(error.get("message")), text):
        reset = reset or parse_reset_time(candidate, now=now)
    known = reset is not None
    return Detection(kind, message, "http", reset if known else now + timedelta(seconds=default_wait), known)


def detect_http(status: int, headers: Mapping[str, Any] | None, body: str | Mapping[str, Any] | None, *,
                now: datetime, default_wait: float = 60.0,
                source: Literal["agent", "judge", "preflight"] = "judge") -> RateLimitInfo | None:
    """The rate limit in a judge reply, or None (also for a permanent error: see classify_http)."""
    detection = classify_http(status, headers, body, now=now, default_wait=default_wait)
    return detection.rate_limit(source) if detection is not None else None


def local_reset_time(moment: datetime) -> str:
    """A reset time as users read it in "Rate limited until ..." messages: their local zone, with
    the weekday, since weekly limits reset days away ("Mon 2026-11-30 00:00:00 CET")."""
    return moment.astimezone().strftime("%a %Y-%m-%d %H:%M:%S %Z")
