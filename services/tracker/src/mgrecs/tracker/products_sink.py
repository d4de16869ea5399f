"""The catalogue sink: the company's product records (topic `products`) into `products`.

Same contract as the orders' database sink: the batch is written before its offsets are
committed, a replay is a no-op and a late older version changes nothing (the company's
`updated_at` decides, `mgrecs.store.products.write_catalogue`), and a message that is not a
valid `ProductEvent` goes to `products.dlq` with the reason.
"""

from mgrecs.common import channels
from mgrecs.common.catalogue import ProductEvent
from mgrecs.store.products import write_catalogue
from mgrecs.tracker.db_sink import PostgresSink


class ProductsSink(PostgresSink[ProductEvent]):
    """Consumer group `mgrecs-tracker-products`: the catalogue into PostgreSQL, poison to
    `products.dlq`."""

    sink = "products"
    channel = channels.TRACKER_PRODUCTS
    group = channel.group
    message = ProductEvent

    async def write(self, messages: list[ProductEvent]) -> None:
        await write_catalogue(self._pool, messages)
