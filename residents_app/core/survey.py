"""Satisfaction and evaluation rounds are surveys, not decisions (DOMAIN.md): pure, exact, no Flask/SQLAlchemy.

A survey reports its response rate, and per question how the answers are distributed and, for a scored
question, the average score. It has no rule, no threshold, no outcome: nothing in it says "passed".

Shares are truncated to two decimals (never rounded up: 2/3 shows as 66.66%); an average is rounded half up
to two decimals (a score, not a bound).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

SCORES = (5, 4, 3, 2, 1)
CHOICE_TITLE = "总体满意度"
RATING_TITLE = "评分（1 到 5 分，5 分最满意）"


def share_text(value: int, denominator: int) -> str:
    """"66.66%": truncated, exact integer arithmetic; "" when there is no denominator."""
    if denominator <= 0:
        return ""
    basis_points = value * 10000 // denominator
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def average_text(total: int, count: int) -> str | None:
    if count <= 0:
        return None
    avg = Fraction(total, count)
    return str((Decimal(avg.numerator) / Decimal(avg.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def summarize(total_count: int, responses: Iterable[tuple[str, int | None]],
              options: Sequence[tuple[str, str]]) -> dict:
    """`responses`: one (choice, rating or None) per responding unit; `options`: the round's (key, label)."""
    responses = list(responses)
    n = len(responses)
    by_choice = {key: 0 for key, _ in options}
    by_score = {s: 0 for s in SCORES}
    for choice, rating in responses:
        by_choice[choice] = by_choice.get(choice, 0) + 1
        if rating is not None:
            by_score[rating] = by_score.get(rating, 0) + 1
    labels = dict(options)
    rated = sum(by_score.values())
    score_sum = sum(s * c for s, c in by_score.items())
    return {
        "total_count": total_count,
        "response_count": n,
        "response_rate": share_text(n, total_count),
        "questions": [
            {"key": "choice", "title": CHOICE_TITLE, "responses": n,
             "distribution": [{"key": k, "label": labels.get(k, k), "count": c, "share": share_text(c, n)}
                              for k, c in by_choice.items()]},
            {"key": "rating", "title": RATING_TITLE, "responses": rated,
             "average": average_text(score_sum, rated),
             "distribution": [{"score": s, "count": by_score[s], "share": share_text(by_score[s], rated)}
                              for s in SCORES]},
        ],
    }
