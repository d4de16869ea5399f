"""AWS Personalize filter expressions: the subset that maps onto the engine's rules.

A filter is parsed once (`parse_filter`), bound to a request's `filterValues` (`bind`),
and then gives a product mask over the catalogue (`BoundFilter.mask`) plus whether it
excludes what the customer bought (`BoundFilter.excludes_purchases`). Supported:

    filter     := expression ("|" expression)*        each one narrows the result further
    expression := (INCLUDE | EXCLUDE) ItemID WHERE condition (AND condition)*
    condition  := Items.CATEGORY [NOT] IN (list)
                | Items.PRICE (= | != | < | <= | > | >=) (number | $PARAM)
                | Interactions.EVENT_TYPE IN (list)   only with EXCLUDE, alone in its expression
    list       := ("string" | $PARAM) ("," ...)*

Keywords, datasets and field names are matched ignoring case, like Personalize; category
values exactly; event types ignoring case ("*" is any). A product without a category is
IN no list (so NOT IN any); one without a price meets no price condition. Placeholder
values come as Personalize sends them: `"\\"shoes\\",\\"bags\\""` for a list, `10` or
`"10"` for a number. An INCLUDE expression needs every placeholder's value; an EXCLUDE
condition whose placeholder has no value is left out (as Personalize does).

The engine learns from purchases only, so an EXCLUDE on event types covers the customer's
purchases when it names "purchase" or "*", and nothing otherwise. Anything else (OR, IF
CurrentUser, CurrentItem, other fields, INCLUDE on Interactions) is refused with a message
saying what is not supported; every problem is a ValueError whose message names it.
"""

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mgrecs.engine.arrays import BoolArray, Float64Array, IntArray
from mgrecs.engine.catalog import NO_CATEGORY, Catalog

PURCHASE_EVENT_TYPE = "purchase"
"""The interaction type the engine learns from (what the tracker sends with PutEvents)."""
ANY_EVENT_TYPE = "*"
MAX_EXPRESSION_LENGTH = 2500
"""Personalize's limit on a filter expression."""


COMPARISONS: dict[str, Callable[[Float64Array, float], BoolArray]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# -- the parsed expression ------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A `$NAME` placeholder; its value comes with each request's filterValues."""

    name: str


@dataclass(frozen=True)
class CategoryIn:
    values: tuple[str | Parameter, ...]
    negated: bool = False


@dataclass(frozen=True)
class PriceComparison:
    operator: str
    value: float | Parameter


@dataclass(frozen=True)
class EventTypeIn:
    values: tuple[str | Parameter, ...]


Condition = CategoryIn | PriceComparison | EventTypeIn


@dataclass(frozen=True)
class Expression:
    include: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Filter:
    """A parsed filter: its expressions, applied one after the other."""

    expressions: tuple[Expression, ...]

    @property
    def parameters(self) -> list[str]:
        """Placeholder names, in order of first use."""
        names: dict[str, None] = {}
        for expression in self.expressions:
            for condition in expression.conditions:
                values = (
                    (condition.value,)
                    if isinstance(condition, PriceComparison)
                    else condition.values
                )
                names.update((v.name, None) for v in values if isinstance(v, Parameter))
        return list(names)


# -- parsing --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
    | (?P<param>\$\w+)
    | (?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)
    | (?P<op><=|>=|!=|=|<|>)
    | (?P<punct>[(),|])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "name" else ""


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[at:].lstrip())
            if text[start] == '"':
                raise ValueError(f"unterminated string at position {start + 1}")
            raise ValueError(f"unexpected character {text[start]!r} at position {start + 1}")
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        at = match.end()
    return tokens


def _unescape(text: str) -> str:
    """Backslash escapes inside a quoted value: \\" is ", \\\\ is \\."""
    return re.sub(r"\\(.)", r"\1", text)


def _unquote(literal: str) -> str:
    return _unescape(literal[1:-1])


class _Parser:
    """Recursive descent over the tokens of one expression (between pipes)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._next = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._next] if self._next < len(self._tokens) else None

    def _fail(self, expected: str) -> ValueError:
        token = self._peek()
        found = f"found {token.text!r} at position {token.at}" if token else "the expression ends"
        return ValueError(f"expected {expected}, but {found}")

    def _take(self) -> _Token:
        token = self._peek()
        assert token is not None
        self._next += 1
        return token

    def _keyword(self, *words: str) -> str:
        """The next token, one of `words` (matched ignoring case), upper-cased."""
        token = self._peek()
        if token is None or token.word not in [w.upper() for w in words]:
            raise self._fail(" or ".join(words))
        self._next += 1
        return token.word

    def _punct(self, symbol: str) -> None:
        token = self._peek()
        if token is None or token.text != symbol:
            raise self._fail(f"'{symbol}'")
        self._next += 1

    def expression(self) -> Expression:
        include = self._keyword("INCLUDE", "EXCLUDE") == "INCLUDE"
        target = self._peek()
        if target is not None and target.word in ("USERID", "ACTIONID"):
            raise ValueError(f"only ItemID filters are supported, not {target.text}")
        self._keyword("ItemID")
        self._keyword("WHERE")
        conditions = [self._condition()]
        while (token := self._peek()) is not None and token.word == "AND":
            self._next += 1
            conditions.append(self._condition())
        token = self._peek()
        if token is not None:
            if token.word == "OR":
                raise ValueError(
                    f"OR is not supported (position {token.at}): combine conditions with AND"
                )
            if token.word == "IF":
                raise ValueError(
                    f"IF conditions (CurrentUser) are not supported (position {token.at})"
                )
            raise self._fail("AND, '|' or the end of the expression")
        interactions = [c for c in conditions if isinstance(c, EventTypeIn)]
        if interactions and len(interactions) != len(conditions):
            raise ValueError(
                "one expression cannot mix Items and Interactions conditions: "
                "chain two expressions with '|'"
            )
        if interactions and include:
            raise ValueError(
                "INCLUDE on Interactions is not supported; "
                'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase") is'
            )
        return Expression(include, tuple(conditions))

    def _condition(self) -> Condition:
        token = self._peek()
        if token is None or token.kind != "name" or "." not in token.text:
            raise self._fail("a field such as Items.CATEGORY")
        self._next += 1
        dataset, field = token.word.split(".")
        if dataset == "ITEMS" and field == "CATEGORY":
            token = self._peek()
            negated = token is not None and token.word == "NOT"
            self._next += negated
            if (token := self._peek()) is None or token.word != "IN":
                raise self._fail("IN or NOT IN after Items.CATEGORY")
            self._next += 1
            return CategoryIn(self._list(), negated)
        if dataset == "ITEMS" and field == "PRICE":
            comparison = self._peek()
            if comparison is None or comparison.kind != "op":
                raise self._fail("=, !=, <, <=, > or >= after Items.PRICE")
            self._next += 1
            return PriceComparison(comparison.text, self._number())
        if dataset == "INTERACTIONS" and field == "EVENT_TYPE":
            self._keyword("IN")
            return EventTypeIn(self._list())
        if dataset in ("CURRENTITEM", "CURRENTUSER"):
            raise ValueError(f"{token.text} is not supported (position {token.at})")
        raise ValueError(
            f"{token.text} is not supported (position {token.at}): the engine filters on "
            "Items.CATEGORY, Items.PRICE and Interactions.EVENT_TYPE"
        )

    def _list(self) -> tuple[str | Parameter, ...]:
        self._punct("(")
        values: list[str | Parameter] = []
        while True:
            token = self._peek()
            if token is not None and token.kind == "string":
                values.append(_unquote(self._take().text))
            elif token is not None and token.kind == "param":
                values.append(Parameter(self._take().text[1:]))
            elif token is not None and token.word.startswith(("CURRENTITEM.", "CURRENTUSER.")):
                raise ValueError(f"{token.text} is not supported (position {token.at})")
            else:
                raise self._fail('a quoted value such as "shoes" or a $PARAMETER')
            token = self._peek()
            if token is None or token.text != ",":
                break
            self._next += 1
        self._punct(")")
        return tuple(values)

    def _number(self) -> float | Parameter:
        token = self._peek()
        if token is not None and token.kind == "number":
            return float(self._take().text)
        if token is not None and token.kind == "param":
            return Parameter(self._take().text[1:])
        raise self._fail("a number or a $PARAMETER")


def parse_filter(text: str) -> Filter:
    """Parse a filter expression; a ValueError says what is wrong or not supported."""
    if not text.strip():
        raise ValueError("the filter expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"the filter expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    tokens = _tokens(text)
    parts: list[list[_Token]] = [[]]
    for token in tokens:
        if token.text == "|":
            parts.append([])
        else:
            parts[-1].append(token)
    expressions = []
    for part in parts:
        if not part:
            raise ValueError("an expression is missing around '|'")
        expressions.append(_Parser(part).expression())
    return Filter(tuple(expressions))


# -- binding filterValues -------------------------------------------------------------------

_LIST_VALUE = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_NUMBER_VALUE = re.compile(r'\s*("?)(-?\d+(?:\.\d+)?)\1\s*')


def _list_value(name: str, raw: str) -> list[str]:
    """`"a","b"` -> ["a", "b"] (values double-quoted, separated by commas)."""
    values: list[str] = []
    at = 0
    while at < len(raw):
        match = _LIST_VALUE.match(raw, at)
        if match is None:
            raise ValueError(
                f"filterValues[{name}] must be double-quoted values separated by commas, "
                f'like "\\"shoes\\",\\"bags\\""; got {raw!r}'
            )
        values.append(_unescape(match.group(1)))
        at = match.end()
        if match.group(2) == "," and at == len(raw):
            raise ValueError(f"filterValues[{name}] ends with a comma: {raw!r}")
    if not values:
        raise ValueError(f"filterValues[{name}] is empty")
    return values


def _number_value(name: str, raw: str) -> float:
    match = _NUMBER_VALUE.fullmatch(raw)
    if match is None:
        raise ValueError(f'filterValues[{name}] must be one number, like "10" or 9.99; got {raw!r}')
    return float(match.group(2))


@dataclass(frozen=True)
class _CategoryTest:
    names: frozenset[str]
    negated: bool

    def matches(self, category_index: Mapping[str, int], category: IntArray) -> BoolArray:
        wanted = [category_index[n] for n in self.names if n in category_index]
        inside: BoolArray = np.isin(category, np.asarray(wanted, dtype=np.int64))
        return ~inside if self.negated else inside


@dataclass(frozen=True)
class _PriceTest:
    operator: str
    value: float

    def matches(self, price: Float64Array) -> BoolArray:
        # NaN (unknown price) compares False except with !=, so ask for a known price.
        result: BoolArray = ~np.isnan(price) & COMPARISONS[self.operator](price, self.value)
        return result


@dataclass(frozen=True)
class _ItemsTest:
    include: bool
    tests: tuple[_CategoryTest | _PriceTest, ...]


@dataclass(frozen=True)
class BoundFilter:
    """A filter with its placeholder values: what a request may be recommended."""

    items: tuple[_ItemsTest, ...]
    excluded_event_types: frozenset[str]
    """Lower-cased event types whose items are excluded ("*": any)."""

    @property
    def excludes_purchases(self) -> bool:
        """Does the filter exclude what the customer bought?"""
        types = self.excluded_event_types
        return ANY_EVENT_TYPE in types or PURCHASE_EVENT_TYPE in types

    def mask(self, catalog: Catalog) -> BoolArray:
        """Per catalogue product: does it pass the Items conditions?"""
        return self._evaluate(catalog.category_index, catalog.category, catalog.price)

    def allows_unknown(self) -> bool:
        """Does a product nothing is known about (no category, no price) pass?"""
        category = np.array([NO_CATEGORY], dtype=np.int64)
        return bool(self._evaluate({}, category, np.array([np.nan]))[0])

    def _evaluate(
        self, category_index: Mapping[str, int], category: IntArray, price: Float64Array
    ) -> BoolArray:
        allowed = np.ones(category.shape[0], dtype=bool)
        for expression in self.items:
            matched = np.ones(category.shape[0], dtype=bool)
            for test in expression.tests:
                if isinstance(test, _CategoryTest):
                    matched &= test.matches(category_index, category)
                else:
                    matched &= test.matches(price)
            allowed &= matched if expression.include else ~matched
        return allowed


def bind(parsed: Filter, values: Mapping[str, str] | None) -> BoundFilter:
    """Give the placeholders their values (Personalize's filterValues); a ValueError names
    a missing, unused or malformed value."""
    given = dict(values or {})
    known = set(parsed.parameters)
    if unused := sorted(set(given) - known):
        hint = " (keys are placeholder names without '$')" if unused[0].startswith("$") else ""
        uses = ", ".join(f"${p}" for p in parsed.parameters) or "no placeholders"
        raise ValueError(f"filterValues has {', '.join(unused)}{hint}; the filter uses {uses}")
    items: list[_ItemsTest] = []
    event_types: set[str] = set()
    for expression in parsed.expressions:
        tests: list[_CategoryTest | _PriceTest] = []
        for condition in expression.conditions:
            missing = _missing(condition, given)
            if missing and expression.include:
                raise ValueError(
                    f"filterValues must give {missing} (used by an INCLUDE expression)"
                )
            if missing:
                continue  # an EXCLUDE condition without its value is left out
            if isinstance(condition, PriceComparison):
                tests.append(_PriceTest(condition.operator, _number(condition.value, given)))
                continue
            listed = _listed(condition.values, given)
            if isinstance(condition, CategoryIn):
                tests.append(_CategoryTest(frozenset(listed), condition.negated))
            else:
                event_types.update(v.lower() for v in listed)
        if tests:
            items.append(_ItemsTest(expression.include, tuple(tests)))
    return BoundFilter(tuple(items), frozenset(event_types))


def _missing(condition: Condition, given: Mapping[str, str]) -> str | None:
    values = (condition.value,) if isinstance(condition, PriceComparison) else condition.values
    for value in values:
        if isinstance(value, Parameter) and value.name not in given:
            return value.name
    return None


def _number(value: float | Parameter, given: Mapping[str, str]) -> float:
    return _number_value(value.name, given[value.name]) if isinstance(value, Parameter) else value


def _listed(values: tuple[str | Parameter, ...], given: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += (
            _list_value(value.name, given[value.name]) if isinstance(value, Parameter) else [value]
        )
    return out
