"""The flat order-lines CSV format in one place: its columns and the one reader of its rows.

One row per order line, the rows of one order consecutive. `mgrecs sample-data` writes it;
backfill (`mgrecs.ingest.order_files`) reads it into validated orders and evaluation
(`mgrecs.engine.orders_file`) into interactions. The reader checks the header and hands out
each row's raw fields with its file line; what a field means (a time, a quantity) each
caller parses for the output it makes.
"""

import csv
from collections.abc import Iterator
from typing import TextIO

COLUMNS = (
    "order_id",
    "customer_id",
    "product_id",
    "product_name",
    "category",
    "price",
    "quantity",
    "ordered_at",
    "region",
)
"""The required columns, in the order the writer puts them."""
CUSTOMER_COLUMNS = ("city", "age", "gender")
"""Optional columns describing the customer."""
CONTACT_COLUMNS = ("email", "phone")
"""Optional columns, read only to merge customers (docs/concepts.md, Customer identities)."""
VERSION_COLUMNS = ("updated_at", "status")
"""Optional columns of an order's version: `updated_at` from its first row like `ordered_at`,
`status` per line."""
ALL_COLUMNS = (*COLUMNS, *CUSTOMER_COLUMNS, *CONTACT_COLUMNS, *VERSION_COLUMNS)


class MissingColumns(ValueError):
    """The header lacks a required column: no row of the file can be read."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"the CSV header lacks column(s): {', '.join(missing)}")
        self.missing = missing


class OrderLines:
    """The rows of an order-lines file after its header, as raw fields (blank lines skipped).

    Raises MissingColumns at once when the header lacks a required column.
    """

    def __init__(self, handle: TextIO) -> None:
        self._reader = csv.reader(handle)
        self.header = [name.strip() for name in next(self._reader, [])]
        missing = [name for name in COLUMNS if name not in self.header]
        if missing:
            raise MissingColumns(missing)

    def index(self, name: str) -> int:
        """The position of column `name` in every row."""
        return self.header.index(name)

    @property
    def line_number(self) -> int:
        """The file line the last row read ends on (the header is line 1)."""
        return self._reader.line_num

    def __iter__(self) -> Iterator[list[str]]:
        return filter(None, self._reader)

    def values(self, row: list[str]) -> dict[str, str]:
        """`row` by column name, stripped; fields the row lacks are empty."""
        return {name: row[i].strip() if i < len(row) else "" for i, name in enumerate(self.header)}
