"""Consolidation quality on public data: does a dream make what `read_memory` returns better?

Run from the repository root (the data is read where it lies, never copied in):

    python -m bench.quality --external [--data ../shared/eval-data] [--only lme|locomo|pairs]
                                       [--no-distractors] [--limit N] [--dream-every N]
                                       [--verbose] [--json PATH]

Each LongMemEval knowledge-update question and each LoCoMo conversation gets a fresh SQLite
file. Its sessions are logged through a real MCP client, as transcripts only and in date
order; every question is read (`read_memory(query, budget_tokens=500)`) before and after
one heuristic dream whose unflagged operations are applied — or, with `--dream-every N`,
after a dream every N sessions and a last one after the final session, as a server that
dreams on schedule would (operations counted over all the dreams). The text the agent would read
is scored as the data set's README defines it (ans_hit, ku_fresh, evid_hit); labelled
statement pairs are logged two sessions apart, dreamed, and judged by provenance.

- `cases`       — the shape every data set is read into: dated sessions and questions
- `longmemeval` — LongMemEval knowledge-update questions → one case each
- `locomo`      — LoCoMo conversations → one case each (both speakers are users)
- `pairs`       — the statement pairs, and what a dream made of each
- `measures`    — normalising text and the per-question measures
- `agent`       — the client side of one MCP connection to a fresh server
- `pipeline`    — one case or pair end to end: log, read, dream, read
- `figures`     — the runs added up per data set
- `report`      — what is printed, and the JSON document
- `command`     — the command line
"""
