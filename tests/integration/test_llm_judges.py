"""LLM judges against a fake Anthropic/OpenAI server on 127.0.0.1: replies, bad output, rate limits,
the shared concurrency limit, and API keys never reaching disk."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.fake_llm_judges import (
    FakeJudgeAPI,
    Reply,
    fenced,
    insufficient_quota,
    malformed,
    overloaded,
    rate_limited,
    scores,
    server_error,
)
from tierbench.process import ProcessRegistry
from tierbench.judges import make_judge
from tierbench.judges.base import CommandCheckResult, JudgeContext, JudgeRateLimited
from tierbench.judges.consensus import consensus
from tierbench.judges.limiter import limiter_for, limiter_history, reset_limiters
from tierbench.judges.llm import AnthropicJudge, OpenAIJudge
from tierbench.models import JudgeResult, RateLimitKind, RunKey
from tierbench.spec import Rubric

ANTHROPIC_KEY = "sk-ant-test-SECRET-7f3a9c"
OPENAI_KEY = "sk-openai-test-SECRET-41be0d"
FULL = {"tests": 1.0, "style": 0.5}  # score: (2 * 1.0 + 1 * 0.5) / 3 over one category


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    reset_limiters()
    yield
    reset_limiters()


RUBRIC = Rubric.model_validate({"categories": {"work": {"items": [
    {"id": "tests", "check": "the tests pass", "points": 2, "command": "pytest -q"},
    {"id": "style", "check": "the code is readable"},
]}}})


def context(tmp_path: Path, name: str = "judge_01", registry: ProcessRegistry | None = None) -> JudgeContext:
    judge_dir = tmp_path / "judge" / name
    judge_dir.mkdir(parents=True, exist_ok=True)
    checks = [CommandCheckResult(item_id="tests", command="pytest -q", exit_code=0, passed=True,
                                 output_tail="3 passed")]
    return JudgeContext(key=RunKey(tier="T0", subtest="00", run=1), workspace=tmp_path, judge_dir=judge_dir,
                        judge_id=name, task_prompt="Fix add() in calc.py.", rubric=RUBRIC,
                        diff="--- a/calc.py\n+++ b/calc.py\n-    return a - b\n+    return a + b\n",
                        command_results=checks, registry=registry or ProcessRegistry(), timeout_seconds=10)


def anthropic(api: FakeJudgeAPI, **kw) -> AnthropicJudge:
    return AnthropicJudge("claude-sonnet-4-5", base_url=api.url, retry_base_delay=0.05, **kw)


def openai(api: FakeJudgeAPI, **kw) -> OpenAIJudge:
    return OpenAIJudge("gpt-4o", base_url=api.openai_url, retry_base_delay=0.05, **kw)


def files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# -- valid replies ------------------------------------------------------------------------------


def test_anthropic_valid_reply(tmp_path: Path):
    with FakeJudgeAPI([scores(FULL, reasoning="Tests pass; naming could be better.")]) as api:
        result = anthropic(api).judge(context(tmp_path))
    assert result.is_valid, result.error
    assert result.spec == "anthropic:claude-sonnet-4-5" and result.judge_id == "judge_01"
    assert result.score == pytest.approx(2.5 / 3)
    assert (result.passed, result.grade) == (True, "A")
    assert result.reasoning == "Tests pass; naming could be better."
    assert {i.id: i.score for i in result.items} == FULL
    assert (result.token_stats.input_tokens, result.token_stats.output_tokens) == (1200, 150)
    assert result.cost_usd == pytest.approx((1200 * 3 + 150 * 15) / 1e6)
    [request] = api.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == ANTHROPIC_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body["model"] == "claude-sonnet-4-5" and request.body["max_tokens"] > 0
    assert "Fix add() in calc.py." in request.body["messages"][0]["content"]


def test_openai_valid_reply_through_a_spec_with_base_url(tmp_path: Path):
    with FakeJudgeAPI([fenced(FULL)]) as api:
        judge = make_judge(f"openai:gpt-4o-mini@{api.openai_url}")
        result = judge.judge(context(tmp_path))
    assert result.is_valid, result.error
    assert result.spec == f"openai:gpt-4o-mini@{api.openai_url}"
    assert result.score == pytest.approx(2.5 / 3)
    [request] = api.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert result.token_stats.input_tokens == 1200 and result.cost_usd > 0


def test_base_urls_come_from_the_environment(tmp_path: Path, monkeypatch):
    with FakeJudgeAPI(default=scores(FULL)) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        monkeypatch.setenv("OPENAI_BASE_URL", api.openai_url)
        a = make_judge("anthropic:claude-haiku-4-5").judge(context(tmp_path, "judge_01"))
        o = make_judge("openai:local-model").judge(context(tmp_path, "judge_02"))
    assert a.is_valid and o.is_valid
    assert [r.path for r in api.requests] == ["/v1/messages", "/v1/chat/completions"]
    assert o.cost_usd == 0.0  # unknown model: no price rather than a guess


def test_request_and_response_are_saved_without_the_key(tmp_path: Path):
    ctx = context(tmp_path)
    with FakeJudgeAPI([scores(FULL)]) as api:
        anthropic(api).judge(ctx)
    saved = json.loads((ctx.judge_dir / "request.json").read_text())
    assert saved["url"] == f"{api.url}/v1/messages" and saved["body"]["model"] == "claude-sonnet-4-5"
    assert '"tests"' in json.loads((ctx.judge_dir / "response.txt").read_text())["content"][0]["text"]
    assert files_containing(tmp_path, ANTHROPIC_KEY) == []


# -- output we cannot grade -----------------------------------------------------------------------


@pytest.mark.parametrize("reply, fragment", [
    (malformed(), "no JSON object"),
    (scores({"tests": 1.0}), "missing item ids: style"),
    (scores({"tests": 1.0, "style": 1.0, "speed": 1.0}), "unknown item ids: speed"),
    (scores({"tests": "great", "style": 1.0}), "score"),
])
def test_unusable_output_is_invalid_never_zero(tmp_path: Path, reply: Reply, fragment: str):
    with FakeJudgeAPI([reply]) as api:
        result = openai(api).judge(context(tmp_path))
    assert result.is_valid is False
    assert result.score is None and result.passed is None and result.grade is None
    assert fragment in (result.error or "")
    assert result.token_stats.output_tokens == 150  # the tokens were still spent
    # And consensus ignores it instead of averaging in a zero.
    command = JudgeResult(judge_id="judge_02", spec="command", is_valid=True, score=1.0, passed=True)
    assert consensus([result, command], 0.6).score == 1.0


def test_a_reply_that_talks_about_usage_limits_is_not_a_rate_limit(tmp_path: Path):
    reasoning = "The agent stopped early, claiming it hit its weekly usage limit; rate limit handling is missing."
    with FakeJudgeAPI([scores(FULL, reasoning=reasoning)]) as api:
        result = anthropic(api).judge(context(tmp_path))
    assert result.is_valid and result.reasoning == reasoning
    assert len(api.requests) == 1
    assert [e["reason"] for e in limiter_history()["anthropic@" + api.url]] == ["init"]


# -- rate limits --------------------------------------------------------------------------------


def test_openai_429s_are_retried_and_the_shared_limit_drops(tmp_path: Path):
    with FakeJudgeAPI([rate_limited(retry_after=1)] * 3, default=scores(FULL)) as api:
        judge = openai(api)
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda n: judge.judge(context(tmp_path, f"judge_{n:02d}")), range(1, 5)))
        elapsed = time.monotonic() - started
    assert all(r.is_valid for r in results), [r.error for r in results]
    assert all(r.score == pytest.approx(2.5 / 3) for r in results)
    assert api.statuses().count(429) == 3 and api.statuses().count(200) == 4
    assert elapsed >= 1.0  # Retry-After was respected
    history = limiter_history()[judge.limiter_key()]
    assert history[0] == {**history[0], "reason": "init", "limit": 4}
    drops = [e for e in history if e["reason"] == "429"]
    assert drops and drops[0]["limit"] < 4
    assert limiter_for(judge.limiter_key()).limit < 4


def test_a_long_retry_after_raises_judge_rate_limited(tmp_path: Path):
    with FakeJudgeAPI(default=rate_limited(retry_after=3600)) as api:
        with pytest.raises(JudgeRateLimited) as raised:
            openai(api).judge(context(tmp_path))
    info = raised.value.info
    assert info.source == "judge" and info.kind is RateLimitKind.TRANSIENT and info.reset_known
    assert info.reset_at - datetime.now(timezone.utc) > timedelta(minutes=59)
    assert len(api.requests) == 1  # not retried in the client: the coordinator pauses instead


def test_insufficient_quota_raises_at_once(tmp_path: Path):
    with FakeJudgeAPI(default=insufficient_quota()) as api:
        with pytest.raises(JudgeRateLimited) as raised:
            openai(api).judge(context(tmp_path))
    assert raised.value.info.kind is RateLimitKind.QUOTA
    assert len(api.requests) == 1


def test_request_too_large_for_the_tpm_limit_is_invalid_at_once_not_a_pause(tmp_path: Path):
    # OpenAI answers 429 when one request exceeds the per-minute token limit; waiting never helps.
    too_large = Reply(status=429, error_type="tokens", headers=(("retry-after", "1"),),
                      message="Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit "
                              "30000, Requested 36278. The input or output tokens must be reduced in order to run "
                              "successfully.")
    with FakeJudgeAPI(default=too_large) as api:
        result = openai(api).judge(context(tmp_path))
    assert not result.is_valid and "no wait can let it through" in (result.error or "")
    assert len(api.requests) == 1


def test_openai_compatible_503_overloaded_is_retried_then_succeeds(tmp_path: Path):
    busy = Reply(status=503, error_type="server_error", message="The model is currently overloaded. Please try again later.")
    with FakeJudgeAPI([busy], default=scores(FULL)) as api:
        result = openai(api, max_attempts=3).judge(context(tmp_path))
    assert result.is_valid and api.statuses() == [503, 200]


def test_overloaded_529_is_retried_then_succeeds(tmp_path: Path):
    with FakeJudgeAPI([overloaded(), overloaded()], default=scores(FULL)) as api:
        result = anthropic(api).judge(context(tmp_path))
    assert result.is_valid and api.statuses() == [529, 529, 200]


def test_short_rate_limits_that_never_end_raise_after_bounded_attempts(tmp_path: Path):
    with FakeJudgeAPI(default=overloaded()) as api:
        with pytest.raises(JudgeRateLimited):
            anthropic(api, max_attempts=4).judge(context(tmp_path))
    assert len(api.requests) == 4


def test_server_errors_are_retried_a_few_times_then_invalid(tmp_path: Path):
    with FakeJudgeAPI([server_error(502)], default=scores(FULL)) as api:
        assert anthropic(api).judge(context(tmp_path)).is_valid
    with FakeJudgeAPI(default=server_error(500)) as api:
        result = anthropic(api).judge(context(tmp_path))
    assert not result.is_valid and result.score is None
    assert "HTTP 500" in (result.error or "") and len(api.requests) == 3


def test_client_errors_are_invalid_without_retries(tmp_path: Path):
    echo = Reply(status=401, error_type="invalid_request_error",
                 message=f"Incorrect API key provided: {OPENAI_KEY}. You can find your API key at ...")
    with FakeJudgeAPI(default=echo) as api:
        result = openai(api).judge(context(tmp_path))
    assert not result.is_valid and "HTTP 401" in (result.error or "")
    assert len(api.requests) == 1
    assert OPENAI_KEY not in (result.error or "")
    assert files_containing(tmp_path, OPENAI_KEY) == []  # even though the server echoed it


def test_unreachable_server_is_invalid(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = OpenAIJudge("gpt-4o", base_url=f"http://127.0.0.1:{port}/v1", retry_base_delay=0.01)
    result = judge.judge(context(tmp_path))
    assert not result.is_valid and "ConnectError" in (result.error or "")


def test_interrupt_stops_retrying(tmp_path: Path):
    registry = ProcessRegistry()
    registry.kill_all()
    with FakeJudgeAPI(default=scores(FULL)) as api:
        result = anthropic(api).judge(context(tmp_path, registry=registry))
    assert not result.is_valid and result.error == "interrupted" and api.requests == []


# -- shared concurrency ----------------------------------------------------------------------------


def test_concurrent_judges_share_one_limit_per_provider(tmp_path: Path):
    with FakeJudgeAPI(default=scores(FULL), delay=0.2) as api:
        judges = [anthropic(api) for _ in range(10)]  # separate judge objects, one provider
        limiter_for(judges[0].limiter_key(), initial=3, maximum=3)  # fixed, so successes cannot raise it
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda n: judges[n].judge(context(tmp_path, f"judge_{n:02d}")), range(10)))
    assert all(r.is_valid for r in results)
    assert api.max_in_flight == 3


def test_the_limit_grows_back_after_a_streak_of_successes(tmp_path: Path):
    with FakeJudgeAPI(default=scores(FULL)) as api:
        judge = anthropic(api)
        for n in range(5):
            assert judge.judge(context(tmp_path, f"judge_{n:02d}")).is_valid
    assert [(e["reason"], e["limit"]) for e in limiter_history()[judge.limiter_key()]] == [("init", 4), ("success", 5)]


# -- keys ------------------------------------------------------------------------------------------


def test_missing_api_key_is_invalid_with_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    with FakeJudgeAPI(default=scores(FULL)) as api:
        a = anthropic(api).judge(context(tmp_path))
        o = openai(api).judge(context(tmp_path))
    assert not a.is_valid and "ANTHROPIC_API_KEY is not set" in (a.error or "")
    assert not o.is_valid and "OPENAI_API_KEY is not set" in (o.error or "")
    assert api.requests == []


def test_keys_are_never_written_to_the_judge_dir(tmp_path: Path):
    script = [rate_limited(retry_after=0.1), malformed(), scores(FULL), fenced(FULL)]
    with FakeJudgeAPI(script, default=server_error()) as api:
        for n, judge in enumerate([anthropic(api), openai(api), anthropic(api), openai(api)], start=1):
            ctx = context(tmp_path, f"judge_{n:02d}")
            result = judge.judge(ctx)
            (ctx.judge_dir / "judgment.json").write_text(result.model_dump_json())  # as the caller does
    assert {r.headers.get("x-api-key") or r.headers.get("authorization") for r in api.requests} == {
        ANTHROPIC_KEY, f"Bearer {OPENAI_KEY}"}  # the keys did go out, in headers
    judge_root = tmp_path / "judge"
    assert len(list(judge_root.rglob("*.json"))) >= 8
    assert files_containing(judge_root, ANTHROPIC_KEY) == []
    assert files_containing(judge_root, OPENAI_KEY) == []
