"""Is the difference between two experiment arms real? Tests, intervals and sample sizes
(docs/concepts.md, Reading an experiment's report).

- Rates (CTR, conversion): the two-proportion z-test, its p-value from the pooled proportion
  (the null hypothesis says both arms share one rate), its interval for the difference from
  the unpooled standard error (the Wald interval, what the textbooks pair with it).
- Revenue per customer: most customers spend nothing and a few spend much, so no normal
  approximation; SciPy's percentile bootstrap of the difference of the means (each arm's
  customers resampled, seeded, so a report does not change between two reads), and the
  p-value read off the same bootstrap distribution.
- Sample size per arm: the normal-approximation formulas for a two-sided test at `alpha`
  with `power` to detect a relative lift `mde` over the baseline arm's observed figure.
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

RESAMPLES = 2000
SEED = 20
MAX_RESAMPLED = 4_000_000
"""Values resampled at once by the bootstrap (resamples in a batch × customers): bounds its
memory, about 32 MB of float64."""


@dataclass(frozen=True)
class Difference:
    """`treatment − baseline`, its confidence interval and the two-sided p-value."""

    value: float
    low: float
    high: float
    p_value: float


def two_proportions(
    successes: int, trials: int, base_successes: int, base_trials: int, alpha: float = 0.05
) -> Difference | None:
    """The difference `successes/trials − base_successes/base_trials` (None unless both
    arms have trials). Neither arm with a success (or both with nothing else): no evidence
    of a difference, p = 1 and an interval of width 0."""
    if trials <= 0 or base_trials <= 0:
        return None
    p1, p0 = successes / trials, base_successes / base_trials
    difference = p1 - p0
    pooled = (successes + base_successes) / (trials + base_trials)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / base_trials))
    p_value = 1.0 if pooled_se == 0 else float(2 * stats.norm.sf(abs(difference) / pooled_se))
    se = math.sqrt(p1 * (1 - p1) / trials + p0 * (1 - p0) / base_trials)
    half = float(stats.norm.isf(alpha / 2)) * se
    return Difference(difference, difference - half, difference + half, p_value)


def bootstrap_means(
    values: NDArray[np.float64],
    base_values: NDArray[np.float64],
    alpha: float = 0.05,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Difference | None:
    """The difference of the means `values − base_values` with its percentile bootstrap
    interval; the p-value is twice the smaller share of bootstrap differences on either side
    of 0 (at least one resample's worth). None when an arm has fewer than 2 values."""
    if len(values) < 2 or len(base_values) < 2:
        return None
    difference = float(values.mean() - base_values.mean())
    if np.ptp(values) == 0 and np.ptp(base_values) == 0:  # nothing varies: no resampling
        return Difference(difference, difference, difference, 1.0 if difference == 0 else 0.0)
    result = stats.bootstrap(
        (values, base_values),
        _difference_of_means,
        n_resamples=resamples,
        batch=max(1, MAX_RESAMPLED // (len(values) + len(base_values))),
        vectorized=True,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    spread = result.bootstrap_distribution
    below, above = float(np.mean(spread <= 0)), float(np.mean(spread >= 0))
    p_value = min(1.0, max(2 * min(below, above), 1 / resamples))
    interval = result.confidence_interval
    return Difference(difference, float(interval.low), float(interval.high), p_value)


def _difference_of_means(
    values: NDArray[np.float64], base_values: NDArray[np.float64], axis: int = -1
) -> NDArray[np.float64]:
    difference: NDArray[np.float64] = np.mean(values, axis=axis) - np.mean(base_values, axis=axis)
    return difference


def _z_sum(alpha: float, power: float) -> tuple[float, float]:
    return float(stats.norm.isf(alpha / 2)), float(stats.norm.ppf(power))


def sample_size_proportion(
    base_rate: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Trials each arm needs for the two-proportion test to detect `base_rate` becoming
    `base_rate · (1 + mde)`: n = (z₁₋α/₂·√(2·p̄(1−p̄)) + z_power·√(p₀(1−p₀) + p₁(1−p₁)))² ⁄
    (p₁ − p₀)², p̄ their mean. None when the baseline rate is 0 (nothing to lift yet), the
    lifted rate would reach 1, or the lift is too small for any sample."""
    p0 = base_rate
    p1 = base_rate * (1 + mde)
    if p0 <= 0 or p1 >= 1:
        return None
    z_alpha, z_power = _z_sum(alpha, power)
    mean = (p0 + p1) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p0 * (1 - p0) + p1 * (1 - p1)
    )
    return _whole(root * root, (p1 - p0) ** 2)


def sample_size_mean(
    base_mean: float, sd: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Customers each arm needs to detect the mean `base_mean` becoming `base_mean · (1 +
    mde)` for values of standard deviation `sd`: n = 2·(z₁₋α/₂ + z_power)²·sd² ⁄ (mde ·
    base_mean)². None when the baseline mean is 0, nothing varies, or the lift is too small for
    any sample."""
    if base_mean <= 0 or sd <= 0:
        return None
    z_alpha, z_power = _z_sum(alpha, power)
    return _whole(2 * (z_alpha + z_power) ** 2 * sd * sd, (mde * base_mean) ** 2)


MAX_SAMPLE = 10**15
"""Past this, a sample size says only "never": the effect asked for is too small to measure."""


def _whole(numerator: float, denominator: float) -> int | None:
    """⌈numerator ⁄ denominator⌉, or None when it is beyond any sample (a lift so small that
    its square underflows, or a size past `MAX_SAMPLE`)."""
    if denominator <= 0 or numerator / denominator > MAX_SAMPLE:
        return None
    return math.ceil(numerator / denominator)
