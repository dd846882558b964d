"""Turning free text into an FTS5 query that cannot be a syntax error."""

import re

from reverie.text import STOPWORDS

_TERM = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str, max_terms: int = 24) -> str | None:
    """Quote each word and OR them, so punctuation in a user's query is never FTS syntax.

    OR, not AND: BM25 already ranks documents with more of the terms first, and recall
    matters more than precision for "what do I know about this".
    """
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    # Words like "what" or "the" match nearly everything and only slow the ranking down.
    terms = ([t for t in terms if t not in STOPWORDS] or terms)[:max_terms]
    return " OR ".join(f'"{t}"' for t in terms) or None
