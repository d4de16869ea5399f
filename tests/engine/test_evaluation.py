"""Offline evaluation: the orders file reader, the time split, metrics, tuning and reports.

The recipes here are tiny ones written for the tests (an oracle that knows the answers, its
reverse, popularity with a sign), so the evaluation is checked against known answers and
independently of the real recipes.
"""

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy import sparse

from mgrecs.engine.arrays import Float32Array
from mgrecs.engine.dataset import Lines, build_dataset
from mgrecs.engine.evaluation import (
    Catalog,
    InsufficientData,
    Split,
    evaluate_all,
    evaluate_recipe,
    ranking_metrics,
    time_split,
    tune,
)
from mgrecs.engine.evaluation.evaluate import recommend, top_k
from mgrecs.engine.orders_file import COLUMNS, OrdersFileError, read_orders
from mgrecs.engine.recipes.base import Recipe, TrainingData
from mgrecs.engine.records import Interaction

HEADER = ",".join(COLUMNS)


# ---------------------------------------------------------------- test recipes


class SignedPopularity:
    """Distinct purchasers per product times `sign`: +1 is popularity, -1 its reverse."""

    name: ClassVar[str] = "signed"

    def __init__(self, sign: float = 1.0) -> None:
        self.sign = sign
        self._scores = np.zeros(0, np.float32)

    def params(self) -> dict[str, Any]:
        return {"sign": self.sign}

    def fit(self, data: TrainingData) -> "SignedPopularity":
        purchasers = np.diff(sparse.csc_matrix(data.matrix).indptr).astype(np.float32)
        self._scores = self.sign * purchasers
        return self

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        return np.tile(self._scores, (rows.shape[0], 1))


class Oracle:
    """Scores each evaluated customer's held-out products highest (`sign` -1: lowest).

    It is handed the split it is evaluated on and, like `recommend`, walks its users in
    order, so row n of the n-th call's rows is the n-th evaluated user.
    """

    name: ClassVar[str] = "oracle"

    def __init__(self, split: Split, sign: float = 1.0) -> None:
        self.split, self.sign, self._next = split, sign, 0

    def params(self) -> dict[str, Any]:
        return {"sign": self.sign}

    def fit(self, data: TrainingData) -> "Oracle":
        self._next = 0
        return self

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        truth = self.split.truth[self._next : self._next + rows.shape[0]].toarray()
        self._next += rows.shape[0]
        return (self.sign * truth).astype(np.float32)


class History:
    """Scores what the customer already bought: shows whether purchases get excluded."""

    name: ClassVar[str] = "history"

    def params(self) -> dict[str, Any]:
        return {}

    def fit(self, data: TrainingData) -> "History":
        return self

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        return np.asarray(rows.toarray(), dtype=np.float32)


# ---------------------------------------------------------------- data helpers


def line(customer: str, product: str, when: datetime, quantity: int = 1) -> Interaction:
    return Interaction(customer, product, quantity, when, "north")


def day(n: int, hour: int = 12) -> datetime:
    return datetime(2024, 1, n, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated_split(generated: list[Interaction]) -> Split:
    return time_split(generated, test_days=21)


# ---------------------------------------------------------------- metrics


def test_metrics_match_hand_computed_values() -> None:
    # 3 users, 6 items, k = 3.
    truth = sparse.csr_matrix(
        (np.ones(7), ([0, 0, 1, 2, 2, 2, 2], [1, 5, 0, 2, 3, 4, 5])), shape=(3, 6)
    )
    top = np.array(
        [
            [5, 0, 1],  # hits at ranks 1 and 3 of 2 relevant
            [2, 4, -1],  # no hit; -1 must not alias user 0's item 5
            [0, 1, 2],  # hit at rank 3 of 4 relevant (ideal DCG capped at k = 3)
        ]
    )
    metrics = ranking_metrics(top, truth, n_items=6)

    log3 = 1 / math.log2(3)
    ndcg0 = (1 + 0.5) / (1 + log3)
    ndcg2 = 0.5 / (1 + log3 + 0.5)
    assert metrics.k == 3 and metrics.users == 3
    assert metrics.precision == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert metrics.recall == pytest.approx((1 + 0 + 1 / 4) / 3)
    assert metrics.ndcg == pytest.approx((ndcg0 + 0 + ndcg2) / 3)
    assert metrics.mrr == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert metrics.coverage == pytest.approx(5 / 6)
    assert metrics.as_dict()["ndcg@3"] == metrics.ndcg


def test_perfect_ranking_scores_one() -> None:
    truth = sparse.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    metrics = ranking_metrics(np.array([[2, 1], [0, 3]]), truth, n_items=4)
    assert (metrics.recall, metrics.ndcg, metrics.mrr) == (1.0, 1.0, 1.0)
    assert metrics.precision == pytest.approx(0.75)


def test_top_k_orders_best_first_excludes_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.1, 0.0]], dtype=np.float32)
    exclude = sparse.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0]]))
    assert top_k(scores.copy(), 3, None).tolist() == [[1, 3, 2], [0, 1, 2]]
    # Excluded items never come back; with too few left, the rest is -1.
    assert top_k(scores.copy(), 3, exclude).tolist() == [[3, 2, 0], [3, -1, -1]]
    assert top_k(scores.copy(), 6, None)[:, 4:].tolist() == [[-1, -1], [-1, -1]]


# ---------------------------------------------------------------- split


@pytest.fixture
def dated() -> list[Interaction]:
    return [
        line("A", "p1", day(1)),
        line("A", "p2", day(2)),
        line("A", "p1", day(8)),  # repeat
        line("A", "p3", day(9)),  # new to A
        line("B", "p2", day(3)),
        line("B", "p2", day(8)),  # repeat only
        line("C", "p1", day(9)),  # C is not in training
        line("D", "p3", day(4)),
        line("D", "p4", day(9)),  # p4 is not in training
        line("E", "p1", datetime(2024, 1, 7, 23, 59, 59, tzinfo=UTC)),  # last train second
        line("E", "p2", datetime(2024, 1, 8, tzinfo=UTC)),  # exactly the boundary: test
    ]


def _truth(split: Split) -> dict[str, set[str]]:
    return {
        split.customer_ids[user]: {split.item_ids[i] for i in split.truth[n].indices}
        for n, user in enumerate(split.users)
    }


def test_split_keeps_new_purchases_of_known_customers_and_products(
    dated: list[Interaction],
) -> None:
    split = time_split(dated, test_from=datetime(2024, 1, 8), min_customers=1)  # naive = UTC
    assert split.customer_ids == ["A", "B", "D", "E"]
    assert split.item_ids == ["p1", "p2", "p3"]
    assert _truth(split) == {"A": {"p3"}, "E": {"p2"}}
    assert split.train.matrix.nnz == 5
    assert split.train.now == datetime(2024, 1, 8, tzinfo=UTC).timestamp()
    assert split.test_to == day(9)


def test_repeat_split_counts_every_test_purchase(dated: list[Interaction]) -> None:
    split = time_split(
        dated, test_from=datetime(2024, 1, 8, tzinfo=UTC), repeat=True, min_customers=1
    )
    assert _truth(split) == {"A": {"p1", "p3"}, "B": {"p2"}, "E": {"p2"}}


def test_test_days_starts_at_midnight_n_days_before_the_last_day(
    dated: list[Interaction],
) -> None:
    split = time_split(dated, test_days=2, min_customers=1)
    assert split.test_from == datetime(2024, 1, 8, tzinfo=UTC)
    assert _truth(split) == {"A": {"p3"}, "E": {"p2"}}


def test_request_time_is_each_customers_first_test_line(dated: list[Interaction]) -> None:
    split = time_split(dated, test_from=datetime(2024, 1, 8), min_customers=1)
    by_customer = {
        split.customer_ids[user]: when
        for user, when in zip(split.users, split.request_time, strict=True)
    }
    # A's first test line is a repeat (no right answer), yet it is when A comes back.
    assert by_customer == {
        "A": day(8).timestamp(),
        "E": datetime(2024, 1, 8, tzinfo=UTC).timestamp(),
    }


def test_too_little_data_is_a_clear_error(dated: list[Interaction]) -> None:
    with pytest.raises(InsufficientData, match="only 1 customers bought two or more"):
        time_split(dated, test_days=2)
    with pytest.raises(InsufficientData, match="no test customers"):
        time_split(dated[:2] + [line("A", "p1", day(9))], test_days=1, min_customers=1)
    with pytest.raises(InsufficientData, match="to train on"):
        time_split(dated, test_from=day(1, 0), min_customers=1)


def test_validation_slice_is_the_end_of_training_only(generated_split: Split) -> None:
    split = generated_split
    validation = split.validation
    assert validation is not None
    span = split.test_from - split.train_from
    assert abs(validation.test_from - (split.test_from - 0.15 * span)) < timedelta(seconds=1)
    assert validation.train_from == split.train_from
    assert validation.test_to < split.test_from  # never touches the test period
    assert validation.train.line_time.max() < validation.test_from.timestamp()
    assert validation.users.size > 25 and split.users.size > 25
    assert validation.request_time.shape == validation.users.shape
    assert validation.request_time.min() >= validation.test_from.timestamp()
    assert validation.request_time.max() < split.test_from.timestamp()


# ---------------------------------------------------------------- evaluate and tune


def test_oracle_is_perfect_and_its_reverse_finds_nothing(generated_split: Split) -> None:
    split = generated_split
    sizes = np.diff(split.truth.indptr)
    perfect = evaluate_recipe(Oracle(split), split, k=10).metrics
    assert perfect.users == split.users.size
    assert perfect.ndcg == pytest.approx(1.0) and perfect.mrr == pytest.approx(1.0)
    assert perfect.recall == pytest.approx(np.mean(np.minimum(sizes, 10) / sizes))
    assert perfect.precision == pytest.approx(np.mean(np.minimum(sizes, 10) / 10))
    # Reversed, right answers come last: only customers who bought nearly everything before
    # (fewer than 10 other products left to show) get hits, exactly that many.
    worst = evaluate_recipe(Oracle(split, sign=-1.0), split, k=10).metrics
    others = split.n_items - np.diff(split.train.matrix[split.users].indptr) - sizes
    hits = np.clip(10 - others, 0, sizes)
    assert worst.precision == pytest.approx(np.mean(hits / 10))
    assert worst.recall == pytest.approx(np.mean(hits / sizes))
    assert worst.ndcg < 0.05 * perfect.ndcg


def test_purchases_are_excluded_unless_repeat(generated: list[Interaction]) -> None:
    for repeat in (False, True):
        split = time_split(generated, test_days=21, repeat=repeat)
        top = recommend(History().fit(split.train), split, k=5)
        bought = split.train.matrix[split.users]
        shown = np.array(
            [bought[n, item] > 0 for n, row in enumerate(top) for item in row if item >= 0]
        )
        assert shown.any() == repeat


def test_tuning_picks_the_better_grid_point_and_respects_the_budget(
    generated_split: Split,
) -> None:
    def make(params: dict[str, Any]) -> Recipe:
        return SignedPopularity(**params)

    grid = [{"sign": -1.0}, {"sign": 1.0}]
    tuned = tune(make, grid, generated_split.validation, budget_seconds=60)
    assert tuned.params == {"sign": 1.0}
    assert [t.params for t in tuned.trials] == grid
    assert tuned.trials[1].ndcg > tuned.trials[0].ndcg
    assert not tuned.budget_exhausted
    # No time left after the first point: the search stops and keeps what it has.
    hurried = tune(make, grid, generated_split.validation, budget_seconds=0)
    assert hurried.params == {"sign": -1.0} and hurried.budget_exhausted
    assert len(hurried.trials) == 1


def _catalog() -> Catalog:
    recipes: dict[str, Any] = {
        "popularity-count": SignedPopularity,
        "popularity": SignedPopularity,
        "trending": SignedPopularity,
        "regional-popularity": SignedPopularity,
        "signed": SignedPopularity,
        "history": History,
    }
    grids = {"trending": [{"sign": -1.0}], "signed": [{"sign": -1.0}, {"sign": 1.0}]}

    def make(name: str, params: dict[str, Any], seed: int) -> Recipe:
        recipe: Recipe = recipes[name](**params)
        return recipe

    return Catalog(make, grids, list(recipes))


def test_evaluate_all_reports_every_recipe_the_best_and_the_lift(
    generated: list[Interaction],
) -> None:
    steps: list[str] = []
    report = evaluate_all(
        generated,
        ["signed", "history"],
        test_days=21,
        catalog=_catalog(),
        on_progress=lambda done, total, what: steps.append(what),
    )
    # measured on the rows the served model uses: who bought what, whatever the quantity
    assert set(time_split(generated, test_days=21).train.matrix.data.tolist()) != {1.0}
    assert set(report.split.train.matrix.data.tolist()) == {1.0}
    assert report.split.validation is not None
    assert set(report.split.validation.train.matrix.data.tolist()) == {1.0}
    assert [r.recipe for r in report.results] == [
        "popularity-count",
        "popularity",
        "trending",
        "regional-popularity",
        "signed",
        "history",
    ]
    assert report.result("signed").params == {"sign": 1.0}  # chosen on validation
    assert report.best.recipe == "signed"
    popularity = report.result("popularity").metrics.ndcg
    assert report.result("signed").metrics.ndcg == pytest.approx(popularity)
    assert report.result("trending").metrics.ndcg < popularity
    assert report.lift_percent == pytest.approx(0.0)
    assert report.lift_over("popularity-count") == pytest.approx(0.0)
    assert steps[0] == "popularity-count: tuning" and steps[-1] == "done"

    document = json.loads(report.to_json())
    assert document["best"] == "signed"
    assert document["data"]["test_users"] == report.split.users.size
    assert set(document["results"][0]["metrics"]) == {
        "precision@10",
        "recall@10",
        "ndcg@10",
        "mrr",
        "coverage",
        "users",
    }

    again = evaluate_all(generated, ["signed", "history"], test_days=21, catalog=_catalog())
    assert _without_timings(again.to_dict()) == _without_timings(report.to_dict())


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_timings(v)
            for k, v in value.items()
            if not k.endswith("seconds") or k == "budget_seconds"
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_unknown_recipe_is_named(generated: list[Interaction]) -> None:
    with pytest.raises(KeyError, match="nope"):
        evaluate_all(generated, ["nope"], test_days=21, catalog=_catalog())


# ---------------------------------------------------------------- orders file


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_orders_file_reads_times_regions_and_products(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "orders.csv",
        "region,extra," + ",".join(c for c in COLUMNS if c != "region"),  # any order, extras
        "north,x,o1,c1,p1,Coffee,beverages,4.50,2,2024-03-01T10:00:00",
        ",x,o2,c2,p2,Lamp,,20,1,2024-03-01T12:00:00+02:00",
        "south,x,o3,c1,p1,Coffee,beverages,4.75,1,2024-03-02",
    )
    read = read_orders(path)
    first, second, third = read.interactions
    assert first == Interaction("c1", "p1", 2, datetime(2024, 3, 1, 10, tzinfo=UTC), "north")
    assert second.ordered_at == datetime(2024, 3, 1, 10, tzinfo=UTC) and second.region is None
    assert third.ordered_at == datetime(2024, 3, 2, tzinfo=UTC)
    assert read.products["p1"].price == 4.75  # latest line wins
    assert read.products["p2"].category is None
    assert read.summary.lines_read == 3 and read.summary.lines_skipped == 0


BROKEN = (
    HEADER,
    "o1,c1,p1,Coffee,beverages,4.50,1,2024-03-01T10:00:00Z,north",
    "o2,c1,p2,Tea,beverages,3.00,1,yesterday,north",
    "o3,c2,p1,Coffee,beverages,4.50,-2,2024-03-01T10:00:00Z,north",
    "o4,c2,p3,Socks,apparel,5.00,1.5,2024-03-01T10:00:00Z,north",
    "o5,,p3,Socks,apparel,5.00,1,2024-03-01T10:00:00Z,north",
    "o6,c3,p3",
    "o1,c1,p1,Coffee,beverages,4.50,1,2024-03-01T10:00:00Z,north",  # sent twice
    "o7,c3,p2,Tea,beverages,3.00,3,2024-03-03T10:00:00Z,",
)


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    read = read_orders(_write(tmp_path / "orders.csv", *BROKEN))
    assert [(i.customer_id, i.product_id) for i in read.interactions] == [
        ("c1", "p1"),
        ("c3", "p2"),
    ]
    summary = read.summary
    assert (summary.lines_read, summary.lines_skipped, summary.duplicates) == (8, 5, 1)
    assert summary.examples == [
        "line 3: ordered_at 'yesterday' is not an ISO-8601 date",
        "line 4: quantity -2 is not positive",
        "line 5: quantity '1.5' is not an integer",
        "line 6: empty order_id, customer_id or product_id",
        "line 7: 3 fields, the header has 9",
    ]


def test_strict_read_names_the_first_bad_line(tmp_path: Path) -> None:
    with pytest.raises(OrdersFileError, match=r"^line 3: ordered_at 'yesterday'"):
        read_orders(_write(tmp_path / "orders.csv", *BROKEN), strict=True)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    header = ",".join(c for c in COLUMNS if c not in ("quantity", "ordered_at"))
    with pytest.raises(OrdersFileError, match="lacks column.*quantity, ordered_at"):
        read_orders(_write(tmp_path / "orders.csv", header, "o1,c1,p1,x,y,1,north"))


def test_lines_kept_by_a_mask_are_numbered_as_if_read_alone(
    generated: list[Interaction],
) -> None:
    """The split keeps its training lines with `Lines.where` instead of rebuilding them from
    objects: ids, numbering and columns are those of the kept lines read on their own."""
    everything = Lines.of(generated)
    assert everything.customer_ids == sorted({i.customer_id for i in generated})
    keep = np.array([i.ordered_at.day % 3 == 0 for i in generated])
    kept = everything.where(keep)
    alone = Lines.of([i for i, k in zip(generated, keep, strict=True) if k])
    assert (kept.customer_ids, kept.item_ids, kept.regions) == (
        alone.customer_ids,
        alone.item_ids,
        alone.regions,
    )
    for column in ("customer", "item", "region", "quantity", "time"):
        assert np.array_equal(getattr(kept, column), getattr(alone, column)), column
    assert Lines.of(everything) is everything
    assert (build_dataset(everything).matrix != build_dataset(generated).matrix).nnz == 0
