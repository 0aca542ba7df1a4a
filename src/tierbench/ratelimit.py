"""Rate-limit detection and reset-time parsing for agent output and judge HTTP responses.

A rate-limited run must never be scored as a failure, yet an agent that merely *talks* about rate
limits must never be parked as limited. So detection looks only at error channels, and the
pattern tables below say how much each shape can be trusted: a `strong` shape is specific enough
to believe even on stderr (which carries warnings and log noise); a weak one counts only where
the text is already known to be an error (an `is_error` result, an error event, a 429 body).

Two tables keep the knowledge out of the control flow: `_RULES` classifies a text (which kind of
limit, how strong the evidence), `_RESET_FORMS` turns the reset phrasing into a UTC instant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tierbench.models import RateLimitInfo, RateLimitKind

__all__ = ["detect_agent_output", "detect_http", "parse_reset_time", "is_rate_limit_text"]

UTC = timezone.utc
_MAX_MESSAGE = 300
_Q, _T = RateLimitKind.QUOTA, RateLimitKind.TRANSIENT


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    kind: RateLimitKind
    strong: bool  # True: trustworthy on a noisy channel (stderr), not just in known error text


def _rule(regex: str, kind: RateLimitKind, strong: bool) -> _Rule:
    return _Rule(re.compile(regex, re.IGNORECASE), kind, strong)


# Quota rules come first and win over transient ones: a 429 whose text says "usage limit" is a
# long wait, and treating it as a short one would burn retries against a closed door.
_RULES: tuple[_Rule, ...] = (
    _rule(r"\b(?:usage|weekly|daily|monthly|session|(?:5|five)[-\s]hours?)\s+(?:usage\s+)?limit\s+"
          r"(?:reached|exceeded|hit)", _Q, True),
    _rule(r"\byou(?:'|’|\s+ha)?ve\s+(?:hit|reached)\s+your\s+(?:[\w-]+\s+){0,2}limit", _Q, True),
    _rule(r"insufficient_quota", _Q, True),
    _rule(r"\bquota\s+(?:exceeded|exhausted)|\bexceeded\s+(?:your\s+|the\s+)?(?:current\s+)?quota", _Q, True),
    # Bare mentions ("weekly usage limit") also appear in warnings such as "approaching ...".
    _rule(r"\b(?:weekly|(?:5|five)[-\s]hours?)\s+(?:usage\s+)?limit|\busage\s+limit", _Q, False),
    _rule(r"rate_limit_error|overloaded_error", _T, True),
    # A 429/529 counts on stderr only in a status-like position, not as any number in a log line.
    _rule(r"(?:\b(?:error|status|code|http(?:/[\d.]+)?)\W{0,3}|\()(?:429|529)\b"
          r"|\b(?:429|529)\s+(?:too\s+many|overloaded|\{)", _T, True),
    _rule(r"too\s+many\s+requests|\brate[\s_-]?limited\b", _T, True),
    _rule(r"\brate[\s_-]?limits?\s+(?:exceeded|reached|hit)\b"
          r"|\bexceed(?:s|ed|ing)?\s+(?:the\s+|your\s+)?rate[\s_-]?limit", _T, True),
    _rule(r"\b(?:429|529)\b|\brate[\s_-]?limits?\b|\boverloaded\b", _T, False),
)


def _snippet(text: str, start: int) -> str:
    """The evidence around a match: its line, whitespace-collapsed, at most 300 characters."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    lo = max(line_start, start - 120) if line_end - line_start > _MAX_MESSAGE else line_start
    return " ".join(text[lo:line_end].split())[:_MAX_MESSAGE]


def _classify(text: str, *, strong_only: bool) -> tuple[RateLimitKind, str] | None:
    for rule in _RULES:
        if strong_only and not rule.strong:
            continue
        match = rule.pattern.search(text)
        if match:
            return rule.kind, _snippet(text, match.start())
    return None


def is_rate_limit_text(text: str) -> tuple[RateLimitKind, str] | None:
    """Classify an error text: returns (kind, matched evidence) or None."""
    return _classify(text or "", strong_only=False)


# --------------------------------------------------------------------------- reset times

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Minute and AM/PM are both optional here; _clock() insists on one, so "resets 5" stays ambiguous.
_TIME = r"(?P<h>\d{1,2})(?!\d)(?::(?P<m>\d{2})(?!\d))?(?:\s*(?P<ap>[ap])\.?m\b\.?)?"
_TZ = r"(?:\s*\(\s*(?P<tz>[A-Za-z][\w+\-/]{0,63})\s*\))?"
_UNIT = r"(?:milliseconds?|ms|minutes?|mins?|m|seconds?|secs?|s|hours?|hrs?|h|days?|d)(?![a-z])"
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    zone = _zone(match["tz"])
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
    zone = _zone(match["tz"])
    today = _today(now, zone)
    reset = _localize(datetime.combine(today, clock), zone)
    # A clock time already gone today names tomorrow's occurrence, except just after it: messages
    # round the reset ("resets 3pm"), so at 15:04 the limit has just reset rather than being a day off.
    if reset < now - CLOCK_ROUNDING_GRACE:
        reset = _localize(datetime.combine(today + timedelta(days=1), clock), zone)
    return reset


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


@dataclass(frozen=True)
class _ResetForm:
    pattern: re.Pattern[str]
    resolve: Callable[[re.Match[str], datetime], datetime | None]


# Most specific first: an absolute instant beats a date beats a clock time beats a duration.
_RESET_FORMS: tuple[_ResetForm, ...] = tuple(
    _ResetForm(re.compile(regex, re.IGNORECASE), resolve)
    for regex, resolve in (
        (r"\|\s*(?P<epoch>\d{9,13})(?!\d)", _from_epoch),  # "usage limit reached|1760000000"
        (r"\breset\w*\W{1,5}(?:at\s+|on\s+)?(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
         r"(?:Z|[+-]\d{2}:?\d{2})?)", _from_iso),
        (r"\bresets?\s+(?:on\s+|at\s+)?(?P<mon>" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(?P<day>\d{1,2})"
         r"(?:st|nd|rd|th)?(?!\d)(?:,?\s+(?P<year>\d{4}))?(?:,?\s+(?:at\s+)?" + _TIME + ")?" + _TZ, _on_date),
        (r"\bresets?\s+(?:at\s+)?" + _TIME + _TZ, _at_clock),
        (r"\b(?:try\s+again|retry|resets?|wait)\s+(?:again\s+)?(?:in|after|for)\s+(?P<dur>\d+(?:\.\d+)?\s*"
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

def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _event_errors(event: dict[str, Any]) -> tuple[list[str], int | None]:
    """Texts and API status an agent event carries on its error channels; nothing for ordinary output."""
    kind, subtype = event.get("type"), str(event.get("subtype") or "")
    if kind == "result":
        status = event.get("api_error_status")
        status = status if isinstance(status, int) else None
        if event.get("is_error") is True or subtype.startswith("error"):
            return [t for t in (_text(event.get(k)) for k in ("result", "error", "errors")) if t], status
        return [], status  # a non-error result's text is the agent's answer, never evidence
    if kind == "error" or (kind == "system" and ("error" in subtype or event.get("level") == "error")):
        return [_text(event)], None
    if event.get("error"):
        # Synthetic API-error events ({"type":"assistant","error":"rate_limit",...}) put the
        # human-readable reset ("resets 6am") in the message body, so take that too.
        content = (event.get("message") or {}).get("content") if isinstance(event.get("message"), dict) else None
        parts = [c.get("text", "") for c in content or [] if isinstance(c, dict)]
        return [_text(event["error"]), *[p for p in parts if isinstance(p, str) and p]], None
    return [], None


def _stream_events(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for line in lines:
        if "error" not in line:  # cheap filter: every event we would count mentions "error"
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def detect_agent_output(result: dict | None, stderr: str, *, now: datetime, default_wait: float = 60.0,
                        stdout_lines: list[str] | None = None) -> RateLimitInfo | None:
    """Rate limit reported by a Claude-Code-style agent, read from its error channels only."""
    now = _utc(now)
    hits: list[tuple[RateLimitKind, str, str]] = []  # (kind, evidence, text to read a reset from)
    events = ([result] if isinstance(result, dict) else []) + list(_stream_events(stdout_lines or []))
    for event in events:
        texts, status = _event_errors(event)
        for text in texts:
            found = _classify(text, strong_only=False)
            if found:
                hits.append((*found, text))
        if status in (429, 529):
            first = texts[0] if texts else ""
            hits.append((_T, _snippet(f"api_error_status {status}: {first}", 0), first))
    if stderr:
        found = _classify(stderr, strong_only=True)
        if found:
            hits.append((found[0], f"stderr: {found[1]}"[:_MAX_MESSAGE], stderr))
    if not hits:
        return None
    kind = _Q if any(h[0] is _Q for h in hits) else _T
    ordered = [h for h in hits if h[0] is kind] + [h for h in hits if h[0] is not kind]
    return _info(kind, "agent", ordered[0][1], (h[2] for h in ordered), now, default_wait)


def _info(kind: RateLimitKind, source: Literal["agent", "judge", "preflight"], message: str, texts: Iterable[str], now: datetime,
          default_wait: float, reset: datetime | None = None) -> RateLimitInfo:
    """Build the record; `reset` (from headers) wins, else the first text naming a reset, else default."""
    for text in texts:
        reset = reset or parse_reset_time(text, now=now)
    known = reset is not None
    return RateLimitInfo(kind=kind, source=source,
                         reset_at=reset if reset is not None else now + timedelta(seconds=default_wait),
                         reset_known=known, message=message[:_MAX_MESSAGE])


# --------------------------------------------------------------------------- HTTP responses

_ANTHROPIC_RESET = re.compile(r"^anthropic-ratelimit-[a-z-]+-reset$")
_OPENAI_RESET = re.compile(r"^x-ratelimit-reset-[a-z-]+$")


def _header_resets(headers: Mapping[str, str], now: datetime) -> list[datetime]:
    resets: list[datetime] = []
    for name, value in headers.items():
        name, value = name.lower(), str(value).strip()
        try:
            if name == "retry-after":
                try:
                    resets.append(now + timedelta(seconds=float(value)))
                except ValueError:
                    resets.append(_utc(parsedate_to_datetime(value)))  # the HTTP-date form
            elif name == "retry-after-ms":
                resets.append(now + timedelta(milliseconds=float(value)))
            elif _ANTHROPIC_RESET.match(name):
                resets.append(_utc(datetime.fromisoformat(value)))
            elif _OPENAI_RESET.match(name) and (seconds := _duration(value)) is not None:
                resets.append(now + timedelta(seconds=seconds))  # durations like "20ms", "6m0s"
        except (ValueError, TypeError, IndexError, OverflowError):
            continue  # one malformed header must not hide the others
    return resets


def detect_http(status: int, headers: Mapping[str, str], body: str | dict | None, *, now: datetime,
                default_wait: float = 60.0, source: Literal["agent", "judge", "preflight"] = "judge"
                ) -> RateLimitInfo | None:
    """Rate limit in a judge API response. Only a 429/529, or an explicit insufficient_quota error,
    counts: a 200 body is model output and may say anything."""
    if status < 400:
        return None
    now = _utc(now)
    parsed: Any = body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    error = error if isinstance(error, dict) else {}
    quota_coded = "insufficient_quota" in (error.get("code"), error.get("type"))
    if status not in (429, 529) and not quota_coded:
        return None
    text = _text(body)
    found = _classify(text, strong_only=False)
    kind = _Q if quota_coded or (found and found[0] is _Q) else _T
    detail = ": ".join(_text(error.get(k)) for k in ("type", "message") if error.get(k))
    message = f"HTTP {status}" + (f" {detail}" if detail else f" {found[1]}" if found else "")
    resets = _header_resets(headers or {}, now)
    return _info(kind, source, message, [_text(error.get("message")), text], now, default_wait,
                 max(resets) if resets else None)


def local_reset_time(moment: datetime) -> str:
    """A reset time as users read it in "Rate limited until ..." messages: their local zone."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
