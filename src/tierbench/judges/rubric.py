"""Turning per-item scores into one rubric score.

Categories are scored separately, then combined by weight, so a category with many small items
cannot drown out a category with one important item. Items nobody scored are left out rather than
counted as 0: the command judge scores only items with a `command:`, and an unscored item is not a
failed item.
"""

from __future__ import annotations

from tierbench.spec import Rubric


def rubric_score(rubric: Rubric, item_scores: dict[str, float],
                 only_items: set[str] | None = None) -> float | None:
    """Weighted rubric score in 0..1, or None when no item was scored.

    `item_scores` maps item id -> fraction of the item's points earned (clamped to 0..1).
    Per category: earned points / total points over the scored items. Then the weighted mean,
    by category weight, over the categories that have at least one scored item.
    `only_items`, when given, further restricts which items count.
    """
    weighted_sum = 0.0
    weight_total = 0.0
    for category in rubric.categories:
        scored = [item for item in category.items
                  if item.id in item_scores and (only_items is None or item.id in only_items)]
        if not scored:
            continue
        possible = sum(item.points for item in scored)
        earned = sum(item.points * min(1.0, max(0.0, float(item_scores[item.id]))) for item in scored)
        weighted_sum += category.weight * (earned / possible)
        weight_total += category.weight
    if weight_total == 0:
        return None
    return weighted_sum / weight_total
