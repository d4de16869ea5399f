"""Hypothesis strategies for hostile input: arbitrary JSON, and near-valid JSON (a valid
example with one field mutated to something absurd), shared by the poison tests."""

import json
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

UNSEEN_CHARACTERS = (
    "\x00\x07\x1b\x7f\x85\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff"
)
"""Control, bidi and zero-width characters: never in an accepted id."""

nasty_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(list("aZ09-_ .é" + UNSEEN_CHARACTERS)), max_size=12),
    st.sampled_from(
        ["", " ", "c1\u202e", "\u200bc1", "c\x001", "\ufeffP0007", "c\ud800", "x" * 300]
    ),
)
"""Any text, and text made of the characters that fool people reading ids."""

extreme_numbers = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -1, 0, -0.0, 10**40, -(10**40)]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)

_offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
extreme_times = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+01:00",
            "1999-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2026-11-20T10:15:00",
            "2026-02-30T10:15:00Z",
            "NaN",
            "",
        ]
    ),
    st.datetimes(timezones=st.builds(timezone, _offsets)).map(lambda moment: moment.isoformat()),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
)
"""Times at and past the edges (year 1 and 9999 with offsets that overflow in UTC), naive
times, impossible dates, epoch numbers of any size."""

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), extreme_numbers, nasty_text, extreme_times),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(nasty_text, children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (with NaN and Infinity, which Python's json writes as bare words)."""


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document where a value sits."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for part in path[:-1]:
        target = target[part]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


@st.composite
def near_valid(draw: st.DrawFn, example: dict[str, Any]) -> Any:
    """`example` with one field replaced (by any JSON value, hostile text, an extreme
    number or time), removed, or with an unknown field added."""
    path = draw(st.sampled_from(_paths(example)))
    how = draw(st.sampled_from(["json", "text", "number", "time", "delete", "extra"]))
    if how == "extra":
        return {**example, draw(nasty_text): draw(json_values)}
    replacement = {
        "json": json_values,
        "text": nasty_text,
        "number": extreme_numbers,
        "time": extreme_times,
        "delete": st.none(),
    }[how]
    return _replaced(example, path, draw(replacement), how == "delete")


def raw_documents(example: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bytes a hostile or broken sender may produce around `example`: near-valid JSON,
    arbitrary JSON, arbitrary bytes, deep nesting."""
    return st.one_of(
        near_valid(example).map(lambda doc: json.dumps(doc).encode()),
        json_values.map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=64),
        st.integers(min_value=1, max_value=5000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.just(json.dumps(example).encode()),
    )
