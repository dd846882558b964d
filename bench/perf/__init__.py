"""Performance benchmark: `python -m bench.perf` (see `__main__` for the options).

Not part of the test suite. One command freezes a copy of the `reverie` source and runs
everything against it (pin.py), builds seeded synthetic data (vocabulary.py, data.py,
fixtures.py), measures `log_session` ingest (ingest.py), `read_memory` latency over stdio,
in-process and direct against a no-op floor (latency.py, noop_server.py, timing.py), the
reference `@modelcontextprotocol/server-memory` side by side (reference.py), the heuristic
dream in a subprocess per size (dream.py) and apply/revert of a 500-operation proposal
(apply.py), then prints markdown tables (report.py) with the targets of issue 6
(targets.py) and the machine (machine.py). runner.py sequences the steps. The databases are
SQLite files, or with `--backend postgres` databases on a PostgreSQL server (bench/backend.py).
"""
