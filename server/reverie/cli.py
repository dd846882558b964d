"""`reverie`: serve the MCP server, or work with a memory from the shell.

Every command opens the database named by --db (or REVERIE_DB, or the user data dir),
does one thing, and prints markdown for people or, with --json, the same models the
MCP tools return. Anticipated failures print one line to stderr and exit 1 — except
under `--claude-code-hook`, where `reverie.hooks` always exits 0 so that a hook can
never break Claude Code.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeAlias, cast, get_args

from reverie import __version__, hooks
from reverie.config import Settings, is_server_url
from reverie.errors import InvalidInput, ReverieError
from reverie.hooks import on_event_loop

# The service, the reports, the transcript reader, the models (pydantic), the event loop
# (anyio, with inspect, ast and tokenize under it) and argparse are imported by the
# functions that use them, not here: the Claude Code hooks (`reverie.hooks`) start a process
# at every session start and end and should pay only for what they run.
if TYPE_CHECKING:
    import argparse

    from pydantic import BaseModel

    from reverie import claude_transcript
    from reverie.models import OperationDraft, Turn
    from reverie.service import Reverie
    from reverie.tokens import ListedToken  # loaded at run time only by `reverie token`

# Strings: `Reverie` is imported for type checking only, and add_subparsers' result is
# generic only in typeshed.
Command: TypeAlias = "Callable[[Reverie, argparse.Namespace], Awaitable[None]]"
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: list[str] | None = None) -> int:
    args = hook_arguments(argv) or parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "token":
            return token(args)
        if args.command in CHECKUPS:
            return CHECKUPS[args.command](args)
        if getattr(args, "claude_code_hook", False):
            return hook(args)
        if getattr(args, "drain_spool", False):
            return drain_spool(args)
        on_event_loop(_run, args)
    except ReverieError as error:
        print(f"reverie: {error.terminal or error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `reverie show --json | head` closed the pipe: not an error
        sys.stderr.close()
    except KeyboardInterrupt:
        print("reverie: interrupted; nothing was half-written.", file=sys.stderr)
        return 130
    return 0


async def _run(args: argparse.Namespace) -> None:
    if args.command == "demo":
        await demo(args)
        return
    from reverie.service import open_reverie

    async with open_reverie(Settings.resolve(args.db, args.agent)) as reverie:
        await COMMANDS[args.command](reverie, args)


def emit(args: argparse.Namespace, model: BaseModel | dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        data = model if isinstance(model, dict) else model.model_dump(mode="json")
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


def serve(args: argparse.Namespace) -> int:
    from reverie.mcp_server import build_server  # only `serve` needs the MCP stack loaded

    settings = Settings.resolve(args.db, args.agent, dream_every=args.dream_every, dream_after=args.dream_after,
                                dream_mode=args.dream_mode, dream_idle=args.dream_idle, project=args.project)
    if args.http:
        return serve_http(args, settings)
    if args.host or args.port is not None or args.tokens or args.allow_host:
        raise InvalidInput("--host, --port, --tokens and --allow-host serve over HTTP: add --http.")
    server = build_server(settings)
    if sys.stdin.isatty():
        print(_waiting_for_a_client(args, settings), file=sys.stderr, flush=True)
    server.run()
    return 0


def _waiting_for_a_client(args: argparse.Namespace, settings: Settings) -> str:
    """For a person who ran `reverie serve` by hand: stdout is the protocol, so it would look dead."""
    command = [str(Path(sys.argv[0]).resolve()), "serve"]
    command += ["--db", settings.db_url or str(settings.db_path.resolve())] if args.db else []
    command += ["--agent", settings.agent_id] if args.agent else []
    desktop = json.dumps({"mcpServers": {"reverie": {"command": command[0], "args": command[1:]}}})
    return (f"reverie: serving MCP on stdio for {settings.shown}: waiting for an MCP client on this "
            "terminal's stdin and stdout. A client starts this command itself, so stop it (Ctrl-C) and add it to one:\n"
            f"  Claude Code:    claude mcp add reverie -- {' '.join(command)}\n"
            f"  Claude Desktop: {desktop} in claude_desktop_config.json\n"
            "  Any client over HTTP: reverie serve --http (then connect to http://127.0.0.1:8765/mcp)")


def serve_http(args: argparse.Namespace, settings: Settings) -> int:
    """`reverie serve --http`: streamable HTTP at /mcp (see reverie.http_server for who may connect)."""
    from reverie import http_server, tokens

    port = http_server.DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--port must be 0-65535 (0: any free port); got {port}.")
    http_server.serve_http(settings, host=args.host or http_server.DEFAULT_HOST, port=port,
                           tokens_path=tokens.tokens_path(args.tokens, settings.db_path),
                           allowed_hosts=args.allow_host or [])
    return 0


def token(args: argparse.Namespace) -> int:
    """`reverie token add | list | revoke`: the bearer tokens HTTP clients present."""
    from reverie import tokens
    from reverie.clock import utcnow

    path = tokens.tokens_path(args.tokens, Settings.resolve(args.db).db_path)
    if args.token_command == "add":
        first = not path.exists()
        secret, made = tokens.add_token(path, args.token_agent, args.scope, args.label, utcnow())
        print(secret)
        print(f"reverie: token {made.id} for agent {made.agent_id!r} ({', '.join(made.scopes)}) is in {path}; "
              "it is shown only this once. Clients send it as 'Authorization: Bearer <token>'. "
              f"{_running_server_effect(first)}", file=sys.stderr)
    elif args.token_command == "list":
        listed = tokens.listing(tokens.read_tokens(path))
        emit(args, {"tokens": [t.model_dump(mode="json") for t in listed]}, _token_table(listed, path))
    else:
        gone = tokens.revoke_token(path, args.key)
        print(f"Revoked token {gone.id} (agent {gone.agent_id!r}{f', {gone.label!r}' if gone.label else ''}); "
              "a running server refuses it from its next request.")
    return 0


def _running_server_effect(first: bool) -> str:
    """What a token add changes for a `reverie serve --http` already running on this file."""
    if first:
        return ("This is the first token: a running `reverie serve --http` on loopback now refuses requests "
                "without a token (401) from the next one on, instead of acting as its own agent for them.")
    return "A running `reverie serve --http` accepts it from the next request; no restart is needed."


def _token_table(listed: list[ListedToken], path: Path) -> str:
    if not listed:
        return f"No tokens in {path}. Add one with: reverie token add --agent ID [--scope S]..."
    rows = [("id", "agent", "scopes", "label", "created (UTC)")] + [
        (t.id, t.agent_id, " ".join(t.scopes), t.label or "-", f"{t.created_at:%Y-%m-%d %H:%M}") for t in listed]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)), row[4]]) for row in rows)


def hook(args: argparse.Namespace) -> int:
    """A Claude Code hook: stdin is the hook input; always 0 (see reverie.hooks)."""
    if args.command == "log":
        _no_file_with(args, "--claude-code-hook")
        return hooks.log_hook(args.db, args.agent, sys.stdin, args.timeout)
    return hooks.recall_hook(args.db, args.agent, sys.stdin, query=args.query, budget=args.budget,
                             timeout=args.timeout)


def hook_arguments(argv: list[str] | None) -> argparse.Namespace | None:
    """A Claude Code hook's command line, read without argparse.

    Loading argparse and building even a small parser takes ~10 ms (every argument looks up
    the terminal's width, loading shutil; every message its translation), paid at every
    session start and end. This reads the plain spellings of the hooks' options alone.
    Anything else — an unknown or abbreviated option, a FILE, --help, "--", a value that
    starts with "-" (argparse's rules for those are not repeated here) — makes it answer
    None, and the full parser reads the line, and errs, as it does. A test holds the two
    to the same reading.
    """
    argv = sys.argv[1:] if argv is None else argv
    if "--claude-code-hook" not in argv:
        return None
    read: dict[str, Any] = {"db": None, "agent": None}
    options, words = _GLOBAL_OPTIONS, iter(argv)
    for word in words:
        if "command" not in read and word in _HOOK_OPTIONS:
            read["command"], options = word, _HOOK_OPTIONS[word]
        elif word == "--claude-code-hook" and "command" in read:
            read["claude_code_hook"] = True
        elif not _read_option(word, words, options, read):
            return None
    if not read.get("claude_code_hook"):
        return None
    # Read attribute by attribute, as the full parser's Namespace is; argparse stays unloaded.
    return cast("argparse.Namespace", SimpleNamespace(**{**_HOOK_DEFAULTS[read["command"]], **read}))


def _read_option(word: str, words: Iterator[str], options: dict[str, Callable[[str], Any]],
                 read: dict[str, Any]) -> bool:
    """Read `--name=value` or `--name value` into `read`; False if `word` is no option here, or its value is unfit."""
    name, equals, value = word.partition("=")
    if name not in options:
        return False
    if not equals:
        value = next(words, "-")
        if value.startswith("-"):
            return False
    try:
        read[name.removeprefix("--")] = options[name](value)
    except ValueError:  # --timeout soon
        return False
    return True


# The hooks' options, as `_log_parser` and `_recall_parser` define them; --db and --agent may
# come before the command and after it (where they override), as `global_options` makes them.
_GLOBAL_OPTIONS: dict[str, Callable[[str], Any]] = {"--db": str, "--agent": str}
_HOOK_OPTIONS: dict[str, dict[str, Callable[[str], Any]]] = {
    "log": {**_GLOBAL_OPTIONS, "--timeout": float},
    "recall": {**_GLOBAL_OPTIONS, "--timeout": float, "--query": str, "--budget": int},
}
_HOOK_DEFAULTS: dict[str, dict[str, Any]] = {
    "log": {"timeout": hooks.LOG_TIMEOUT, "file": None},
    "recall": {"timeout": hooks.RECALL_TIMEOUT, "query": None, "budget": hooks.RECALL_BUDGET},
}


def drain_spool(args: argparse.Namespace) -> int:
    """Log the sessions the SessionEnd hook could not log yet; 1 if any needs a person."""
    _no_file_with(args, "--drain-spool")
    settings = Settings.resolve(args.db, hooks.DEFAULT_AGENT)  # each item names its own agent
    waiting = len(hooks.spooled(settings.db_path))
    try:
        drained = on_event_loop(hooks.drain, settings)
    except Exception as error:  # the top-level handler: a locked or unreadable database leaves every item spooled
        print(f"reverie: the spooled sessions stay in {hooks.spool_dir(settings.db_path)} "
              f"({type(error).__name__}: {error}); run this again later.", file=sys.stderr)
        return 1
    idle = (f"Reverie: nothing new to log; the {waiting} spooled session(s) were stored already." if waiting
            else "Reverie: the spool is empty.")
    for line in drained.logged_lines() or ([] if drained.failed else [idle]):
        print(line)
    for line in drained.failed_lines():
        print(f"reverie: {line}", file=sys.stderr)
    return 1 if drained.failed else 0


def _no_file_with(args: argparse.Namespace, flag: str) -> None:
    if getattr(args, "file", None):
        raise InvalidInput(f"{flag} reads its input from the hook or the spool; drop the FILE argument.")


async def log(reverie: Reverie, args: argparse.Namespace) -> None:
    if args.file is None:
        raise InvalidInput("Name a transcript FILE (or - for stdin), or use --claude-code-hook or --drain-spool.")
    text = _read_input(args.file)
    if not (args.session_id or args.open) and (transcript := _claude_code_session(text)):
        return await _log_claude_code(reverie, args, transcript)
    result = await reverie.log_session(
        text, session_id=args.session_id, title=args.title or Path(args.file).stem, notes=args.note,
        outcome=args.outcome, ended=not args.open,
    )
    emit(args, result, f"Logged {result.events_added} turns to {result.session_id} "
                       f"({result.redactions} secrets redacted; {result.sessions_awaiting_dream} await a dream).")


def _claude_code_session(text: str) -> claude_transcript.Transcript[Turn] | None:
    """The Claude Code transcript `text` is, if it is one that names its session."""
    from reverie import claude_transcript

    if not claude_transcript.looks_like_claude_code(text):
        return None
    transcript = claude_transcript.read_claude_code(text)
    return transcript if transcript.session_id else None


async def _log_claude_code(
    reverie: Reverie, args: argparse.Namespace, transcript: claude_transcript.Transcript[Turn]
) -> None:
    """As the SessionEnd hook logs it: under its own session id, only what no earlier log of it stored."""
    stored = await hooks.log_transcript(
        reverie, transcript, fallback_id=str(transcript.session_id), agent_id=None, cwd=transcript.cwd,
        title_text=args.title, notes=args.note, outcome=args.outcome,
    )
    unread = f"; {len(transcript.skipped)} unreadable line(s) skipped" if transcript.skipped else ""
    if stored is None:
        said = "holds no conversation" if not transcript.turns else "is stored already, every turn of it"
        emit(args, {"session_id": hooks.conversation_key(transcript, str(transcript.session_id)),
                    "events_added": 0, "skipped_lines": len(transcript.skipped)},
             f"Nothing new to log: {args.file} {said}{unread}.")
        return
    emit(args, {"session_id": stored.session_id, "events_added": stored.turns, "event_count": stored.turns,
                "ended": True, "redactions": stored.redactions, "skipped_lines": stored.skipped},
         f"Logged {stored.turns} turns to {stored.session_id} ({stored.redactions} secrets redacted{unread}).")


def _read_input(name: str) -> str:
    try:
        return sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"Cannot read {name}: {error.strerror}.") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} is not UTF-8 text; a transcript or export must be.") from None


async def dream(reverie: Reverie, args: argparse.Namespace) -> None:
    from reverie.report import applied_text, proposal_markdown

    if args.brief_id or args.operations:
        proposal = await reverie.propose_dream(brief_id=args.brief_id, operations=_operations(args.operations))
    else:
        with progress(args, f"Dreaming ({args.engine} engine)…"):
            proposal = await reverie.propose_dream(args.engine, max_sessions=args.max_sessions, scope=args.scope,
                                                   instructions=args.instructions)
    if not (args.auto and proposal.status == "pending"):
        emit(args, proposal, proposal_markdown(proposal, "terminal"))
        return
    result = await reverie.apply_unflagged(proposal.id)
    both = {"proposal": proposal.model_dump(mode="json"), "applied": result.model_dump(mode="json")}
    decided = await reverie.proposal(proposal.id)  # its ops marked applied or rejected: nothing left to decide
    emit(args, both, f"{proposal_markdown(decided, 'terminal')}\n\n{applied_text(result)}")


def _operations(name: str | None) -> list[OperationDraft] | None:
    """The operations a model wrote from a dream brief: a JSON list, or {"operations": [...]}."""
    from pydantic import TypeAdapter, ValidationError

    from reverie.models import OperationDraft

    if name is None:
        return None
    try:
        document = json.loads(_read_input(name))
        listed = document.get("operations") if isinstance(document, dict) else document
        return TypeAdapter(list[OperationDraft]).validate_python(listed)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{name} is not JSON: {error}.") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the document"
        raise InvalidInput(f"{name} is not a list of operations: at {where}, {first['msg']} "
                           "(each needs kind, rationale and, except a prune, content).") from None


def progress(args: argparse.Namespace, message: str) -> AbstractContextManager[object]:
    """A spinner on stderr while a person watches a terminal; nothing for pipes, files and --json."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console  # loaded only when a person is watching

    return Console(stderr=True).status(message)


async def show(reverie: Reverie, args: argparse.Namespace) -> None:
    from reverie.report import memory_markdown, proposal_markdown

    if args.proposal_id:
        proposal = await reverie.proposal(args.proposal_id)
        emit(args, proposal, proposal_markdown(proposal, "terminal"))
    else:
        view = await reverie.read_memory(args.query, budget_tokens=args.budget, scope=args.scope)
        emit(args, view, memory_markdown(view.entries, view.notes, view.episodes, view.pending_proposals, "terminal"))


async def recall(reverie: Reverie, args: argparse.Namespace) -> None:
    text = await hooks.recall_text(reverie, str(Path.cwd()), args.query, args.budget)
    print(text or "Nothing remembered yet, and no dream proposal awaits review.")


async def review(reverie: Reverie, args: argparse.Namespace) -> None:
    from rich.console import Console

    from reverie.terminal_review import review as review_proposals  # rich's prompts: loaded only here

    answers = None if sys.stdin.isatty() else sys.stdin  # not a terminal: one answer per line
    await review_proposals(reverie, args.proposal_id, Console(), answers)


async def apply(reverie: Reverie, args: argparse.Namespace) -> None:
    """Without --approve, what carries no risk flag (flagged changes wait, as on every other path)."""
    from reverie.report import applied_text

    edits = dict(_edit(e) for e in args.edit or [])
    proposal_id, approved = _proposal_and_ops(args.proposal_id, args.approve)
    if approved is None:
        if edits:
            raise InvalidInput("--edit changes an approved op: name the ops you approve with --approve OP... "
                               "(or --approve all).")
        result = await reverie.apply_unflagged(proposal_id)
    else:
        result = await reverie.apply_dream(proposal_id, "all" if approved == ["all"] else approved, edits or None)
    emit(args, result, applied_text(result))


OP_ID = re.compile(r"op\d+|all", re.IGNORECASE)


def _proposal_and_ops(proposal_id: str | None, approve: list[str] | None) -> tuple[str, list[str] | None]:
    """The proposal and the ops approved in it. --approve takes several values, so in
    `apply --approve op1 op2 drm_…` argparse hands it the proposal id too: the one value that
    is no op id is the proposal."""
    ops = None if approve is None else [i for part in approve for i in part.split(",") if i]
    others = [value for value in ops or [] if not OP_ID.fullmatch(value)]
    if proposal_id is None and len(others) == 1 and len(ops or []) > 1:
        proposal_id, ops = others[0], [value for value in ops or [] if value != others[0]]
    if proposal_id is None:
        raise InvalidInput("Name the proposal to apply: reverie apply PROPOSAL_ID [--approve OP...] "
                           "(`reverie show` lists the pending ones).")
    return proposal_id, ops


def _edit(text: str) -> tuple[str, str]:
    op_id, equals, content = text.partition("=")
    if not equals:
        raise InvalidInput(f"--edit takes OP=TEXT, e.g. --edit 'op3=Team database: PostgreSQL 16'; got {text!r}.")
    return op_id.strip(), content


async def revert(reverie: Reverie, args: argparse.Namespace) -> None:
    result = await reverie.revert_dream(args.proposal_id)
    emit(args, result, result.message)  # the same for every reader: it names no next step


async def export(reverie: Reverie, args: argparse.Namespace) -> None:
    if args.claude_code is not None or args.anthropic_store:
        await export_files(reverie, args)
        return
    document = json.dumps(await reverie.export(), indent=2, ensure_ascii=False)
    if args.output == "-":
        print(document)
        return
    try:
        Path(args.output).write_text(document + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"Cannot write {args.output}: {error.strerror}.") from None


async def export_files(reverie: Reverie, args: argparse.Namespace) -> None:
    """`reverie export --claude-code [DIR] | --anthropic-store DIR`: memory as another tool's files."""
    from reverie.formats import anthropic_store, claude_code, written  # loaded only for these exports

    if args.claude_code is not None:
        folder = Path(args.claude_code).expanduser() if args.claude_code else claude_code.memory_dir(Path.cwd())
        files = claude_code.render(await reverie.curated(project=await reverie.project_key(str(Path.cwd()))))
    else:
        folder, files = Path(args.anthropic_store).expanduser(), anthropic_store.render(await reverie.curated())
    changes = written.write_owned(folder, files, "*.md" if args.claude_code is not None else "*")
    print(f"Exported memory to {folder}:")
    print("\n".join(f"  {change.line()}" for change in changes))
    if args.claude_code is not None and any(c.path == claude_code.INDEX and c.action == "kept" for c in changes):
        print(f"Claude Code loads only {claude_code.INDEX}, which Reverie did not write: bring its memories in with "
              "reverie import --claude-code, move it away, and export again to have Reverie's index loaded.")


async def import_(reverie: Reverie, args: argparse.Namespace) -> None:
    document, source = await _import_document(reverie, args)
    counts = await reverie.import_(document, source)
    print(f"Imported {counts['sessions']} session(s) as history.")
    if counts["proposal_id"]:
        print(f"{counts['memories']} memory entries await review in proposal {counts['proposal_id']}: "
              f"reverie review {counts['proposal_id']} (or reverie apply {counts['proposal_id']} --approve all).")
    else:
        print("No new memory entries: each one is already in memory or waits in a pending proposal.")


async def _import_document(reverie: Reverie, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The document to import and what to call its source: a Reverie export, or another tool's memory."""
    from reverie.formats import anthropic_store, claude_code, server_memory  # loaded only for imports
    from reverie.service.access import check_scope

    agent, scope = reverie.settings.agent_id, args.scope and check_scope(args.scope)
    other = args.claude_code is not None or args.server_memory or args.anthropic_store
    if args.file and other:
        raise InvalidInput(f"Import either the export file {args.file!r} or another tool's memory, not both.")
    if scope and not other:
        raise InvalidInput("--scope applies to --claude-code, --server-memory and --anthropic-store; an export's "
                           "entries keep their own scopes.")
    if args.claude_code is not None:
        folder = Path(args.claude_code).expanduser() if args.claude_code else claude_code.memory_dir(Path.cwd())
        scope = scope or f"project:{await reverie.project_key(str(Path.cwd()), claim=True)}"
        return claude_code.read(folder, scope=scope, agent_id=agent), claude_code.LABEL
    if args.server_memory:
        return server_memory.read(Path(args.server_memory).expanduser(), scope=scope or "user",
                                  agent_id=agent), server_memory.LABEL
    if args.anthropic_store:
        return anthropic_store.read(Path(args.anthropic_store).expanduser(), scope=scope or "shared",
                                    agent_id=agent), anthropic_store.LABEL
    if not args.file:
        raise InvalidInput("Name what to import: an export file (or - for stdin), --claude-code [DIR], "
                           "--server-memory FILE or --anthropic-store DIR.")
    try:
        return json.loads(_read_input(args.file)), "an export"
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{args.file} is not JSON: {error}.") from None


async def demo(args: argparse.Namespace) -> None:
    from reverie.demo import run_demo

    if args.db and is_server_url(args.db):
        raise InvalidInput("The demo logs its example sessions into a new database file, never into a server's "
                           "shared memory. Omit --db to have it make one in a new temporary folder.")
    if args.db and Path(args.db).exists():
        raise InvalidInput(f"{args.db} exists; the demo logs its sessions into a new database file. "
                           "Omit --db to have it make one in a new temporary folder.")
    # Kept, not deleted: the demo ends by suggesting commands to try on it.
    import tempfile

    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="reverie-demo-")) / "demo.db"
    await run_demo(path, print)


def doctor(args: argparse.Namespace) -> int:
    """Check the database as it is (never created, never migrated); 1 when anything is wrong."""
    from reverie.service import maintenance  # the checks: loaded only for doctor and backup

    report = on_event_loop(maintenance.diagnose, Settings.resolve(args.db, args.agent).database, args.since)
    emit(args, report, report.markdown())
    if not report.healthy:
        print(f"reverie: {report.database} has {report.problem_count} problem(s); see the report.", file=sys.stderr)
    return 0 if report.healthy else 1


def backup(args: argparse.Namespace) -> int:
    """A copy taken while the database is in use (VACUUM INTO, or pg_dump), then checked; 1 if the check fails."""
    from reverie.service import maintenance

    settings = Settings.resolve(args.db, args.agent)
    with progress(args, f"Backing up {settings.shown}…"):
        result = on_event_loop(maintenance.back_up, settings.database, args.path)
    emit(args, result, result.markdown())
    if not result.check.healthy:
        checked = "the database it was taken from" if result.restore else "the backup"
        print(f"reverie: {checked} failed its check; see the report, and run reverie doctor on the source.",
              file=sys.stderr)
    return 0 if result.check.healthy else 1


def migrate(args: argparse.Namespace) -> int:
    """Bring the schema at --db up to date; or, with --from and --to, copy a SQLite memory onto PostgreSQL."""
    from reverie.service import migration

    if args.source is None and args.target is None:
        upgraded = on_event_loop(migration.upgrade, Settings.resolve(args.db, args.agent).database)
        emit(args, upgraded, upgraded.markdown())
        return 0
    if args.source is None or args.target is None or args.db:
        raise InvalidInput("To copy a SQLite memory onto PostgreSQL, give both --from and --to (and no --db): "
                           "reverie migrate --from SQLITE_FILE --to postgresql://user@host/database")
    with progress(args, f"Copying {args.source}…"):
        moved = on_event_loop(migration.move, args.source, args.target)
    emit(args, moved, moved.markdown())
    if not moved.check.healthy:
        print(f"reverie: the copy on {moved.target} failed its check; see the report.", file=sys.stderr)
    return 0 if moved.check.healthy else 1


CHECKUPS: dict[str, Callable[[argparse.Namespace], int]] = {"doctor": doctor, "backup": backup, "migrate": migrate}

COMMANDS: dict[str, Command] = {
    "log": log, "dream": dream, "show": show, "recall": recall, "review": review, "apply": apply, "revert": revert,
    "export": export, "import": import_,
}


DB_HELP = "database file (default: $REVERIE_DB, else the user data dir)"
AGENT_HELP = "agent id (default: $REVERIE_AGENT_ID, else 'default')"


def global_options(*, agent: bool = True) -> argparse.ArgumentParser:
    """--db and --agent, for every subcommand too, so `reverie show --db X` works like
    `reverie --db X show`. SUPPRESS: absent after the subcommand, the value before it stands."""
    import argparse

    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
    if agent:  # `token add` has an --agent of its own: the agent the token speaks for
        options.add_argument("--agent", default=argparse.SUPPRESS, help=AGENT_HELP)
    return options


def parser() -> argparse.ArgumentParser:
    import argparse

    top = argparse.ArgumentParser(prog="reverie", description="A memory for AI agents that dreams.")
    top.add_argument("--version", action="version", version=f"reverie {__version__}")
    top.add_argument("--db", help=DB_HELP)
    top.add_argument("--agent", help=AGENT_HELP)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub)
    _token_parser(sub)
    _log_parser(sub)
    _dream_parser(sub)
    _show_parser(sub)
    _recall_parser(sub)
    look = _command(sub, "review", "decide a pending dream proposal change by change in the terminal")
    look.add_argument("proposal_id", nargs="?", help="the proposal to review (default: every pending one)")
    _apply_parser(sub)
    one = _command(sub, "revert", "undo an applied dream exactly")
    one.add_argument("proposal_id", help="the applied dream to undo (a later dream built on it is reverted first)")
    one.add_argument("--json", action="store_true", help="print JSON")
    _export_parser(sub)
    _import_parser(sub)
    _command(sub, "demo", "log example sessions into a new database, dream, apply, show the result, "
                          "and keep the database to try the other commands on")
    _checkup_parsers(sub)
    return top


def _export_parser(sub: Subcommands) -> None:
    out = _command(sub, "export", "write memory and sessions as one JSON document, or memory as another tool's "
                                  "files (never overwriting a file Reverie did not write)")
    out.add_argument("output", nargs="?", default="-", help="file to write (default: stdout)")
    target = out.add_mutually_exclusive_group()
    target.add_argument("--claude-code", nargs="?", const="", metavar="DIR",
                        help="write Claude Code's auto memory (MEMORY.md and topic files) for the project here "
                             "(default DIR: its folder under ~/.claude/projects)")
    target.add_argument("--anthropic-store", metavar="DIR",
                        help="write one document per scope and category, to upload to a Managed Agents memory store")


def _import_parser(sub: Subcommands) -> None:
    into = _command(sub, "import", "add an export's sessions as history, or read another tool's memory; "
                                   "new entries wait in a proposal to review")
    into.add_argument("file", nargs="?", help="an export file, or - for stdin")
    source = into.add_mutually_exclusive_group()
    source.add_argument("--claude-code", nargs="?", const="", metavar="DIR",
                        help="read Claude Code's auto memory (default DIR: this project's folder under "
                             "~/.claude/projects)")
    source.add_argument("--server-memory", metavar="FILE",
                        help="read the knowledge graph (JSONL) of @modelcontextprotocol/server-memory")
    source.add_argument("--anthropic-store", metavar="DIR", help="read documents downloaded from a memory store")
    into.add_argument("--scope", help="where the entries go (default: --claude-code this project's scope, "
                                      "--server-memory user, --anthropic-store the scope each path names, else shared)")


def _serve_parser(sub: Subcommands) -> None:
    serve_cmd = _command(sub, "serve", "run the MCP server on stdio (what Claude Desktop and Claude Code start), "
                                      "or over HTTP with --http")
    # Defaults stay None so the REVERIE_DREAM_* environment variables apply when a flag is absent.
    serve_cmd.add_argument("--dream-every", metavar="DURATION", help="also dream this long after the last dream, e.g. 6h")
    serve_cmd.add_argument("--dream-after", metavar="N", help="dream once N sessions await one (default 5)")
    serve_cmd.add_argument("--dream-mode", choices=["off", "review", "auto"],
                           help="background dreams: off (default unless a flag above is given), review, auto")
    serve_cmd.add_argument("--dream-idle", metavar="DURATION", help="wait for this much quiet first (default 60s)")
    serve_cmd.add_argument("--project", metavar="DIR",
                           help="read_memory shows this folder's project memory, the shared and the user's "
                                "(default: $REVERIE_PROJECT, else every project the agent may read)")
    serve_cmd.add_argument("--http", action="store_true", help="serve streamable HTTP at /mcp instead of stdio")
    serve_cmd.add_argument("--host", help="with --http: address to bind (default 127.0.0.1; any other needs tokens)")
    serve_cmd.add_argument("--port", type=int, help="with --http: port (default 8765; 0 picks a free one)")
    serve_cmd.add_argument("--tokens", metavar="PATH", help="with --http: tokens file "
                                                            "(default: $REVERIE_TOKENS, else tokens.json beside the database)")
    serve_cmd.add_argument("--allow-host", action="append", metavar="NAME",
                           help="with --http: another name clients reach this server by (Host header); repeatable")


def _token_parser(sub: Subcommands) -> None:
    token_cmd = _command(sub, "token", "add, list or revoke the bearer tokens HTTP clients present", agent=False)
    token_cmd.add_argument("--tokens", metavar="PATH",
                           help="tokens file (default: $REVERIE_TOKENS, else tokens.json beside the database)")
    actions = token_cmd.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a token for an agent and print it (only this once)",
                             parents=[global_options(agent=False)])
    add.add_argument("--agent", dest="token_agent", required=True, metavar="ID", help="the agent the token speaks for")
    add.add_argument("--scope", action="append", metavar="SCOPE",
                     help="a grant, repeatable: read:shared, write:shared, read:user, write:user, project:<key>, "
                          "read:project:<key>, project:* (default: read:shared read:user)")
    add.add_argument("--label", help="a name to list and revoke it by")
    listed = actions.add_parser("list", help="list tokens: id, agent, scopes, label (never the token)",
                                parents=[global_options(agent=False)])
    listed.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a token by its id or label",
                                parents=[global_options(agent=False)])
    revoke.add_argument("key", metavar="ID-OR-LABEL", help="the token's id (tok_…) or its --label")


def _command(sub: Subcommands, name: str, purpose: str, *, agent: bool = True, **options: Any
             ) -> argparse.ArgumentParser:
    """A subcommand whose purpose shows both in `reverie --help` and in its own --help."""
    return sub.add_parser(name, help=purpose, description=purpose, parents=[global_options(agent=agent)], **options)


LOG_FORMATS = """transcript formats (recognised in this order):
  JSON turns   [{"role": "user", "content": "..."}, ...] or {"turns": [...]}: role is
               user, assistant, tool or system; a turn may also carry tool_name,
               is_error (true/false) and timestamp (ISO 8601)
  Claude Code  a session's JSONL file (~/.claude/projects/<project>/<session>.jsonl),
               logged under its own session id
  plain text   lines starting "User:", "Assistant:", "System:", "Tool:" or
               "Tool(name):" start a turn; text with none of them is one user turn

examples:
  reverie log chat.txt --note "The team database is PostgreSQL 16" --outcome success
  reverie log ~/.claude/projects/my-app/3f2c….jsonl
  some-agent --transcript | reverie log - --title "nightly triage"
"""


def _log_parser(sub: Subcommands) -> None:
    import argparse

    log_cmd = _command(sub, "log", "log a transcript: JSON turns, plain text, or a Claude Code JSONL file "
                                   "(under its own session id: logging it again stores only what is new)",
                       epilog=LOG_FORMATS, formatter_class=argparse.RawDescriptionHelpFormatter)
    log_cmd.add_argument("file", nargs="?", help="transcript file, or - for stdin")
    source = log_cmd.add_mutually_exclusive_group()
    source.add_argument("--claude-code-hook", action="store_true",
                        help="run as Claude Code's SessionEnd hook: log the session named by the hook input on stdin")
    source.add_argument("--drain-spool", action="store_true",
                        help="log the sessions the SessionEnd hook spooled because the database was busy")
    log_cmd.add_argument("--timeout", type=float, default=hooks.LOG_TIMEOUT, metavar="SECONDS",
                         help="with --claude-code-hook: how long to wait for a busy database (default %(default)g)")
    log_cmd.add_argument("--session-id", help="append to (or create) this session")
    log_cmd.add_argument("--title", help="session title (default: the file name; for a Claude Code transcript, "
                                         "the project and its first request)")
    log_cmd.add_argument("--note", action="append", help="a note to remember (repeatable)")
    from reverie.models import Outcome

    log_cmd.add_argument("--outcome", choices=get_args(Outcome), help="how the session ended")
    log_cmd.add_argument("--open", action="store_true", help="keep the session open for more turns")
    log_cmd.add_argument("--json", action="store_true", help="print JSON")


def _dream_parser(sub: Subcommands) -> None:
    dream_cmd = _command(sub, "dream", "propose a consolidation of memory and recent sessions")
    dream_cmd.add_argument("--engine", default="auto",
                           help="auto (default), heuristic, anthropic, openai (a local model server) or agent")
    dream_cmd.add_argument("--max-sessions", type=int, default=100, metavar="N",
                           help="review at most the N most recent sessions not yet dreamed over (default 100)")
    dream_cmd.add_argument("--scope", help="only this scope, e.g. agent:coding-agent")
    dream_cmd.add_argument("--instructions", help="what to focus on")
    dream_cmd.add_argument("--auto", action="store_true", help="apply changes without risk flags; the rest wait")
    dream_cmd.add_argument("--brief-id", metavar="ID", help="with --operations: the dream brief they answer "
                                                            "(from `reverie dream --engine agent`)")
    dream_cmd.add_argument("--operations", metavar="FILE",
                           help="with --brief-id: the operations a model wrote from the brief, as JSON "
                                "(- for stdin); they wait for review")
    dream_cmd.add_argument("--json", action="store_true", help="print JSON")


def _show_parser(sub: Subcommands) -> None:
    show_cmd = _command(sub, "show", "print memory, or a proposal's report")
    show_cmd.add_argument("proposal_id", nargs="?", help="a proposal to show instead of memory")
    show_cmd.add_argument("--query", help="rank memory for this topic")
    show_cmd.add_argument("--scope", help="only this scope")
    show_cmd.add_argument("--budget", type=int, default=4000, help="token budget (default 4000)")
    show_cmd.add_argument("--json", action="store_true", help="print JSON")


def _recall_parser(sub: Subcommands) -> None:
    recall_cmd = _command(sub, "recall", "print the memory an agent loads when a session starts here")
    recall_cmd.add_argument("--claude-code-hook", action="store_true",
                            help="run as Claude Code's SessionStart hook (hook input on stdin; always exits 0)")
    recall_cmd.add_argument("--query", help="only entries matching this (default: everything, best first)")
    recall_cmd.add_argument("--budget", type=int, default=hooks.RECALL_BUDGET, help="token budget (default %(default)s)")
    recall_cmd.add_argument("--timeout", type=float, default=hooks.RECALL_TIMEOUT, metavar="SECONDS",
                            help="with --claude-code-hook: how long to wait for a busy database (default %(default)g)")


def _apply_parser(sub: Subcommands) -> None:
    apply_cmd = _command(sub, "apply", "apply a proposal: all of it, or the ops you approve")
    apply_cmd.add_argument("proposal_id", nargs="?", help="the pending proposal (`reverie show` lists them); "
                                                          "before or after --approve")
    apply_cmd.add_argument("--approve", nargs="+", metavar="OP",
                           help="op ids to approve (op1 op3, or op1,op3), or 'all'; the rest are rejected "
                                "(default: the changes without risk flags; flagged ones wait in a new proposal)")
    apply_cmd.add_argument("--edit", action="append", metavar="OP=TEXT", help="new text for an approved op")
    apply_cmd.add_argument("--json", action="store_true", help="print JSON")


def _checkup_parsers(sub: Subcommands) -> None:
    import argparse

    check = _command(sub, "doctor", "check the database: SQLite's or PostgreSQL's integrity, guards, search index, "
                                    "revision log, transcript hashes, ledger; prints a checkpoint to keep")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument("--since", metavar="CHECKPOINT",
                       help="a checkpoint an earlier doctor printed: prove nothing logged before it changed")
    copy = _command(sub, "backup", "copy the database to a new file while it is in use, then check it "
                                   "(PostgreSQL: a pg_dump archive for pg_restore, with the ledger checkpoint it holds)")
    copy.add_argument("path", help="the new file to write (an existing file is never overwritten)")
    copy.add_argument("--json", action="store_true", help="print JSON")
    move = _command(sub, "migrate", "create or upgrade the schema of --db and say what was applied; or copy a "
                                    "SQLite memory into an empty PostgreSQL database, exactly, and check the copy",
                    epilog=MIGRATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    move.add_argument("--from", dest="source", metavar="SQLITE_FILE", help="the SQLite memory to copy (migrated first)")
    move.add_argument("--to", dest="target", metavar="POSTGRESQL_URL", help="an empty PostgreSQL database to copy into")
    move.add_argument("--json", action="store_true", help="print JSON")


MIGRATE_EXAMPLES = """examples:
  reverie --db postgresql://reverie@db.internal/reverie migrate
  reverie migrate --from ~/.local/share/reverie/memory.db --to postgresql://reverie@db.internal/reverie
"""


if __name__ == "__main__":
    sys.exit(main())
