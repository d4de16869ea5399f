"""Blend: a weighted sum of several recipes' scores, each on a common scale.

Recipes make different mistakes: a collaborative recipe knows what goes with a basket,
popularity, trending and regional popularity know what sells now and where. Summing their
scores (weights chosen on the validation slice, `mgrecs.engine.evaluation.blending`) is the
classic way to gain over the best of them. Raw scales differ wildly (a random walk's
probabilities, purchaser counts, rise ratios), so each component is divided by its `scale`,
learned at fit: the mean, over training customers, of their best score (a typical
customer's best item scores 1 in every component).

When every component scores sparsely (a neighbour graph) or from a small table (popularity
and the like: the top TABLE_CANDIDATES products of their weighted sum join the candidates),
the blend scores sparsely too, so batch inference over a million customers ranks a few
hundred candidates each, as fast as the neighbour graph alone; on the stored candidates its
scores are the dense ones (up to float rounding).

Optional `segments` give each customer the weights of their history size's segment (how
many distinct products their row holds, against ascending `edges`): a customer with few
purchases leans more on what sells, one with many on the collaborative components.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from mgrecs.engine.arrays import Float32Array, IntArray
from mgrecs.engine.recipes.base import (
    Recipe,
    ScoringContext,
    SparseScoring,
    State,
    TableScoring,
    TrainingData,
)
from mgrecs.engine.recipes.support import (
    as_rows,
    fitted,
    history_context,
    score_rows,
    sparse_scores,
    uses_history,
)

DEFAULT_COMPONENTS: tuple[Mapping[str, Any], ...] = (
    {"recipe": "rp3beta", "params": {}, "weight": 1.0},
    {"recipe": "popularity", "params": {}, "weight": 0.1},
    {"recipe": "regional-popularity", "params": {}, "weight": 0.25},
)
"""A collaborative recipe with a little popularity, overall and regional (weights of the
order validation chose on generated data): what `make_recipe("blend")` gives."""
TABLE_CANDIDATES = 300
"""Top products of each table line (popularity, regional popularity) a sparse blend adds
to each customer's candidates."""
SCALE_SAMPLE = 2_000
"""Training customers (evenly spaced) whose best scores set each component's scale."""
SCALE_CELLS = 8_000_000
"""Dense score cells computed at once while measuring a scale."""


@dataclass(frozen=True)
class Component:
    """One recipe of a blend: its name, hyper-parameters and weight (> 0)."""

    recipe: str
    params: dict[str, Any]
    weight: float

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> "Component":
        """From `{"recipe": name, "params": {...}, "weight": w}` (params optional)."""
        unknown = set(spec) - {"recipe", "params", "weight"}
        if unknown or "recipe" not in spec or "weight" not in spec:
            raise ValueError(
                'a blend component is {"recipe": name, "params": {...}, "weight": w}; '
                f"got {dict(spec)!r}"
            )
        weight = float(spec["weight"])
        if not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"a blend component's weight must be positive, got {weight}")
        if spec["recipe"] == BlendRecipe.name:
            raise ValueError("a blend cannot contain a blend")
        return cls(str(spec["recipe"]), dict(spec.get("params") or {}), weight)

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "params": self.params, "weight": self.weight}


@dataclass(frozen=True)
class Segments:
    """Per-segment weights: a customer whose row holds n distinct products is in segment
    "how many `edges` are below n", and their components' weights are `weights[segment]`
    (one per component, >= 0, in the components' order)."""

    edges: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]

    @classmethod
    def of(cls, spec: Mapping[str, Any], n_components: int) -> "Segments":
        """From `{"edges": [e1, ...], "weights": [[w, ...], ...]}` (ascending edges, one
        weight list per segment, one weight per component, every list some weight > 0)."""
        try:
            edges = tuple(float(e) for e in spec.get("edges") or ())
            weights = tuple(tuple(float(w) for w in line) for line in spec.get("weights") or ())
            valid = (
                set(spec) == {"edges", "weights"}
                and bool(edges)
                and all(np.isfinite(e) for e in edges)
                and list(edges) == sorted(set(edges))
                and len(weights) == len(edges) + 1
                and all(len(line) == n_components for line in weights)
                and all(np.isfinite(w) and w >= 0 for line in weights for w in line)
                and all(any(w > 0 for w in line) for line in weights)
            )
        except (AttributeError, TypeError, ValueError, OverflowError):  # not numbers, lists
            valid = False
        if not valid:
            raise ValueError(
                'blend segments are {"edges": [ascending], "weights": [[w per component] per '
                f"segment]}} with {n_components} non-negative weights each; got {spec!r}"
            )
        return cls(edges, weights)

    def as_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "weights": [list(line) for line in self.weights]}

    def of_rows(self, rows: sparse.csr_matrix) -> IntArray:
        """Each row's segment, by its count of distinct products (positive entries)."""
        counts = distinct_products(rows)
        return np.searchsorted(np.asarray(self.edges), counts, side="left").astype(np.int64)


def distinct_products(rows: sparse.csr_matrix) -> IntArray:
    """Each row's count of distinct products (positive entries): what places a customer in a
    segment, at tuning and at scoring alike."""
    return np.asarray((sparse.csr_matrix(rows) > 0).sum(axis=1), dtype=np.int64).ravel()


def describe(
    components: Sequence[Mapping[str, Any]], segments: Mapping[str, Any] | None = None
) -> str:
    """A blend's components in a table cell: "rp3beta x1 + popularity x0.5", after "3
    segments: " when it has segments (the weights shown are then each one's largest)."""
    described = " + ".join(f"{c['recipe']} x{float(c['weight']):g}" for c in components)
    return f"{len(segments['weights'])} segments: {described}" if segments else described


def _sparse_capable(components: Sequence[Component]) -> bool:
    from mgrecs.engine.recipes import RECIPES

    return all(
        issubclass(RECIPES[c.recipe], (SparseScoring, TableScoring))
        for c in components
        if c.recipe in RECIPES
    )


@dataclass(frozen=True)
class ScaleSample:
    """The training customers a component's scale is measured on, with their context."""

    rows: sparse.csr_matrix
    context: ScoringContext

    @classmethod
    def of(cls, data: TrainingData) -> "ScaleSample":
        """Up to SCALE_SAMPLE evenly spaced training customers, with what evaluation knows
        of them (`history_context`)."""
        n_customers = data.matrix.shape[0]
        sample = np.unique(
            np.linspace(0, max(n_customers - 1, 0), min(n_customers, SCALE_SAMPLE)).astype(np.int64)
        )
        rows = sparse.csr_matrix(data.matrix[sample], dtype=np.float32)
        return cls(rows, history_context(data, sample))


def component_scale(recipe: Recipe, sample: ScaleSample) -> float:
    """Mean best score of the `sample` customers, over those with a positive best; 1.0 when
    there is none. The fitted `recipe` is scored, not changed."""
    rows, context = sample.rows, sample.context
    n_rows, n_items = rows.shape
    if n_rows == 0 or n_items == 0:
        return 1.0
    if isinstance(recipe, TableScoring):
        table, line = recipe.score_table(rows, context)
        best = table.max(axis=1, initial=0.0)[line]
    elif isinstance(recipe, SparseScoring):
        scores = sparse_scores(recipe, rows, context)
        best = np.asarray(scores.max(axis=1).todense()).ravel()
    else:
        chunk = max(1, SCALE_CELLS // n_items)
        best = np.concatenate(
            [
                score_rows(recipe, rows[start : start + chunk], context.take(start, start + chunk))
                .max(axis=1)
                .astype(np.float64)
                for start in range(0, n_rows, chunk)
            ]
        )
    positive = best[best > 0]
    return float(positive.mean()) if positive.size else 1.0


class BlendRecipe:
    """scores = sum over components of weight x component scores / component scale.

    Built from `components` (JSON-able dicts, as model metadata stores them). An instance is
    a `SparseBlendRecipe` when every component can score sparsely."""

    name: ClassVar[str] = "blend"

    def __new__(
        cls,
        *,
        components: Sequence[Mapping[str, Any]] = DEFAULT_COMPONENTS,
        segments: Mapping[str, Any] | None = None,
    ) -> Any:
        parsed = [Component.of(spec) for spec in components]
        if cls is BlendRecipe and parsed and _sparse_capable(parsed):
            return super().__new__(SparseBlendRecipe)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        components: Sequence[Mapping[str, Any]] = DEFAULT_COMPONENTS,
        segments: Mapping[str, Any] | None = None,
    ) -> None:
        from mgrecs.engine.recipes import make_recipe

        parsed = [Component.of(spec) for spec in components]
        if not parsed:
            raise ValueError("a blend needs at least one component")
        self._parts: list[Recipe] = [make_recipe(c.recipe, **c.params) for c in parsed]
        self._weights = [c.weight for c in parsed]
        self._segments = None if segments is None else Segments.of(segments, len(parsed))
        self._scales: Float32Array | None = None
        self._n_items: int | None = None

    @property
    def parts(self) -> list[Recipe]:
        """The component recipes, in order."""
        return list(self._parts)

    @property
    def uses_history(self) -> bool:
        """Whether any component scores with the order history (`support.uses_history`)."""
        return any(uses_history(part) for part in self._parts)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "components": [
                Component(part.name, dict(part.params()), weight).as_dict()
                for part, weight in zip(self._parts, self._weights, strict=True)
            ]
        }
        if self._segments is not None:
            params["segments"] = self._segments.as_dict()
        return params

    def fit(self, data: TrainingData) -> "BlendRecipe":
        """Fit every component, then measure its scale on the training customers."""
        scales = []
        sample = ScaleSample.of(data)
        for part in self._parts:
            part.fit(data)
            scales.append(component_scale(part, sample))
        self._scales = np.asarray(scales, dtype=np.float32)
        self._n_items = data.n_items
        return self

    def with_fitted(self, parts: Sequence[Recipe], scales: Sequence[float], n_items: int) -> Self:
        """This blend as `fit` would leave it, from its components already fitted on the
        same data and their scales measured there (`component_scale`): selection measures
        a tuned blend without fitting its components a third time."""
        if [(p.name, p.params()) for p in parts] != [(p.name, p.params()) for p in self._parts]:
            raise ValueError("the fitted parts must be this blend's components, in order")
        self._parts = list(parts)
        self._scales = np.asarray(scales, dtype=np.float32)
        self._n_items = n_items
        return self

    def _factors(self) -> Float32Array:
        """weight / scale of each component (columns) per segment (rows; one row without
        segments), as the float32 both score paths multiply by."""
        scales = fitted(self._scales, self.name).astype(np.float64)
        weights = [self._weights] if self._segments is None else self._segments.weights
        return np.asarray(
            [[w / s for w, s in zip(line, scales.tolist(), strict=True)] for line in weights],
            dtype=np.float32,
        )

    def _segment_of(self, rows: sparse.csr_matrix) -> IntArray | None:
        """Each row's segment; None without segments (every row takes the one weight line)."""
        return None if self._segments is None else self._segments.of_rows(rows)

    def score_context(self, rows: sparse.csr_matrix, context: ScoringContext) -> Float32Array:
        return self._dense(rows, context)

    def score(self, rows: sparse.csr_matrix) -> Float32Array:
        """Dense scores; a regional component scores globally (no region known)."""
        return self._dense(rows, None)

    def _dense(self, rows: sparse.csr_matrix, context: ScoringContext | None) -> Float32Array:
        factors = self._factors()
        segment = self._segment_of(rows)
        total: Float32Array | None = None
        for n, part in enumerate(self._parts):
            factor = factors[0, n] if segment is None else factors[segment, n][:, np.newaxis]
            term = factor * np.asarray(score_rows(part, rows, context), dtype=np.float32)
            total = term if total is None else total + term
        assert total is not None
        return total

    def state(self) -> dict[str, npt.NDArray[Any]]:
        arrays: dict[str, npt.NDArray[Any]] = {
            "scales": fitted(self._scales, self.name),
            "n_items": np.array([fitted(self._n_items, self.name)], dtype=np.int64),
        }
        for n, part in enumerate(self._parts):
            arrays.update((f"{n}.{key}", value) for key, value in part.state().items())
        return arrays

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: State) -> "BlendRecipe":
        from mgrecs.engine.recipes import RECIPES

        recipe = cls(**params)
        parts = []
        for n, part in enumerate(recipe._parts):
            prefix = f"{n}."
            own = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            parts.append(RECIPES[part.name].from_state(part.params(), own))
        recipe._parts = parts
        recipe._scales = np.asarray(arrays["scales"], dtype=np.float32)
        recipe._n_items = int(arrays["n_items"][0])
        return recipe


class SparseBlendRecipe(BlendRecipe):
    """A blend of sparse and table components: scores only its candidates (the sparse
    components' stored entries, and the top TABLE_CANDIDATES products of the table
    components' weighted sum as seen from the row's region). Sparse components' scores are
    non-negative (neighbour graphs), which lets one merge take the union."""

    def score_sparse(self, rows: sparse.csr_matrix) -> sparse.csr_matrix:
        return self._sparse(rows, None)

    def score_sparse_context(
        self, rows: sparse.csr_matrix, context: ScoringContext
    ) -> sparse.csr_matrix:
        return self._sparse(rows, context)

    def _sparse(self, rows: sparse.csr_matrix, context: ScoringContext | None) -> sparse.csr_matrix:
        """The dense blend's values (up to float rounding: the sum runs in another order) at
        the union of the candidates: the weighted sparse components, plus at every stored
        entry the weighted table components of the row's table line."""
        n_items = fitted(self._n_items, self.name)
        rows = as_rows(rows, n_items)
        n_rows = rows.shape[0]
        factors = self._factors()
        segment = self._segment_of(rows)
        personal = sparse.csr_matrix((n_rows, n_items), dtype=np.float32)
        tables: list[tuple[Float32Array, Float32Array, IntArray]] = []
        for n, part in enumerate(self._parts):
            if isinstance(part, TableScoring):
                table, line = part.score_table(rows, context)
                tables.append((factors[:, n], table, line))
            else:
                assert isinstance(part, SparseScoring)
                scores = sparse.csr_matrix(sparse_scores(part, rows, context), dtype=np.float32)
                if segment is None:
                    personal = personal + scores * factors[0, n]
                else:
                    personal = personal + sparse.diags(factors[segment, n]) @ scores
        personal = sparse.csr_matrix(personal)
        if not tables:
            return personal
        segments = np.zeros(n_rows, dtype=np.int64) if segment is None else segment
        combined, group = _combined_tables(tables, segments, n_items)
        owner = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(personal.indptr))
        personal.data = personal.data + combined[group[owner], personal.indices]
        popular = _table_candidates(combined, group, n_items)
        # Where both have an entry, the personal one (>= the table part alone) is the sum.
        return sparse.csr_matrix(personal.maximum(popular), dtype=np.float32)


def _combined_tables(
    tables: list[tuple[Float32Array, Float32Array, IntArray]], segment: IntArray, n_items: int
) -> tuple[Float32Array, IntArray]:
    """The weighted sum of the table components (each with its factor per segment), one
    line per distinct combination of their lines and the segment among the rows (a region,
    mostly), and each row's line of it."""
    lines = np.column_stack([*(line for _, _, line in tables), segment])
    distinct, group = np.unique(lines.astype(np.int64), axis=0, return_inverse=True)
    combined = np.zeros((distinct.shape[0], n_items), dtype=np.float32)
    for n, (factor, table, _) in enumerate(tables):
        combined += factor[distinct[:, -1]][:, np.newaxis] * table[distinct[:, n]]
    return combined, group.ravel().astype(np.int64)


def _table_candidates(table: Float32Array, line: IntArray, n_items: int) -> sparse.csr_matrix:
    """Each row's TABLE_CANDIDATES best products of its table line, with their values."""
    keep = min(TABLE_CANDIDATES, n_items)
    if keep == 0 or line.size == 0:
        return sparse.csr_matrix((line.size, n_items), dtype=np.float32)
    tops = np.argpartition(-table, keep - 1, axis=1)[:, :keep]
    tops.sort(axis=1)
    columns = tops[line]
    values = table[line[:, np.newaxis], columns]
    indptr = np.arange(0, (line.size + 1) * keep, keep, dtype=np.int64)
    return sparse.csr_matrix(
        (values.ravel().astype(np.float32), columns.ravel(), indptr), shape=(line.size, n_items)
    )
