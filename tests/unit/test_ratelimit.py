"""Rate-limit detection: real-shaped positives must be caught, look-alikes must not.

A miss scores a rate-limited run as a failure; a false hit parks a finished run forever. Both
directions are tested with the same fixed clock so reset times are exact.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tierbench.models import RateLimitKind
from tierbench.ratelimit import (AgentOutput, classify_http, detect_agent, detect_http, is_rate_limit_text,
                                 local_reset_time, parse_reset_time)

UTC = timezone.utc
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 02:00 in Los Angeles, 11:00 in Berlin
Q, T = RateLimitKind.QUOTA, RateLimitKind.TRANSIENT


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def default_reset(wait: float = 60.0) -> datetime:
    return NOW + timedelta(seconds=wait)


@pytest.fixture
def local_tz(monkeypatch):
    """Set the machine's local zone for forms without a tz name; restored afterwards."""

    def set_tz(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


def err_result(text: str, **extra) -> dict:
    return {"type": "result", "subtype": "success", "is_error": True, "result": text, **extra}


# --------------------------------------------------------------------------- agent output

AGENT_POSITIVES = [
    pytest.param(
        err_result("API Error: Request rejected (429) · This request would exceed the rate limit for your "
                   "organization (abc) of 50,000 input tokens per minute.", api_error_status=429),
        "", None, T, None, id="request-rejected-429"),
    pytest.param(err_result("Claude AI usage limit reached|1795442400"), "", None, Q, utc(2026, 11, 23, 14),
                 id="usage-limit-epoch"),
    pytest.param(err_result("You've hit your limit · resets 6am (America/Los_Angeles)"), "", None, Q,
                 utc(2026, 11, 23, 14), id="hit-your-limit-LA"),
    pytest.param(err_result("You’ve hit your limit · resets 9am (UTC)"), "", None, Q, utc(2026, 11, 24, 9),
                 id="curly-apostrophe-past-time-tomorrow"),
    pytest.param(err_result("5-hour limit reached ∙ resets 3pm (Europe/Berlin)"), "", None, Q,
                 utc(2026, 11, 23, 14), id="five-hour-limit"),
    pytest.param(err_result("Claude Code weekly usage limit reached · resets Feb 19, 6am (America/New_York)"),
                 "", None, Q, utc(2027, 2, 19, 11), id="weekly-limit-next-year"),
    pytest.param({"type": "result", "subtype": "error_during_execution", "is_error": False,
                  "error": "weekly usage limit · resets Dec 1, 6am (UTC)"}, "", None, Q, utc(2026, 12, 1, 6),
                 id="error-subtype-error-field"),
    pytest.param(err_result('API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
                            '"message":"Overloaded"}}', api_error_status=529), "", None, T, None,
                 id="overloaded-529"),
    pytest.param(err_result("API Error: something odd", api_error_status=429), "", None, T, None,
                 id="status-field-only"),
    pytest.param(err_result("API Error: 429 usage limit reached · try again in 5 minutes", api_error_status=429),
                 "", None, Q, NOW + timedelta(minutes=5), id="429-but-quota-wins"),
    pytest.param(None, 'Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"Number of '
                       'requests has exceeded your rate limit"}}', None, T, None, id="stderr-429-json"),
    pytest.param(None, "Rate limited. Please retry after 30 seconds.", None, T, NOW + timedelta(seconds=30),
                 id="stderr-rate-limited-relative"),
    pytest.param(None, "error: rate limit exceeded", None, T, None, id="stderr-rate-limit-exceeded"),
    pytest.param(err_result("API Error", api_error_status=429), "",
                 [json.dumps({"type": "assistant", "message": {"model": "<synthetic>", "content": [
                     {"type": "text", "text": "You've hit your limit · resets 6am (America/Los_Angeles)"}]},
                     "error": "rate_limit", "is_api_error_message": True})],
                 Q, utc(2026, 11, 23, 14), id="stream-synthetic-assistant-error"),
    pytest.param(None, "", [json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})],
                 T, None, id="stream-error-event"),
    pytest.param(None, "", [json.dumps({"type": "system", "subtype": "api_error",
                                        "message": "429 Too Many Requests, retry in 20s"})],
                 T, NOW + timedelta(seconds=20), id="stream-system-error"),
    pytest.param(None, "", ["not json", json.dumps(err_result("Claude AI usage limit reached|1795442400"))],
                 Q, utc(2026, 11, 23, 14), id="stream-result-line"),
    pytest.param(err_result("Request rejected (429)", api_error_status=429), "",
                 [json.dumps(err_result("You've hit your limit · resets 6am (America/Los_Angeles)"))],
                 Q, utc(2026, 11, 23, 14), id="quota-anywhere-beats-transient"),
]


def claude(result, stderr="", lines=None, exit_code=1) -> AgentOutput:
    """Claude Code's channels as its adapter hands them over (exit code 1 on every API error)."""
    return AgentOutput.from_streams("claude-code", exit_code=exit_code, stdout="\n".join(lines or []),
                                    stderr=stderr, result=result)


def detect_agent_output(result, stderr, *, now, default_wait=60.0, stdout_lines=None):
    detection = detect_agent(claude(result, stderr, stdout_lines), now=now, default_wait=default_wait)
    return detection.rate_limit() if detection is not None else None


@pytest.mark.parametrize("result, stderr, lines, kind, reset", AGENT_POSITIVES)
def test_detect_agent_output_positives(result, stderr, lines, kind, reset):
    info = detect_agent_output(result, stderr, now=NOW, stdout_lines=lines)
    assert info is not None
    assert (info.kind, info.source) == (kind, "agent")
    assert info.reset_at == (reset or default_reset())
    assert info.reset_known is (reset is not None)
    assert 0 < len(info.message) <= 300
    assert info.reset_at.utcoffset() == timedelta(0)


AGENT_NEGATIVES = [
    pytest.param({"type": "result", "subtype": "success", "is_error": False,
                  "result": "I added a check for the weekly usage limit and the rate limit (429) handler."},
                 "", None, id="success-text-mentions-limits"),
    pytest.param(err_result('API Error: 401 {"type":"error","error":{"type":"authentication_error",'
                            '"message":"invalid x-api-key"}}', api_error_status=401), "", None, id="auth-error"),
    pytest.param(err_result("Invalid API key · Please run /login"), "", None, id="invalid-api-key"),
    pytest.param(err_result("API Error: 500 Internal server error", api_error_status=500), "", None, id="http-500"),
    pytest.param(None, "Warning: rate limiting disabled for local dev", None, id="stderr-rate-limiting-noise"),
    pytest.param(None, "note: approaching weekly usage limit\nprocessed 429 files", None, id="stderr-weak-mentions"),
    pytest.param(None, "", [json.dumps({"type": "assistant", "message": {"content": [
        {"type": "text", "text": "The API returned 429: rate limit exceeded, so I added backoff."}]}}),
        json.dumps({"type": "user", "message": {"content": [{"type": "tool_result", "is_error": True,
                                                            "content": "Error: 429 Too Many Requests"}]}}),
        json.dumps({"type": "result", "is_error": False, "result": "usage limit reached (test fixture)"})],
        id="stream-ordinary-text-and-tool-output"),
    pytest.param(None, "", None, id="nothing-at-all"),
]


@pytest.mark.parametrize("result, stderr, lines", AGENT_NEGATIVES)
def test_detect_agent_output_negatives(result, stderr, lines):
    assert detect_agent_output(result, stderr, now=NOW, stdout_lines=lines) is None


def test_agent_local_zone_clock_time(local_tz):
    local_tz("Europe/Berlin")
    info = detect_agent_output(err_result("5-hour limit reached ∙ resets 3pm"), "", now=NOW)
    assert info is not None and info.kind is Q
    assert info.reset_at == utc(2026, 11, 23, 14)  # 15:00 CET


def test_agent_default_wait_is_configurable():
    info = detect_agent_output(None, "Error: 429 Too Many Requests", now=NOW, default_wait=900)
    assert info is not None
    assert (info.reset_at, info.reset_known) == (default_reset(900), False)


def test_message_is_capped_near_the_evidence():
    text = "x" * 1000 + " API Error: Request rejected (429) " + "y" * 1000
    info = detect_agent_output(err_result(text), "", now=NOW)
    assert info is not None and len(info.message) <= 300 and "(429)" in info.message


# --------------------------------------------------------------------------- HTTP

ANTHROPIC_429 = {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens "
                                            "has exceeded your per-minute rate limit"}}
ANTHROPIC_529 = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
OPENAI_QUOTA = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                          "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}

HTTP_POSITIVES = [
    pytest.param(429, {}, ANTHROPIC_429, T, None, id="anthropic-429-no-headers"),
    pytest.param(429, {"Retry-After": "30"}, json.dumps(ANTHROPIC_429), T, NOW + timedelta(seconds=30),
                 id="retry-after-seconds-body-as-string"),
    pytest.param(429, {"retry-after": "Mon, 23 Nov 2026 10:05:00 GMT"}, ANTHROPIC_429, T, utc(2026, 11, 23, 10, 5),
                 id="retry-after-http-date"),
    pytest.param(529, {"Retry-After-Ms": "1500"}, ANTHROPIC_529, T, NOW + timedelta(milliseconds=1500),
                 id="overloaded-retry-after-ms"),
    pytest.param(429, {"anthropic-ratelimit-requests-reset": "2026-11-23T10:00:20Z",
                       "Anthropic-RateLimit-Tokens-Reset": "2026-11-23T10:01:00Z",
                       "anthropic-ratelimit-input-tokens-reset": "2026-11-23T10:00:40+00:00",
                       "anthropic-ratelimit-output-tokens-reset": "2026-11-23T11:00:00+01:00",
                       "retry-after": "5"}, ANTHROPIC_429, T, NOW + timedelta(seconds=5),
                 id="retry-after-wins-over-bucket-resets"),
    pytest.param(429, {"anthropic-ratelimit-requests-remaining": "12", "anthropic-ratelimit-requests-reset":
                       "2026-11-23T10:00:20Z", "anthropic-ratelimit-input-tokens-remaining": "0",
                       "anthropic-ratelimit-input-tokens-reset": "2026-11-23T10:00:40Z",
                       "anthropic-ratelimit-output-tokens-remaining": "9000",
                       "anthropic-ratelimit-output-tokens-reset": "2026-11-23T10:06:00Z"},
                 ANTHROPIC_429, T, utc(2026, 11, 23, 10, 0, 40), id="anthropic-follows-the-exhausted-bucket"),
    pytest.param(429, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20ms",
                       "x-ratelimit-remaining-tokens": "29000", "x-ratelimit-reset-tokens": "6m0s"},
                 {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "code": "rate_limit_exceeded"}},
                 T, NOW + timedelta(milliseconds=20), id="openai-follows-the-exhausted-bucket"),
    pytest.param(429, {"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "6m0s"},
                 {"error": {"message": "Rate limit reached for gpt-4o", "type": "tokens", "code": "rate_limit_exceeded"}},
                 T, NOW + timedelta(milliseconds=20), id="no-bucket-known-empty-earliest-reset"),
    pytest.param(503, {}, {"error": {"message": "The model is currently overloaded. Please try again later.",
                                     "type": "server_error"}}, T, None, id="openai-compatible-503-overloaded"),
    pytest.param(429, {}, OPENAI_QUOTA, Q, None, id="openai-insufficient-quota-429"),
    pytest.param(403, {}, OPENAI_QUOTA, Q, None, id="insufficient-quota-other-status"),
    pytest.param(429, {"retry-after": "bogus", "retry-after-ms": "250"}, "Too Many Requests", T,
                 NOW + timedelta(milliseconds=250), id="malformed-header-skipped"),
    pytest.param(429, {}, "Please try again in 1.5s", T, NOW + timedelta(seconds=1.5), id="reset-from-body-text"),
    pytest.param(429, {}, {"error": {"type": "rate_limit_error", "message": "Claude AI usage limit reached|1795442400"}},
                 Q, utc(2026, 11, 23, 14), id="429-body-says-usage-limit"),
    pytest.param(529, {}, None, T, None, id="529-no-body"),
]


@pytest.mark.parametrize("status, headers, body, kind, reset", HTTP_POSITIVES)
def test_detect_http_positives(status, headers, body, kind, reset):
    info = detect_http(status, headers, body, now=NOW)
    assert info is not None
    assert (info.kind, info.source) == (kind, "judge")
    assert info.reset_at == (reset or default_reset())
    assert info.reset_known is (reset is not None)
    assert info.message.startswith(f"HTTP {status}") and len(info.message) <= 300


HTTP_NEGATIVES = [
    pytest.param(200, {"retry-after": "30"}, {"content": [{"type": "text", "text": '{"score": 0.4, "reasoning": '
                 '"The agent hit the weekly usage limit check; rate limit 429 handling is missing."}'}]},
                 id="judge-reasoning-200"),
    pytest.param(200, {}, "Claude AI usage limit reached|1795442400", id="200-string-body"),
    pytest.param(500, {"retry-after": "5"}, {"error": {"type": "api_error", "message": "Internal server error"}},
                 id="http-500"),
    pytest.param(401, {}, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
                 id="http-401"),
    pytest.param(400, {}, "rate limit exceeded", id="400-text-without-429"),
]


@pytest.mark.parametrize("status, headers, body", HTTP_NEGATIVES)
def test_detect_http_negatives(status, headers, body):
    assert detect_http(status, headers, body, now=NOW) is None


def test_detect_http_source_and_default_wait():
    info = detect_http(429, {}, None, now=NOW, default_wait=5, source="preflight")
    assert info is not None
    assert (info.source, info.reset_at, info.reset_known) == ("preflight", default_reset(5), False)


# --------------------------------------------------------------------------- reset parsing

RESET_FORMS = [
    pytest.param("Claude AI usage limit reached|1795442400", utc(2026, 11, 23, 14), id="epoch-seconds"),
    pytest.param("limit|1795442400000", utc(2026, 11, 23, 14), id="epoch-millis"),
    pytest.param("You've hit your limit · resets 6am (America/Los_Angeles)", utc(2026, 11, 23, 14), id="clock-tz"),
    pytest.param("resets 1am (America/Los_Angeles)", utc(2026, 11, 24, 9), id="clock-passed-in-its-zone"),
    pytest.param("resets 10:00 (UTC)", NOW, id="clock-exactly-now-is-now"),
    # Messages round the reset time: a minute past it means it has just reset, not a day away.
    pytest.param("resets 9:59am (UTC)", utc(2026, 11, 23, 9, 59), id="clock-just-passed-is-rounding"),
    pytest.param("resets 9:40am (UTC)", utc(2026, 11, 24, 9, 40), id="clock-passed-beyond-grace-tomorrow"),
    pytest.param("resets 12am (UTC)", utc(2026, 11, 24, 0), id="twelve-am-is-midnight"),
    pytest.param("resets 12:30pm (UTC)", utc(2026, 11, 23, 12, 30), id="twelve-pm-is-noon"),
    pytest.param("resets Feb 19, 6am (America/Los_Angeles)", utc(2027, 2, 19, 14), id="date-passed-next-year"),
    pytest.param("resets Feb 19 at 6:30pm (Europe/Berlin)", utc(2027, 2, 19, 17, 30), id="date-at-time"),
    pytest.param("resets Dec 1, 6am (UTC)", utc(2026, 12, 1, 6), id="date-later-this-year"),
    pytest.param("resets Nov 23, 6am (UTC)", utc(2026, 11, 23, 6), id="today-is-not-passed"),
    pytest.param("resets March 3rd, 2028 at 9am (UTC)", utc(2028, 3, 3, 9), id="explicit-year"),
    pytest.param("resets Jun 1, 6am (America/Los_Angeles)", utc(2027, 6, 1, 13), id="dst-of-target-date"),
    pytest.param('"resets_at": "2026-11-23T15:30:00Z"', utc(2026, 11, 23, 15, 30), id="iso-timestamp"),
    pytest.param("try again in 5 minutes", NOW + timedelta(minutes=5), id="try-again-in"),
    pytest.param("retry after 30 seconds", NOW + timedelta(seconds=30), id="retry-after"),
    pytest.param("resets in 1 hour and 30 minutes", NOW + timedelta(minutes=90), id="compound"),
    pytest.param("Please try again in 6m0s.", NOW + timedelta(minutes=6), id="go-duration"),
    pytest.param("Your quota will reset after 8h44m7s.", NOW + timedelta(hours=8, minutes=44, seconds=7),
                 id="gemini-reset-after-compact-duration"),
    pytest.param("try again at 2:51 PM (UTC).", utc(2026, 11, 23, 14, 51), id="try-again-at-clock"),
    pytest.param("resets Monday at 9am (Europe/Berlin)", utc(2026, 11, 30, 8), id="weekday-today-passed-next-week"),
    pytest.param("resets Wed 6pm (UTC)", utc(2026, 11, 25, 18), id="weekday-later-this-week"),
    pytest.param("resets Mon 10:05am (UTC)", utc(2026, 11, 23, 10, 5), id="weekday-today-still-ahead"),
    pytest.param("resets monthly", None, id="monthly-is-not-monday"),
    pytest.param('{"error":{"type":"usage_limit_reached","resets_in_seconds":3600}}', NOW + timedelta(hours=1),
                 id="resets-in-seconds-field"),
    pytest.param("You've hit your limit", None, id="no-reset"),
    pytest.param("resets soon", None, id="vague"),
    pytest.param("resets 5 (UTC)", None, id="bare-hour-is-ambiguous"),
    pytest.param("resets 25:00 (UTC)", None, id="invalid-clock"),
    pytest.param("resets Feb 30, 6am (UTC)", None, id="invalid-date"),
]


@pytest.mark.parametrize("text, expected", RESET_FORMS)
def test_parse_reset_time(text, expected):
    assert parse_reset_time(text, now=NOW) == expected


@pytest.mark.parametrize("tz, expected", [("UTC", utc(2026, 11, 23, 14)), ("America/Los_Angeles", utc(2026, 11, 23, 22)),
                                          ("Asia/Tokyo", utc(2026, 11, 24, 5))])
def test_parse_reset_local_zone(local_tz, tz, expected):
    local_tz(tz)
    # Tokyo is already 19:00 on Nov 23, so 2pm there has passed: tomorrow.
    assert parse_reset_time("resets at 14:00", now=NOW) == expected
    assert parse_reset_time("resets 2pm (Not/AZone)", now=NOW) == expected  # unknown name: local zone


def test_naive_now_is_treated_as_utc():
    assert parse_reset_time("try again in 5 minutes", now=NOW.replace(tzinfo=None)) == NOW + timedelta(minutes=5)


# --------------------------------------------------------------------------- classification

@pytest.mark.parametrize("text, kind", [
    ("API Error: Request rejected (429) · This request would exceed the rate limit", T),
    ("Claude AI usage limit reached|1795442400", Q),
    ("You have reached your weekly limit", Q),
    ("5-hour limit reached", Q),
    ("weekly usage limit", Q),
    ("insufficient_quota", Q),
    ("Quota exceeded for quota metric 'Generate requests'", Q),
    ("overloaded_error", T),
    ("HTTP/1.1 529", T),
    ("Too Many Requests", T),
    ("rate limit", T),
])
def test_is_rate_limit_text(text, kind):
    found = is_rate_limit_text(text)
    assert found is not None and found[0] is kind and found[1]


@pytest.mark.parametrize("text", ["", "Invalid API key", "authentication_error", "Rate limiting disabled",
                                  "API Error: 500", "context window exceeded"])
def test_is_rate_limit_text_negatives(text):
    assert is_rate_limit_text(text) is None


# --------------------------------------------------------------------------- the entry point

def test_detection_applies_to_an_outcome():
    from tierbench.models import AgentOutcome

    limited = detect_agent(claude(err_result("Claude AI usage limit reached|1795442400")), now=NOW)
    outcome = AgentOutcome()
    limited.apply(outcome)
    assert outcome.rate_limit is not None and outcome.rate_limit.kind is Q and outcome.infra_error is None
    permanent = classify_http(429, {}, "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, "
                                       "Requested 36278.", now=NOW)
    assert permanent is not None and permanent.kind == "permanent" and permanent.reset_at is None
    outcome = AgentOutcome(infra_error="claude exited with code 1")
    permanent.apply(outcome)
    assert outcome.rate_limit is None and "claude exited with code 1; " in outcome.infra_error
    assert "no wait can let it through" in outcome.infra_error
    assert detect_http(429, {}, "Request too large for gpt-4o on tokens per min", now=NOW) is None
    assert is_rate_limit_text("Request too large for gpt-4o on tokens per min") is None


def test_unknown_agent_is_a_clear_error():
    with pytest.raises(ValueError, match="no rate-limit shapes for agent 'goose'"):
        detect_agent(AgentOutput("goose", exit_code=1, stderr="429 Too Many Requests"), now=NOW)


def test_a_result_without_type_is_read():
    result = {"is_error": True, "result": "Limit reached · resets 11:30am (Asia/Calcutta) · /upgrade"}
    detection = detect_agent(claude(result), now=NOW)
    assert detection is not None and detection.kind == "quota"
    assert detection.reset_at == utc(2026, 11, 24, 6, 0)  # 15:30 in Calcutta now: tomorrow 11:30


def test_local_reset_time_names_the_weekday(local_tz):
    local_tz("Europe/Berlin")
    assert local_reset_time(utc(2026, 11, 29, 23)) == "Mon 2026-11-30 00:00:00 CET"


def test_claude_rejected_rate_limit_event_gives_kind_and_reset():
    lines = [json.dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed", "resetsAt": 1795400000,
                                                                          "rateLimitType": "five_hour"}}),
             json.dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": 1795442400,
                                                                          "rateLimitType": "seven_day"}}),
             json.dumps(err_result("API Error", api_error_status=429))]
    detection = detect_agent(claude(None, lines=lines), now=NOW)
    assert detection is not None and (detection.kind, detection.reset_at) == ("quota", utc(2026, 11, 23, 14))
    assert "seven_day" in detection.message
    allowed_only = [lines[0], json.dumps({"type": "result", "is_error": False, "result": "done"})]
    assert detect_agent(claude(None, lines=allowed_only, exit_code=0), now=NOW) is None


def test_opencode_retry_after_counts_from_the_error_event():
    event = {"type": "error", "timestamp": int(utc(2026, 11, 23, 9, 59).timestamp() * 1000),
             "error": {"name": "APIError", "data": {"message": "Rate limit exceeded", "statusCode": 429,
                                                     "responseHeaders": {"retry-after": "90"}}}}
    output = AgentOutput.from_streams("opencode", exit_code=1, stdout=json.dumps(event), stderr="")
    detection = detect_agent(output, now=NOW)
    assert detection is not None and detection.reset_at == utc(2026, 11, 23, 10, 0, 30)


def test_transitional_signature_answers_through_detect_agent():
    from tierbench.ratelimit import detect_agent_output

    info = detect_agent_output(err_result("Claude AI usage limit reached|1795442400"), "", now=NOW)
    assert info is not None and (info.kind, info.reset_at) == (Q, utc(2026, 11, 23, 14))
    codex = [json.dumps({"type": "error", "message": "Reconnecting... 1/5 (last status: 429 Too Many Requests)"}),
             json.dumps({"type": "turn.completed", "usage": {}})]
    assert detect_agent_output(None, "", now=NOW, stdout_lines=codex, agent="codex", exit_code=0) is None
