"""The side-by-side read benchmark (`python -m bench.perf.side_by_side`) at a tiny size, so it cannot rot:
two copies of one small memory, each read the same number of times, and the ratio printed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parents[1]))  # bench/ sits beside tests/ at the repo root, not installed

from reverie.models import Turn
from reverie.service import open_reverie

from bench.backend import settings
from bench.perf import side_by_side


async def _a_small_memory(path: Path) -> None:
    async with open_reverie(settings(path)) as reverie:
        await reverie.log_session([Turn(role="user", content="Deploy the billing service through staging first.")],
                                  notes=["Billing deploys go through staging."])


def test_a_tiny_run_reads_both_databases_alike_and_prints_the_ratio(tmp_path, capsys):
    first, second = tmp_path / "one.db", tmp_path / "two.db"
    anyio.run(_a_small_memory, first)
    shutil.copyfile(first, second)

    assert side_by_side.main([str(first), str(second), "--calls", "6"]) == 0

    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(f"| {tmp_path}")]
    assert [row.split("|")[1].strip() for row in rows] == [str(first), str(second)]
    assert "second ÷ first at the p50:" in out and "(6 queries)" in out
