"""The ranking prior and the read it drives, shared by the store and the hooks' direct path
(`store.direct`), which must rank exactly as the service does. Plain strings: nothing here
imports a driver or a model."""

# Confidence, then recency with a 30-day decay (a future observation counts as today); one `?`: now.
PRIOR = "(0.6 * m.confidence + 0.4 / (1.0 + max(julianday(?) - julianday(m.observed_at), 0.0) / 30.0))"


def by_prior(columns: str, where: str) -> str:
    """The active entries best by prior, `columns` and their score: the union of the most
    confident and the most recent (each `LIMIT ?`), rescored (`LIMIT ?`).

    Parameters: now, `where`'s, the first limit, `where`'s again, the second, the last.
    INDEXED BY: left to itself SQLite filters by scope through memories_active and then
    sorts every matching row (75 ms at 100k); walking the ordered index takes ~1 ms.
    """
    return f"""SELECT {columns}, {PRIOR} AS score FROM memories m WHERE m.seq IN (
                SELECT seq FROM (SELECT m.seq FROM memories m INDEXED BY memories_by_confidence WHERE {where}
                                 ORDER BY m.confidence DESC, m.observed_at DESC LIMIT ?) AS confident
                UNION ALL
                SELECT seq FROM (SELECT m.seq FROM memories m INDEXED BY memories_by_observed WHERE {where}
                                 ORDER BY m.observed_at DESC LIMIT ?) AS recent)
            ORDER BY score DESC, m.seq LIMIT ?"""
