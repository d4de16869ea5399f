"""How far the generator's data lets any recommender go (issue 16's +5 % on the generator).

The generator (`mgrecs.ingest.sample_data.generate`) plants each customer's two taste groups
(products of one category bought together), regional tastes and bundles. Ranking each test
customer's new products by the generator's own probabilities measures two ceilings with the
same split and metric `bench/quality.py` uses:
- **planted**: the customer's true taste groups, region and the bundles: what a recommender
  that knew the customers' minds would score;
- **groups known, tastes from history**: the true groups, but each customer's taste read
  from their training purchases (purchases per group, plus regional popularity and bundles as
  the generator mixes them): the best a recommender reading histories can hope for if it
  learned the item structure perfectly;
next to what a retrain serves and rp3beta, per history-size tercile (as the blend's segments).

The planted structure is rebuilt by replaying the generator's random stream; the script
checks that the replay gives the generator's own catalogue and bundles, and stops if not.

Usage: python bench/planted_ceiling.py [--seeds 7,11]
"""

import argparse
import random
import sys
from dataclasses import dataclass

import numpy as np
from quality import generated

from mgrecs.engine.arrays import Float64Array
from mgrecs.engine.evaluation import BASELINES, REPEAT_BASELINE, default_catalog, evaluate_all
from mgrecs.engine.evaluation.evaluate import top_k
from mgrecs.engine.evaluation.metrics import per_user
from mgrecs.ingest import sample_data as sd

CUSTOMERS, PRODUCTS, ORDERS, TEST_DAYS = 3000, 600, 40_000, 21
"""The sizes and test period of bench/quality.py's generator cases."""
FRESH_PER_ORDER = 1.4
"""Fresh (not re-bought) picks per order, about: 2.2 lines on average, 35 % re-buys."""


@dataclass(frozen=True)
class Planted:
    """The generator's hidden structure, per product index (P0001 is 0)."""

    groups: list[list[int]]
    tastes: dict[str, list[int]]
    """Customer id -> indices into `groups`."""
    region: dict[str, str]
    regional: dict[str, Float64Array]
    """Region -> probability of each product in a regional pick."""
    bundle: Float64Array
    """Per product, the chance an order's bundle holds it."""

    def chance(self, taste: Float64Array, region: str) -> Float64Array:
        """A product's weight in a customer's next order, given a taste distribution over
        products (as the generator mixes its sources)."""
        fresh = sd.PERSONAL_SHARE * taste + (1 - sd.PERSONAL_SHARE) * self.regional[region]
        weight: Float64Array = sd.BUNDLE_SHARE * self.bundle + FRESH_PER_ORDER * fresh
        return weight


def planted(seed: int) -> Planted:
    """Replay `generate`'s random stream up to the structure it plants (checked by the
    caller against the generated catalogue and bundles)."""
    rng = random.Random(seed)
    catalogue = sd._products(rng, PRODUCTS)
    people = sd._customers(rng, CUSTOMERS)
    bundles = sd._bundles(rng, catalogue)
    ranking = list(range(PRODUCTS))
    rng.shuffle(ranking)
    popularity = np.zeros(PRODUCTS)
    for rank, index in enumerate(ranking):
        popularity[index] = 1.0 / (rank + 1) ** sd.ZIPF_EXPONENT
    groups: list[list[int]] = []
    for category in sd.CATEGORIES:
        indices = [i for i, p in enumerate(catalogue) if p.category == category.name]
        rng.shuffle(indices)
        groups += [
            indices[s : s + sd.TASTE_GROUP_SIZE]
            for s in range(0, len(indices), sd.TASTE_GROUP_SIZE)
        ]
    regional_groups = {
        region: [g for g, m in enumerate(groups) if catalogue[m[0]].category in favoured]
        for region, favoured in sd.REGION_TASTES.items()
    }
    tastes = {
        person.customer_id: [
            rng.choice(regional_groups[person.region or sd.REGIONS[0]] or range(len(groups)))
            if rng.random() < sd.REGIONAL_TASTE_SHARE
            else rng.randrange(len(groups))
            for _ in range(sd.TASTES_PER_CUSTOMER)
        ]
        for person in people
    }
    regional = {}
    for region, favoured in sd.REGION_TASTES.items():
        boost = np.array([sd.TASTE_BOOST if p.category in favoured else 1.0 for p in catalogue])
        weights = popularity * boost
        regional[region] = weights / weights.sum()
    bundle = np.zeros(PRODUCTS)
    for members in bundles:
        for product_id in dict.fromkeys(members):
            bundle[int(product_id[1:]) - 1] += 1.0 / len(bundles)
    data = sd.generate(seed=seed, customers=CUSTOMERS, products=PRODUCTS, orders=1)
    if data.products != catalogue or data.bundles != bundles:
        sys.exit("the replay no longer matches sample_data.generate: update this script")
    region = {p.customer_id: p.region or sd.REGIONS[0] for p in people}
    return Planted(groups, tastes, region, regional, bundle)


def run(seed: int) -> None:
    truth = planted(seed)
    catalog = default_catalog()
    names = [n for n in catalog.names if n not in (*BASELINES, REPEAT_BASELINE, "buy-again")]
    data = generated(seed, customers=CUSTOMERS, products=PRODUCTS, orders=ORDERS)
    report = evaluate_all(data, names, test_days=TEST_DAYS, seed=7, catalog=catalog)
    split = report.split
    product = np.array([int(pid[1:]) - 1 for pid in split.item_ids])
    member = np.zeros((PRODUCTS, len(truth.groups)))
    for g, members in enumerate(truth.groups):
        member[members, g] = 1.0 / len(members)
    rows = split.train.matrix[split.users]
    bought = np.asarray(rows @ (member[product] > 0))  # customers x groups: products bought
    read = bought / np.maximum(bought.sum(axis=1, keepdims=True), 1.0)
    planted_scores = np.zeros((split.users.size, split.n_items), dtype=np.float32)
    history_scores = np.zeros_like(planted_scores)
    for row, user in enumerate(split.users.tolist()):
        customer = split.customer_ids[user]
        taste = member[:, truth.tastes[customer]].sum(axis=1) / sd.TASTES_PER_CUSTOMER
        planted_scores[row] = truth.chance(taste, truth.region[customer])[product]
        history_scores[row] = truth.chance(member @ read[row], truth.region[customer])[product]
    lists = {
        "planted (true tastes)": top_k(planted_scores, 10, rows),
        "groups known, tastes from history": top_k(history_scores, 10, rows),
        f"served ({report.served.recipe})": report.served.top,
        "rp3beta": report.result("rp3beta").top,
    }
    ndcg = {
        name: per_user(top, split.truth)["ndcg"] for name, top in lists.items() if top is not None
    }
    counts = np.diff(split.train.matrix.indptr)[split.users]
    segment = np.searchsorted(np.quantile(counts, [1 / 3, 2 / 3]), counts, side="left")
    print(f"\n## generator seed {seed}: {split.users.size:,} test customers, NDCG@10")
    header = f"{'ranking':<36} {'all':>7}" + "".join(
        f" {f'{counts[segment == s].min()}-{counts[segment == s].max()} products':>16}"
        for s in range(3)
    )
    print(header)
    print("-" * len(header))
    for name, values in ndcg.items():
        parts = "".join(f" {values[segment == s].mean():16.4f}" for s in range(3))
        print(f"{name:<36} {values.mean():7.4f}{parts}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,11", help="comma-separated generator seeds")
    args = parser.parse_args(argv)
    for seed in (int(s) for s in args.seeds.split(",")):
        run(seed)


if __name__ == "__main__":
    main(sys.argv[1:])
