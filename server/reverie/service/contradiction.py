"""Operations of one proposal that contradict each other.

A model may propose "The project uses Python 3.11" next to "The project uses Python 3.12":
applied together they leave memory holding both, and whichever a reader meets first
wins. Two operations whose texts give one subject different values, by the rules the
offline engine and the supersession check read (`claims.stated`, `claims.disagree`), are
both flagged `contradicts_other_op`, for every engine alike: neither is rewritten or
dropped, since only a person knows which one holds. The rules err as they do for
supersession: two short statements that each name something the other lacks ("*staging*
DB is Postgres 15" / "*prod* DB is Postgres 16"), or that open with two labels ("Team
database: …" / "Staging database: …"), are two facts, not a contradiction. Operations in different scopes never contradict: two
projects may well run two versions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from reverie import claims
from reverie.models import Operation

FLAG = "contradicts_other_op"


def contradicting(operations: list[Operation]) -> set[str]:
    """The op ids of operations whose text another operation's text contradicts."""
    stated = {op.op_id: claims.stated(op.content) for op in operations if op.content}
    scope = {op.op_id: op.scope for op in operations}
    found: set[str] = set()
    label = {op.op_id: _label(op.content) for op in operations if op.content}
    for a, b in _sharing_a_unit(stated):
        if scope[a] != scope[b] or None not in (label[a], label[b]) and label[a] != label[b]:
            continue  # two scopes, or two labelled subjects ("Team database: …" / "Staging database: …")
        if claims.disagree(stated[a], stated[b]) or claims.disagree(stated[b], stated[a]):
            found |= {a, b}
    return found


def _label(content: str) -> str | None:
    found = claims.label(content)
    return " ".join(found.casefold().split()) if found else None


def _sharing_a_unit(stated: dict[str, claims.Stated]) -> Iterable[tuple[str, str]]:
    """Pairs whose claims share a unit: only they can disagree (most pairs share none)."""
    by_unit: dict[str, list[str]] = defaultdict(list)
    for op_id, statement in stated.items():
        for unit in {u for c in statement.claims for u in c.unit}:
            by_unit[unit].append(op_id)
    return {tuple(sorted(pair)) for ids in by_unit.values() for pair in combinations(ids, 2)}


def flagged(operations: list[Operation]) -> list[Operation]:
    """`operations` with `contradicts_other_op` added to each one that another contradicts."""
    found = contradicting(operations)
    return [op.model_copy(update={"risk": sorted({*op.risk, FLAG})}) if op.op_id in found else op
            for op in operations]
