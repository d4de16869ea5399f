"""Trending: products whose purchases rose in the last days against their own recent past.

Not personalised (every row gets the same scores). It answers "what is picking up now" for
new customers and the "trending" reason: a product launched or promoted last week ranks
above a steady best-seller. Counts are smoothed with a prior so that one or two purchases of
a rarely sold product do not top the list.
"""

from typing import Any, ClassVar

import numpy as np

from mgrecs.engine.recipes.base import FloatArray, TrainingData
from mgrecs.engine.recipes.support import SECONDS_PER_DAY, reference_time
from mgrecs.engine.recipes.uniform import UniformScores


class TrendingRecipe(UniformScores):
    """score = (recent + smoothing) / (expected + smoothing), where `recent` counts distinct
    purchasers in the last `window_days` and `expected` is the same-length share of the
    purchasers in the `baseline_days` before that. 1 is steady, above 1 rising."""

    name: ClassVar[str] = "trending"

    def __init__(
        self, *, window_days: float = 7.0, baseline_days: float = 28.0, smoothing: float = 3.0
    ) -> None:
        if window_days <= 0 or baseline_days <= 0 or smoothing <= 0:
            raise ValueError("window_days, baseline_days and smoothing must be positive")
        self.window_days = window_days
        self.baseline_days = baseline_days
        self.smoothing = smoothing
        self._scores: FloatArray | None = None

    def params(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "baseline_days": self.baseline_days,
            "smoothing": self.smoothing,
        }

    def fit(self, data: TrainingData) -> "TrendingRecipe":
        """Needs the order lines; a product with no lines in either period scores 1."""
        if data.line_time.size == 0:
            raise ValueError("trending needs the order lines (line_time)")
        now = reference_time(data)
        window_start = now - self.window_days * SECONDS_PER_DAY
        baseline_start = window_start - self.baseline_days * SECONDS_PER_DAY
        recent = self._purchasers(data, window_start, np.inf)
        baseline = self._purchasers(data, baseline_start, window_start)
        expected = baseline * (self.window_days / self.baseline_days)
        scores = (recent + self.smoothing) / (expected + self.smoothing)
        self._scores = scores.astype(np.float32)
        return self

    @staticmethod
    def _purchasers(data: TrainingData, start: float, stop: float) -> FloatArray:
        """Distinct customers per product with a line in [start, stop)."""
        inside = (data.line_time >= start) & (data.line_time < stop)
        pairs = np.unique(data.line_customer[inside] * data.n_items + data.line_item[inside])
        return np.bincount(pairs % data.n_items, minlength=data.n_items).astype(np.float32)
