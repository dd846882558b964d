"""`reverie`: serve the MCP server, or work with a memory from the shell.

Every command opens the database named by --db (or REVERIE_DB, or the user data dir),
does one thing, and prints markdown for people or, with --json, the same models the
MCP tools return. Anticipated failures print one line to stderr and exit 1 — except
under `--claude-code-hook`, where `reverie.hooks` always exits 0 so that a hook can
never break Claude Code.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import anyio
from pydantic import BaseModel

from reverie import __version__, claude_transcript, hooks
from reverie.config import Settings
from reverie.errors import InvalidInput, ReverieError
from reverie.service import Reverie, open_reverie

Command = Callable[[Reverie, argparse.Namespace], Awaitable[None]]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
        anyio.run(_run, args)
    except ReverieError as error:
        print(f"reverie: {error}", file=sys.stderr)
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
    async with open_reverie(Settings.resolve(args.db, args.agent)) as reverie:
        await COMMANDS[args.command](reverie, args)


def emit(args: argparse.Namespace, model: BaseModel | dict, text: str) -> None:
    if getattr(args, "json", False):
        data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


def serve(args: argparse.Namespace) -> int:
    from reverie.mcp_server import build_server  # only `serve` needs the MCP stack loaded

    settings = Settings.resolve(args.db, args.agent, dream_every=args.dream_every, dream_after=args.dream_after,
                                dream_mode=args.dream_mode, dream_idle=args.dream_idle)
    if args.http:
        return serve_http(args, settings)
    if args.host or args.port is not None or args.tokens or args.allow_host:
        raise InvalidInput("--host, --port, --tokens and --allow-host serve over HTTP: add --http.")
    build_server(settings).run()
    return 0


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


def _token_table(listed: list, path: Path) -> str:
    if not listed:
        return f"No tokens in {path}. Add one with: reverie token add --agent ID [--scope S]..."
    rows = [("id", "agent", "scopes", "label", "created (UTC)")] + [
        (t.id, t.agent_id, " ".join(t.scopes), t.label or "-", f"{t.created_at:%Y-%m-%d %H:%M}") for t in listed]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[4]]) for row in rows)


def hook(args: argparse.Namespace) -> int:
    """A Claude Code hook: stdin is the hook input; always 0 (see reverie.hooks)."""
    if args.command == "log":
        _no_file_with(args, "--claude-code-hook")
        return hooks.log_hook(args.db, args.agent, sys.stdin, args.timeout)
    return hooks.recall_hook(args.db, args.agent, sys.stdin, query=args.query, budget=args.budget,
                             timeout=args.timeout)


def drain_spool(args: argparse.Namespace) -> int:
    """Log the sessions the SessionEnd hook could not log yet; 1 if any needs a person."""
    _no_file_with(args, "--drain-spool")
    settings = Settings.resolve(args.db, hooks.DEFAULT_AGENT)  # each item names its own agent
    waiting = len(hooks.spooled(settings.db_path))
    try:
        drained = anyio.run(hooks.drain, settings)
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


def _claude_code_session(text: str) -> claude_transcript.Transcript | None:
    """The Claude Code transcript `text` is, if it is one that names its session."""
    if not claude_transcript.looks_like_claude_code(text):
        return None
    transcript = claude_transcript.read_claude_code(text)
    return transcript if transcript.session_id else None


async def _log_claude_code(
    reverie: Reverie, args: argparse.Namespace, transcript: claude_transcript.Transcript
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
    part = stored.part
    emit(args, {"session_id": part.session_id, "events_added": part.turns, "event_count": part.turns, "ended": True,
                "redactions": part.redactions, "skipped_lines": stored.skipped},
         f"Logged {part.turns} turns to {part.session_id} ({part.redactions} secrets redacted{unread}).")


def _read_input(name: str) -> str:
    try:
        return sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"Cannot read {name}: {error.strerror}.") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} is not UTF-8 text; a transcript or export must be.") from None


async def dream(reverie: Reverie, args: argparse.Namespace) -> None:
    with progress(args, f"Dreaming ({args.engine} engine)…"):
        proposal = await reverie.propose_dream(args.engine, max_sessions=args.max_sessions, scope=args.scope,
                                               instructions=args.instructions)
    if not (args.auto and proposal.status == "pending"):
        emit(args, proposal, proposal.report)
        return
    result = await reverie.apply_unflagged(proposal.id)
    both = {"proposal": proposal.model_dump(mode="json"), "applied": result.model_dump(mode="json")}
    emit(args, both, f"{proposal.report}\n\n{result.message}")


def progress(args: argparse.Namespace, message: str) -> AbstractContextManager[object]:
    """A spinner on stderr while a person watches a terminal; nothing for pipes, files and --json."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console  # loaded only when a person is watching

    return Console(stderr=True).status(message)


async def show(reverie: Reverie, args: argparse.Namespace) -> None:
    if args.proposal_id:
        proposal = await reverie.proposal(args.proposal_id)
        emit(args, proposal, proposal.report)
    else:
        view = await reverie.read_memory(args.query, budget_tokens=args.budget, scope=args.scope)
        emit(args, view, view.markdown)


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
    edits = dict(_edit(e) for e in args.edit or [])
    if args.approve is None:
        if edits:
            raise InvalidInput("--edit changes an approved op: name the ops you approve with --approve OP... "
                               "(or --approve all).")
        result = await reverie.apply_unflagged(args.proposal_id)
    else:
        approve = "all" if args.approve == ["all"] else [i for part in args.approve for i in part.split(",") if i]
        result = await reverie.apply_dream(args.proposal_id, approve, edits or None)
    emit(args, result, result.message)


def _edit(text: str) -> tuple[str, str]:
    op_id, equals, content = text.partition("=")
    if not equals:
        raise InvalidInput(f"--edit takes OP=TEXT, e.g. --edit 'op3=Team database: PostgreSQL 16'; got {text!r}.")
    return op_id.strip(), content


async def revert(reverie: Reverie, args: argparse.Namespace) -> None:
    result = await reverie.revert_dream(args.proposal_id)
    emit(args, result, result.message)


async def export(reverie: Reverie, args: argparse.Namespace) -> None:
    document = json.dumps(await reverie.export(), indent=2, ensure_ascii=False)
    if args.output == "-":
        print(document)
        return
    try:
        Path(args.output).write_text(document + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"Cannot write {args.output}: {error.strerror}.") from None


async def import_(reverie: Reverie, args: argparse.Namespace) -> None:
    try:
        document = json.loads(_read_input(args.file))
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{args.file} is not JSON: {error}.") from None
    counts = await reverie.import_(document)
    print(f"Imported {counts['sessions']} session(s) as history.")
    if counts["proposal_id"]:
        print(f"{counts['memories']} memory entries await review in proposal {counts['proposal_id']}: "
              f"reverie review {counts['proposal_id']} (or reverie apply {counts['proposal_id']} --approve all).")


async def demo(args: argparse.Namespace) -> None:
    from reverie.demo import log_demo_sessions

    if args.db and Path(args.db).exists():
        raise InvalidInput(f"{args.db} exists; the demo logs its sessions into a new database file. "
                           "Omit --db to use a temporary one.")
    with tempfile.TemporaryDirectory(prefix="reverie-demo-") as folder:
        path = Path(args.db) if args.db else Path(folder) / "demo.db"
        async with open_reverie(Settings(db_path=path, agent_id="support-bot")) as reverie:
            ids = await log_demo_sessions(reverie)
            print(f"# Logged {len(ids)} example sessions into {path}\n")
            proposal = await reverie.propose_dream("heuristic")
            print(proposal.report + "\n")
            result = await reverie.apply_unflagged(proposal.id)
            print(f"# Applied automatically (no risk flags)\n{result.message}\n")
            for agent in ("support-bot", "coding-agent"):
                view = await reverie.read_memory(agent_id=agent, budget_tokens=1500)
                print(f"# What {agent} reads at its next session start\n{view.markdown}\n")


def doctor(args: argparse.Namespace) -> int:
    """Check the database file as it is (never created, never migrated); 1 when anything is wrong."""
    from reverie.service import maintenance  # SQLite checks: loaded only for doctor and backup

    path = Settings.resolve(args.db, args.agent).db_path
    report = anyio.run(maintenance.diagnose, path, args.since)
    emit(args, report, report.markdown())
    if not report.healthy:
        print(f"reverie: {path} has {report.problem_count} problem(s); see the report.", file=sys.stderr)
    return 0 if report.healthy else 1


def backup(args: argparse.Namespace) -> int:
    """VACUUM INTO a new file while the database is in use, then check the copy; 1 if the copy fails."""
    from reverie.service import maintenance

    result = anyio.run(maintenance.back_up, Settings.resolve(args.db, args.agent).db_path, args.path)
    emit(args, result, result.markdown())
    if not result.check.healthy:
        print(f"reverie: the backup {result.path} failed its check; run reverie doctor on the source.", file=sys.stderr)
    return 0 if result.check.healthy else 1


CHECKUPS: dict[str, Callable[[argparse.Namespace], int]] = {"doctor": doctor, "backup": backup}

COMMANDS: dict[str, Command] = {
    "log": log, "dream": dream, "show": show, "recall": recall, "review": review, "apply": apply, "revert": revert,
    "export": export, "import": import_,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="reverie", description="A memory for AI agents that dreams.")
    top.add_argument("--version", action="version", version=f"reverie {__version__}")
    top.add_argument("--db", help="database file (default: $REVERIE_DB, else the user data dir)")
    top.add_argument("--agent", help="agent id (default: $REVERIE_AGENT_ID, else 'default')")
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
    one.add_argument("proposal_id")
    one.add_argument("--json", action="store_true", help="print JSON")
    out = _command(sub, "export", "write memory and sessions as one JSON document")
    out.add_argument("output", nargs="?", default="-", help="file to write (default: stdout)")
    into = _command(sub, "import", "add an export's sessions as history; its new entries wait in a proposal to review")
    into.add_argument("file", help="an export file, or - for stdin")
    _command(sub, "demo", "log example sessions into a temporary database, dream, apply, show the result")
    _checkup_parsers(sub)
    return top


def _serve_parser(sub) -> None:
    serve_cmd = _command(sub, "serve", "run the MCP server on stdio (what Claude Desktop and Claude Code start), "
                                      "or over HTTP with --http")
    # Defaults stay None so the REVERIE_DREAM_* environment variables apply when a flag is absent.
    serve_cmd.add_argument("--dream-every", metavar="DURATION", help="also dream this long after the last dream, e.g. 6h")
    serve_cmd.add_argument("--dream-after", metavar="N", help="dream once N sessions await one (default 5)")
    serve_cmd.add_argument("--dream-mode", choices=["off", "review", "auto"],
                           help="background dreams: off (default unless a flag above is given), review, auto")
    serve_cmd.add_argument("--dream-idle", metavar="DURATION", help="wait for this much quiet first (default 60s)")
    serve_cmd.add_argument("--http", action="store_true", help="serve streamable HTTP at /mcp instead of stdio")
    serve_cmd.add_argument("--host", help="with --http: address to bind (default 127.0.0.1; any other needs tokens)")
    serve_cmd.add_argument("--port", type=int, help="with --http: port (default 8765; 0 picks a free one)")
    serve_cmd.add_argument("--tokens", metavar="PATH", help="with --http: tokens file "
                                                            "(default: $REVERIE_TOKENS, else tokens.json beside the database)")
    serve_cmd.add_argument("--allow-host", action="append", metavar="NAME",
                           help="with --http: another name clients reach this server by (Host header); repeatable")


def _token_parser(sub) -> None:
    token_cmd = _command(sub, "token", "add, list or revoke the bearer tokens HTTP clients present")
    token_cmd.add_argument("--tokens", metavar="PATH",
                           help="tokens file (default: $REVERIE_TOKENS, else tokens.json beside the database)")
    actions = token_cmd.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="make a token for an agent and print it (only this once)")
    add.add_argument("--agent", dest="token_agent", required=True, metavar="ID", help="the agent the token speaks for")
    add.add_argument("--scope", action="append", metavar="SCOPE",
                     help="a grant, repeatable: read:shared, write:shared, read:user, write:user, project:<key>, "
                          "read:project:<key>, project:* (default: read:shared read:user)")
    add.add_argument("--label", help="a name to list and revoke it by")
    listed = actions.add_parser("list", help="list tokens: id, agent, scopes, label (never the token)")
    listed.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a token by its id or label")
    revoke.add_argument("key", metavar="ID-OR-LABEL")


def _command(sub, name: str, purpose: str) -> argparse.ArgumentParser:
    """A subcommand whose purpose shows both in `reverie --help` and in its own --help."""
    return sub.add_parser(name, help=purpose, description=purpose)


def _log_parser(sub) -> None:
    log_cmd = _command(sub, "log", "log a transcript: JSON turns, plain text, or a Claude Code JSONL file "
                                   "(under its own session id: logging it again stores only what is new)")
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
    log_cmd.add_argument("--outcome", choices=["success", "failure", "partial", "unknown"])
    log_cmd.add_argument("--open", action="store_true", help="keep the session open for more turns")
    log_cmd.add_argument("--json", action="store_true", help="print JSON")


def _dream_parser(sub) -> None:
    dream_cmd = _command(sub, "dream", "propose a consolidation of memory and recent sessions")
    dream_cmd.add_argument("--engine", default="auto", help="auto (default), heuristic, anthropic or agent")
    dream_cmd.add_argument("--max-sessions", type=int, default=100)
    dream_cmd.add_argument("--scope", help="only this scope, e.g. agent:coding-agent")
    dream_cmd.add_argument("--instructions", help="what to focus on")
    dream_cmd.add_argument("--auto", action="store_true", help="apply changes without risk flags; the rest wait")
    dream_cmd.add_argument("--json", action="store_true", help="print JSON")


def _show_parser(sub) -> None:
    show_cmd = _command(sub, "show", "print memory, or a proposal's report")
    show_cmd.add_argument("proposal_id", nargs="?", help="a proposal to show instead of memory")
    show_cmd.add_argument("--query", help="rank memory for this topic")
    show_cmd.add_argument("--scope", help="only this scope")
    show_cmd.add_argument("--budget", type=int, default=4000, help="token budget (default 4000)")
    show_cmd.add_argument("--json", action="store_true", help="print JSON")


def _recall_parser(sub) -> None:
    recall_cmd = _command(sub, "recall", "print the memory an agent loads when a session starts here")
    recall_cmd.add_argument("--claude-code-hook", action="store_true",
                            help="run as Claude Code's SessionStart hook (hook input on stdin; always exits 0)")
    recall_cmd.add_argument("--query", help="only entries matching this (default: everything, best first)")
    recall_cmd.add_argument("--budget", type=int, default=hooks.RECALL_BUDGET, help="token budget (default %(default)s)")
    recall_cmd.add_argument("--timeout", type=float, default=hooks.RECALL_TIMEOUT, metavar="SECONDS",
                            help="with --claude-code-hook: how long to wait for a busy database (default %(default)g)")


def _apply_parser(sub) -> None:
    apply_cmd = _command(sub, "apply", "apply a proposal: all of it, or the ops you approve")
    apply_cmd.add_argument("proposal_id")
    apply_cmd.add_argument("--approve", nargs="+", metavar="OP",
                           help="op ids to approve, or 'all' (default: the changes without risk flags; "
                                "flagged ones wait in a new proposal)")
    apply_cmd.add_argument("--edit", action="append", metavar="OP=TEXT", help="new text for an approved op")
    apply_cmd.add_argument("--json", action="store_true", help="print JSON")


def _checkup_parsers(sub) -> None:
    check = _command(sub, "doctor", "check the database: SQLite integrity, guards, search index, revision log, "
                                    "transcript hashes, ledger; prints a checkpoint to keep")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument("--since", metavar="CHECKPOINT",
                       help="a checkpoint an earlier doctor printed: prove nothing logged before it changed")
    copy = _command(sub, "backup", "copy the database to a new file while it is in use, then check the copy")
    copy.add_argument("path", help="the new file to write (an existing file is never overwritten)")
    copy.add_argument("--json", action="store_true", help="print JSON")


if __name__ == "__main__":
    sys.exit(main())
