"""LLM judges: an Anthropic or OpenAI-compatible model grades the run against the rubric.

One judgment is one HTTP request. The reply must be a JSON object scoring every rubric item; a reply
we cannot read is recorded as `is_valid: false` and never scored 0, because an unreadable reply says
nothing about the work. Rate limits are the provider's business, not the run's: short waits are
retried here, under a per-provider adaptive concurrency limit, and longer ones raise
JudgeRateLimited so the coordinator pauses the experiment instead of failing the run.

API keys are read from the environment at call time and only ever placed in request headers;
`request.json` in the judge directory holds the URL and body, never headers.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from datetime import datetime, timezone
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tierbench.judges.base import JudgeContext, JudgeRateLimited
from tierbench.judges.limiter import limiter_for
from tierbench.judges.rubric import rubric_score
from tierbench.models import ItemScore, JudgeResult, RateLimitInfo, RateLimitKind, TokenStats, grade_for
from tierbench.ratelimit import classify_http
from tierbench.store.atomic import atomic_write_json, atomic_write_text

DIFF_LIMIT_CHARS = 60_000  # keeps the prompt well inside every judge model's context window
CHECK_OUTPUT_CHARS = 2_000
SHORT_WAIT_SECONDS = 60.0  # rate limits resetting sooner are waited out here; longer ones pause the experiment
MAX_RATE_LIMIT_ATTEMPTS = 6
MAX_SERVER_ERROR_ATTEMPTS = 3
MAX_BACKOFF_SECONDS = 60.0
ANTHROPIC_MAX_TOKENS = 4096

# List prices in USD per million tokens (input, output), matched by longest model-name prefix.
# Unknown models (local servers, new releases) cost 0: a wrong guess would look like a measurement.
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0), "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0), "claude-3-7-sonnet": (3.0, 15.0), "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0), "claude-3-5-haiku": (0.8, 4.0), "claude-3-haiku": (0.25, 1.25),
    "gpt-4o": (2.50, 10.0), "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.0, 8.0), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.0), "gpt-5-mini": (0.25, 2.0), "gpt-5-nano": (0.05, 0.40),
    "o3": (2.0, 8.0), "o4-mini": (1.10, 4.40),
}

SYSTEM_PROMPT = (
    "You are a strict, fair grader of changes an AI coding agent made to a repository. You judge only "
    "the evidence given (task, diff, objective check results) and answer with one JSON object."
)


def price_usd(model: str, tokens: TokenStats) -> float:
    """Cost of one call by list price; 0 for models not in PRICES."""
    prefix = max((p for p in PRICES if model.startswith(p)), key=len, default=None)
    if prefix is None:
        return 0.0
    per_input, per_output = PRICES[prefix]
    # Anthropic bills cache writes at 1.25x and cache reads at 0.1x the input price.
    input_cost = per_input * (tokens.input_tokens + 1.25 * tokens.cache_creation_tokens
                              + 0.1 * tokens.cache_read_tokens)
    return (input_cost + per_output * tokens.output_tokens) / 1_000_000


# ---------------------------------------------------------------------------------------------
# Prompt


def build_prompt(ctx: JudgeContext) -> str:
    """The user message: task, rubric, diff, check results and the answer format."""
    ids = [item.id for item in ctx.rubric.items()]
    rubric_lines = []
    na_ids = [item.id for item in ctx.rubric.items() if item.na_condition]
    for category in ctx.rubric.categories:
        kind = ("checklist: score each item 0 or 1" if category.scoring_type == "checklist"
                else "subjective: score each item from 0 to 1")
        rubric_lines.append(f"Category {category.name!r} (weight {category.weight:g}), {kind}:")
        for item in category.items:
            note = " [has an objective check, see below]" if item.command else ""
            if item.na_condition:
                note += f" [N/A when: {item.na_condition}]"
            rubric_lines.append(f"- id {json.dumps(item.id)} ({item.points:g} points): {item.check}{note}")
    answer_form = ('{"items": [{"id": "<item id>", "score": <number from 0 to 1>, "reasoning": "<why>"}], '
                   '"reasoning": "<overall assessment>"}')
    na_note = (f' For an item with an "N/A when" condition that holds, answer "score": "N/A" instead '
               f"(allowed only for: {', '.join(json.dumps(i) for i in na_ids)}).") if na_ids else ""
    sections = ["# Task given to the agent\n\n" + ctx.task_prompt.strip()]
    if ctx.criteria.strip():
        sections.append("# Evaluation criteria\n\n" + ctx.criteria.strip())
    return "\n\n".join([
        *sections,
        "# Rubric\n\n" + "\n".join(rubric_lines),
        "# Changes the agent made (git diff)\n\n" + _diff_section(ctx.diff),
        "# Objective check results\n\n" + _checks_section(ctx),
        "# How to answer\n\n"
        "Score every rubric item with a number from 0 to 1: the fraction of its points the work earns. "
        "Treat the objective check results as strong evidence. Reply with only a JSON object, no other "
        f"text, in exactly this form:\n{answer_form}\n"
        f"Include each of these item ids exactly once: {', '.join(json.dumps(i) for i in ids)}.{na_note}",
    ])


def _diff_section(diff: str) -> str:
    if not diff.strip():
        return "(no changes)"
    if len(diff) <= DIFF_LIMIT_CHARS:
        return f"```diff\n{diff}\n```"
    shown = diff[:DIFF_LIMIT_CHARS]
    omitted_files = re.findall(r"^diff --git a/(\S+)", diff[DIFF_LIMIT_CHARS:], flags=re.M)
    note = (f"[diff truncated: showing the first {DIFF_LIMIT_CHARS:,} of {len(diff):,} characters"
            + (f"; files only in the omitted part: {', '.join(omitted_files)}" if omitted_files else "") + "]")
    return f"```diff\n{shown}\n```\n{note}"


def _checks_section(ctx: JudgeContext) -> str:
    if not ctx.command_results:
        return "(the rubric has no objective checks)"
    blocks = []
    for check in ctx.command_results:
        status = "timed out" if check.timed_out else f"exit code {check.exit_code}"
        verdict = "PASSED" if check.passed else "FAILED"
        tail = check.output_tail[-CHECK_OUTPUT_CHARS:]
        blocks.append(f"## {check.item_id}: {verdict} ({status})\nCommand: {check.command}\n"
                      f"Output (last {len(tail)} characters):\n```\n{tail}\n```")
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------
# Reply parsing


class _ItemVerdict(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    id: str
    # strict: "0.8" (a string) or true is not a score; ints are fine. "N/A" -> None (checked below).
    score: Annotated[float, Field(strict=True, ge=0.0, le=1.0)] | None
    reasoning: str = ""

    @field_validator("score", mode="before")
    @classmethod
    def _not_applicable(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().upper() in ("N/A", "NA") else value


class _Verdict(BaseModel):
    items: list[_ItemVerdict]
    reasoning: str = ""


class InvalidJudgment(Exception):
    """The judge produced nothing gradable; becomes `is_valid: false` with this message as `error`."""


def extract_json_object(text: str) -> Any:
    """The JSON object in a reply, tolerating code fences and prose around it."""
    candidates = [text.strip()] + re.findall(r"```[A-Za-z]*\s*\n(.*?)```", text, flags=re.S)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            found, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict) and "items" in found:
            return found
    raise InvalidJudgment("the judge's reply contains no JSON object")


def parse_verdict(text: str, expected_ids: list[str], na_allowed: set[str] | frozenset[str] = frozenset()) -> _Verdict:
    """Parse and check a reply: every expected item exactly once, no others, numeric scores in 0..1
    ("N/A" only for the items in `na_allowed`, those with an na_condition)."""
    data = extract_json_object(text)
    try:
        verdict = _Verdict.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidJudgment(f"the judge's JSON does not have the expected form ({problems})") from None
    got = [item.id for item in verdict.items]
    duplicates = sorted({i for i in got if got.count(i) > 1})
    unknown = [i for i in got if i not in expected_ids]
    missing = [i for i in expected_ids if i not in got]
    mismatches = [f"{label}: {', '.join(ids)}" for label, ids in
                  (("unknown item ids", unknown), ("missing item ids", missing), ("duplicate item ids", duplicates))
                  if ids]
    bad_na = [i.id for i in verdict.items if i.score is None and i.id not in na_allowed]
    if bad_na:
        mismatches.append(f"N/A for items without an na_condition: {', '.join(bad_na)}")
    if mismatches:
        raise InvalidJudgment("the judge's reply does not score the rubric items (" + "; ".join(mismatches) + ")")
    if expected_ids and all(i.score is None for i in verdict.items):
        raise InvalidJudgment("the judge's reply marks every rubric item N/A; nothing was scored")
    return verdict


def item_scores(verdict: _Verdict) -> dict[str, float]:
    """Item id -> score; an item answered N/A is left out, so it leaves its category's denominator."""
    return {item.id: item.score for item in verdict.items if item.score is not None}


# ---------------------------------------------------------------------------------------------
# Judges


class _LLMJudge:
    """Shared request/retry/grading logic; subclasses say how to talk to their provider."""

    provider = ""
    key_env = ""
    base_url_env = ""
    default_base_url = ""
    endpoint = ""

    def __init__(self, model: str, base_url: str | None = None, *, retry_base_delay: float = 1.0,
                 max_attempts: int = MAX_RATE_LIMIT_ATTEMPTS) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.retry_base_delay = retry_base_delay
        self.max_attempts = max_attempts

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}"

    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")

    def limiter_key(self) -> str:
        base_url = self.resolved_base_url()
        return self.provider if base_url == self.default_base_url else f"{self.provider}@{base_url}"

    # Provider hooks -------------------------------------------------------------------------------

    def _headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def _body(self, prompt: str) -> dict[str, Any]:
        raise NotImplementedError

    def _read_reply(self, data: Any) -> tuple[str, TokenStats]:
        """Assistant text and token usage from a 200 response body (KeyError etc. on a bad shape)."""
        raise NotImplementedError

    # The judgment ----------------------------------------------------------------------------

    def judge(self, ctx: JudgeContext) -> JudgeResult:
        started = time.monotonic()
        tokens = TokenStats()
        try:
            api_key = os.environ.get(self.key_env, "").strip()
            if not api_key:
                raise InvalidJudgment(f"{self.key_env} is not set; export it to use the {self.spec} judge")
            url = self.resolved_base_url() + self.endpoint
            body = self._body(build_prompt(ctx))
            ctx.judge_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(ctx.judge_dir / "request.json", {"url": url, "body": body})
            raw = self._post(ctx, url, self._headers(api_key), body, api_key)
            try:
                text, tokens = self._read_reply(json.loads(raw))
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise InvalidJudgment("the API response is not a well-formed reply (see response.txt)") from None
            verdict = parse_verdict(text, [item.id for item in ctx.rubric.items()],
                                    {item.id for item in ctx.rubric.items() if item.na_condition})
        except InvalidJudgment as exc:
            return JudgeResult(judge_id=ctx.judge_id, spec=self.spec, is_valid=False, error=str(exc),
                               duration_seconds=time.monotonic() - started, token_stats=tokens,
                               cost_usd=price_usd(self.model, tokens))
        score = rubric_score(ctx.rubric, item_scores(verdict))
        if score is None:  # parse_verdict guarantees some item is scored
            raise AssertionError("no scored rubric item")
        return JudgeResult(
            judge_id=ctx.judge_id, spec=self.spec, is_valid=True, score=score,
            passed=score >= ctx.rubric.grading.pass_threshold, grade=grade_for(score),
            reasoning=verdict.reasoning,
            items=[ItemScore(id=i.id, score=i.score, reasoning=i.reasoning, na=i.score is None)
                   for i in verdict.items],
            duration_seconds=time.monotonic() - started, token_stats=tokens, cost_usd=price_usd(self.model, tokens),
        )

    def _post(self, ctx: JudgeContext, url: str, headers: dict[str, str], body: dict[str, Any],
              api_key: str) -> str:
        """POST until a 200 (returns its text); short rate limits and server errors are retried."""
        limiter = limiter_for(self.limiter_key())
        timeout = httpx.Timeout(ctx.timeout_seconds, connect=min(10.0, ctx.timeout_seconds))
        rate_limited = failures = 0
        with httpx.Client(timeout=timeout) as client:
            while True:
                self._check_interrupt(ctx)
                with limiter.slot() as ticket:
                    try:
                        response: httpx.Response | None = client.post(url, headers=headers, json=body)
                        problem = ""
                    except httpx.HTTPError as exc:  # connection refused, timeouts, broken streams
                        response, problem = None, f"{type(exc).__name__}: {exc}"
                if response is not None:
                    # Some APIs echo the key in auth errors; nothing we write may contain it.
                    text = response.text.replace(api_key, "[redacted]")
                    atomic_write_text(ctx.judge_dir / "response.txt", text)
                    if response.is_success:
                        limiter.on_success()
                        return text
                    info = self._rate_limit(response, text)
                    if info is not None:
                        limiter.on_rate_limited(ticket)
                        rate_limited += 1
                        self._sleep(ctx, self._rate_limit_delay(info, rate_limited))
                        continue
                    problem = f"HTTP {response.status_code}: {text[:300]}"
                    if response.status_code < 500:  # our request, key or model name is wrong: retrying won't help
                        raise InvalidJudgment(f"{url} refused the request ({problem})")
                failures += 1
                if failures >= MAX_SERVER_ERROR_ATTEMPTS:
                    raise InvalidJudgment(f"{url} failed {failures} times; last: {problem}")
                self._sleep(ctx, self._backoff(failures) * random.uniform(1.0, 1.25))

    def _rate_limit(self, response: httpx.Response, text: str) -> RateLimitInfo | None:
        # Only error statuses are looked at: a 200 body is the model's answer and may say anything.
        detection = classify_http(response.status_code, response.headers, text, now=datetime.now(timezone.utc),
                                  default_wait=SHORT_WAIT_SECONDS)
        if detection is not None and not detection.is_rate_limit:  # e.g. a 429 "Request too large"
            raise InvalidJudgment(f"{self.spec}: {detection.infra_error}")
        return detection.rate_limit("judge") if detection is not None else None

    def _rate_limit_delay(self, info: RateLimitInfo, attempt: int) -> float:
        """Seconds to wait before retrying, or JudgeRateLimited when the wait is not ours to take: a
        quota will not come back within seconds, and a long announced reset is the coordinator's to
        wait out (it pauses the whole experiment, not just this thread)."""
        # Without an announced reset, `reset_at` is only the default guess: plain backoff then.
        wait = (info.reset_at - datetime.now(timezone.utc)).total_seconds() if info.reset_known else 0.0
        if info.kind is RateLimitKind.QUOTA or wait > SHORT_WAIT_SECONDS or attempt >= self.max_attempts:
            raise JudgeRateLimited(info)
        return max(wait, self._backoff(attempt)) * random.uniform(1.0, 1.25)

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_SECONDS, self.retry_base_delay * 2 ** (attempt - 1))

    @staticmethod
    def _check_interrupt(ctx: JudgeContext) -> None:
        if ctx.registry is not None and ctx.registry.closed:
            raise InvalidJudgment("interrupted")

    def _sleep(self, ctx: JudgeContext, seconds: float) -> None:
        """Sleep in short steps so an interrupt is not held up by a retry wait."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._check_interrupt(ctx)
            time.sleep(min(0.2, left))


class AnthropicJudge(_LLMJudge):
    """`anthropic:<model>`: the Anthropic Messages API (non-streaming)."""

    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    endpoint = "/v1/messages"

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": "2023-06-01", "content-type": "application/json"}

    def _body(self, prompt: str) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": ANTHROPIC_MAX_TOKENS, "temperature": 0,
                "system": SYSTEM_PROMPT, "messages": [{"role": "user", "content": prompt}]}

    def _read_reply(self, data: Any) -> tuple[str, TokenStats]:
        usage = data.get("usage") or {}
        tokens = TokenStats(input_tokens=usage.get("input_tokens") or 0,
                            output_tokens=usage.get("output_tokens") or 0,
                            cache_creation_tokens=usage.get("cache_creation_input_tokens") or 0,
                            cache_read_tokens=usage.get("cache_read_input_tokens") or 0)
        text = "".join(block["text"] for block in data["content"] if block.get("type") == "text")
        return text, tokens


# OpenAI reasoning models reject any temperature but the default.
_NO_TEMPERATURE_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIJudge(_LLMJudge):
    """`openai:<model>[@base_url]`: OpenAI chat completions, or any server that speaks them."""

    provider = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    endpoint = "/chat/completions"

    @property
    def spec(self) -> str:
        return f"openai:{self.model}" + (f"@{self.base_url}" if self.base_url else "")

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}", "content-type": "application/json"}

    def _body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [
            {"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]}
        if not self.model.startswith(_NO_TEMPERATURE_PREFIXES):
            body["temperature"] = 0
        return body

    def _read_reply(self, data: Any) -> tuple[str, TokenStats]:
        usage = data.get("usage") or {}
        # Cached prompt tokens are part of prompt_tokens; they are billed as plain input here.
        tokens = TokenStats(input_tokens=usage.get("prompt_tokens") or 0,
                            output_tokens=usage.get("completion_tokens") or 0)
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("no text content")
        return content, tokens
