"""Backfill from JSON lines (whole `OrderEvent`s or flat lines), the CLI's --format, and the
partition each order lands on (the one a keyed send would choose)."""

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from typer.testing import CliRunner

from mgrecs.cli.main import app as cli_app
from mgrecs.common import topics
from mgrecs.common.schemas import DeadLetter, OrderEvent
from mgrecs.common.settings import Settings, get_settings
from mgrecs.engine.order_lines import COLUMNS
from mgrecs.ingest.backfill import backfill_file
from mgrecs.ingest.order_files import read_orders
from mgrecs.ingest.sample_data import generate
from support.helpers import read_topic

ANCHOR = datetime(2026, 11, 26, tzinfo=UTC)


async def _published(settings: Settings) -> dict[str, OrderEvent]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS, settings))
    partitions = list(range(topics.PARTITIONS[topics.ORDERS]))
    orders = {}
    for record in records:
        order = OrderEvent.model_validate_json(record.value)
        assert record.key == order.key
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        orders[order.order_id] = order
    assert len(orders) == len(records), "an order was published twice"
    return orders


async def _letters(settings: Settings) -> dict[int, DeadLetter]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.ORDERS_DLQ, settings))
    letters = [DeadLetter.model_validate_json(record.value) for record in records]
    return {letter.offset: letter for letter in letters}


async def test_json_lines_of_whole_orders_publish_exactly_those_orders(
    settings: Settings, tmp_path: Path
) -> None:
    sample = generate(seed=3, customers=40, products=30, orders=300, anchor=ANCHOR)
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(order.model_dump_json() + "\n" for order in sample.orders))
    progress: list[int] = []

    summary = await backfill_file(path, settings, on_progress=progress.append)

    assert (summary.lines_read, summary.orders_published, summary.lines_rejected) == (300, 300, 0)
    assert summary.order_lines == sum(len(order.lines) for order in sample.orders)
    assert progress[-1] == 300
    published = await _published(settings)
    assert published == {order.order_id: order for order in sample.orders}
    assert summary.quality is not None and summary.quality.lines == summary.order_lines


async def test_flat_json_lines_read_like_the_csv(settings: Settings, tmp_path: Path) -> None:
    sample = generate(seed=4, customers=30, products=20, orders=120, anchor=ANCHOR)
    csv_path = tmp_path / "orders.csv"
    sample.write_csv(csv_path)
    rows = csv_path.read_text().splitlines()[1:]
    path = tmp_path / "orders.ndjson"
    with path.open("w") as out:
        for row in rows:
            values = dict(zip(COLUMNS, row.split(","), strict=True))
            document: dict[str, object] = {**values, "quantity": int(values["quantity"])}
            document["price"] = float(values["price"])
            out.write(json.dumps(document) + "\n")

    summary = await backfill_file(path, settings)

    assert summary.orders_published == 120 and summary.lines_rejected == 0
    published = await _published(settings)
    for order in sample.orders:
        assert [line.product_id for line in published[order.order_id].lines] == [
            line.product_id for line in order.lines
        ]
        assert published[order.order_id].lines[0].price == order.lines[0].price


BROKEN_JSONL = """\
{"order_id": "J1", "ordered_at": "2026-11-01T10:00:00Z", "customer": {"customer_id": "C1"}, \
"lines": [{"product_id": "P1", "quantity": 1, "price": "4.50"}]}
this is not json
[1, 2, 3]
{"order_id": "J4", "ordered_at": "2026-11-01T10:00:00Z", "customer": {"customer_id": "C4"}, \
"lines": [{"product_id": "P1", "quantity": 1, "price": "4.50"}, \
{"product_id": "P2", "quantity": -2, "price": "1.00"}]}

{"order_id": "J6", "customer_id": "C6", "product_id": "P1", "price": 4.5, "quantity": 1, \
"ordered_at": "2026-11-06T10:00:00Z", "region": "west"}
{"order_id": "J6", "customer_id": "C6", "product_id": "", "price": 4.5, "quantity": 1, \
"ordered_at": "2026-11-06T10:00:00Z", "region": "west"}
{"order_id": "J8", "customer_id": "C8", "product_id": "P3", "price": 2, "quantity": 3, \
"ordered_at": "2026-11-08T10:00:00Z"}
"""


async def test_broken_json_lines_go_to_the_dead_letter_topic_with_their_line(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(BROKEN_JSONL)

    summary = await backfill_file(path, settings)

    assert sorted(await _published(settings)) == ["J1", "J8"]
    assert (summary.orders_published, summary.orders_rejected) == (2, 4)
    letters = await _letters(settings)
    assert sorted(letters) == [2, 3, 4, 6]
    assert "line 2: not JSON" in letters[2].reason
    assert letters[2].payload == "this is not json"
    assert "not a JSON object" in letters[3].reason
    assert "lines.1.quantity" in letters[4].reason and letters[4].key == "C4"
    assert "line 7: product_id" in letters[6].reason and letters[6].key == "C6"
    assert summary.quality is not None
    assert summary.quality.checks["invalid"].count == 6  # 1 + 1 + both lines of J4 and J6


def test_the_cli_reads_json_lines_by_suffix_or_by_format(cli_env: Settings, tmp_path: Path) -> None:
    sample = generate(seed=6, customers=10, products=10, orders=20, anchor=ANCHOR)
    path = tmp_path / "orders.txt"
    path.write_text("".join(order.model_dump_json() + "\n" for order in sample.orders))
    runner = CliRunner()

    as_csv = runner.invoke(cli_app, ["backfill", str(path)], env={"COLUMNS": "300"})
    assert as_csv.exit_code == 2 and "CSV header lacks" in " ".join(as_csv.output.split())
    result = runner.invoke(cli_app, ["backfill", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert "orders published 20" in result.output
    wrong = runner.invoke(cli_app, ["backfill", str(path), "--format", "xml"])
    assert wrong.exit_code == 2 and "csv or jsonl" in wrong.output
    get_settings.cache_clear()


def test_optional_status_and_updated_at_columns_make_a_version() -> None:
    """A flat file may say where an order stands: `status` per line (every line cancelled is
    the order cancelled) and the order's `updated_at`; files without them are placed orders."""
    header = ",".join([*COLUMNS, "status", "updated_at"])
    base = "c1,p{n},,,1.00,1,2026-11-20T10:00:00Z,north"
    rows = [
        f"o1,{base.format(n=1)},returned,2026-11-21T08:00:00Z",
        f"o1,{base.format(n=2)},,",
        f"o2,{base.format(n=3)},cancelled,",
        f"o2,{base.format(n=4)},cancelled,",
    ]
    text = "\n".join([header, *rows]) + "\n"
    partly, cancelled = (item.to_order() for item in read_orders(io.StringIO(text), "csv"))
    assert [line.status for line in partly.lines] == ["returned", "placed"]
    assert partly.status == "placed"
    assert partly.updated_at == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert [n for n, _ in partly.live_lines()] == [2]
    assert (cancelled.status, cancelled.updated_at) == ("cancelled", None)
