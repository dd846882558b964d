"""`reverie dream` shows a spinner on stderr while a person watches, and nothing otherwise.

"A person watches" means stderr is a terminal; a StringIO that says it is one stands in for
it, so rich renders into something the test can read.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from reverie.cli import main

SPINNER = "Dreaming (heuristic engine)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def database(tmp_path, capsys, monkeypatch):
    for name in ("REVERIE_DB", "REVERIE_AGENT_ID", "ANTHROPIC_API_KEY", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")  # rich draws no live display on a "dumb" terminal
    chat = tmp_path / "chat.txt"
    chat.write_text("User: can you check the build?\nAssistant: The build is green.\n")
    db = str(tmp_path / "m.db")
    assert main(["--db", db, "log", str(chat), "--note", "Always run the linter before committing"]) == 0
    capsys.readouterr()
    return db


@pytest.mark.parametrize(
    ("stderr_is_a_terminal", "options", "spinner"),
    [(True, [], True), (False, [], False), (True, ["--json"], False)],
    ids=["terminal", "not-a-terminal", "terminal-with-json"],
)
def test_dream_spins_on_stderr_only_for_a_person_at_a_terminal(
        stderr_is_a_terminal, options, spinner, database, capsys, monkeypatch):
    stderr = Terminal() if stderr_is_a_terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)

    code = main(["--db", database, "dream", "--engine", "heuristic", *options])

    out = capsys.readouterr().out
    assert code == 0
    assert (SPINNER in stderr.getvalue()) is spinner
    assert SPINNER not in out
    if options:
        assert json.loads(out)["status"] == "pending"  # stdout stays one JSON document
    else:
        assert out.startswith("# Dream proposal drm_")
