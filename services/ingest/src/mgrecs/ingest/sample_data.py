"""A deterministic, realistic retail data set for demos, tests and benchmarks.

Recommenders only show what they can do on data with structure, so the orders here have the
structure real retail orders have: a popular head and a long tail of products (Zipf-like),
regions that favour some categories, bundles of products bought together, customers who buy
the same things again, and customers who order far more often than others. The same seed
(and anchor) always gives the same data.

The catalogue (`SampleData.catalogue`) describes every product as the company would (cost,
stock, launch date, brand and size), plus products launched in the last two weeks that
nobody has bought yet: they exist before they sell.
"""

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

from mgrecs.common.schemas import Customer, OrderEvent, OrderLine
from mgrecs.engine.order_lines import COLUMNS, CUSTOMER_COLUMNS

HISTORY_DAYS = 120
REGIONS = ("north", "south", "east", "west", "central")
CITIES = {
    "north": ("Aberdeen", "Inverness", "Dundee", "Tromso"),
    "south": ("Brighton", "Southampton", "Plymouth", "Seville"),
    "east": ("Norwich", "Ipswich", "Cambridge", "Gdansk"),
    "west": ("Bristol", "Cardiff", "Exeter", "Galway"),
    "central": ("Birmingham", "Leicester", "Nottingham", "Coventry"),
}


@dataclass(frozen=True)
class Category:
    """A catalogue category: its price range and the nouns its product names use."""

    name: str
    low: float
    high: float
    nouns: tuple[str, ...]


CATEGORIES = (
    Category("grocery", 0.8, 12.0, ("Pasta", "Rice", "Olive Oil", "Granola", "Honey", "Lentils")),
    Category("beverages", 0.9, 25.0, ("Coffee", "Green Tea", "Orange Juice", "Sparkling Water")),
    Category("household", 1.5, 30.0, ("Detergent", "Paper Towels", "Sponges", "Trash Bags")),
    Category("personal-care", 2.0, 40.0, ("Shampoo", "Toothpaste", "Body Lotion", "Sunscreen")),
    Category("electronics", 15.0, 600.0, ("Headphones", "Charger", "Speaker", "Smart Plug")),
    Category("apparel", 8.0, 150.0, ("T-Shirt", "Hoodie", "Socks", "Rain Jacket", "Sneakers")),
    Category("home-garden", 5.0, 250.0, ("Cushion", "Lamp", "Plant Pot", "Garden Hose")),
    Category("toys", 4.0, 90.0, ("Puzzle", "Building Blocks", "Board Game", "Plush Bear")),
)
ADJECTIVES = ("Classic", "Organic", "Premium", "Everyday", "Eco", "Deluxe", "Compact", "Family")

REGION_TASTES = {
    "north": ("beverages", "apparel"),
    "south": ("home-garden", "personal-care"),
    "east": ("electronics", "toys"),
    "west": ("grocery", "home-garden"),
    "central": ("household", "electronics"),
}
"""The categories each region buys far more of than the others do."""
TASTE_BOOST = 5.0

ZIPF_EXPONENT = 1.1
BUNDLE_SHARE = 0.3
"""Probability that an order starts from a bundle of products bought together."""
REPEAT_SHARE = 0.35
PERSONAL_SHARE = 0.8
"""Share of fresh picks drawn from the customer's own taste groups (their lasting, personal
preferences, e.g. vegan, gardener, gamer), the rest from regional popularity: the structure
that personalized recipes should find and popularity cannot."""
TASTE_GROUP_SIZE = 12
"""At most this many products of one category share a taste group."""
TASTES_PER_CUSTOMER = 2
REGIONAL_TASTE_SHARE = 0.7
"""Probability that a taste group of a customer is in a category their region favours."""
"""Probability that a line re-buys something from the customer's earlier orders."""
LINE_COUNT_WEIGHTS = (0.38, 0.28, 0.17, 0.11, 0.06)  # 1..5 lines per order
QUANTITY_WEIGHTS = (0.62, 0.24, 0.09, 0.03, 0.02)  # quantity 1..5


@dataclass(frozen=True)
class Product:
    """A catalogue entry (orders carry the same name, category and price)."""

    product_id: str
    name: str
    category: str
    price: Decimal


BRANDS = ("Lumo", "Northwind", "Acme", "Brite", "Oakhill", "Verde")
SIZES = ("S", "M", "L", "XL")
NEW_PRODUCT_DAYS = 14
"""Never-sold products were launched within this many days before the anchor."""


@dataclass(frozen=True)
class CatalogueProduct(Product):
    """A product as the company's catalogue describes it."""

    cost: Decimal = Decimal(0)
    stock: int = 0
    launched_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass
class SampleData:
    """The generated catalogue, customers and orders (orders sorted by time)."""

    products: list[Product]
    customers: list[Customer]
    orders: list[OrderEvent]
    bundles: list[tuple[str, ...]] = field(default_factory=list)
    catalogue: list[CatalogueProduct] = field(default_factory=list)
    """Every product of `products` and the new ones nobody bought (`unsold`), as the
    company's catalogue has them."""

    @property
    def unsold(self) -> list[CatalogueProduct]:
        """Catalogue products no order names."""
        sold = {line.product_id for order in self.orders for line in order.lines}
        return [product for product in self.catalogue if product.product_id not in sold]

    def iter_csv_rows(self, customer_columns: bool = False) -> Iterator[list[str]]:
        """Rows of the flat order-lines format (header first); optionally city, age, gender."""
        yield [*COLUMNS, *(CUSTOMER_COLUMNS if customer_columns else ())]
        for order in self.orders:
            customer = order.customer
            for line in order.lines:
                row = [
                    order.order_id,
                    customer.customer_id,
                    line.product_id,
                    line.product_name or "",
                    line.category or "",
                    f"{line.price:.2f}",
                    str(line.quantity),
                    order.ordered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    customer.region or "",
                ]
                if customer_columns:
                    row += [customer.city or "", str(customer.age or ""), customer.gender or ""]
                yield row

    def write_csv(self, path: Path | str, customer_columns: bool = False) -> int:
        """Write the orders as a flat order-lines CSV; return the number of line rows."""
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            rows = 0
            for row in self.iter_csv_rows(customer_columns):
                writer.writerow(row)
                rows += 1
        return rows - 1


def _products(rng: random.Random, count: int) -> list[Product]:
    products = []
    for index in range(count):
        category = CATEGORIES[index % len(CATEGORIES)]
        # Log-uniform prices: most products cheap, a few expensive, within the category range.
        price = category.low * (category.high / category.low) ** rng.random()
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(category.nouns)} {index + 1}"
        products.append(Product(f"P{index + 1:04d}", name, category.name, Decimal(f"{price:.2f}")))
    return products


def _customers(rng: random.Random, count: int) -> list[Customer]:
    customers = []
    for index in range(count):
        region = rng.choice(REGIONS)
        customers.append(
            Customer(
                customer_id=f"C{index + 1:05d}",
                age=max(18, min(90, round(rng.gauss(42, 14)))),
                gender=rng.choices(("F", "M", "X"), weights=(0.49, 0.47, 0.04))[0],
                city=rng.choice(CITIES[region]),
                region=region,
            )
        )
    return customers


def _bundles(rng: random.Random, products: Sequence[Product]) -> list[tuple[str, ...]]:
    """Groups of 2-3 products of one category bought together (a razor and its blades)."""
    by_category: dict[str, list[str]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product.product_id)
    bundles = []
    for _ in range(max(1, len(products) // 8)):
        first = rng.choice(products)
        others = [pid for pid in by_category[first.category] if pid != first.product_id]
        if others:
            extra = rng.sample(others, k=min(rng.choice((1, 1, 2)), len(others)))
            bundles.append((first.product_id, *extra))
    return bundles


def _catalogue(
    seed: int, products: Sequence[Product], new_products: int, end: datetime
) -> list[CatalogueProduct]:
    """The catalogue: `products` (launched before the orders begin) and `new_products` more,
    launched in the last NEW_PRODUCT_DAYS days. Its own random stream, so the orders stay the
    same whatever the catalogue holds."""
    rng = random.Random(seed * 7919 + 1)
    first_order = end - timedelta(days=HISTORY_DAYS)
    count = len(products)
    extra = _products(rng, count + new_products)[count:]
    entries = []
    for index, product in enumerate([*products, *extra]):
        new = index >= count
        launched = (
            end - timedelta(seconds=rng.randrange(NEW_PRODUCT_DAYS * 24 * 3600))
            if new
            else first_order - timedelta(days=rng.randint(1, 400))
        )
        entries.append(
            CatalogueProduct(
                product_id=product.product_id,
                name=product.name,
                category=product.category,
                price=product.price,
                cost=(product.price * Decimal(str(rng.uniform(0.45, 0.8)))).quantize(
                    Decimal("0.01")
                ),
                stock=0 if rng.random() < 0.05 else rng.randint(1, 200),
                launched_at=launched,
                attributes=(("brand", rng.choice(BRANDS)), ("size", rng.choice(SIZES))),
            )
        )
    return entries


def generate(
    seed: int = 7,
    customers: int = 500,
    products: int = 200,
    orders: int = 4000,
    anchor: datetime | None = None,
    new_products: int | None = None,
) -> SampleData:
    """Generate `orders` orders of `customers` customers over `products` products, and the
    catalogue with `new_products` more that nobody bought yet (default: a tenth as many).

    Order times are spread over the 120 days before `anchor` (default: now), so "active in the
    last 90 days" means something relative to it.
    """
    if min(customers, products, orders) < 1:
        raise ValueError("customers, products and orders must be positive")
    if anchor is not None and anchor.tzinfo is None:
        raise ValueError("anchor needs a timezone")
    end = (anchor or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)

    catalogue = _products(rng, products)
    people = _customers(rng, customers)
    bundles = _bundles(rng, catalogue)

    # Zipf popularity over a random ranking of the catalogue.
    ranking = list(range(products))
    rng.shuffle(ranking)
    popularity = [0.0] * products
    for rank, index in enumerate(ranking):
        popularity[index] = 1.0 / (rank + 1) ** ZIPF_EXPONENT
    cumulative_by_region = {
        region: list(
            accumulate(
                weight * (TASTE_BOOST if product.category in REGION_TASTES[region] else 1.0)
                for weight, product in zip(popularity, catalogue, strict=True)
            )
        )
        for region in REGIONS
    }
    # Taste groups: small sets of products of one category (a gardener's, a gamer's); each
    # customer loves a few, mostly in the categories their region favours.
    members: list[list[int]] = []
    for category in CATEGORIES:
        indices = [i for i, p in enumerate(catalogue) if p.category == category.name]
        rng.shuffle(indices)
        for start in range(0, len(indices), TASTE_GROUP_SIZE):
            members.append(indices[start : start + TASTE_GROUP_SIZE])
    regional_groups = {
        region: [
            g for g, m in enumerate(members) if catalogue[m[0]].category in REGION_TASTES[region]
        ]
        for region in REGIONS
    }
    tastes = {
        person.customer_id: [
            rng.choice(regional_groups[person.region or REGIONS[0]] or range(len(members)))
            if rng.random() < REGIONAL_TASTE_SHARE
            else rng.randrange(len(members))
            for _ in range(TASTES_PER_CUSTOMER)
        ]
        for person in people
    }
    # Heavy-tailed activity: a few customers place many orders.
    activity = list(accumulate(rng.paretovariate(1.5) for _ in people))
    by_id = {p.product_id: p for p in catalogue}

    seconds = HISTORY_DAYS * 24 * 3600
    times = sorted(end - timedelta(seconds=rng.randrange(seconds)) for _ in range(orders))
    history: dict[str, list[str]] = {}
    events = []
    for number, ordered_at in enumerate(times, start=1):
        customer = rng.choices(people, cum_weights=activity)[0]
        region = customer.region or REGIONS[0]
        past = history.setdefault(customer.customer_id, [])
        wanted = rng.choices(range(1, 6), weights=LINE_COUNT_WEIGHTS)[0]
        chosen: list[str] = []
        if bundles and rng.random() < BUNDLE_SHARE:
            chosen.extend(dict.fromkeys(rng.choice(bundles)))
        attempts = 0
        while len(chosen) < wanted and attempts < 20:
            attempts += 1
            if past and rng.random() < REPEAT_SHARE:
                candidate = rng.choice(past)
            elif rng.random() < PERSONAL_SHARE:
                group = rng.choice(tastes[customer.customer_id])
                candidate = catalogue[rng.choice(members[group])].product_id
            else:
                pick = rng.choices(catalogue, cum_weights=cumulative_by_region[region])[0]
                candidate = pick.product_id
            if candidate not in chosen:
                chosen.append(candidate)
        past.extend(chosen)
        lines = [
            OrderLine(
                product_id=pid,
                quantity=rng.choices(range(1, 6), weights=QUANTITY_WEIGHTS)[0],
                price=by_id[pid].price,
                product_name=by_id[pid].name,
                category=by_id[pid].category,
            )
            for pid in chosen[:5]
        ]
        events.append(
            OrderEvent(
                order_id=f"O{number:07d}", ordered_at=ordered_at, customer=customer, lines=lines
            )
        )
    unsold = max(1, products // 10) if new_products is None else new_products
    return SampleData(
        products=catalogue,
        customers=people,
        orders=events,
        bundles=bundles,
        catalogue=_catalogue(seed, catalogue, unsold, end),
    )
