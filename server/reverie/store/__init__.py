"""Everything that touches SQL. Callers get pydantic models back, never rows.

The interface is plain async functions taking a `Database`, grouped by what they keep
(sessions, memories, proposals, revisions); SQLite and PostgreSQL stand behind the same
names (`store.database`).
"""

from reverie.store.database import Database, Refused, open_database

__all__ = ["Database", "Refused", "open_database"]
