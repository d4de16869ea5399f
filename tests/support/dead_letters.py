"""Each poison record of a run dead-lettered once, with its reason: the check the sinks'
any-bytes tests share."""

from typing import TypeVar

from pydantic import BaseModel

from mgrecs.common.schemas import DeadLetter
from support.helpers import eventually, read_topic

M = TypeVar("M", bound=BaseModel)


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(r.value) for r in await read_topic(bootstrap, topic)]


async def valid_and_each_poison_dead_lettered_once(
    bootstrap: str,
    dlq: str,
    model: type[M],
    raw: list[bytes],
    sent: list[tuple[int, int]],
) -> list[M]:
    """The records of `raw` that `model` accepts; every other one (sent at its `sent`
    partition and offset) is on `dlq` exactly once with a reason, and nothing else of this
    run is. Letters are told apart by their source position: the DLQ's end offset read by the
    embedded broker may lag, so counting from the letters seen before is not exact."""
    valid: list[M] = []
    poison: list[tuple[int, int]] = []
    for value, position in zip(raw, sent, strict=False):
        try:
            valid.append(model.model_validate_json(value))
        except ValueError:
            poison.append(position)
    ours = set(sent)
    letters: list[DeadLetter] = []

    async def all_read() -> bool:
        found = await read_dead_letters(bootstrap, dlq)
        letters[:] = [letter for letter in found if (letter.partition, letter.offset) in ours]
        return len(letters) >= len(poison)

    await eventually(all_read)
    assert sorted((letter.partition, letter.offset) for letter in letters) == sorted(poison)
    assert all(letter.reason for letter in letters)
    return valid
