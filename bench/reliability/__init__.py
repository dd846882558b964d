"""Reliability figures against real processes and real databases (SQLite files, or databases
on a PostgreSQL server: bench/backend.py): concurrent writers on one database, kill -9 during
apply_dream, dreams and applies raced between processes.

`python -m bench.reliability` prints them; tests/test_reliability.py runs a bounded version.
"""
