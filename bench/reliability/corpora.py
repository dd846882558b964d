"""`python -m bench.reliability.corpora [--examples N] [--json PATH]`: the bad-input figures.

Runs the tests that feed Reverie bad input — `tests/test_fuzz.py` (property-based fuzzing
of every tool through an MCP client, and the size limits) and `tests/test_poisoning.py`
(the prompt-injection and secrets corpora) — and prints what they observed: examples run,
corpus items blocked, secret formats kept out of every database file and tool result,
limits enforced. The tests record their figures in a JSON file this command hands them
(`REVERIE_FIGURES`), so nothing here re-implements or second-guesses them. `--examples`
sets the fuzz examples per tool and protocol mode (CI runs 100). Exits with pytest's code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["tests/test_fuzz.py", "tests/test_poisoning.py"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability.corpora", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="fuzz examples per tool and protocol mode")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser.parse_args(argv)


def run_tests(examples: int, figures: Path) -> int:
    env = {**os.environ, "REVERIE_FIGURES": str(figures), "REVERIE_FUZZ_EXAMPLES": str(examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
    return subprocess.call(command, cwd=ROOT, env=env, stdout=sys.stderr)


def lines(figures: dict) -> list[str]:
    fuzz, poisoning, secrets = figures["fuzz"], figures["poisoning"], figures["secrets"]
    runs = poisoning["items"] * len(poisoning["paths"])
    blocked = ", ".join(f"{path} {poisoning['blocked'].get(path, 0)}/{poisoning['items']}" for path in poisoning["paths"])
    kept = min(secrets["kept_out_per_mode"].values(), default=0)
    return [
        f"fuzz examples run        {fuzz['examples_run']:,} ({fuzz['accepted']:,} accepted, {fuzz['refused']:,} refused "
        "with a tool error naming the field; no crash, no leaked traceback)",
        f"poisoning items blocked  {sum(poisoning['blocked'].values())}/{runs} item × path runs ({blocked}); "
        f"known leaks: {', '.join(poisoning['known_leaks']) or 'none'}",
        f"secret formats kept out  {kept}/{secrets['formats']} in both protocol modes; formats docs/safety.md does not list: "
        f"{len(secrets['undocumented_kept_out'])}/{secrets['undocumented_probed']}",
        f"size limits enforced     {len(fuzz['limits_checked'])} ({', '.join(sorted(fuzz['limits_checked']))})",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="reverie-figures-") as directory:
        path = Path(directory) / "figures.json"
        code = run_tests(args.examples, path)
        figures = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if {"fuzz", "poisoning", "secrets"} - set(figures):
        print(f"The tests recorded no figures (pytest exited {code}).")
        return code or 1
    print("\n".join(lines(figures)))
    if code:
        print(f"pytest exited {code}: some test failed; the figures above are incomplete.")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
