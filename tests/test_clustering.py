"""The shortcuts that keep dreams fast find exactly what comparing every pair would find."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st
from reverie.engines.clustering import Features, _candidate_pairs, cluster, jaccard
from reverie.models import Event, SessionRecord
from reverie.provenance import Provenance
from reverie.service.evidence import ToolOutputs

# A small vocabulary, so that random statements overlap often and at every degree.
WORDS = [f"w{n}" for n in range(14)]
statements = st.lists(st.frozensets(st.sampled_from(WORDS), min_size=1, max_size=10), min_size=2, max_size=40)


def every_pair_above(sets: list[frozenset[str]], threshold: float) -> set[tuple[int, int]]:
    return {(i, j) for i, j in combinations(range(len(sets)), 2) if jaccard(sets[i], sets[j]) >= threshold}


def normalised(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(min(pair), max(pair)) for pair in pairs}


@settings(max_examples=300, deadline=None)
@given(statements, st.sampled_from([0.5, 0.6, 0.7, 0.8, 1.0]))
def test_candidate_pairs_are_exactly_the_pairs_above_the_threshold(sets, threshold):
    found = _candidate_pairs([Features(tokens=s) for s in sets], threshold)
    assert normalised(found) == every_pair_above(sets, threshold)


def test_statements_sharing_a_key_cluster_even_when_their_words_differ():
    items = [Features(frozenset({"team", "database", "postgres"}), key="team database"),
             Features(frozenset({"team", "database", "mysql", "since", "march"}), key="team database"),
             Features(frozenset({"lunch", "noon"}))]
    groups = cluster(items, 0.9, lambda i, j: True)
    assert sorted(map(sorted, groups)) == [[0, 1], [2]]


def session_with_tool_outputs(outputs: list[str]) -> SessionRecord:
    events = [Event(session_id="s1", index=n, role="tool", tool_name="fetch", content=text)
              for n, text in enumerate(outputs)]
    return SessionRecord(id="s1", agent_id="a", started_at=datetime(2026, 1, 1, tzinfo=UTC), events=events)


outputs = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(outputs, st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
def test_a_copy_of_a_tool_output_is_recognised_exactly_when_most_of_its_words_are_in_one(texts, mine):
    session = session_with_tool_outputs([" ".join(text) for text in texts])
    words = set(mine)
    expected = len(words) >= 5 and any(len(words & set(text)) >= 0.7 * len(words) for text in texts)
    assert ToolOutputs(Provenance([session]).outputs).copied(" ".join(mine)) is expected
