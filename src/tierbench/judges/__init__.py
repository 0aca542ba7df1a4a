"""Judges grade a run's workspace against the rubric.

Judge specs, as written in test.yaml `judges:` or `--judge`:

    command                     grade from the rubric's `command:` checks alone
    anthropic:<model>           Anthropic Messages API (ANTHROPIC_API_KEY, optional ANTHROPIC_BASE_URL)
    openai:<model>[@base_url]   OpenAI-compatible chat completions (OPENAI_API_KEY, optional
                                OPENAI_BASE_URL); `@base_url` points at any compatible server
"""

from __future__ import annotations

from tierbench.judges.base import CommandCheckResult, Judge, JudgeContext, JudgeRateLimited
from tierbench.judgespec import ACCEPTED_FORMS, parse_judge_spec, validate_judge_spec

__all__ = [
    "CommandCheckResult",
    "Judge",
    "JudgeContext",
    "JudgeRateLimited",
    "make_judge",
    "validate_judge_spec",
    "ACCEPTED_FORMS",
]

def make_judge(spec: str) -> Judge:
    """Build the judge for a spec. Raises ValueError for anything but the accepted forms."""
    parsed = parse_judge_spec(spec)
    if parsed.kind == "command":
        from tierbench.judges.command import CommandJudge

        return CommandJudge()
    from tierbench.judges.llm import AnthropicJudge, OpenAIJudge

    assert parsed.model is not None
    if parsed.kind == "anthropic":
        return AnthropicJudge(parsed.model)
    return OpenAIJudge(parsed.model, base_url=parsed.base_url)
