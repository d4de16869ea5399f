"""The products backfill (`mgrecs backfill-products`): a catalogue file, CSV or JSON lines,
onto topic `products`; broken lines to `products.dlq` with the reason and line number."""

import asyncio
import csv
import json
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mgrecs.cli.main import app as cli_app
from mgrecs.common import topics
from mgrecs.common.catalogue import ProductEvent
from mgrecs.common.schemas import DeadLetter
from mgrecs.common.settings import Settings
from mgrecs.ingest.product_files import backfill_products
from support.helpers import read_topic

CSV = """\
product_id,name,category,price,cost,in_stock,launched_at,updated_at,brand,size,attributes
P1,Eco Lamp,home-garden,39.90,21.50,yes,2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,Lumo,M,
P2,Never Sold,toys,5.00,,no,,,,,"{""age"": ""3+""}"
P3,Bad price,toys,-1,,,,,,,
P4,Bad stock,toys,1,,maybe,,,,,
P5,Too,many,fields,1,2,3,4,5,6,7,8
"""


async def published(settings: Settings) -> dict[str, ProductEvent]:
    records = await read_topic(settings.kafka_bootstrap, topics.topic(topics.PRODUCTS, settings))
    partitions = list(range(topics.PARTITIONS[topics.PRODUCTS]))
    products = {}
    for record in records:
        product = ProductEvent.model_validate_json(record.value)
        assert record.key == product.key
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        products[product.product_id] = product
    return products


async def letters(settings: Settings) -> list[DeadLetter]:
    records = await read_topic(
        settings.kafka_bootstrap, topics.topic(topics.PRODUCTS_DLQ, settings)
    )
    return [DeadLetter.model_validate_json(record.value) for record in records]


async def test_a_csv_catalogue_is_published_and_broken_lines_dead_lettered(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "catalogue.csv"
    path.write_text(CSV)
    summary = await backfill_products(path, settings)
    assert (summary.lines_read, summary.published, summary.rejected) == (5, 2, 3)
    products = await published(settings)
    assert set(products) == {"P1", "P2"}
    lamp = products["P1"]
    assert (str(lamp.price), str(lamp.cost), lamp.in_stock) == ("39.90", "21.50", True)
    assert lamp.attributes == {"brand": "Lumo", "size": "M"}
    assert products["P2"].attributes == {"age": "3+"} and not products["P2"].in_stock
    dead = {letter.offset: letter for letter in await letters(settings)}
    assert set(dead) == {4, 5, 6}
    assert "price" in dead[4].reason and dead[4].key == "P3"
    assert "in_stock" in dead[5].reason
    assert "more fields than the header" in dead[6].reason
    assert all(letter.source_topic == "backfill:catalogue.csv" for letter in dead.values())


def test_json_lines_through_the_cli(cli_env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "catalogue.jsonl"
    records = [
        {"product_id": f"N{n}", "name": f"New {n}", "price": "2.00", "margin": "0.50"}
        for n in range(7)
    ]
    lines = [json.dumps(r) for r in records] + ["{not json", "[1, 2]", '{"name": "no id"}']
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli_app, ["backfill-products", str(path)])
    assert result.exit_code == 1, result.output  # some lines were rejected
    assert "products published 7, rejected 3" in result.output
    products = asyncio.run(published(cli_env))
    assert {p.product_id for p in products.values()} == {f"N{n}" for n in range(7)}
    assert all(str(p.cost) == "1.50" for p in products.values())
    reasons = sorted(letter.reason for letter in asyncio.run(letters(cli_env)))
    assert reasons[0].startswith("line 10: product_id")
    assert "line 8: not JSON" in reasons[1] and "line 9: not a JSON object" in reasons[2]


def test_a_csv_without_product_id_is_refused(cli_env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id\n1,2\n")
    result = CliRunner().invoke(cli_app, ["backfill-products", str(path)])
    assert result.exit_code == 2  # the message wraps at the console's width, maybe mid-phrase
    assert "no product_id" in " ".join(result.output.split())


cells = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["", "-1", "1e999", "NaN", "yes", "2026-11-01T00:00:00Z", "{}", '{"a":1}']),
)


@hypothesis_settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(cells, min_size=1, max_size=8), min_size=1, max_size=20))
async def test_any_csv_lines_are_published_or_dead_lettered_every_one(
    settings: Settings, tmp_path: Path, rows: list[list[str]]
) -> None:
    header = ["product_id", "name", "price", "in_stock", "launched_at", "attributes", "brand"]
    path = tmp_path / "any.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    before_letters = len(await letters(settings))
    before = len(
        await read_topic(settings.kafka_bootstrap, topics.topic(topics.PRODUCTS, settings))
    )
    summary = await backfill_products(path, settings)
    assert summary.published + summary.rejected == summary.lines_read
    after = len(await read_topic(settings.kafka_bootstrap, topics.topic(topics.PRODUCTS, settings)))
    assert after - before == summary.published
    new_letters = (await letters(settings))[before_letters:]
    assert len(new_letters) == summary.rejected
    assert all(letter.reason.startswith("line ") for letter in new_letters)
