"""The shortcuts that keep dreams fast find exactly what comparing every pair would find."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reverie.engines import clustering
from reverie.engines.clustering import Features, _candidate_pairs, _prefixes, cluster, jaccard
from reverie.models import Event, SessionRecord
from reverie.provenance import Provenance, _telling_phrases
from reverie.service.evidence import ToolOutputs
from reverie.text import STOPWORDS

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


@settings(max_examples=300, deadline=None)
@given(outputs, st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.booleans(), st.sampled_from([0.1, 0.5, 0.7]))
def test_a_copy_of_a_tool_output_is_recognised_exactly_when_most_of_its_words_are_in_one(texts, mine, announced, share):
    session = session_with_tool_outputs([" ".join(text) for text in texts])
    words = set(mine)
    expected = len(words) >= 5 and any(len(words & set(text)) >= share * len(words) for text in texts)
    asked = [" ".join(mine)] if announced else []  # indexed up front, or when asked
    assert ToolOutputs(Provenance([session]).outputs, expected=asked).copied(" ".join(mine), share) is expected


# Stopwords among them, since a run that quotes needs three words that are not.
RUN_WORDS = ["w0", "w1", "w2", "w3", "the", "of", "is"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(RUN_WORDS), min_size=1, max_size=12), min_size=1, max_size=8),
       st.lists(st.sampled_from(RUN_WORDS), min_size=1, max_size=12), st.booleans())
def test_a_quote_of_a_tool_output_is_recognised_exactly_when_four_telling_words_in_a_row_are_in_one(
        texts, mine, announced):
    session = session_with_tool_outputs([" ".join(text) for text in texts])
    runs = {tuple(mine[n : n + 4]) for n in range(len(mine) - 3) if sum(w not in STOPWORDS for w in mine[n : n + 4]) >= 3}
    expected = any(tuple(text[n : n + 4]) in runs for text in texts for n in range(len(text) - 3))
    asked = [" ".join(mine)] if announced else []
    assert ToolOutputs(Provenance([session]).outputs, expected=asked).quoted(" ".join(mine)) is expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS[:5]), max_size=14), st.frozensets(st.sampled_from(WORDS[:5])))
def test_the_phrases_that_tell_of_copying_are_the_windows_holding_two_words_the_user_never_said(tokens, unsaid):
    windows = [tuple(tokens[n : n + 3]) for n in range(len(tokens) - 2)]
    assert list(_telling_phrases(tokens, set(unsaid))) == [w for w in windows if len(unsaid.intersection(w)) >= 2]


def with_postings(sets: list[frozenset[str]], threshold: float) -> set[tuple[int, int]]:
    """What `_candidate_pairs` must find, read plainly: each statement (smallest first) counts,
    for every statement before it, the probed postings holding it, and compares those met as
    often as either of the two needs. A token indexed by more than MAX_BLOCK statements is
    no longer probed, so this differs from `every_pair_above` once MAX_BLOCK is reached."""
    frequency = Counter(token for tokens in sets for token in tokens)
    postings: dict[str, list[int]] = {token: [] for token in frequency}
    needs: dict[int, int] = {}
    found = set()
    for i in sorted(range(len(sets)), key=lambda n: len(sets[n])):
        ordered = sorted(sets[i], key=lambda token: (frequency[token], token))
        probe, indexed, needs[i] = _prefixes(len(ordered), threshold)
        met = Counter(j for token in ordered[:probe] if len(postings[token]) <= clustering.MAX_BLOCK
                      for j in postings[token])
        found |= {(j, i) for j, times in met.items() if times >= min(needs[i], needs[j])
                  and jaccard(sets[i], sets[j]) >= threshold}
        for token in ordered[:indexed]:
            postings[token].append(i)
    return found


@settings(max_examples=200, deadline=None)
@given(statements, st.sampled_from([0.5, 0.6, 0.8]))
def test_statements_stop_probing_through_a_token_only_once_max_block_statements_indexed_it(sets, threshold):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clustering, "MAX_BLOCK", 3)  # reached by these few statements, as 300 is at 10k memories
        assert _candidate_pairs([Features(tokens=s) for s in sets], threshold) == with_postings(sets, threshold)
