"""Hostile input for `make drill`: records and HTTP requests that no one should send, made
from valid ones by one mutation, or from nothing at all.

Seeded (`random.Random`), so a run can be repeated. The mutations are the classes of input
the issue names: not JSON, not UTF-8, absurd timestamps, NaN/Infinity, ids with control,
bidi or zero-width characters, wrong types, missing and unknown fields, deep nesting.
"""

import json
import random
from collections.abc import Callable
from typing import Any

WEIRD_TEXT = [
    "",
    " ",
    "\x00",
    "C\x00001",
    "C\x07",
    "\u202eevil",
    "C\u200b001",
    "\ufeffC1",
    "\u2066x\u2069",
    "x" * 300,
    "ü" * 2000,
    "../../etc/passwd",
    "%00",
    "🙂",
    "\t",
    "a\nb",
    "null",
    "1e999",
]
WEIRD_NUMBERS: list[Any] = [0, -1, 1e308, -1e308, 10**30, 0.5, 2**63, -(2**63), True]
WEIRD_TIMES = [
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2199-01-01T00:00:00Z",
    "2026-13-45T00:00:00Z",
    "2026-11-20T10:15:00",
    "now",
    "",
]
SPECIALS = ["NaN", "Infinity", "-Infinity"]
"""Tokens Python's json writes for float specials: not JSON, but some parsers accept them."""


def weird_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, biased to the ones that break naive code."""
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice(WEIRD_TEXT)
    if kind == 1:
        return rng.choice(WEIRD_NUMBERS)
    if kind == 2:
        return rng.choice(WEIRD_TIMES)
    if kind == 3:
        return None
    if kind == 4:
        return float(rng.choice(SPECIALS).replace("Infinity", "inf"))
    if kind == 5:
        return [weird_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 6:
        return {rng.choice(WEIRD_TEXT): weird_value(rng, depth + 1) for _ in range(2)}
    return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 40)))


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `document`."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def mutate(document: Any, rng: random.Random) -> Any:
    """A deep copy of `document` with one value replaced, removed, or a field added."""
    copy = json.loads(json.dumps(document))
    paths = _paths(copy)
    if not paths or rng.random() < 0.1:
        if isinstance(copy, dict):
            copy[rng.choice(["extra", "lines ", "\u202e"])] = weird_value(rng)
            return copy
        return weird_value(rng)
    path = rng.choice(paths)
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = weird_value(rng)
    return copy


def _deep_nesting(rng: random.Random) -> bytes:
    depth = rng.choice([1_000, 100_000])
    return b"[" * depth + b"]" * depth


GARBAGE: list[Callable[[random.Random], bytes]] = [
    lambda rng: rng.randbytes(rng.randrange(1, 200)),
    lambda rng: b'{"order_id": "\xff\xfe", "x": 1}',
    lambda rng: b'{"schema_version": 1, "order_id": ',
    _deep_nesting,
    lambda rng: b"",
    lambda rng: b"[]",
    lambda rng: b"null",
    lambda rng: b'"just a string"',
    lambda rng: b"{" + b'"a": 1, ' * 10_000 + b'"b": 2}',
]


def _with(valid: dict[str, Any], path: tuple[Any, ...], value: Any) -> bytes:
    copy = json.loads(json.dumps(valid))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return json.dumps(copy, allow_nan=True).encode()


def hand_picked(valid: dict[str, Any]) -> list[bytes]:
    """The cases known to have crashed a reader once, for an order-shaped `valid`: each
    drill sends every one of them before the generated ones."""
    line = ("lines", 0)
    return [
        _with(valid, ("ordered_at",), "9999-12-31T23:00:00-05:00"),
        _with(valid, ("ordered_at",), "0001-01-01T00:00:00+14:00"),
        _with(valid, ("ordered_at",), "1970-01-01T00:00:00Z"),
        _with(valid, ("ordered_at",), "2199-01-01T00:00:00Z"),
        _with(valid, (*line, "price"), float("nan")),
        _with(valid, (*line, "price"), float("inf")),
        _with(valid, (*line, "quantity"), 1e308),
        _with(valid, ("order_id",), "O\u202e1"),
        _with(valid, ("customer", "customer_id"), "C\u200b1"),
        _with(valid, (*line, "product_id"), "P\x001"),
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe\x00garbage",
    ]


def hostile_payload(valid: dict[str, Any], rng: random.Random) -> bytes | None:
    """A record value made from `valid`: mostly one mutation away, else garbage or nothing."""
    roll = rng.random()
    if roll < 0.02:
        return None  # a record with no value (a tombstone)
    if roll < 0.25:
        return rng.choice(GARBAGE)(rng)
    return json.dumps(mutate(valid, rng), allow_nan=True).encode()


def example_of(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A plausible value for a JSON schema (OpenAPI flavour): its example when it has one,
    else one built from the types of its required properties."""
    if "$ref" in schema:
        return example_of(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if examples := schema.get("examples"):
        return examples[0] if isinstance(examples, list) else next(iter(examples.values()))
    if "example" in schema:
        return schema["example"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if options := [s for s in schema.get(combinator, []) if s.get("type") != "null"]:
            return example_of(options[0], components)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", [])
        properties = schema.get("properties", {})
        return {name: example_of(properties[name], components) for name in required}
    if kind == "array":
        return [example_of(schema.get("items", {}), components)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2026-11-20T10:15:00Z"
    return "x1"
