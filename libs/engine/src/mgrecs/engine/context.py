"""Time context: re-weight any recipe's scores towards what sells at the request time.

Issue 3 lets time of day / week shape the ranking only where validation shows it helps.
Some products sell at particular times (breakfast in the morning, beer in the evening,
weekend treats); a profile learns, per product, how much more (or less) likely it is
bought in each time bucket than products in general, and `reweight` multiplies a recipe's
scores by that lift raised to `gamma` (0: off). It works on any recipe's raw scores, so it
can be measured (`mgrecs.engine.evaluation.context`) without touching the recipes.
Measured by `make bench-context` (bench/RESULTS.md), it does not help on the real data
sets (MovieLens, Instacart), so the served model does not use it.

Buckets are read on the UTC clock of the epoch-second times, the same clock in training
and at request time. Each product's distribution over buckets is smoothed additively
towards the distribution of all order lines (`smoothing` pseudo-lines), so a product
bought a handful of times keeps a lift near 1 rather than an extreme one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mgrecs.engine.arrays import Float32Array, Float64Array, IntArray

ContextKind = Literal["hour", "weekday"]
HOURS_PER_BUCKET = 4
"""Hour-of-day buckets: 0-3, 4-7, 8-11, 12-15, 16-19, 20-23 (UTC)."""
SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
EPOCH_WEEKDAY = 3
"""1970-01-01 was a Thursday (Monday = 0)."""
DEFAULT_SMOOTHING = 10.0


def hour_bucket(times: Float64Array) -> IntArray:
    """Four-hour bucket (0..5) of each epoch-second time."""
    hours = np.floor_divide(times, SECONDS_PER_HOUR).astype(np.int64) % 24
    buckets: IntArray = hours // HOURS_PER_BUCKET
    return buckets


def weekday_bucket(times: Float64Array) -> IntArray:
    """0 on Monday to Friday, 1 on Saturday and Sunday."""
    days = np.floor_divide(times, SECONDS_PER_DAY).astype(np.int64)
    weekend: IntArray = ((days + EPOCH_WEEKDAY) % 7 >= 5).astype(np.int64)
    return weekend


BUCKETS: dict[str, tuple[Callable[[Float64Array], IntArray], int]] = {
    "hour": (hour_bucket, 24 // HOURS_PER_BUCKET),
    "weekday": (weekday_bucket, 2),
}
"""Kind -> (bucket of each time, number of buckets)."""


@dataclass(frozen=True)
class ContextProfile:
    """Per time bucket and product, log(P(bucket | product) / P(bucket))."""

    kind: str
    log_lift: Float64Array
    """n_buckets x n_items."""

    @property
    def n_items(self) -> int:
        return int(self.log_lift.shape[1])

    def buckets(self, times: Float64Array) -> IntArray:
        """The bucket of each epoch-second time."""
        return BUCKETS[self.kind][0](np.asarray(times, dtype=np.float64))

    def lift(self, times: Float64Array, gamma: float) -> Float64Array:
        """(len(times) x n_items) factors (P(bucket | item) / P(bucket)) ** gamma."""
        factors: Float64Array = np.exp(gamma * self.log_lift[self.buckets(times)])
        return factors

    def reweight(self, scores: Float32Array, times: Float64Array, gamma: float) -> Float32Array:
        """A new array: row r of `scores` re-weighted for a request at `times[r]`.

        A factor above 1 moves a score up whatever its sign (negative scores, which EASE
        gives, are divided by it), so the lift always means "more likely now". gamma 0
        returns an unchanged copy.
        """
        if scores.shape != (len(times), self.n_items):
            raise ValueError("one request time per score row, one column per product")
        if gamma == 0:
            return np.array(scores, dtype=np.float32)
        factors = self.lift(times, gamma)
        out: Float32Array = np.where(scores >= 0, scores * factors, scores / factors).astype(
            np.float32
        )
        return out


def fit_context(
    line_item: IntArray,
    line_time: Float64Array,
    n_items: int,
    kind: ContextKind = "hour",
    smoothing: float = DEFAULT_SMOOTHING,
) -> ContextProfile:
    """Each product's bucket distribution from its order lines (one count per line).

    P(b) = (lines in b + 1) / (lines + n_buckets); P(b | i) = (lines of i in b + smoothing
    P(b)) / (lines of i + smoothing). A product never bought gets lift 1 everywhere.
    """
    if kind not in BUCKETS:
        raise ValueError(f"unknown context kind {kind!r}; known: {', '.join(BUCKETS)}")
    if smoothing <= 0:
        raise ValueError("smoothing must be positive")
    if line_item.shape != line_time.shape:
        raise ValueError("line_item and line_time must be parallel arrays")
    bucket_of, n_buckets = BUCKETS[kind]
    buckets = bucket_of(np.asarray(line_time, dtype=np.float64))
    counts = np.bincount(buckets * n_items + line_item, minlength=n_buckets * n_items).reshape(
        n_buckets, n_items
    )
    overall = (counts.sum(axis=1) + 1.0) / (counts.sum() + n_buckets)
    per_item = (counts + smoothing * overall[:, None]) / (counts.sum(axis=0) + smoothing)
    return ContextProfile(kind, np.log(per_item / overall[:, None]))
