"""The experiment report's statistics: figures computed by hand, a planted difference found
and no difference not found (seeded synthetic samples), sample sizes."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from mgrecs.api.experiment_stats import (
    bootstrap_means,
    sample_size_mean,
    sample_size_proportion,
    two_proportions,
)

Z95, Z80 = 1.959964, 0.841621


def test_two_proportions_matches_the_hand_computed_example() -> None:
    # 60 of 1,000 against 40 of 1,000: pooled 0.05, SE0 = sqrt(0.05·0.95·2/1000) = 0.0097468,
    # z = 0.02 / SE0 = 2.05196, p = 0.040174; SE = sqrt(0.06·0.94/1000 + 0.04·0.96/1000)
    # = 0.0097365, interval 0.02 ± 1.959964·SE = (0.000917, 0.039083)
    found = two_proportions(60, 1000, 40, 1000)
    assert found is not None
    assert round(found.value, 6) == 0.02
    assert round(found.p_value, 5) == 0.04017
    assert (round(found.low, 6), round(found.high, 6)) == (0.000917, 0.039083)
    # the z-test's p-value is the 2×2 chi-square test's without continuity correction
    table = [[60, 940], [40, 960]]
    assert found.p_value == pytest.approx(chi2_contingency(table, correction=False).pvalue)


def test_two_proportions_without_trials_or_variation() -> None:
    assert two_proportions(0, 0, 3, 10) is None
    assert two_proportions(3, 10, 0, 0) is None
    same = two_proportions(0, 50, 0, 80)
    assert same is not None and (same.value, same.p_value, same.low, same.high) == (0, 1, 0, 0)


def test_sample_size_matches_the_hand_computed_formulas() -> None:
    # 5 % → 5.5 %: p̄ = 0.0525; (1.959964·sqrt(2·0.0525·0.9475) + 0.841621·sqrt(0.05·0.95 +
    # 0.055·0.945))² / 0.005² = (0.618204 + 0.265444)² / 0.000025 = 31,233.4 → 31,234
    assert sample_size_proportion(0.05, 0.1) == 31_234
    # a mean of 1 with sd 3, +10 %: 2·(1.959964 + 0.841621)²·9 / 0.1² = 14,127.98 → 14,128
    assert sample_size_mean(1.0, 3.0, 0.1) == 14_128
    assert sample_size_mean(1.0, 3.0, 0.1) == math.ceil(2 * (Z95 + Z80) ** 2 * 9 / 0.01)
    assert sample_size_proportion(0.0, 0.1) is None  # nothing to lift yet
    assert sample_size_proportion(0.6, 1.0) is None  # 120 %: not a rate
    assert sample_size_mean(0.0, 3.0, 0.1) is None and sample_size_mean(2.0, 0.0, 0.1) is None


@given(
    rate=st.floats(min_value=0.001, max_value=0.45),
    mde=st.floats(min_value=0.01, max_value=1.0),
    power=st.floats(min_value=0.5, max_value=0.99),
)
def test_a_smaller_effect_or_more_power_needs_more(rate: float, mde: float, power: float) -> None:
    needed = sample_size_proportion(rate, mde, power=power)
    assert needed is not None and needed >= 1
    assert sample_size_proportion(rate, mde / 2, power=power) >= needed  # type: ignore[operator]
    assert sample_size_proportion(rate, mde, power=min(power + 0.005, 0.995)) >= needed  # type: ignore[operator]


def customers(rng: np.random.Generator, n: int, buy_rate: float, mean_spend: float) -> np.ndarray:  # type: ignore[type-arg]
    """Revenue per customer: most spend nothing, a buyer spends an exponential amount."""
    return np.where(rng.random(n) < buy_rate, rng.exponential(mean_spend, n), 0.0)


def test_bootstrap_finds_a_planted_difference() -> None:
    rng = np.random.default_rng(7)
    base, treated = customers(rng, 3000, 0.10, 50.0), customers(rng, 3000, 0.15, 50.0)
    found = bootstrap_means(treated, base)
    assert found is not None
    assert found.value == pytest.approx(treated.mean() - base.mean())
    assert 0 < found.low < found.value < found.high
    assert found.p_value < 0.05
    # about the normal approximation's interval (both sound at this size)
    se = math.sqrt(treated.var(ddof=1) / 3000 + base.var(ddof=1) / 3000)
    assert found.high - found.low == pytest.approx(2 * Z95 * se, rel=0.15)


def test_bootstrap_finds_no_difference_where_none_is() -> None:
    rng = np.random.default_rng(11)
    base, treated = customers(rng, 3000, 0.10, 50.0), customers(rng, 3000, 0.10, 50.0)
    found = bootstrap_means(treated, base)
    assert found is not None
    assert found.low < 0 < found.high
    assert found.p_value > 0.05
    again = bootstrap_means(treated, base)
    assert again == found  # seeded: the same report on every read


def test_bootstrap_small_or_constant_samples() -> None:
    one, many = np.array([3.0]), np.array([1.0, 2.0, 3.0])
    assert bootstrap_means(one, many) is None and bootstrap_means(many, one) is None
    flat = bootstrap_means(np.zeros(5), np.zeros(7))
    assert flat is not None and (flat.value, flat.low, flat.high, flat.p_value) == (0, 0, 0, 1)


def test_two_proportions_finds_a_planted_difference_and_rarely_a_false_one() -> None:
    """500 seeded experiments of 8,000 impressions per arm: with CTR 5 % against 6.5 % the
    test finds the lift nearly always (power ≈ 0.99); with 5 % against 5 % it sees one in
    about 5 % of them (alpha), and its interval holds the true difference 0 in about 95 %."""
    rng = np.random.default_rng(3)
    planted, false_alarms, covered = 0, 0, 0
    runs = 500
    for _ in range(runs):
        base, treated, same = rng.binomial(8000, [0.05, 0.065, 0.05])
        lift = two_proportions(int(treated), 8000, int(base), 8000)
        null = two_proportions(int(same), 8000, int(base), 8000)
        assert lift is not None and null is not None
        planted += lift.p_value < 0.05 and lift.low > 0
        false_alarms += null.p_value < 0.05
        covered += null.low < 0 < null.high
    assert planted / runs > 0.95
    assert 0.02 <= false_alarms / runs <= 0.085, false_alarms
    assert 0.915 <= covered / runs <= 0.98, covered
