"""Time context: known-answer profiles and re-weighting, and its evaluation on data with and
without a planted time-of-day pattern."""

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mgrecs.engine.context import fit_context, hour_bucket, weekday_bucket
from mgrecs.engine.evaluation import evaluate_recipe, time_split
from mgrecs.engine.evaluation.context import (
    ContextPoint,
    context_metrics,
    evaluate_with_context,
)
from mgrecs.engine.recipes import PopularityCountRecipe
from mgrecs.engine.records import Interaction


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp()


# Item 0 is bought only at 08:00, item 1 only at 20:00, item 2 at both; 12 lines.
ITEMS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
TIMES = np.array([at(2, 8)] * 4 + [at(2, 20)] * 4 + [at(3, 8), at(3, 8), at(3, 20), at(3, 20)])


def test_buckets_of_known_times() -> None:
    times = np.array([at(1, 0), at(1, 3, 59), at(1, 4), at(1, 8), at(1, 23, 59)])
    assert hour_bucket(times).tolist() == [0, 0, 1, 2, 5]
    # 2024-01-05 Friday, 06 Saturday, 07 Sunday, 08 Monday (times near midnight UTC).
    days = np.array([at(5, 23, 59), at(6, 0), at(7, 23, 59), at(8, 0)])
    assert weekday_bucket(days).tolist() == [0, 1, 1, 0]


def test_profile_is_the_smoothed_lift_over_all_lines() -> None:
    profile = fit_context(ITEMS, TIMES, n_items=4, kind="hour", smoothing=10.0)
    overall_morning = (6 + 1) / (12 + 6)  # 6 of 12 lines at 08:00, add-one over 6 buckets
    morning_given_item0 = (4 + 10 * overall_morning) / (4 + 10)
    assert math.exp(profile.log_lift[2, 0]) == pytest.approx(morning_given_item0 / overall_morning)
    assert profile.log_lift[2, 0] > 0 > profile.log_lift[5, 0]
    assert profile.log_lift[:, 3] == pytest.approx(np.zeros(6))  # never bought: lift 1


def test_morning_product_ranks_up_in_the_morning_and_down_in_the_evening() -> None:
    profile = fit_context(ITEMS, TIMES, n_items=3, kind="hour")
    scores = np.ones((2, 3), dtype=np.float32)
    weighted = profile.reweight(scores, np.array([at(9, 9), at(9, 21)]), gamma=1.0)
    assert np.argsort(-weighted[0]).tolist() == [0, 2, 1]  # morning request
    assert np.argsort(-weighted[1]).tolist() == [1, 2, 0]  # evening request
    # A stronger gamma separates them further; a boost lifts negative scores too.
    stronger = profile.reweight(scores, np.array([at(9, 9), at(9, 21)]), gamma=2.0)
    assert stronger[0, 0] > weighted[0, 0] and stronger[0, 1] < weighted[0, 1]
    negative = profile.reweight(-scores, np.array([at(9, 9), at(9, 21)]), gamma=1.0)
    assert np.argsort(-negative[0]).tolist() == [0, 2, 1]


def test_gamma_zero_changes_nothing() -> None:
    profile = fit_context(ITEMS, TIMES, n_items=3, kind="weekday")
    scores = np.array([[0.3, -0.2, 0.9]], dtype=np.float32)
    same = profile.reweight(scores, np.array([at(9, 9)]), gamma=0.0)
    assert same.tolist() == scores.tolist()
    same[0, 0] = 5.0  # a copy: top_k may overwrite it
    assert scores[0, 0] == pytest.approx(0.3)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown context kind"):
        fit_context(ITEMS, TIMES, 3, kind="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smoothing"):
        fit_context(ITEMS, TIMES, 3, smoothing=0.0)
    profile = fit_context(ITEMS, TIMES, 3)
    with pytest.raises(ValueError, match="one request time per score row"):
        profile.reweight(np.ones((2, 3), dtype=np.float32), np.array([at(9, 9)]), 1.0)


# ---------------------------------------------------------------- evaluation


def planted(time_of_day: bool) -> list[Interaction]:
    """60 customers over 40 days. Each order is 3 of 8 breakfast products or 3 of 8 dinner
    products; with `time_of_day` breakfasts are bought at 08:00 and dinners at 20:00,
    without it both at random hours."""
    rng = random.Random(3)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = []
    for c in range(60):
        for day in range(0, 40, 3):
            breakfast = rng.random() < 0.5
            hour = (8 if breakfast else 20) if time_of_day else rng.randrange(24)
            when = start + timedelta(days=day + rng.randrange(3), hours=hour)
            kind = "b" if breakfast else "d"
            for p in rng.sample(range(8), 3):
                lines.append(Interaction(f"c{c}", f"{kind}{p}", 1, when, None))
    return lines


def test_gamma_zero_measures_exactly_what_evaluate_recipe_does() -> None:
    split = time_split(planted(True), test_days=3, repeat=True)
    measured = context_metrics(PopularityCountRecipe(), split, "hour")
    assert measured[ContextPoint(0.0)] == evaluate_recipe(PopularityCountRecipe(), split).metrics


def test_validation_chooses_context_where_time_of_day_matters() -> None:
    split = time_split(planted(True), test_days=3, repeat=True)
    report = evaluate_with_context(PopularityCountRecipe(), split, "hour")
    assert report.chosen.gamma > 0
    assert report.validation[report.chosen] > report.validation[ContextPoint(0.0)]
    assert report.gain_percent is not None and report.gain_percent > 30
    # Without the pattern, the profiles only fit noise, and validation leaves context off.
    flat = evaluate_with_context(
        PopularityCountRecipe(), time_split(planted(False), test_days=3, repeat=True), "hour"
    )
    assert flat.chosen == ContextPoint(0.0)
    assert flat.gain_percent == 0.0
