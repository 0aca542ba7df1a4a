"""The judge spec syntax of test.yaml `judges:` and `--judge`: plain data, checked where a test or an
option is loaded. Building a judge from a spec is `tierbench.judges.make_judge`.

    command                     grade from the rubric's `command:` checks alone
    anthropic:<model>           Anthropic Messages API
    openai:<model>[@base_url]   OpenAI-compatible chat completions
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCEPTED_FORMS = "'command', 'anthropic:<model>' or 'openai:<model>[@http(s)://base_url]'"

_MODEL = re.compile(r"^[^\s@]+$")


@dataclass(frozen=True)
class ParsedJudgeSpec:
    kind: str  # "command" | "anthropic" | "openai"
    model: str | None = None
    base_url: str | None = None


def parse_judge_spec(spec: str) -> ParsedJudgeSpec:
    if not isinstance(spec, str):
        raise ValueError(f"a judge spec must be text, got {type(spec).__name__}; use {ACCEPTED_FORMS}")
    text = spec.strip()
    if text == "command":
        return ParsedJudgeSpec("command")
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
    return ParsedJudgeSpec(kind, model, base_url.rstrip("/") or None)


def validate_judge_spec(spec: str) -> None:
    """Raise ValueError (naming the accepted forms) unless `spec` is a judge spec make_judge accepts."""
    parse_judge_spec(spec)
