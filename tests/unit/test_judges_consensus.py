"""consensus: mean over valid judges, majority of their verdicts, tie falls back to the threshold."""

from __future__ import annotations

import pytest

from tierbench.judges.consensus import ConsensusResult, consensus
from tierbench.models import JudgeResult


def judge(n: int, score: float | None, passed: bool | None, valid: bool = True) -> JudgeResult:
    return JudgeResult(judge_id=f"judge_{n:02d}", spec="command", is_valid=valid, score=score, passed=passed,
                       reasoning=f"reason {n}", error=None if valid else "unparseable reply")


def test_single_valid_judge_is_the_verdict():
    result = consensus([judge(1, 0.85, True)], 0.6)
    assert result == ConsensusResult(score=0.85, passed=True, grade="A", reasoning="reason 1", valid_count=1)


def test_invalid_judges_are_excluded_not_counted_as_zero():
    result = consensus([judge(1, 0.9, True), judge(2, None, None, valid=False)], 0.6)
    assert result.score == pytest.approx(0.9)
    assert result.passed is True
    assert result.valid_count == 1


def test_an_invalid_judge_with_a_stray_score_is_still_excluded():
    result = consensus([judge(1, 0.9, True), judge(2, 0.0, False, valid=False)], 0.6)
    assert result.score == pytest.approx(0.9)


def test_majority_of_verdicts_decides_passed_even_against_the_mean():
    # mean 0.633 >= 0.6, but two of three judges say fail
    result = consensus([judge(1, 0.55, False), judge(2, 0.55, False), judge(3, 0.8, True)], 0.6)
    assert result.score == pytest.approx(0.6333333)
    assert result.passed is False
    assert result.grade == "B"
    assert result.valid_count == 3
    assert "judge_01" in result.reasoning and "reason 3" in result.reasoning


def test_tie_falls_back_to_mean_score_against_threshold():
    assert consensus([judge(1, 0.9, True), judge(2, 0.4, False)], 0.6).passed is True  # mean 0.65
    assert consensus([judge(1, 0.7, True), judge(2, 0.3, False)], 0.6).passed is False  # mean 0.5


def test_no_valid_judges_gives_no_score():
    result = consensus([judge(1, None, None, valid=False)], 0.6)
    assert (result.score, result.passed, result.grade, result.valid_count) == (None, None, None, 0)
    assert "unparseable reply" in result.reasoning
    assert consensus([], 0.6).score is None


def test_grade_comes_from_the_mean():
    assert consensus([judge(1, 1.0, True), judge(2, 1.0, True)], 0.6).grade == "S"
    assert consensus([judge(1, 0.1, False), judge(2, 0.2, False)], 0.6).grade == "F"
