"""95 % confidence intervals: match rates on the region page, the experiment report's rates."""

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
"""1.959964…: the two-sided 95 % quantile of the standard normal."""


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z95) -> Interval | None:
    """The proportion `successes / trials` with its Wilson score interval (E. B. Wilson,
    "Probable inference, the law of succession, and statistical inference", JASA 22, 1927):
    unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n
    successes, which matters for small samples. None without trials. Written out rather than
    taken from SciPy: it runs for every item of every region request, and
    `binomtest(...).proportion_ci` (the same interval; the tests compare them) also computes
    a p-value."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(centre - half, 0.0), min(centre + half, 1.0))


def mean_interval(total: float, total_of_squares: float, n: int, z: float = Z95) -> Interval | None:
    """The mean of `n` values given their sum and sum of squares, with the normal
    approximation's interval (mean ± z·s/√n, s the sample standard deviation); None when
    n is 0. The values (revenues) are never negative, so neither is the low end."""
    if n <= 0:
        return None
    mean = total / n
    variance = max(total_of_squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(variance / n)
    return Interval(mean, max(mean - half, 0.0), mean + half)
