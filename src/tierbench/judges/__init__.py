"""Judges grade a run's workspace against the rubric.

Judge specs, as written in test.yaml `judges:` or `--judge`:

    command                     grade from the rubric's `command:` checks alone
    anthropic:<model>           Anthropic Messages API (ANTHROPIC_API_KEY, optional ANTHROPIC_BASE_URL)
    openai:<model>[@base_url]   OpenAI-compatible chat completions (OPENAI_API_KEY, optional
                                OPENAI_BASE_URL); `@base_url` points at any compatible server
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tierbench.judges.base import CommandCheckResult, Judge, JudgeContext, JudgeRateLimited

__all__ = [
    "CommandCheckResult",
    "Judge",
    "JudgeContext",
    "JudgeRateLimited",
    "make_judge",
    "validate_judge_spec",
]

ACCEPTED_FORMS = "'command', 'anthropic:<model>' or 'openai:<model>[@http(s)://base_url]'"

_MODEL = re.compile(r"^[^\s@]+$")


@dataclass(frozen=True)
class _ParsedSpec:
    kind: str  # "command" | "anthropic" | "openai"
    model: str | None = None
    base_url: str | None = None


def _parse(spec: str) -> _ParsedSpec:
    if not isinstance(spec, str):
        raise ValueError(f"a judge spec must be text, got {type(spec).__name__}; use {ACCEPTED_FORMS}")
    text = spec.strip()
    if text == "command":
        return _ParsedSpec("command")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("anthropic", "openai"):
        raise ValueError(f"unknown judge {spec!r}; use {ACCEPTED_FORMS}")
    model, at, base_url = rest.partition("@")
    if not _MODEL.match(model):
        raise ValueError(f"judge {spec!r} needs a model name without spaces after '{kind}:'; use {ACCEPTED_FORMS}")
    if at and kind == "anthropic":
        raise ValueError(f"judge {spec!r}: '@base_url' is only for openai judges; "
                         "set ANTHROPIC_BASE_URL to point anthropic judges elsewhere")
    if at and not re.match(r"^https?://\S+$", base_url):
        raise ValueError(f"judge {spec!r}: the base URL after '@' must start with http:// or https://")
    return _ParsedSpec(kind, model, base_url.rstrip("/") or None)


def validate_judge_spec(spec: str) -> None:
    """Raise ValueError (naming the accepted forms) unless `spec` is a judge spec make_judge accepts."""
    _parse(spec)


def make_judge(spec: str) -> Judge:
    """Build the judge for a spec. Raises ValueError for anything but the accepted forms."""
    parsed = _parse(spec)
    if parsed.kind == "command":
        from tierbench.judges.command import CommandJudge

        return CommandJudge()
    from tierbench.judges.llm import AnthropicJudge, OpenAIJudge

    assert parsed.model is not None
    if parsed.kind == "anthropic":
        return AnthropicJudge(parsed.model)
    return OpenAIJudge(parsed.model, base_url=parsed.base_url)
