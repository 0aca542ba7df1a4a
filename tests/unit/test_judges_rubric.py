"""rubric_score: per-category earned/possible points, weighted by category, unscored items left out."""

from __future__ import annotations

import pytest

from tierbench.judges.rubric import rubric_score
from tierbench.spec import Rubric


def make_rubric() -> Rubric:
    return Rubric.model_validate({"categories": {
        "correctness": {"weight": 3, "items": [
            {"id": "tests", "check": "tests pass", "points": 3},
            {"id": "edge", "check": "edge cases", "points": 1},
        ]},
        "quality": {"weight": 1, "items": [
            {"id": "style", "check": "readable", "points": 2},
        ]},
    }})


def test_all_full_marks_is_one():
    assert rubric_score(make_rubric(), {"tests": 1, "edge": 1, "style": 1}) == pytest.approx(1.0)


def test_points_weight_items_within_a_category_and_weights_combine_categories():
    # correctness: (3*1 + 1*0) / 4 = 0.75; quality: 0.5; weighted (3*0.75 + 1*0.5) / 4 = 0.6875
    score = rubric_score(make_rubric(), {"tests": 1.0, "edge": 0.0, "style": 0.5})
    assert score == pytest.approx(0.6875)


def test_unscored_items_and_categories_are_left_out_not_counted_as_zero():
    assert rubric_score(make_rubric(), {"tests": 1.0}) == pytest.approx(1.0)
    assert rubric_score(make_rubric(), {"tests": 1.0, "style": 0.0}) == pytest.approx(0.75)


def test_only_items_restricts_the_scored_set():
    scores = {"tests": 1.0, "edge": 0.0, "style": 0.0}
    assert rubric_score(make_rubric(), scores, only_items={"tests"}) == pytest.approx(1.0)
    assert rubric_score(make_rubric(), scores, only_items={"edge", "style"}) == pytest.approx(0.0)


def test_nothing_scored_is_none():
    assert rubric_score(make_rubric(), {}) is None
    assert rubric_score(make_rubric(), {"unknown": 1.0}) is None
    assert rubric_score(make_rubric(), {"tests": 1.0}, only_items=set()) is None


def test_item_scores_are_clamped_to_0_1():
    assert rubric_score(make_rubric(), {"style": 7.0}) == pytest.approx(1.0)
    assert rubric_score(make_rubric(), {"style": -2.0}) == pytest.approx(0.0)
