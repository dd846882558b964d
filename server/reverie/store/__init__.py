"""Everything that touches SQL. Callers get pydantic models back, never rows.

The interface is plain async functions taking a `Database`, grouped by what they keep
(sessions, memories, proposals, revisions), so a PostgreSQL backend can stand behind
the same names later.
"""

from reverie.store.database import Database, open_database

__all__ = ["Database", "open_database"]
