"""Trending: products whose purchases rose in the last days against their own recent past.

Not personalised (every row gets the same scores): "what is picking up now", a baseline of
the evaluation; the model's cold-start fill marks "trending" products with the same formula
(`mgrecs.engine.trending`). A product launched or promoted last week ranks above a steady
best-seller. Counts are smoothed with a prior so that one or two purchases of
a rarely sold product do not top the list.
"""

from typing import Any, ClassVar

import numpy as np

from mgrecs.engine.arrays import Float32Array
from mgrecs.engine.recipes.base import TrainingData
from mgrecs.engine.recipes.support import reference_time
from mgrecs.engine.recipes.uniform import UniformScores
from mgrecs.engine.trending import BASELINE_DAYS, SMOOTHING, WINDOW_DAYS, measure_rise


class TrendingRecipe(UniformScores):
    """score = (recent + smoothing) / (expected + smoothing), where `recent` counts distinct
    purchasers in the last `window_days` and `expected` is the same-length share of the
    purchasers in the `baseline_days` before that. 1 is steady, above 1 rising. The formula is
    `mgrecs.engine.trending.measure_rise`, the one the model's "trending" reasons use."""

    name: ClassVar[str] = "trending"

    def __init__(
        self,
        *,
        window_days: float = WINDOW_DAYS,
        baseline_days: float = BASELINE_DAYS,
        smoothing: float = SMOOTHING,
    ) -> None:
        if window_days <= 0 or baseline_days <= 0 or smoothing <= 0:
            raise ValueError("window_days, baseline_days and smoothing must be positive")
        self.window_days = window_days
        self.baseline_days = baseline_days
        self.smoothing = smoothing
        self._scores: Float32Array | None = None

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
        rise = measure_rise(
            data.line_customer,
            data.line_item,
            data.line_time,
            data.n_items,
            reference_time(data),
            window_days=self.window_days,
            baseline_days=self.baseline_days,
            smoothing=self.smoothing,
        )
        self._scores = rise.ratio.astype(np.float32)
        return self
