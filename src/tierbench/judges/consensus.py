"""Combining several judges' verdicts into the run's verdict.

Only valid judges count. An invalid judge (unparseable reply, missing key, server errors) says
nothing about the work, so it is excluded rather than counted as a 0.
"""

from __future__ import annotations

from pydantic import BaseModel

from tierbench.models import JudgeResult, grade_for


class ConsensusResult(BaseModel):
    score: float | None  # mean over valid judges; None when no judge was valid
    passed: bool | None
    grade: str | None
    reasoning: str = ""
    valid_count: int = 0


def consensus(results: list[JudgeResult], pass_threshold: float) -> ConsensusResult:
    """Mean score over valid judges; `passed` by majority of their verdicts (a tie falls back to
    mean score >= threshold); the grade comes from the mean score."""
    valid = [r for r in results if r.is_valid and r.score is not None]
    if not valid:
        return ConsensusResult(score=None, passed=None, grade=None, valid_count=0,
                               reasoning=_invalid_summary(results))
    score = sum(r.score for r in valid) / len(valid)  # type: ignore[misc]
    # A valid judge that gave no explicit verdict votes by its own score against the threshold.
    votes = [r.passed if r.passed is not None else r.score >= pass_threshold for r in valid]  # type: ignore[operator]
    yes, no = votes.count(True), votes.count(False)
    passed = yes > no if yes != no else score >= pass_threshold
    return ConsensusResult(score=score, passed=passed, grade=grade_for(score), valid_count=len(valid),
                           reasoning=_reasoning(valid))


def _reasoning(valid: list[JudgeResult]) -> str:
    if len(valid) == 1:
        return valid[0].reasoning
    return "\n\n".join(f"[{r.judge_id} {r.spec}: score {r.score:.2f}] {r.reasoning}".rstrip() for r in valid)


def _invalid_summary(results: list[JudgeResult]) -> str:
    if not results:
        return "no judges ran"
    return "no valid judgment: " + "; ".join(f"{r.judge_id} ({r.spec}): {r.error or 'invalid'}" for r in results)
