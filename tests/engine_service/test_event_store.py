"""The real-time history's pruning: a long-running replica that drops what came before a
model's training holds what a replica started then reads back from `engine-events`."""

from hypothesis import given
from hypothesis import strategies as st

from mgrecs.engine_service.events import EventStore, Line

USERS = st.sampled_from(["u1", "u2", "u3"])
ITEMS = st.sampled_from(["A", "B", "C", None])
REGIONS = st.sampled_from(["north", "south"])


@st.composite
def calls(draw: st.DrawFn) -> list[tuple[int, list[Line]]]:
    """PutEvents calls accepted one after the other (at 0, 10, 20... ms), each a user's
    events: loose ones with unique ids (or none), or a new version of an order."""
    found = []
    for n in range(draw(st.integers(0, 12))):
        user = draw(USERS)
        region = draw(REGIONS)
        if draw(st.booleans()):
            order = draw(st.sampled_from(["o1", "o2"]))
            items = draw(st.lists(ITEMS, max_size=3))
            lines = [
                Line(user, f"{order}#{n}#{k}", item, region, order, f"{n:04d}")
                for k, item in enumerate(items)
            ] or [Line(user, f"{order}#{n}#cancel", None, region, order, f"{n:04d}")]
        else:
            with_id = draw(st.booleans())
            lines = [
                Line(user, f"e{n}-{k}" if with_id else None, item, region)
                for k, item in enumerate(draw(st.lists(ITEMS, min_size=1, max_size=3)))
            ]
        found.append((n * 10, lines))
    return found


def held(store: EventStore) -> dict[str, object]:
    return {
        "users": store.users,
        "popular": store.popular(),
        "items": {u: sorted(store.items(u)) for u in ("u1", "u2", "u3")},
        "regions": {u: store.region(u) for u in ("u1", "u2", "u3")},
    }


@given(calls(), st.integers(0, 130), st.integers(0, 130))
def test_pruned_history_is_what_a_replica_started_then_reads_back(
    accepted: list[tuple[int, list[Line]]], cutoff: int, swap_at: int
) -> None:
    running = EventStore()
    for at, lines in accepted:
        if at >= swap_at:  # the newer model loads mid-stream
            running.prune(cutoff)
        running.record(lines, at)
    running.prune(cutoff)
    started = EventStore()
    started.prune(cutoff)
    for at, lines in accepted:
        if at >= cutoff:  # offsets_for_times(cutoff)
            started.follow(lines, at)
    assert held(running) == held(started)
    assert running.lines_held == started.lines_held


def test_a_prune_forgets_the_event_ids_and_never_moves_back() -> None:
    store = EventStore()
    store.record([Line("u1", "e1", "A", "north")], at=5)
    assert store.prune(10) == 1 and store.items("u1") == [] and store.users == 0
    assert store.prune(7) == 0 and store.cutoff == 10
    assert store.record([Line("u1", "e1", "A", "north")], at=3).accepted == 0  # too old
    assert store.record([Line("u1", "e1", "A", "north")], at=12).accepted == 1
    assert store.items("u1") == ["A"]
