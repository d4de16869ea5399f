"""The training customers' order history as the served model keeps it: per (customer,
product) the number of distinct orders and the latest purchase time.

A repeat recipe (`buy-again`, a blend with it) was chosen on validation scoring with these
(`support.history_context`); without them it sees binary rows (one order each, no date)
and ranks differently. So a model whose recipe `uses_history` keeps them, and scores known
customers' rows with them, in batch and in real time alike.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from mgrecs.engine.arrays import IntArray
from mgrecs.engine.recipes.base import ScoringContext, TrainingData
from mgrecs.engine.recipes.support import purchase_history, reference_time


@dataclass(frozen=True)
class OrderHistory:
    """Distinct orders and latest purchase (epoch seconds) per (training customer,
    product), both CSR with the same pattern, as of `now` (the training data's end)."""

    orders: sparse.csr_matrix
    last_bought: sparse.csr_matrix
    now: float

    @classmethod
    def of(cls, data: TrainingData) -> "OrderHistory":
        orders, last_bought = purchase_history(data)
        return cls(orders, last_bought, reference_time(data))

    def context(self, customers: IntArray, regions: IntArray | None = None) -> ScoringContext:
        """The context of these training customers (rows), scored as of `now`: what
        batch inference uses."""
        return ScoringContext(
            regions=regions,
            orders=self.orders[customers],
            last_bought=self.last_bought[customers],
            now=self.now,
        )

    def customer_context(
        self,
        customer: int,
        items: IntArray,
        mentions: IntArray,
        region: int,
        now: float | None,
    ) -> ScoringContext:
        """The context of one training customer's row of `items` (sorted, distinct), each
        named `mentions` times in the caller's history list: the stored orders and dates,
        and each mention beyond the stored purchase (an event since training) one more
        order at `now` (the request time; None: the training data's end)."""
        at = self.now if now is None else now
        lo, hi = self.orders.indptr[customer], self.orders.indptr[customer + 1]
        stored = dict(zip(self.orders.indices[lo:hi].tolist(), range(lo, hi), strict=True))
        orders = np.zeros(items.shape[0], dtype=np.float64)
        latest = np.full(items.shape[0], at, dtype=np.float64)
        for n, (item, named) in enumerate(zip(items.tolist(), mentions.tolist(), strict=True)):
            entry = stored.get(item)
            fresh = named - (entry is not None)
            if entry is not None:
                orders[n] = self.orders.data[entry]
                if fresh <= 0:
                    latest[n] = self.last_bought.data[entry]
            orders[n] += max(fresh, 0)
        indptr = np.array([0, items.shape[0]])
        shape = (1, self.orders.shape[1])
        return ScoringContext(
            regions=np.array([region], dtype=np.int64),
            orders=sparse.csr_matrix((orders, items, indptr), shape=shape),
            last_bought=sparse.csr_matrix((latest, items, indptr), shape=shape),
            now=at,
        )
