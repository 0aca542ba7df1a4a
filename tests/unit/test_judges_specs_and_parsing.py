"""Judge specs, reply parsing, prompt building and pricing (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierbench.process import ProcessRegistry
from tierbench.judges import make_judge, validate_judge_spec
from tierbench.judges.base import CommandCheckResult, JudgeContext
from tierbench.judges.command import CommandJudge
from tierbench.judges.llm import (
    DIFF_LIMIT_CHARS,
    AnthropicJudge,
    InvalidJudgment,
    OpenAIJudge,
    build_prompt,
    extract_json_object,
    parse_verdict,
    price_usd,
)
from tierbench.models import RunKey, TokenStats
from tierbench.spec import Rubric

# -- specs --------------------------------------------------------------------------------------


def test_make_judge_accepts_the_three_forms():
    assert isinstance(make_judge("command"), CommandJudge)
    anthropic = make_judge("anthropic:claude-sonnet-4-5")
    assert isinstance(anthropic, AnthropicJudge)
    assert (anthropic.model, anthropic.spec) == ("claude-sonnet-4-5", "anthropic:claude-sonnet-4-5")
    openai = make_judge("openai:gpt-4o")
    assert isinstance(openai, OpenAIJudge) and openai.base_url is None and openai.spec == "openai:gpt-4o"
    local = make_judge("openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1/")
    assert isinstance(local, OpenAIJudge)
    assert (local.model, local.base_url) == ("qwen2.5-coder:7b", "http://127.0.0.1:11434/v1")
    assert local.spec == "openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1"


@pytest.mark.parametrize("spec", ["", "llm", "commands", "anthropic:", "anthropic", "openai:",
                                  "gemini:pro", "openai:gpt-4o@localhost:8000", "anthropic:claude@http://x",
                                  "openai:gpt 4o", "openai:@http://127.0.0.1:1"])
def test_bad_specs_name_the_accepted_forms(spec):
    with pytest.raises(ValueError) as raised:
        validate_judge_spec(spec)
    assert "openai" in str(raised.value)
    with pytest.raises(ValueError):
        make_judge(spec)


def test_good_specs_validate():
    for spec in ("command", "anthropic:claude-haiku-4-5", "openai:gpt-4o-mini@https://example.test/v1"):
        validate_judge_spec(spec)


def test_limiter_keys_separate_providers_and_base_urls(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert AnthropicJudge("m").limiter_key() == "anthropic"
    assert OpenAIJudge("m").limiter_key() == "openai"
    assert OpenAIJudge("m", base_url="http://127.0.0.1:9/v1").limiter_key() == "openai@http://127.0.0.1:9/v1"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:7/")
    assert AnthropicJudge("m").resolved_base_url() == "http://127.0.0.1:7"


# -- reply parsing ------------------------------------------------------------------------------

IDS = ["tests", "style"]
GOOD = {"items": [{"id": "tests", "score": 1, "reasoning": "r"}, {"id": "style", "score": 0.5}], "reasoning": "ok"}


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
    "Sure! Here is the grading:\n```\n" + json.dumps(GOOD) + "\n```\nHope it helps.",
    "My verdict: " + json.dumps(GOOD) + " -- end.",
    "Thinking {about it}... final: " + json.dumps(GOOD),
])
def test_replies_are_parsed_through_fences_and_prose(text):
    verdict = parse_verdict(text, IDS)
    assert {i.id: i.score for i in verdict.items} == {"tests": 1.0, "style": 0.5}
    assert verdict.reasoning == "ok"


@pytest.mark.parametrize("data, fragment", [
    ({"items": [{"id": "tests", "score": 1}]}, "missing item ids: style"),
    ({"items": [{"id": "tests", "score": 1}, {"id": "style", "score": 1}, {"id": "extra", "score": 1}]},
     "unknown item ids: extra"),
    ({"items": [{"id": "tests", "score": 1}, {"id": "tests", "score": 1}, {"id": "style", "score": 1}]},
     "duplicate item ids: tests"),
    ({"items": [{"id": "tests", "score": "high"}, {"id": "style", "score": 1}]}, "items.0.score"),
    ({"items": [{"id": "tests", "score": "0.9"}, {"id": "style", "score": 1}]}, "items.0.score"),
    ({"items": [{"id": "tests", "score": True}, {"id": "style", "score": 1}]}, "items.0.score"),
    ({"items": [{"id": "tests", "score": 8}, {"id": "style", "score": 1}]}, "items.0.score"),
    ({"items": [{"id": "tests", "score": None}, {"id": "style", "score": 1}]}, "without an na_condition: tests"),
    ({"scores": {"tests": 1}}, "items"),
])
def test_bad_judgments_are_rejected_with_a_reason(data, fragment):
    with pytest.raises(InvalidJudgment) as raised:
        parse_verdict(json.dumps(data), IDS)
    assert fragment in str(raised.value)


def test_na_leaves_the_denominator_only_for_items_with_an_na_condition(tmp_path: Path):
    from tierbench.judges.rubric import rubric_score

    rubric = Rubric.model_validate({"categories": {
        "functional": {"weight": 0.5, "scoring_type": "checklist", "items": [
            {"id": "F1", "check": "file exists"}, {"id": "F2", "check": "lint passes", "na_condition": "no linter"}]},
        "overall": {"weight": 0.5, "items": [{"id": "O1", "check": "well scoped", "points": 2}]}}})
    verdict = parse_verdict(json.dumps({"items": [{"id": "F1", "score": 1}, {"id": "F2", "score": "N/A"},
                                                  {"id": "O1", "score": 0.5}]}), ["F1", "F2", "O1"], {"F2"})
    from tierbench.judges.llm import item_scores

    assert rubric_score(rubric, item_scores(verdict)) == pytest.approx(0.75)  # F2 left out: functional is 1/1, not 1/2
    with pytest.raises(InvalidJudgment, match="without an na_condition: F1"):
        parse_verdict(json.dumps({"items": [{"id": "F1", "score": "N/A"}, {"id": "F2", "score": 1},
                                            {"id": "O1", "score": 1}]}), ["F1", "F2", "O1"], {"F2"})
    ctx = context(tmp_path, "")
    ctx.rubric, ctx.criteria = rubric, "## R001\nThe file must exist."
    prompt = build_prompt(ctx)
    assert "[N/A when: no linter]" in prompt and '"score": "N/A"' in prompt and "## R001" in prompt
    assert "'functional' (weight 0.5), checklist: score each item 0 or 1" in prompt


def test_text_without_json_is_rejected():
    with pytest.raises(InvalidJudgment, match="no JSON object"):
        extract_json_object("The agent did well. 9/10 {not json")
    with pytest.raises(InvalidJudgment):
        parse_verdict("", IDS)


# -- prompt ------------------------------------------------------------------------------------


def context(tmp_path: Path, diff: str) -> JudgeContext:
    rubric = Rubric.model_validate({"categories": {
        "correctness": {"weight": 2, "items": [{"id": "tests", "check": "the tests pass", "points": 3,
                                                "command": "pytest -q"}]},
        "quality": {"items": [{"id": "style", "check": "code is readable"}]},
    }})
    checks = [CommandCheckResult(item_id="tests", command="pytest -q", exit_code=1, passed=False,
                                 output_tail="E   assert 3 == 4\n1 failed")]
    return JudgeContext(key=RunKey(tier="T0", subtest="00", run=1), workspace=tmp_path, judge_dir=tmp_path / "j",
                        judge_id="judge_01", task_prompt="Fix add() in calc.py.", rubric=rubric, diff=diff,
                        command_results=checks, registry=ProcessRegistry())


def test_prompt_has_task_rubric_diff_checks_and_format(tmp_path: Path):
    prompt = build_prompt(context(tmp_path, "diff --git a/calc.py b/calc.py\n-    return a - b\n+    return a + b\n"))
    for fragment in ("Fix add() in calc.py.", '"tests" (3 points): the tests pass', "'quality' (weight 1)",
                     "+    return a + b", "tests: FAILED (exit code 1)", "assert 3 == 4", '"items"',
                     'exactly once: "tests", "style"'):
        assert fragment in prompt, fragment


def test_large_diffs_are_truncated_with_a_note(tmp_path: Path):
    big = "diff --git a/a.py b/a.py\n" + "+x\n" * DIFF_LIMIT_CHARS + "diff --git a/late.py b/late.py\n+y\n"
    prompt = build_prompt(context(tmp_path, big))
    assert len(prompt) < DIFF_LIMIT_CHARS + 5_000
    assert "[diff truncated" in prompt and "late.py" in prompt


def test_empty_diff_says_so(tmp_path: Path):
    assert "(no changes)" in build_prompt(context(tmp_path, ""))


# -- price -------------------------------------------------------------------------------------


def test_price_by_longest_prefix_and_zero_for_unknown_models():
    tokens = TokenStats(input_tokens=1_000_000, output_tokens=100_000)
    assert price_usd("claude-sonnet-4-5-20250929", tokens) == pytest.approx(3.0 + 1.5)
    assert price_usd("gpt-4o-mini", tokens) == pytest.approx(0.15 + 0.06)
    assert price_usd("gpt-4o-2024-08-06", tokens) == pytest.approx(2.5 + 1.0)
    assert price_usd("my-local-model", tokens) == 0.0
