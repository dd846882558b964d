"""Consolidation-quality benchmark: does a dream leave the memory a person would want?

Run from the repository root (not part of the test suite):

    python -m bench.quality --engine heuristic [--json figures.json] [--show-memory]
    python -m bench.quality --engine agent       # scripted operations through the brief API
    python -m bench.quality --engine anthropic   # only when ANTHROPIC_API_KEY is set
    python -m bench.quality --external           # public data in ../shared/eval-data (see `external`)

Each scenario in `scenarios/` is logged into a fresh SQLite file, dreamed once with the
chosen engine, and everything without a risk flag is applied (auto mode). The active
memory is then scored against the scenario's labels.

- `corpus`   — the scenario format and its labels, resolved to evidence references
- `engines`  — how each engine produces its proposal
- `runner`   — one scenario end to end in a throwaway database
- `scoring`  — checks per scenario and the figures they add up to
- `report`   — the markdown table, per-scenario lines and the JSON document
- `external` — the same question asked of public benchmarks (LongMemEval, LoCoMo, labelled pairs)
"""
