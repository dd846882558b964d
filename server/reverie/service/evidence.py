"""Checking what a dream cites against what was actually said.

An operation's evidence names a session and a turn (event) or note, with a quote. For
operations the client's own model submits, every citation must exist among the sessions
the brief showed and every quote must be found in the cited text (`reverie.citations`,
the check the `anthropic` engine runs too): a model that invents evidence is told exactly
which citation failed, and nothing is stored. For every engine, an operation that rests
on tool output is flagged `from_tool_output`: its evidence is only tool turns, its text
copies most of one tool output, or it quotes one (QUOTED_RUN words in a row, as a pitfall
quoting an error message does).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from itertools import chain

from reverie.citations import citation_problem, cited_text, operation_problems
from reverie.confusables import skeleton
from reverie.models import Memory, OperationDraft, SessionRecord
from reverie.text import STOPWORDS, shorten, words

__all__ = ["MAX_OPERATIONS", "ToolOutputs", "cited_text", "citation_problem", "from_tool_output",
           "operation_problems", "submission_problems", "with_quotes"]

MAX_OPERATIONS = 200
# Words in a row, as one tool output has them, that make a quotation of it ("No module named
# 'app'" is four); at least QUOTED_WORDS of them not stopwords, so "it is in the" quotes nothing.
QUOTED_RUN = 4
QUOTED_WORDS = 3


def submission_problems(
    drafts: list[OperationDraft], sessions: dict[str, SessionRecord], current: dict[str, Memory]
) -> list[str]:
    if not drafts:
        return ["operations is empty: submit at least one operation, or let the brief expire"]
    if len(drafts) > MAX_OPERATIONS:
        return [f"{len(drafts)} operations; at most {MAX_OPERATIONS} per proposal"]
    return [f"operation {i + 1}: {p}" for i, op in enumerate(drafts) for p in operation_problems(op, sessions, current)]


def with_quotes(op: OperationDraft, sessions: dict[str, SessionRecord]) -> OperationDraft:
    """Fill in quotes the submitter left empty, from the cited text."""
    filled = [
        e if e.quote else e.model_copy(update={"quote": shorten(cited_text(e, sessions[e.session_id]) or "")})
        for e in op.evidence
    ]
    return op.model_copy(update={"evidence": filled})


class ToolOutputs:
    """Every tool output of the reviewed sessions, to tell copies of one apart.

    A model can copy an injected instruction out of a fetched page and cite a harmless turn
    for it; comparing the text itself with every tool output catches that laundering.

    Outputs are indexed only for what is asked of them: the words of the texts `copied`
    judges and the runs of those `quoted` judges, found in one pass over the outputs per
    batch. The gate names every text it will ask about up front (`expected`), so a dream
    makes one pass; at 10k memories indexing every word (~65k words in 350k places) and
    every run (~450k) cost more than all the questions a dream asks.
    """

    def __init__(self, outputs: Iterable[Iterable[str]], expected: Iterable[str] = ()):
        """`outputs`: each tool output's words in order (`provenance.Provenance.outputs` reads them
        once for both). `expected`: texts that will be asked about; any other text costs a
        pass of its own when asked."""
        self._texts = [list(output) for output in outputs]
        self._words = [set(output) - STOPWORDS for output in self._texts]
        self._index: dict[str, list[int]] = {}  # word → the outputs holding it, for the words asked
        self._asked_runs: set[tuple[str, ...]] = set()
        self._quoted_runs: set[tuple[str, ...]] = set()  # those of the runs asked that an output holds
        tokens = [words(skeleton(text)) for text in expected]
        self._index_words({word for text in tokens for word in text if word not in STOPWORDS})
        self._look_for({run for text in tokens for run in _telling_runs(text)})

    def copied(self, text: str, share: float = 0.7) -> bool:
        """Do most of `text`'s words (five or more) appear in one tool output?"""
        mine = _content_words(text)
        if len(mine) < 5:
            return False
        need = math.ceil(share * len(mine))
        self._index_words(mine)
        # An output holding `need` of these words lacks at most len - need of them, so it holds
        # two (or `need`) of the rarest len - need + 2: only outputs met that often through
        # those are compared, not every output with a common word.
        meets = min(2, need)
        rarest = sorted(mine, key=lambda word: len(self._index[word]))[: len(mine) - need + meets]
        met = Counter(chain.from_iterable(self._index[word] for word in rarest))
        return any(times >= meets and len(mine & self._words[number]) >= need for number, times in met.items())

    def quoted(self, text: str) -> bool:
        """Does `text` hold QUOTED_RUN words in a row as some tool output has them?"""
        runs = set(_telling_runs(words(skeleton(text))))
        self._look_for(runs)
        return not runs.isdisjoint(self._quoted_runs)

    def _index_words(self, wanted: set[str]) -> None:
        if missing := wanted - self._index.keys():
            postings: dict[str, list[int]] = {word: [] for word in missing}
            for number, output in enumerate(self._words):
                for word in output.intersection(missing):
                    postings[word].append(number)
            self._index.update(postings)

    def _look_for(self, runs: set[tuple[str, ...]]) -> None:
        if missing := runs - self._asked_runs:
            for tokens in self._texts:  # each output's runs, made and looked up at C speed by `zip`
                shifted = (tokens[start:] for start in range(QUOTED_RUN))  # `zip` stops at the output's end
                self._quoted_runs |= missing.intersection(zip(*shifted, strict=False))
            self._asked_runs |= missing


def _telling_runs(tokens: list[str]) -> Iterable[tuple[str, ...]]:
    """The QUOTED_RUN-word runs of `tokens` with QUOTED_WORDS words or more that are not stopwords."""
    content = [token not in STOPWORDS for token in tokens]
    for start in range(len(tokens) - QUOTED_RUN + 1):
        if sum(content[start : start + QUOTED_RUN]) >= QUOTED_WORDS:
            yield tuple(tokens[start : start + QUOTED_RUN])


def _content_words(text: str) -> set[str]:
    return {w for w in words(skeleton(text)) if w not in STOPWORDS}


def from_tool_output(op: OperationDraft, sessions: dict[str, SessionRecord], outputs: ToolOutputs) -> bool:
    """True when the op rests on tool output: its text copies or quotes one, a cited note copies one,
    or it cites only tool turns."""
    known = [(e, sessions[e.session_id]) for e in op.evidence if e.session_id in sessions]
    roles = [
        event.role for e, session in known if e.event_index is not None
        for event in session.events if event.index == e.event_index
    ]
    notes = [cited_text(e, s) for e, s in known if e.note_index is not None]
    content = op.content or ""
    if outputs.copied(content) or outputs.quoted(content) or any(text and outputs.copied(text) for text in notes):
        return True
    return bool(roles) and not notes and all(role == "tool" for role in roles)
