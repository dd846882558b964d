"""Claude Code's SessionEnd and SessionStart hooks: `reverie log|recall --claude-code-hook`.

Each test feeds the JSON Claude Code sends on stdin, with a real JSONL transcript copied
into tmp_path, to the real command: in-process through `reverie.cli.main`, or — where the
database is locked by another connection and the hook must give up and exit — as the
installed `reverie` console script in a subprocess, as Claude Code runs it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Cli, Ran
from reverie import cli
from reverie.config import IDENTIFIER
from reverie.hooks import redacted_transcript, session_key, spool_dir
from reverie.transcript import parse_transcript

SAMPLE = Path(__file__).parent / "data" / "claude_code_session.jsonl"
SESSION = "6f1c2a9e-3b7d-4e25-9a4f-0c8d51e7b2a4"  # the sample's own sessionId
NOTE = "Run pip install -e . before the billing tests"
SUBPROCESS_LIMIT = 8  # seconds; below the database's 10 s busy timeout, so only a hook that gives up passes


@dataclass
class Project:
    """A Claude Code project in tmp_path: its directory, transcript file and Reverie database."""

    cwd: Path
    transcript: Path
    db: Path

    def end(self, session_id: str = SESSION, reason: str = "prompt_input_exit") -> dict:
        return {"session_id": session_id, "transcript_path": str(self.transcript), "cwd": str(self.cwd),
                "hook_event_name": "SessionEnd", "reason": reason, "permission_mode": "default"}

    def start(self, source: str = "startup") -> dict:
        return {"session_id": "0d7a5b1e-9c4f-4a1b-8e2d-5f3c6a7b8c9d", "transcript_path": str(self.transcript),
                "cwd": str(self.cwd), "hook_event_name": "SessionStart", "source": source}

    def write(self, lines: list[str]) -> None:
        self.transcript.write_text("".join(lines), encoding="utf-8")

    def spooled(self) -> list[Path]:
        folder = spool_dir(self.db)
        return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.fixture
def project(tmp_path) -> Project:
    cwd = tmp_path / "billing"
    cwd.mkdir()
    transcript = tmp_path / "claude" / f"{SESSION}.jsonl"
    transcript.parent.mkdir()
    shutil.copy(SAMPLE, transcript)
    return Project(cwd, transcript, tmp_path / "data" / "memory.db")


@pytest.fixture
def reverie(project, cli) -> Cli:
    """`reverie --db <project db> ARGS…` in process, with `stdin` as its standard input."""
    return functools.partial(cli, db=project.db)


def end_hook(reverie: Cli, payload: dict, *options: str) -> Ran:
    return reverie("log", "--claude-code-hook", *options, stdin=json.dumps(payload))


def start_hook(reverie: Cli, payload: dict, *options: str) -> Ran:
    return reverie("recall", "--claude-code-hook", *options, stdin=json.dumps(payload))


def sessions(reverie: Cli) -> dict[str, dict]:
    exported = reverie("export")
    assert exported.code == 0, exported.err
    return {session["id"]: session for session in json.loads(exported.out)["sessions"]}


def said(session: dict) -> list[tuple[str, str]]:
    return [(event["role"], event["content"]) for event in session["events"]]


def turns_of(text: str) -> list[tuple[str, str]]:
    return [(turn.role, turn.content) for turn in parse_transcript(text)]


def installed_reverie() -> str:
    found = shutil.which("reverie", path=os.path.dirname(sys.executable)) or shutil.which("reverie")
    assert found, "the reverie console script is not installed; run pip install -e '.[test]'"
    return found


def hook_process(project: Project, command: str, payload: dict, *options: str) -> Ran:
    """The hook as Claude Code runs it: the console script, hook input on stdin, a clean environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REVERIE_", "ANTHROPIC_"))}
    done = subprocess.run(
        [installed_reverie(), "--db", str(project.db), command, "--claude-code-hook", *options],
        input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=SUBPROCESS_LIMIT, check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


@contextmanager
def write_locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock, as a long transaction would."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        other.execute("ROLLBACK")
    finally:
        other.close()


# --- SessionEnd -------------------------------------------------------------------------


def test_session_end_logs_the_transcript_under_claude_codes_session_id_with_a_title_from_the_project(
        reverie, project):
    ran = end_hook(reverie, project.end())

    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"Reverie: logged 12 turns to {SESSION}.\n"
    stored = sessions(reverie)[SESSION]
    assert said(stored) == turns_of(SAMPLE.read_text(encoding="utf-8"))
    assert stored["agent_id"] == "claude-code"
    assert stored["ended_at"] is not None
    assert stored["title"].startswith("billing: tests/test_invoices.py is failing on main since this morning.")
    assert project.spooled() == []


@pytest.mark.parametrize(
    ("flag", "environment", "expected"),
    [([], None, "claude-code"), ([], "laptop-claude", "laptop-claude"),
     (["--agent", "ci-bot"], "laptop-claude", "ci-bot")],
    ids=["default-claude-code", "REVERIE_AGENT_ID", "--agent-over-environment"],
)
def test_the_hook_logs_as_the_agent_named_by_flag_then_environment_then_claude_code(
        flag, environment, expected, reverie, project, monkeypatch):
    if environment:
        monkeypatch.setenv("REVERIE_AGENT_ID", environment)

    ran = reverie(*flag, "log", "--claude-code-hook", stdin=json.dumps(project.end()))

    assert ran.code == 0
    assert sessions(reverie)[SESSION]["agent_id"] == expected


def test_a_resumed_session_logs_only_the_turns_added_since_it_last_ended(reverie, project):
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    project.write(lines[:9])
    end_hook(reverie, project.end())
    project.write(lines)

    resumed = end_hook(reverie, project.end())
    again = end_hook(reverie, project.end())

    first, second = turns_of("".join(lines[:9])), turns_of("".join(lines))[len(turns_of("".join(lines[:9]))):]
    stored = sessions(reverie)
    assert sorted(stored) == [SESSION, f"{SESSION}.2"]
    assert said(stored[SESSION]) == first
    assert said(stored[f"{SESSION}.2"]) == second and second
    assert stored[f"{SESSION}.2"]["title"].endswith("(part 2)")
    assert resumed.out == f"Reverie: logged {len(second)} turns to {SESSION}.2.\n"
    assert (again.code, again.out) == (0, "")


def test_a_conversation_resumed_under_a_new_session_id_continues_the_original_one(reverie, project):
    end_hook(reverie, project.end())
    added = {"type": "user", "sessionId": "0b9e7c1d-1111-4a2b-9c3d-4e5f6a7b8c9d", "timestamp": "2026-10-15T08:00:00Z",
             "message": {"role": "user", "content": "Also add the setup step to the README."}}
    project.write([SAMPLE.read_text(encoding="utf-8"), json.dumps(added) + "\n"])

    end_hook(reverie, project.end(session_id="0b9e7c1d-1111-4a2b-9c3d-4e5f6a7b8c9d"))

    stored = sessions(reverie)
    assert sorted(stored) == [SESSION, f"{SESSION}.2"]
    assert said(stored[f"{SESSION}.2"]) == [("user", "Also add the setup step to the README.")]


@pytest.mark.parametrize(
    "raw",
    ["6f1c2a9e-3b7d-4e25-9a4f-0c8d51e7b2a4", "session id with spaces/and slashes", "-leading-dash", "x" * 300, ""],
    ids=["uuid-kept", "spaces-and-slashes", "leading-dash", "too-long", "empty"],
)
def test_every_claude_code_session_id_becomes_a_valid_reverie_id_with_room_for_part_numbers(raw):
    key = session_key(raw)

    assert IDENTIFIER.match(f"{key}.99")
    assert key == raw if IDENTIFIER.match(raw) and len(raw) <= 100 else key.startswith("cc-")


def test_session_ids_that_differ_only_in_unsafe_characters_stay_distinct():
    assert session_key("a/b") != session_key("a b")


@pytest.mark.slow
def test_a_locked_database_leaves_the_session_spooled_and_the_hook_exits_0_in_time(reverie, project):
    assert reverie("show").code == 0  # creates the database
    with write_locked(project.db) as other:
        ran = hook_process(project, "log", project.end(), "--timeout", "1")
        (stored,) = other.execute("SELECT count(*) FROM sessions").fetchone()

    assert ran.code == 0
    assert "spooled" in ran.err and ran.err.count("\n") == 1
    assert stored == 0
    (item,) = project.spooled()
    assert json.loads(item.read_text())["transcript"] == SAMPLE.read_text(encoding="utf-8")

    drained = reverie("log", "--drain-spool")

    assert (drained.code, drained.out) == (0, f"Reverie: logged 12 turns to {SESSION}.\n")
    assert said(sessions(reverie)[SESSION]) == turns_of(SAMPLE.read_text(encoding="utf-8"))
    assert project.spooled() == []


@pytest.mark.slow
def test_the_next_session_end_also_logs_what_an_earlier_one_spooled(reverie, project, tmp_path):
    assert reverie("show").code == 0
    with write_locked(project.db):
        hook_process(project, "log", project.end(), "--timeout", "1")
    other = tmp_path / "other.jsonl"
    other.write_text('{"type":"user","message":{"role":"user","content":"What does make lint run?"}}\n'
                     '{"type":"assistant","message":{"role":"assistant","content":"ruff and mypy."}}\n')

    ran = end_hook(reverie, {**project.end(session_id="second-session"), "transcript_path": str(other)})

    assert ran.out.splitlines() == [f"Reverie: logged 12 turns to {SESSION}.",
                                    "Reverie: logged 2 turns to second-session."]
    assert sorted(sessions(reverie)) == sorted([SESSION, "second-session"])
    assert project.spooled() == []


@pytest.mark.slow
def test_the_transcript_is_spooled_before_anything_else_so_a_later_change_to_the_file_loses_nothing(
        reverie, project):
    assert reverie("show").code == 0
    original = SAMPLE.read_text(encoding="utf-8")
    with write_locked(project.db):
        hook_process(project, "log", project.end(), "--timeout", "1")
    project.transcript.unlink()  # e.g. Claude Code cleaned up old transcripts

    reverie("log", "--drain-spool")

    assert said(sessions(reverie)[SESSION]) == turns_of(original)


def test_a_transcript_whose_last_line_was_cut_in_half_is_logged_without_that_line_and_says_so(reverie, project):
    project.write([SAMPLE.read_text(encoding="utf-8"), '{"type": "user", "message": \n'])

    ran = end_hook(reverie, project.end())

    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"Reverie: logged 12 turns to {SESSION}; 1 unreadable line(s) of its transcript were skipped.\n"
    assert said(sessions(reverie)[SESSION]) == turns_of(SAMPLE.read_text(encoding="utf-8"))
    assert project.spooled() == [] and not (spool_dir(project.db) / "failed").exists()


def claude_line(kind: str, content, *, session: str = SESSION, at: str = "2026-10-15T08:00:00Z", **extra) -> str:
    """One Claude Code record, as a line of its transcript."""
    record = {"type": kind, "sessionId": session, "timestamp": at, "cwd": "/home/maya/src/billing",
              "message": {"role": kind, "content": content}, **extra}
    return json.dumps(record) + "\n"


def other_session(tmp_path: Path, session_id: str = "second-session") -> dict:
    other = tmp_path / "second.jsonl"
    other.write_text(claude_line("user", "What does make lint run?", session=session_id) +
                     claude_line("assistant", "ruff and mypy.", session=session_id))
    return {"session_id": session_id, "transcript_path": str(other), "cwd": str(tmp_path),
            "hook_event_name": "SessionEnd"}


def test_a_line_nested_a_thousand_levels_deep_loses_neither_its_session_nor_the_ones_after_it(
        reverie, project, tmp_path):
    project.write([SAMPLE.read_text(encoding="utf-8"), "[" * 5000 + "]" * 5000 + "\n"])

    first = end_hook(reverie, project.end())
    second = end_hook(reverie, other_session(tmp_path))

    assert (first.code, first.err) == (0, "") and "1 unreadable line(s)" in first.out
    assert second.out == "Reverie: logged 2 turns to second-session.\n"
    assert sorted(sessions(reverie)) == sorted([SESSION, "second-session"])
    assert project.spooled() == []


def test_an_item_failing_in_a_way_no_one_foresaw_is_set_aside_and_the_rest_still_drain(reverie, project, tmp_path):
    # A working directory with a NUL byte: the path functions raise ValueError, not a Reverie refusal.
    end_hook(reverie, {**project.end(), "cwd": "/home/maya/bil\u0000ling"})

    ran = end_hook(reverie, other_session(tmp_path))

    assert ran.out == "Reverie: logged 2 turns to second-session.\n"
    failed = spool_dir(project.db) / "failed"
    (item,) = failed.glob("*.json")
    assert "ValueError" in (failed / f"{item.stem}.reason.txt").read_text()
    assert project.spooled() == []


def test_the_failed_folder_keeps_only_the_newest_items(reverie, project):
    folder = spool_dir(project.db)
    folder.mkdir(parents=True)
    for n in range(53):
        (folder / f"20261015T0800{n:02d}000000Z-1.json").write_text("not a spool item")

    drained = reverie("log", "--drain-spool")

    assert drained.code == 1  # the items need a person
    kept = sorted(path.name for path in (folder / "failed").glob("*.json"))
    assert len(kept) == 50 and kept[0] == "20261015T080003000000Z-1.json"
    assert len(list((folder / "failed").glob("*.reason.txt"))) == 50


@pytest.mark.slow
def test_a_spooled_session_is_readable_by_its_owner_only_and_holds_no_secret(reverie, project):
    key = "sk-ant-api03-" + "Q7w9E2r4T6y8U1i3O5p7" * 4
    project.write([SAMPLE.read_text(encoding="utf-8"), claude_line("user", f"Use the key {key} for the billing API.")])
    assert reverie("show").code == 0
    with write_locked(project.db):
        hook_process(project, "log", project.end(), "--timeout", "1")

    (item,) = project.spooled()
    assert (oct(item.stat().st_mode & 0o777), oct(item.parent.stat().st_mode & 0o777)) == ("0o600", "0o700")
    assert key not in item.read_text() and "[REDACTED" in item.read_text()
    assert reverie("log", "--drain-spool").code == 0
    assert "[REDACTED" in said(sessions(reverie)[SESSION])[-1][1]  # the redacted line still reads as a turn


@pytest.mark.parametrize(
    ("line", "kept"),
    [('{"type": "user", "message": {"content": "Deploy billing to staging"}}', True),
     ('{"type": "user", "message": {"content": "use s\\u006b-ant-api03-' + "Q7w9E2r4T6y8U1i3O5p7" * 2 + '"}}', False),
     ('{"content": "post to https:\\/\\/hooks.slack.com\\/services\\/T000\\/B000\\/XXXXXXXXXXXX"}', False),
     ('{"content": "the key sk-ant-api03-' + "Q7w9E2r4T6y8U1i3O5p7" * 2 + '"}', False)],
    ids=["no-secret-kept-byte-for-byte", "secret-spelled-with-a-json-escape", "webhook-with-escaped-slashes",
         "secret-as-written"],
)
def test_a_spooled_transcript_line_loses_every_secret_however_json_spells_it(line, kept):
    redacted = redacted_transcript(line)
    assert (redacted == line) is kept
    assert "[REDACTED:" in redacted or kept


@pytest.mark.parametrize(
    "make",
    [lambda tmp: Path("/etc/passwd"),
     lambda tmp: _written(tmp / "package.jsonl", '{"name": "billing", "version": "1.0.0"}\n'),
     lambda tmp: _linked(tmp / "session.jsonl", Path("/etc/passwd")),
     lambda tmp: _written(tmp / "notes.txt", claude_line("user", "hello")),
     lambda tmp: Path("/dev/zero")],
    ids=["etc-passwd", "jsonl-of-something-else", "jsonl-link-to-etc-passwd", "not-jsonl", "device"],
)
def test_the_hook_refuses_any_file_but_a_claude_code_transcript_with_one_line(make, reverie, project, tmp_path):
    ran = end_hook(reverie, {**project.end(), "transcript_path": str(make(tmp_path))})

    assert (ran.code, ran.out) == (0, "")
    assert ran.err.startswith("reverie: nothing was logged: ") and "not a Claude Code transcript" in ran.err
    assert ran.err.count("\n") == 1 and "root:" not in ran.err
    assert project.spooled() == [] and not project.db.exists()


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _linked(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def test_a_file_under_claude_projects_is_read_whatever_its_first_line(reverie, project, tmp_path):
    transcript = tmp_path / "home" / ".claude" / "projects" / "-home-maya-billing" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text("a first line damaged on disk\n" + SAMPLE.read_text(encoding="utf-8"))

    ran = end_hook(reverie, {**project.end(), "transcript_path": str(transcript)})

    assert ran.out == f"Reverie: logged 12 turns to {SESSION}; 1 unreadable line(s) of its transcript were skipped.\n"


def test_a_transcript_with_nothing_to_log_is_no_failure(reverie, project):
    project.write(['{"type":"summary","summary":"Billing tests","leafUuid":"elsewhere"}\n',
                   '{"type":"file-history-snapshot","messageId":"m1","snapshot":{},"isSnapshotUpdate":false}\n'])

    ran = end_hook(reverie, project.end())

    assert (ran.code, ran.out, ran.err) == (0, "", "")
    assert project.spooled() == [] and not (spool_dir(project.db) / "failed").exists()


def test_a_session_ends_at_its_last_timestamp_and_keeps_claude_codes_summary(reverie, project):
    recap = {"type": "system", "subtype": "away_summary", "timestamp": "2026-10-14T09:20:00.000Z",
             "content": "Fixed the billing tests with an editable install. (disable recaps in /config)"}
    project.write([SAMPLE.read_text(encoding="utf-8"), json.dumps(recap) + "\n"])

    end_hook(reverie, project.end())

    stored = sessions(reverie)[SESSION]
    assert stored["ended_at"].startswith("2026-10-14T09:20:00")
    assert stored["outcome_summary"] == "Fixed the billing tests with an editable install."


def test_a_resumed_part_is_titled_by_its_own_first_request(reverie, project):
    end_hook(reverie, project.end())
    project.write([SAMPLE.read_text(encoding="utf-8"), claude_line("user", "Now bump the version to 0.3.2."),
                   claude_line("assistant", [{"type": "text", "text": "Bumped."}], at="2026-10-15T08:01:00Z")])

    end_hook(reverie, project.end())

    resumed = sessions(reverie)[f"{SESSION}.2"]
    assert resumed["title"] == "billing: Now bump the version to 0.3.2. (part 2)"
    assert resumed["ended_at"].startswith("2026-10-15T08:01:00")


# --- reverie log FILE ---------------------------------------------------------------------


def test_logging_the_same_claude_code_file_twice_stores_it_once(reverie, project):
    first = reverie("log", str(project.transcript))
    again = reverie("log", str(project.transcript))

    assert first.out.startswith(f"Logged 12 turns to {SESSION} ")
    assert again.code == 0
    assert again.out == f"Nothing new to log: {project.transcript} is stored already, every turn of it.\n"
    assert list(sessions(reverie)) == [SESSION]


def test_the_hook_and_reverie_log_store_one_conversation_once(reverie, project):
    end_hook(reverie, project.end())

    again = reverie("log", str(project.transcript), "--json")

    assert json.loads(again.out)["events_added"] == 0
    assert list(sessions(reverie)) == [SESSION]


def test_a_subagent_file_logged_on_its_own_is_kept_apart_from_its_parent(reverie, project, tmp_path):
    reverie("log", str(project.transcript))
    subagent = tmp_path / "agent-a748733.jsonl"
    subagent.write_text(claude_line("user", "Find every caller of round_total.", isSidechain=True, agentId="a748733") +
                        claude_line("assistant", "Two callers.", isSidechain=True, agentId="a748733"))

    ran = reverie("log", str(subagent))

    assert ran.out.startswith(f"Logged 2 turns to {SESSION}:agent-a748733 ")
    stored = sessions(reverie)
    assert sorted(stored) == sorted([SESSION, f"{SESSION}:agent-a748733"])
    assert [role for role, _ in said(stored[f"{SESSION}:agent-a748733"])] == ["system", "assistant"]


def test_a_session_closed_before_anything_was_said_logs_nothing_and_says_nothing(reverie, project):
    ran = end_hook(reverie, {**project.end(), "transcript_path": str(project.cwd / "never-written.jsonl")})

    assert (ran.code, ran.out, ran.err) == (0, "", "")
    assert project.spooled() == []


@pytest.mark.parametrize(
    "stdin",
    ["", "not json", "[1, 2]", '{"transcript_path": "/tmp/x.jsonl"}', '{"session_id": "abc"}'],
    ids=["empty", "not-json", "array", "no-session-id", "no-transcript-path"],
)
def test_unusable_hook_input_exits_0_with_one_line_on_stderr_and_stores_nothing(stdin, reverie, project):
    ran = reverie("log", "--claude-code-hook", stdin=stdin)

    assert (ran.code, ran.out) == (0, "")
    assert ran.err.startswith("reverie: nothing was logged: ") and ran.err.count("\n") == 1
    assert project.spooled() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("session_id", 7), ("session_id", None), ("transcript_path", ["a.jsonl"]), ("cwd", 3.5),
     ("hook_event_name", True)],
    ids=["number-id", "null-id", "list-path", "number-cwd", "boolean-event"],
)
def test_a_hook_input_field_that_is_not_text_is_named_in_the_one_line(field, value, reverie, project):
    ran = end_hook(reverie, {**project.end(), field: value})

    assert (ran.code, ran.out) == (0, "")
    assert ran.err == (f"reverie: nothing was logged: the hook input lacks what a Claude Code hook sends: "
                       f"Input should be a valid string ({field}).\n")
    assert project.spooled() == []


def test_a_session_spooled_by_an_earlier_version_is_still_logged(reverie, project):
    # As the spool was written before its items were plain JSON: every field of the hook
    # input, Claude Code's own extras included.
    folder = spool_dir(project.db)
    folder.mkdir(parents=True)
    (folder / "20261015T080000000000Z-1.json").write_text(json.dumps({
        "hook": {**project.end(), "hook_event_name": "SessionEnd"}, "agent_id": "claude-code",
        "transcript": SAMPLE.read_text(encoding="utf-8"), "spooled_at": "2026-10-15T08:00:00+00:00"}))

    drained = reverie("log", "--drain-spool")

    assert (drained.code, drained.out) == (0, f"Reverie: logged 12 turns to {SESSION}.\n")
    assert said(sessions(reverie)[SESSION]) == turns_of(SAMPLE.read_text(encoding="utf-8"))


def test_drain_spool_with_nothing_spooled_says_so(reverie):
    ran = reverie("log", "--drain-spool")

    assert (ran.code, ran.out) == (0, "Reverie: the spool is empty.\n")


@pytest.mark.parametrize(
    "argv",
    [["log"], ["log", "x.jsonl", "--claude-code-hook"], ["log", "x.jsonl", "--drain-spool"]],
    ids=["no-file", "file-with-hook", "file-with-drain"],
)
def test_log_needs_exactly_one_source_of_transcripts(argv, reverie):
    ran = reverie(*argv)

    assert ran.code == 1
    assert ran.err.startswith("reverie: ") and ran.err.count("\n") == 1


# --- the command line --------------------------------------------------------------------

HOOK_ATTRIBUTES = ("command", "db", "agent", "claude_code_hook", "timeout", "file", "query", "budget")


@pytest.mark.parametrize(
    "argv",
    [["log", "--claude-code-hook"], ["recall", "--claude-code-hook"],
     ["--db", "a.db", "--agent", "x", "log", "--claude-code-hook", "--timeout", "2.5"],
     ["--db", "a.db", "recall", "--claude-code-hook", "--db", "b.db", "--query", "deploy -x", "--budget", "300"],
     ["recall", "--agent=ci", "--claude-code-hook", "--timeout", "1"],
     ["recall", "--claude-code-hook", "--query=-x", "--budget=300", "--db=a=b.db"],
     ["--agent", "x", "log", "--agent", "y", "--claude-code-hook", "--agent", "z", "--timeout", "1e1"],
     ["--db", "log", "recall", "--claude-code-hook", "--claude-code-hook", "--query", ""]],
    ids=["log", "recall", "options-before", "option-after-overrides", "equals-form", "equals-form-dash-value",
         "last-one-wins", "values-named-like-commands"],
)
def test_a_hook_command_line_is_read_as_the_full_parser_reads_it(argv):
    narrow, full = cli.hook_arguments(argv), cli.parser().parse_args(argv)

    assert narrow is not None
    read = {name: getattr(narrow, name, None) for name in HOOK_ATTRIBUTES}
    assert read == {name: getattr(full, name, None) for name in HOOK_ATTRIBUTES}


@pytest.mark.parametrize(
    "argv",
    [["show"], ["log", "x.jsonl", "--claude-code-hook"], ["log", "--claude-code-hook", "--drain-spool"],
     ["recall", "--claude-code-hook", "--budg", "300"], ["log", "--claude-code-hook", "--help"],
     ["recall", "--claude-code-hook", "--timeout", "soon"], ["dream", "--claude-code-hook"],
     ["recall", "--claude-code-hook", "--query", "-x"], ["recall", "--claude-code-hook", "--budget", "-5"],
     ["recall", "--claude-code-hook", "--budget", "3.5"], ["recall", "--claude-code-hook", "--db"],
     ["recall", "--claude-code-hook", "--", "x"], ["--claude-code-hook", "recall"],
     ["log", "--claude-code-hook", "--query", "x"], ["log", "recall", "--claude-code-hook"],
     ["recall", "--query=--claude-code-hook"], ["recall", "--claude-code-hook=yes"], ["-h", "recall", "--claude-code-hook"]],
    ids=["no-hook", "with-a-file", "with-drain", "abbreviated", "help", "bad-number", "other-command",
         "dash-value", "negative-number", "not-a-whole-number", "no-value", "double-dash", "hook-flag-first",
         "the-other-hooks-option", "two-commands", "flag-only-as-a-value", "flag-with-a-value", "short-help"],
)
def test_any_other_command_line_is_left_to_the_full_parser(argv):
    assert cli.hook_arguments(argv) is None


# --- SessionStart -----------------------------------------------------------------------


def remember_and_propose(reverie: Cli, tmp_path: Path) -> str:
    """One applied memory entry and one pending proposal for agent claude-code; returns the proposal id."""
    chat = tmp_path / "chat.txt"
    chat.write_text("User: can you check the build?\nAssistant: The build is green.\n")
    for _ in range(2):
        reverie("--agent", "claude-code", "log", str(chat), "--note", NOTE)
    applied = reverie("--agent", "claude-code", "dream", "--engine", "heuristic", "--auto")
    assert applied.code == 0, applied.err
    reverie("--agent", "claude-code", "log", str(chat), "--note", "Deploys need the VPN")
    proposal = reverie("--agent", "claude-code", "dream", "--engine", "heuristic", "--json")
    return json.loads(proposal.out)["id"]


@pytest.mark.parametrize("source", ["startup", "resume", "clear", "compact"],
                         ids=["startup", "resume", "clear", "compact"])
def test_session_start_prints_the_memory_and_a_line_for_the_proposal_awaiting_review(
        source, reverie, project, tmp_path):
    proposal_id = remember_and_propose(reverie, tmp_path)

    ran = start_hook(reverie, project.start(source))

    assert (ran.code, ran.err) == (0, "")
    lines = ran.out.splitlines()
    assert lines[:2] == ["# Reverie memory (working in billing)",
                         f"Reverie: dream proposal {proposal_id} awaits your review — ask me to show it."]
    assert f"## Memory\n- [fact] {NOTE} (from " in ran.out
    assert "Deploys need the VPN" in ran.out  # a note since the last dream


def test_session_start_with_nothing_remembered_prints_nothing(reverie, project):
    ran = start_hook(reverie, project.start())

    assert (ran.code, ran.out, ran.err) == (0, "", "")


def test_session_start_as_another_agent_does_not_see_claude_codes_private_memory(reverie, project, tmp_path):
    remember_and_propose(reverie, tmp_path)

    elsewhere = reverie("--agent", "someone-else", "recall", "--claude-code-hook", stdin=json.dumps(project.start()))

    assert (elsewhere.code, elsewhere.err) == (0, "")  # it ran, and printed what someone-else may see
    assert NOTE not in elsewhere.out  # claude-code's private entry is not someone-else's memory


@pytest.mark.slow
def test_session_start_on_a_locked_database_prints_nothing_and_exits_0_in_time(reverie, project, tmp_path):
    remember_and_propose(reverie, tmp_path)

    with write_locked(project.db):
        ran = hook_process(project, "recall", project.start(), "--timeout", "1")

    assert (ran.code, ran.out) == (0, "")
    assert ran.err.startswith("reverie: ") and ran.err.count("\n") == 1


def test_session_start_with_unusable_input_exits_0_and_prints_nothing(reverie):
    ran = reverie("recall", "--claude-code-hook", stdin="{not json")

    assert (ran.code, ran.out) == (0, "")
    assert ran.err.startswith("reverie: ")


def test_recall_without_the_hook_prints_what_the_hook_would_print_in_this_directory(
        reverie, project, tmp_path, monkeypatch):
    remember_and_propose(reverie, tmp_path)
    monkeypatch.chdir(project.cwd)

    by_hand = reverie("--agent", "claude-code", "recall")
    by_hook = start_hook(reverie, project.start())

    assert by_hand.code == 0
    assert by_hand.out == by_hook.out


# What a hook process loads is paid at every session start and end; these modules it never uses.
_RUN_AND_LIST_MODULES = """
import io, json, sys
from reverie import cli
sys.stdin = io.StringIO(sys.argv[1])
cli.main(sys.argv[2:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("command", "never"),
    [("log", {"mcp", "reverie.mcp_server", "reverie.engines", "reverie.service.dreams", "reverie.service.recall",
              "reverie.session_start", "reverie.report", "argparse"}),
     ("recall", {"mcp", "reverie.mcp_server", "reverie.engines", "reverie.service.dreams",
                 "reverie.service.continuation", "argparse"})],
    ids=["session-end", "session-start"],
)
def test_a_hook_process_loads_neither_the_mcp_sdk_nor_what_the_other_hook_needs(project, command, never):
    payload = project.end() if command == "log" else project.start()
    done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_MODULES, json.dumps(payload), "--db", str(project.db),
                           command, "--claude-code-hook"], capture_output=True, text=True, timeout=60, check=False)
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "reverie.service" in loaded  # it did its work
    assert not never & loaded, sorted(never & loaded)
