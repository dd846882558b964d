"""Turning free text into full-text queries that cannot be syntax errors and stay cheap to rank.

SQLite searches FTS5 tables (`memories_fts`, `events_fts`); PostgreSQL a generated
`tsvector` column (`search`) on the table itself. A query is words grouped as "a word of
each group" (`Groups`), which `fts5` and `tsquery` spell for each.

BM25 scores every row that matches any query term, so one common word ("deploy", in a
tenth of all memories) costs more than all the rare ones together while barely changing
the order: its IDF is near zero. `focus` tells the words that can tell rows apart from
the rest by how many rows each matches in this database, which the index answers cheaply
(it stops counting at the threshold); callers match rows by those.

Words are counted among the newest COUNTED_ROWS rows (up to WINDOW_STEP more: the window
starts on a slice's edge), not all of them: each counted match is a row looked up for the
reader's filter, so counting 2% of a million past turns per word was most of a read at
that size. How common a word is in the last 20,000 turns (100 sessions of 200, as many as
a dream reads) or entries says as much about what tells rows apart, and a read costs the
same however long the history grows. A word found only in older rows is rare (the
rarest: it counts 0). On PostgreSQL, memories' words are not counted row by row but summed
from `memory_words`, which their inserts keep, slice by slice (`store.postgres_schema`).

It counts only rows the caller may read (`Readable`): counting every agent's rows would let
whether a query's word is rare, common or absent — and so which excerpts come back — tell
the caller whether another agent ever used that word. Only the table's size, which says
nothing about any word, is counted across everyone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from reverie.store.database import Database
from reverie.text import STOPWORDS

_TERM = re.compile(r"\w+", re.UNICODE)

COMMON_SHARE = 0.02   # a word in more than this share of rows is common
COMMON_FLOOR = 500    # ...but below this many rows ranking is cheap, so no word is dropped
COUNTED_ROWS = 20_000  # the newest rows words are counted among (the module doc says why)
WINDOW_STEP = 1_000    # ...from a multiple of this, so PostgreSQL sums whole slices of memory_words
WORD_SLICE = 1_000     # memories per slice of memory_words (`store.postgres_schema`): fixed for good

# The FTS tables `focus` may count in (their names are put into SQL).
FTS_TABLES = frozenset({"memories_fts", "events_fts"})


MAX_TERMS = 24  # words past these cost an index lookup each and seldom change the order
# Words that frame a question and say nothing of its subject: "*how many* followers",
# "*where* do I keep…". The answer rarely holds them, so matching by them ranks turns that
# ask something (or say "many") above the one that answers. ("what", "when", "which" and
# "who" are stopwords already.)
QUESTION_WORDS = frozenset("how many much often where why whom whose".split())


def query_terms(text: str) -> list[str]:
    """Distinct lowercased words, without stopwords and question words (unless that would leave none)."""
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    # Words like "what" or "the" match nearly everything and only slow the ranking down.
    return ([t for t in terms if t not in STOPWORDS and t not in QUESTION_WORDS] or terms)[:MAX_TERMS]


Groups = list[list[str]]  # rows holding a word of every group
SEARCH_CONFIG = "english"  # PostgreSQL's stemming, as FTS5's porter tokenizer stems


def fts5(groups: Groups) -> str:
    """SQLite: an FTS5 MATCH expression for `groups`."""
    return " AND ".join(f"({any_of(group)})" for group in groups)


def tsquery(groups: Groups) -> tuple[str, list[str]]:
    """PostgreSQL: a tsquery expression for `groups`, with its parameters. The words go
    through `websearch_to_tsquery`, which never raises on odd input."""
    sql = " && ".join(f"websearch_to_tsquery('{SEARCH_CONFIG}', ?)" for _ in groups)
    return f"({sql})", [" or ".join(group) for group in groups]


def ts_rank(vector: str, query: str) -> str:
    """PostgreSQL: how well `vector` matches `query`, as SQL, with the length of the text
    dividing the score (normalization 2), as BM25 weighs a match in a short text above one
    in a long one. Without it the longest memories and turns came first: on the same
    benchmark memory, PostgreSQL's top ten entries shared 38% with SQLite's (85% with it)."""
    return f"ts_rank_cd({vector}, {query}, 2)"


def any_of(terms: list[str]) -> str | None:
    """Quote each word and OR them, so punctuation in a user's query is never FTS syntax.

    OR, not AND: BM25 already ranks documents with more of the terms first, and recall
    matters more than precision for "what do I know about this".
    """
    return " OR ".join(f'"{t}"' for t in terms) or None


@dataclass(frozen=True)
class Focus:
    """A query's words that match something in a table, split by how many rows they match."""

    rare: list[str]     # in fewer rows than the threshold: these tell rows apart
    common: list[str]   # the rest, rarest first
    # How many of the rows counted each of the query's words matches (0 for none), counted
    # no further than `threshold`; and how many rows were counted. Enough for an IDF weight.
    counts: dict[str, int] = field(default_factory=dict)
    threshold: int = 0
    rows: int = 0


@dataclass(frozen=True)
class Readable:
    """The rows of a table a caller may read: events of `agent_id`'s sessions, memories in
    `scopes`; None for either means every row (the local caller, who may read them all)."""

    agent_id: str | None = None
    scopes: tuple[str, ...] | None = None

    def where(self, table: str) -> tuple[str, list[object]]:
        """A join and condition on `table`'s rows (SQLite's FTS table), with its parameters."""
        if table == "events_fts" and self.agent_id is not None:
            join = "JOIN events e ON e.id = events_fts.rowid JOIN sessions s ON s.id = e.session_id"
            return f"{join} WHERE s.agent_id = ? AND", [self.agent_id]
        if table == "memories_fts" and self.scopes is not None:
            marks = ", ".join("?" * len(self.scopes)) or "NULL"
            return f"JOIN memories m ON m.seq = memories_fts.rowid WHERE m.scope IN ({marks}) AND", list(self.scopes)
        return "WHERE", []

    def where_rows(self, table: str) -> tuple[str, list[object]]:
        """The same on PostgreSQL, where the rows are the table's own (`t`)."""
        if table == "events_fts" and self.agent_id is not None:
            return "JOIN sessions s ON s.id = t.session_id WHERE s.agent_id = ? AND", [self.agent_id]
        if table == "memories_fts" and self.scopes is not None:
            marks = ", ".join("?" * len(self.scopes)) or "NULL"
            return f"WHERE t.scope IN ({marks}) AND", list(self.scopes)
        return "WHERE", []


# PostgreSQL: the table an FTS5 table's rows stand for, and its key.
ROWS = {"memories_fts": ("memories", "seq"), "events_fts": ("events", "id")}


async def focus(db: Database, table: str, text: str, readable: Readable) -> Focus:
    """Split the words of `text` by how many of the newest rows of `table` the caller may read
    each matches.

    Words that match nothing are left out (they cost a lookup each and add nothing). A
    word is common if it is in more than ~2% of the rows counted (COMMON_SHARE). A word rare
    among them may match many older rows: callers score only the newest matches.
    """
    terms = query_terms(text)
    if not terms:
        return Focus([], [])
    rows, readable = await _row_count(db, table), await _counting_filter(db, table, readable)
    after = max(rows - COUNTED_ROWS, 0) // WINDOW_STEP * WINDOW_STEP
    counted = rows - after
    threshold = max(COMMON_FLOOR, math.ceil(counted * COMMON_SHARE))
    counts = await _match_counts(db, table, terms, threshold, readable, after=after)
    found = {t for t in terms if counts[t] > 0}
    if older := [t for t in terms if t not in found and counted < rows]:
        found.update(await _matching(db, table, older, readable))
    ordered = sorted((t for t in terms if t in found), key=counts.__getitem__)
    return Focus([t for t in ordered if counts[t] < threshold], [t for t in ordered if counts[t] >= threshold],
                 counts, threshold, counted)


async def _counting_filter(db: Database, table: str, readable: Readable) -> Readable:
    """The filter counting needs: `readable`, or none when every past turn is the reader's (one
    agent's memory, the usual case), where a row looked up per counted match changes no count."""
    if table != "events_fts" or readable.agent_id is None:
        return readable
    others = await db.scalar("SELECT EXISTS (SELECT 1 FROM sessions WHERE agent_id < ?) "
                             "OR EXISTS (SELECT 1 FROM sessions WHERE agent_id > ?)",
                             (readable.agent_id, readable.agent_id))
    return readable if others else replace(readable, agent_id=None)


async def _row_count(db: Database, table: str) -> int:
    # Rows are only ever added (memories are archived, events are append-only), so the
    # largest rowid is the row count without counting.
    if db.backend == "postgresql":
        return await db.scalar("SELECT max({1}) FROM {0}".format(*ROWS[_checked(table)])) or 0
    return await db.scalar(f"SELECT max(rowid) FROM {_checked(table)}") or 0


async def _match_counts(
    db: Database, table: str, terms: list[str], cap: int, readable: Readable, after: int = 0
) -> dict[str, int]:
    """How many readable rows past rowid `after` each term matches, counting no further than `cap`."""
    table = _checked(table)
    if db.backend == "postgresql":
        return await _match_counts_pg(db, table, terms, cap, readable, after)
    values = ", ".join("(?)" for _ in terms)
    where, params = readable.where(table)
    rows = await db.fetchall(
        f"""WITH terms(term) AS (VALUES {values})
            SELECT term, (SELECT count(*) FROM (SELECT 1 FROM {table} {where} {table} MATCH '"' || term || '"'
                                                AND {table}.rowid > ? LIMIT ?))
            FROM terms""",
        (*terms, *params, after, cap),
    )
    return {row[0]: row[1] for row in rows}


async def _match_counts_pg(
    db: Database, table: str, terms: list[str], cap: int, readable: Readable, after: int
) -> dict[str, int]:
    if table == "memories_fts":
        return await _memory_word_counts(db, terms, cap, readable, after)
    return await _walked_counts(db, table, terms, cap, readable, after)


async def _walked_counts(
    db: Database, table: str, terms: list[str], cap: int, readable: Readable, after: int
) -> dict[str, int]:
    # One subquery a word, each with its word as a value (the store's driver binds on the
    # client), so the planner sees how common the word is: a rare or absent one is found
    # through the GIN index, a common one by walking the newest rows until `cap`. With the
    # words in a column of terms every word got the same plan, and a word in no row (or a
    # stopword) walked every row of the table looking for one.
    rows_of, key = ROWS[table]
    where, params = readable.where_rows(table)
    newer = f" AND t.{key} > ?" if after else ""
    one = (f"(SELECT count(*) FROM (SELECT 1 FROM {rows_of} t {where} "
           f"t.search @@ websearch_to_tsquery('{SEARCH_CONFIG}', ?){newer} LIMIT ?) AS m)")
    bounds = [after] if after else []
    counted = await db.fetchall(f"SELECT {', '.join(one for _ in terms)}",
                                [p for term in terms for p in (*params, term, *bounds, cap)])
    return dict(zip(terms, counted[0], strict=True))


_ONE_LEXEME = re.compile(r"'([^']+)'")  # a tsquery of one lexeme, as PostgreSQL prints it


async def _memory_word_counts(
    db: Database, terms: list[str], cap: int, readable: Readable, after: int
) -> dict[str, int]:
    """How many readable memories past `seq` `after` (a slice's edge) hold each term, summed
    from `memory_words`. A term that stems to several lexemes ("node_modules") is counted by
    walking the rows."""
    if readable.scopes == ():
        return dict.fromkeys(terms, 0)
    if after % WORD_SLICE:  # a window not on a slice's edge (a test's): its first slice holds older rows too
        return await _walked_counts(db, "memories_fts", terms, cap, readable, after)
    stems = await _stems(db, terms)
    walked = [term for term, lexeme in stems.items() if lexeme is None]
    counts = await _walked_counts(db, "memories_fts", walked, cap, readable, after) if walked else {}
    if summed := {term: lexeme for term, lexeme in stems.items() if lexeme}:
        scopes = readable.scopes or ()
        within = f" AND scope IN ({', '.join('?' * len(scopes))})" if scopes else ""
        one = f"(SELECT coalesce(sum(rows), 0) FROM memory_words WHERE word = ? AND slice >= ?{within})"
        row = await db.fetchall(f"SELECT {', '.join(one for _ in summed)}",
                                [p for lexeme in summed.values() for p in (lexeme, after // WORD_SLICE, *scopes)])
        counts |= {term: min(int(n), cap) for term, n in zip(summed, row[0], strict=True)}
    return {term: counts.get(term, 0) for term in terms}


async def _stems(db: Database, terms: list[str]) -> dict[str, str | None]:
    """Each term's lexeme as PostgreSQL searches for it: "" for a stopword (it matches
    nothing), None for a term that becomes several."""
    row = await db.fetchall("SELECT " + ", ".join(f"websearch_to_tsquery('{SEARCH_CONFIG}', ?)::text" for _ in terms),
                            terms)
    return {term: (one.group(1) if (one := _ONE_LEXEME.fullmatch(query)) else None if query else "")
            for term, query in zip(terms, row[0], strict=True)}


async def _matching(db: Database, table: str, terms: list[str], readable: Readable) -> list[str]:
    """Those of `terms` that match any readable row (asked of words the newest rows lack)."""
    if db.backend == "postgresql":
        return await _matching_pg(db, _checked(table), terms, readable)
    found = await _match_counts(db, table, terms, 1, readable)
    return [t for t in terms if found[t]]


# What `_matching_pg` reads of a row: enough for the reader's filter.
_FILTERED = {"memories_fts": "seq, scope", "events_fts": "id, session_id"}


async def _matching_pg(db: Database, table: str, terms: list[str], readable: Readable) -> list[str]:
    # Asked for one row, the planner expects a word to turn up within a few hundred rows
    # and walks the table for it: a word in no row read every row (0.75 s at 1M events). A
    # MATERIALIZED CTE is planned for all its rows, through the GIN index, and is read only
    # until the first readable one.
    rows_of, _ = ROWS[table]
    where, params = readable.where_rows(table)
    words = ", ".join(f"w{i} AS MATERIALIZED (SELECT {_FILTERED[table]} FROM {rows_of} "
                      f"WHERE search @@ websearch_to_tsquery('{SEARCH_CONFIG}', ?))" for i in range(len(terms)))
    found = ", ".join(f"EXISTS (SELECT 1 FROM w{i} t {where} true)" for i in range(len(terms)))
    row = await db.fetchall(f"WITH {words} SELECT {found}", [*terms, *(p for _ in terms for p in params)])
    return [t for t, hit in zip(terms, row[0], strict=True) if hit]


def _checked(table: str) -> str:
    if table not in FTS_TABLES:
        raise ValueError(f"not a full-text table: {table}")
    return table
