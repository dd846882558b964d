"""Bad input: property-based fuzzing of every tool's arguments, and the documented size limits.

Both go through a real in-process MCP client, in both protocol modes.

Fuzzing
-------

Hypothesis draws whole argument sets. Each field is left out, given a valid value, given
an *odd* value (legal but unusual: an unknown proposal id, a plain-text transcript, odd
unicode), or given a *bad* one (wrong type, null, out of range, unknown op id or role,
a string just past its documented limit, a malformed nested object). Sometimes an unknown
extra field rides along. For every call, in both protocol modes:

- the server answers and keeps serving: a `read_memory` right after works;
- nothing internal leaks: no traceback, no source path, no exception class name, and no
  bare "Error executing tool …" without a message;
- a call with a bad field is refused, as a tool error (`is_error`) whose text names one of
  the fields that were wrong; a call whose fields are all valid succeeds; an odd field may
  be refused, but then the message names a field too.

Strings are drawn from what a JSON transport can carry (no lone surrogates: stdio and
HTTP reject those while parsing), text that is itself JSON ("null", "[]") included. Inputs
the service mishandled were pinned by tests at the end (calendar-edge timestamps, lone
surrogates, JSON-looking text, ids with a trailing newline, an empty agent_id); those
tests now check the fixes.

The examples run are counted in `EXAMPLES_RUN` and each test asserts it ran at least
`FUZZ_EXAMPLES` of them (`REVERIE_FUZZ_EXAMPLES` raises the count for a longer run,
`REVERIE_FUZZ_EXPLORE=1` draws fresh examples instead of CI's fixed ones).

Size limits
-----------
Each limit in `reverie.config` (and the 200 operations per proposal) is accepted exactly at
the limit and refused one past it, whole, with a message that names the limit; the README's
Limits section states each one.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError
from reverie.config import (
    MAX_BUDGET_TOKENS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_NOTE_CHARS,
    MAX_NOTES,
    MAX_OPERATION_CHARS,
    MAX_SESSIONS,
    MAX_TITLE_CHARS,
    MAX_TRANSCRIPT_CHARS,
    MAX_TURNS,
    Settings,
)
from reverie.mcp_server import build_server
from reverie.models import CATEGORIES
from reverie.service.evidence import MAX_OPERATIONS

# slow: property-based: hypothesis searches many inputs per tool.
pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("REVERIE_FUZZ_EXAMPLES", "100"))
MODES = pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["legacy-2025-11-25", "modern-2026-07-28"])
# CI draws the same examples every run; REVERIE_FUZZ_EXPLORE=1 draws new ones (pytest's
# --hypothesis-seed then replays a run).
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("REVERIE_FUZZ_EXPLORE"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
CALL_TIMEOUT = 30

EXAMPLES_RUN: Counter[str] = Counter()  # "<tool> <mode>" → examples that ran to the end
OUTCOMES: Counter[str] = Counter()      # "accepted" / "refused", over every example
LIMITS_CHECKED: Counter[str] = Counter()  # limit → protocol modes it was seen enforced in

# What a message must mention to name each field (lowercase, any one will do).
NAMES = {
    "read_memory": {
        "query": ["query"], "scope": ["scope"], "categories": ["categories"],
        "budget_tokens": ["budget_tokens"], "include_notes": ["include_notes"],
    },
    "log_session": {
        "transcript": ["transcript", "turn", "line "], "session_id": ["session_id", "session "],
        "agent_id": ["agent_id", "agent "], "title": ["title"], "notes": ["notes"], "outcome": ["outcome"],
        "outcome_summary": ["outcome_summary"], "ended": ["ended"],
    },
    "propose_dream": {
        "engine": ["engine"], "max_sessions": ["max_sessions"], "scope": ["scope"],
        "instructions": ["instructions"], "operations": ["operation"], "brief_id": ["brief", "proposal"],
    },
    "apply_dream": {"proposal_id": ["proposal"], "approve": ["approve"], "edits": ["edit"]},
    "revert_dream": {"proposal_id": ["proposal"]},
}
LEAKS = ("Traceback", 'File "', "site-packages", "UnicodeEncodeError", "OverflowError", "sqlite3.",
         "IntegrityError", "OperationalError", "KeyError", "AttributeError", "TypeError(")


# --- values ---------------------------------------------------------------------------------

OMIT = object()  # the field is left out of the call


# Strings that have broken servers before: control characters, direction overrides,
# zero-width and tag characters, combining marks, SQL/FTS/format syntax, paths.
NASTY = [
    "", " ", "\x00", "\x00\x01\x02\x7f", "\x1b[31mred\x1b[0m", "\r\n\r\n", "\t", "\u200b", "\u202egnp.exe",
    "\ufeffBOM", "e\u0301" * 40, "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0010ffff",
    "".join(chr(0xE0000 + ord(c)) for c in "hidden"), "'; DROP TABLE memories; --", '"', "\\", "%s%n%x",
    "{0}{name}", "<script>alert(1)</script>", "../../etc/passwd", "NEAR(a b) AND OR NOT * ^", "\"unterminated",
    "a" * 129, "ﷺ" * 50, "\u0000" * 10, "None", "[draft]", "{name}", "null", "[]", "{}", '["a"]',
    '{"status": 503}', "true",
]
unicode_text = st.text(st.characters(codec="utf-8"), max_size=60)
odd_text = st.one_of(unicode_text, st.sampled_from(NASTY), st.tuples(unicode_text, st.sampled_from(NASTY)).map("".join))
prose = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=60)
words = prose.filter(lambda s: s.strip() != "")
huge_ints = st.one_of(st.integers(-(10**30), -1), st.integers(10**6, 10**30), st.sampled_from([-(2**63), 2**63, 2**64]))


def junk() -> st.SearchStrategy:
    """Values of the wrong type (or range) for a number: huge, fractional, lists, objects, null."""
    fractions = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    return st.one_of(huge_ints, fractions, st.lists(st.integers(), min_size=1, max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.none())


def string_junk() -> st.SearchStrategy:
    """Not a string at all (pydantic refuses numbers, lists and objects for a str field)."""
    short = st.text(max_size=3)
    return st.one_of(st.integers(), st.lists(short, max_size=2), st.dictionaries(short, short, max_size=2))


def near(limit: int, char: str = "é") -> tuple[st.SearchStrategy, st.SearchStrategy]:
    """Strings of exactly the limit and a little under (valid), and a little over (bad)."""
    return (st.integers(max(limit - 3, 1), limit).map(lambda n: char * n),
            st.integers(limit + 1, limit + 3).map(lambda n: char * n))


IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # the documented form, matched whole
identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:@-]{0,40}\Z")
bad_identifiers = st.one_of(
    st.sampled_from(["", " ", "has space", "-lead", ".lead", "a/b", "ünï", "a" * 129, "x\ny", "\x00", "abc\n"]),
    unicode_text, identifiers.map(lambda s: s + "\n"),
).filter(lambda s: not IDENTIFIER.fullmatch(s))
valid_scopes = st.one_of(st.sampled_from(["shared", "user", "agent:tester"]), identifiers.map(lambda s: f"agent:{s}"),
                         st.from_regex(r"\Aproject:[A-Za-z0-9._:@/-]{1,40}\Z"))
bad_scopes = st.one_of(st.sampled_from(["", "everyone", "agent:", "agent: x", "project:", "SHARED", "shared ", "user\n"]),
                       odd_text.filter(lambda s: s not in ("shared", "user") and not s.startswith(("agent:", "project:"))))


@dataclass(frozen=True)
class Arg:
    value: Any
    kind: str  # "good", "odd" or "bad"


def argument(good: st.SearchStrategy | None = None, odd: st.SearchStrategy | None = None,
          bad: st.SearchStrategy | None = None, *, omitted: str = "good") -> st.SearchStrategy:
    """One argument: left out (tagged `omitted`), or a good, odd or bad value.

    The kind is drawn first, so a kind with many alternatives is not drawn more often, and
    a valid value three times as often as the others: whole calls are then often all valid,
    even log_session's eight arguments (about one call in five; with twice as often it was
    one in eight, too near the tenth `run_counted` asks for).
    """
    strategies = {"omit": st.just(OMIT), "good": good, "odd": odd, "bad": bad}
    kinds = [k for k in ("omit", "good", "good", "good", "odd", "bad") if strategies[k] is not None]
    return st.sampled_from(kinds).flatmap(
        lambda k: strategies[k].map(lambda v: Arg(v, omitted if k == "omit" else k)))


extra_field = st.one_of(st.none(), st.tuples(st.sampled_from(["budget_token", "sessionId", "approve_all", "x", "__proto__"]),
                                             st.one_of(st.integers(), st.text(max_size=5), st.none())))


# --- a server on a background event loop, so hypothesis can drive it synchronously ----------------


@dataclass
class Server:
    portal: BlockingPortal
    client: Client
    mode: str
    outcomes: Counter[str] = field(default_factory=Counter)

    def call(self, tool: str, arguments: dict) -> Any:
        async def bounded():
            with anyio.fail_after(CALL_TIMEOUT):
                return await self.client.call_tool(tool, arguments)

        return self.portal.call(bounded)

    def ok(self, tool: str, **arguments) -> dict:
        result = self.call(tool, arguments)
        assert not result.is_error, result.content[0].text
        return result.structured_content

    def check(self, tool: str, args: dict[str, Arg], extra: tuple | None = None) -> Any:
        """Call `tool` with `args` and assert every property; returns the result."""
        arguments = {name: a.value for name, a in args.items() if a.value is not OMIT}
        if extra is not None:
            arguments[extra[0]] = extra[1]
        try:
            result = self.call(tool, arguments)
        except MCPError as error:
            pytest.fail(f"{tool} answered with a protocol error, not a tool error the model can read: {error}")
        assert_answer_is_sound(tool, args, result)
        after = self.call("read_memory", {})
        assert not after.is_error, f"the server stopped serving after {tool}: {after.content[0].text}"
        EXAMPLES_RUN[f"{tool} {self.mode}"] += 1
        OUTCOMES["refused" if result.is_error else "accepted"] += 1
        self.outcomes["refused" if result.is_error else "accepted"] += 1
        return result


@contextmanager
def serving(tmp_path, mode: str) -> Iterator[Server]:
    settings_ = Settings(db_path=tmp_path / "memory.db", agent_id="tester")
    with start_blocking_portal(backend="asyncio") as portal:
        with portal.wrap_async_context_manager(Client(build_server(settings_), mode=mode)) as client:
            yield Server(portal, client, mode)


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_answer_is_sound(tool: str, args: dict[str, Arg], result) -> None:
    text = text_of(result)
    shown = text + json.dumps(result.structured_content or {}, ensure_ascii=False)
    assert not [leak for leak in LEAKS if leak in shown], f"{tool} leaked internals: {text[:500]}"
    assert text.strip() not in (f"Error executing tool {tool}", f"Error executing tool {tool}:"), \
        f"{tool} failed without saying why (an unexpected exception in the service)"
    bad = [name for name, a in args.items() if a.kind == "bad"]
    odd = [name for name, a in args.items() if a.kind == "odd"]
    if bad:
        assert result.is_error, f"{tool} accepted bad {bad}: {({n: repr(args[n].value)[:80] for n in bad})}"
    if result.is_error:
        assert bad or odd, f"{tool} refused valid arguments: {text[:500]}"
        named = bad + odd
        keywords = [k for name in named for k in NAMES[tool][name]]
        assert any(k in text.lower() for k in keywords), f"{tool}: the error does not name any of {named}: {text[:500]}"


def run_counted(server: Server, tool: str, body) -> None:
    """Run the hypothesis test `body`; check it ran its examples and drew both outcomes.

    A strategy that only ever produced refusals (or only successes) would test half the
    contract, so each test must see at least a tenth of its examples of each kind.
    """
    before = EXAMPLES_RUN[f"{tool} {server.mode}"]
    server.outcomes.clear()
    body()
    assert EXAMPLES_RUN[f"{tool} {server.mode}"] - before >= FUZZ_EXAMPLES
    ran = sum(server.outcomes.values())
    assert min(server.outcomes["accepted"], server.outcomes["refused"]) >= ran // 10, dict(server.outcomes)


def record_figures(section: str, figures: dict) -> None:
    """Add `figures` under `section` to the JSON file `REVERIE_FIGURES` names, if any.

    `python -m bench.reliability.corpora` sets it to collect what these tests observed.
    """
    if not (target := os.environ.get("REVERIE_FIGURES")):
        return
    path = Path(target)
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    path.write_text(json.dumps({**recorded, section: figures}, indent=2), encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def report_examples_run():
    yield
    total = sum(EXAMPLES_RUN.values())
    detail = ", ".join(f"{key}: {n}" for key, n in sorted(EXAMPLES_RUN.items()))
    record_figures("fuzz", {"examples_run": total, "accepted": OUTCOMES["accepted"], "refused": OUTCOMES["refused"],
                            "by_tool_and_mode": dict(EXAMPLES_RUN), "examples_per_test": FUZZ_EXAMPLES,
                            "limits_checked": dict(LIMITS_CHECKED)})
    print(f"\nfuzz: {total} examples run through the MCP client, {OUTCOMES['accepted']} accepted and "
          f"{OUTCOMES['refused']} refused with a tool error naming the field ({detail})")


# --- read_memory ---------------------------------------------------------------------------------

READ_MEMORY = st.fixed_dictionaries({
    "query": argument(st.one_of(st.none(), odd_text, st.integers(0, 5000).map(lambda n: "q " * n)), bad=string_junk()),
    "scope": argument(st.one_of(st.none(), valid_scopes), bad=st.one_of(bad_scopes, string_junk())),
    "categories": argument(st.one_of(st.none(), st.lists(st.sampled_from(CATEGORIES), max_size=5)),
                        bad=st.one_of(st.lists(st.sampled_from(["facts", "rule", "", "FACT", "secret"]), min_size=1, max_size=3),
                                      st.sampled_from(["fact", 1, {"fact": True}]))),
    "budget_tokens": argument(st.one_of(st.integers(100, MAX_BUDGET_TOKENS), st.sampled_from([100, MAX_BUDGET_TOKENS])),
                           bad=st.one_of(st.integers(-(10**6), 99), st.integers(MAX_BUDGET_TOKENS + 1, 10**30), junk(),
                                         st.sampled_from(["lots", "", "1e3x"]))),
    "include_notes": argument(st.booleans(), bad=st.one_of(st.sampled_from(["maybe", "", "2", None]), st.integers(2, 99),
                                                        st.lists(st.booleans(), min_size=1))),
})


@MODES
def test_read_memory_survives_any_arguments_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        server.ok("log_session", transcript=[{"role": "user", "content": "The staging host is stg-7."}],
                  notes=["Staging host: stg-7"])

        @FUZZ
        @given(args=READ_MEMORY, extra=extra_field)
        def fuzz(args, extra):
            server.check("read_memory", args, extra)

        run_counted(server, "read_memory", fuzz)


# --- log_session ---------------------------------------------------------------------------------

ROLES = ["user", "assistant", "tool", "system"]
timestamps = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-11-01T09:00:00Z", "2026-11-01T09:00:00+14:00", "2026-11-01T09:00:00-12:00", "2026-11-01"]),
)
good_turn = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES), "content": odd_text},
    optional={"tool_name": st.one_of(st.none(), identifiers), "is_error": st.booleans(), "timestamp": timestamps},
)
bad_turn = st.one_of(
    good_turn.map(lambda t: {**t, "role": "robot"}),
    st.sampled_from(["developer", "USER", "", "function", "model"]).map(lambda r: {"role": r, "content": "hi"}),
    st.just({"role": "user"}),
    st.just({"content": "no role"}),
    good_turn.map(lambda t: {**t, "content": None}),
    good_turn.map(lambda t: {**t, "content": 42}),
    good_turn.map(lambda t: {**t, "is_error": "maybe"}),
    good_turn.map(lambda t: {**t, "timestamp": "yesterday"}),
    good_turn.map(lambda t: {**t, "timestamp": "2026-13-45T99:00:00"}),
    good_turn.map(lambda t: {**t, "unexpected": 1}),
    st.sampled_from(["just a string", 7, None, []]),
)
speakers = st.sampled_from(["User", "Assistant", "Tool(fetch)", "System"])
plain_text = st.lists(st.tuples(speakers, words.map(lambda s: " ".join(s.split()))), min_size=1, max_size=6).map(
    lambda lines: "\n".join(f"{who}: {what}" for who, what in lines))
TRANSCRIPT = argument(
    good=st.one_of(st.lists(good_turn, min_size=1, max_size=8), plain_text),
    odd=st.one_of(odd_text, st.just([])),  # free text is one user turn; [] is fine when notes come with it
    bad=st.one_of(
        st.lists(bad_turn, min_size=1, max_size=2).flatmap(lambda bad: st.lists(good_turn, max_size=3).map(lambda ok: ok + bad)),
        st.sampled_from([None, 7, 3.5, {"turns": "x"}, "   ", "\n\t"]),
        st.just([{"role": "user", "content": "x"}] * (MAX_TURNS + 1)),
        st.just([{"role": "user", "content": "x" * (MAX_TRANSCRIPT_CHARS // 2)},
                 {"role": "assistant", "content": "y" * (MAX_TRANSCRIPT_CHARS // 2 + 1)}]),
    ),
    omitted="bad",
)
FRESH_SESSION = "<a new session id>"
note_ok, note_over = near(MAX_NOTE_CHARS)
title_ok, title_over = near(MAX_TITLE_CHARS)
LOG_SESSION = st.fixed_dictionaries({
    "transcript": TRANSCRIPT,
    "session_id": argument(st.one_of(st.none(), st.just(FRESH_SESSION)), bad=st.one_of(bad_identifiers, string_junk())),
    "agent_id": argument(st.one_of(st.none(), identifiers), bad=st.one_of(bad_identifiers.filter(bool), string_junk())),
    "title": argument(st.one_of(st.none(), odd_text, title_ok), bad=st.one_of(title_over, string_junk())),
    "notes": argument(
        st.one_of(st.none(), st.lists(st.one_of(odd_text, note_ok), max_size=4), st.just(["n"] * MAX_NOTES)),
        bad=st.one_of(note_over.map(lambda n: ["fine", n]), st.just(["n"] * (MAX_NOTES + 1)), st.just([None]), st.just([1, 2]),
                      st.sampled_from(["a note, not a list", 5, {"note": "x"}]))),
    "outcome": argument(st.one_of(st.none(), st.sampled_from(["success", "failure", "partial", "unknown"])),
                     bad=st.one_of(st.sampled_from(["ok", "SUCCESS", "", "failed", "win"]), st.integers(),
                                   st.lists(st.just("success"), min_size=1))),
    "outcome_summary": argument(st.one_of(st.none(), odd_text), bad=string_junk()),
    "ended": argument(st.booleans(), bad=st.one_of(st.sampled_from(["maybe", "", "2", None]), st.integers(2, 99))),
})


def empty_without_notes(args: dict[str, Arg]) -> bool:
    """[] as the transcript is valid only together with at least one non-blank note."""
    notes = args["notes"].value
    return args["transcript"].value == [] and not (isinstance(notes, list) and notes)


@MODES
def test_log_session_survives_any_arguments_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:

        @FUZZ
        @given(args=LOG_SESSION, extra=extra_field)
        def fuzz(args, extra):
            if empty_without_notes(args):
                args = {**args, "transcript": Arg([], "bad")}
            if args["session_id"].value == FRESH_SESSION:
                args = {**args, "session_id": Arg(f"fz-{uuid.uuid4().hex}", "good")}
            server.check("log_session", args, extra)

        run_counted(server, "log_session", fuzz)


# --- propose_dream: dreaming -------------------------------------------------------------------

instructions_ok, instructions_over = near(MAX_INSTRUCTIONS_CHARS)
PROPOSE = st.fixed_dictionaries({
    "engine": argument(st.sampled_from(["heuristic", "auto", "agent"]),
                    bad=st.one_of(st.sampled_from(["oracle", "", "Heuristic", "gpt", "heuristic "]), string_junk(), st.none())),
    "max_sessions": argument(st.integers(1, MAX_SESSIONS),
                          bad=st.one_of(st.integers(-(10**9), 0), st.integers(MAX_SESSIONS + 1, 10**30), junk(), st.just("ten"))),
    "scope": argument(st.one_of(st.none(), valid_scopes), bad=st.one_of(bad_scopes, string_junk())),
    "instructions": argument(st.one_of(st.none(), odd_text, instructions_ok), bad=st.one_of(instructions_over, string_junk())),
})


@MODES
def test_propose_dream_survives_any_dream_arguments_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        for n in range(3):
            server.ok("log_session", transcript=[{"role": "user", "content": f"Deploy {n} went fine."}],
                      notes=[f"Release train {n} ships on Tuesdays"])

        @FUZZ
        @given(args=PROPOSE, extra=extra_field)
        def fuzz(args, extra):
            server.check("propose_dream", args, extra)

        run_counted(server, "propose_dream", fuzz)


# --- propose_dream: submitting operations to a brief ----------------------------------------------


@dataclass
class Seeded:
    session_ids: list[str]
    memory_ids: list[str]


FRESH_BRIEF = "<fresh brief>"
APPLIED_PROPOSAL = "<an applied proposal, not a brief>"


def operation(seeded: Seeded) -> st.SearchStrategy:
    """A valid operation citing what the brief shows."""
    evidence = st.fixed_dictionaries(
        {"session_id": st.sampled_from(seeded.session_ids)},
        optional={"quote": st.just("")},
    ).flatmap(lambda e: st.sampled_from([{**e, "note_index": 0}, {**e, "event_index": 0}, {**e, "event_index": 1}]))
    content = st.one_of(words, near(MAX_OPERATION_CHARS, "o")[0])
    add = st.fixed_dictionaries({
        "kind": st.just("add"), "content": content, "rationale": odd_text,
        "evidence": st.lists(evidence, min_size=1, max_size=3)},
        optional={"category": st.sampled_from(CATEGORIES), "scope": valid_scopes, "confidence": st.floats(0, 1)})
    prune = st.fixed_dictionaries({"kind": st.just("prune"), "targets": st.just(seeded.memory_ids[:1]), "rationale": odd_text})
    return st.one_of(add, prune)


def bad_operation(seeded: Seeded) -> st.SearchStrategy:
    valid = operation(seeded).filter(lambda op: op["kind"] == "add")
    return st.one_of(
        valid.flatmap(lambda op: st.sampled_from(["zap", "delete", "", "ADD"]).map(lambda kind: {**op, "kind": kind})),
        valid.map(lambda op: {k: v for k, v in op.items() if k != "rationale"}),
        valid.map(lambda op: {**op, "confidence": 1.5}),
        valid.map(lambda op: {**op, "confidence": -0.1}),
        valid.map(lambda op: {**op, "category": "rumour"}),
        valid.map(lambda op: {**op, "scope": "everyone"}),
        valid.map(lambda op: {**op, "content": "o" * (MAX_OPERATION_CHARS + 1)}),
        valid.map(lambda op: {**op, "content": "   "}),
        valid.map(lambda op: {**op, "evidence": []}),
        valid.map(lambda op: {**op, "evidence": [{"session_id": "ses_nowhere", "event_index": 0}]}),
        valid.map(lambda op: {**op, "evidence": [{**op["evidence"][0], "event_index": 10**12, "note_index": None}]}),
        valid.map(lambda op: {**op, "evidence": [{**op["evidence"][0], "event_index": -1, "note_index": None}]}),
        valid.map(lambda op: {**op, "evidence": [{**op["evidence"][0], "quote": "words nobody said anywhere"}]}),
        valid.map(lambda op: {**op, "evidence": [{**op["evidence"][0], "quote": "q" * 401}]}),
        valid.map(lambda op: {**op, "targets": ["mem_nowhere"]}),
        valid.map(lambda op: {**op, "kind": "merge", "targets": []}),
        valid.map(lambda op: {**op, "extra": True}),
        st.just({"kind": "prune", "rationale": "no targets"}),
        st.sampled_from([None, "add", 3, []]),
    )


def submission(seeded: Seeded) -> st.SearchStrategy:
    ops_ok = st.lists(operation(seeded), min_size=1, max_size=4)
    ops_bad = st.one_of(
        st.just([]),
        st.tuples(ops_ok, st.lists(bad_operation(seeded), min_size=1, max_size=2)).map(lambda p: p[0] + p[1]),
        st.sampled_from(["not a list", 5, {"kind": "add"}]),
        operation(seeded).filter(lambda op: op["kind"] == "add").map(lambda op: [op] * 201),
    )
    brief_bad = st.one_of(st.sampled_from(["drm_missing", "", APPLIED_PROPOSAL]), odd_text, string_junk())
    good_ops, bad_ops = ops_ok.map(lambda v: Arg(v, "good")), ops_bad.map(lambda v: Arg(v, "bad"))
    fresh, missing = st.just(Arg(FRESH_BRIEF, "good")), st.just(Arg(OMIT, "bad"))
    bad_brief = brief_bad.map(lambda v: Arg(v, "bad"))
    return st.one_of(
        st.fixed_dictionaries({"operations": good_ops, "brief_id": fresh}),
        st.fixed_dictionaries({"operations": bad_ops, "brief_id": fresh}),
        st.fixed_dictionaries({"operations": good_ops, "brief_id": bad_brief}),
        st.fixed_dictionaries({"operations": st.one_of(good_ops, bad_ops), "brief_id": missing}),
        st.fixed_dictionaries({"operations": missing, "brief_id": st.one_of(fresh, bad_brief)}),
    )


def seed_brief_sessions(server: Server) -> tuple[Seeded, str]:
    """Two sessions a brief will show, and an applied proposal whose entries ops may prune."""
    def log(n: int, question: str, answer: str, note: str) -> str:
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return server.ok("log_session", transcript=turns, notes=[note])["session_id"]

    for n in range(2):
        log(n, f"Which port does service {n} use?", f"Service {n} listens on port 80{n}.", f"Service {n} port: 80{n}")
    proposal = server.ok("propose_dream", engine="heuristic")
    applied = server.ok("apply_dream", proposal_id=proposal["id"], approve="all")
    again = [log(n, f"Service {n} still on 80{n}?", "Yes.", f"Service {n} owner: team {n}") for n in range(2)]
    return Seeded(session_ids=again, memory_ids=applied["memories_added"]), proposal["id"]


@MODES
def test_propose_dream_survives_any_submitted_operations_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        seeded, applied_id = seed_brief_sessions(server)

        @FUZZ
        @given(args=submission(seeded), extra=extra_field)
        def fuzz(args, extra):
            brief = args["brief_id"]
            if brief.value == FRESH_BRIEF:
                args = {**args, "brief_id": Arg(server.ok("propose_dream", engine="agent")["id"], brief.kind)}
            elif brief.value == APPLIED_PROPOSAL:
                args = {**args, "brief_id": Arg(applied_id, brief.kind)}
            server.check("propose_dream", args, extra)

        run_counted(server, "propose_dream", fuzz)


# --- apply_dream -------------------------------------------------------------------------------

FRESH_PROPOSAL = "<fresh pending proposal>"
OPS_PER_PROPOSAL = 3


@st.composite
def apply_arguments(draw) -> dict[str, Arg]:
    unknown = st.one_of(st.sampled_from(["drm_missing", "", "drm_" + "0" * 10]), odd_text)
    proposal = draw(argument(st.just(FRESH_PROPOSAL), odd=unknown,
                          bad=st.one_of(string_junk(), st.none()), omitted="bad"))
    ids = [f"op{n}" for n in range(1, OPS_PER_PROPOSAL + 1)]
    approve = draw(argument(omitted="odd", good=
st.one_of(st.just("all"), st.lists(st.sampled_from(ids), max_size=OPS_PER_PROPOSAL)),
        odd=st.none(),  # no decision: refused, asking for the user's decisions
        bad=st.one_of(st.sampled_from(["ALL", "some", "", "op1"]),
                      st.lists(st.sampled_from(["op0", "op99", "", "OP1", "mem_1"]), min_size=1, max_size=2),
                      st.lists(st.integers(), min_size=1, max_size=2),
                      st.dictionaries(st.sampled_from(ids), st.booleans(), min_size=1))))
    approved = [i for i in approve.value if i in ids] if isinstance(approve.value, list) else ids
    edit_text = st.one_of(words.map(lambda s: s[:60]), near(MAX_OPERATION_CHARS - 12, "e")[0])
    good_edits = st.none()
    if approved:
        good_edits = st.one_of(good_edits, st.dictionaries(st.sampled_from(approved), edit_text, max_size=2))
    bad_edits = st.one_of(
        st.dictionaries(st.sampled_from(["op99", "op0", "", "x"]), st.just("text"), min_size=1, max_size=1),
        st.sampled_from(["text", 5, ["op1"]]),
        *([st.sampled_from(approved).map(lambda op: {op: ""}), st.sampled_from(approved).map(lambda op: {op: "   "}),
           st.sampled_from(approved).map(lambda op: {op: "e" * (MAX_OPERATION_CHARS + 1)}),
           st.sampled_from(approved).map(lambda op: {op: 5})] if approved else []),
    )
    edits = draw(argument(good_edits, bad=bad_edits))
    return {"proposal_id": proposal, "approve": approve, "edits": edits}


def fresh_proposal(server: Server) -> str:
    """A pending proposal of exactly three adds, from three notes no entry resembles."""
    notes = [f"Codename {uuid.uuid4().hex[:8]} stands for {uuid.uuid4().hex[:8]}" for _ in range(OPS_PER_PROPOSAL)]
    server.ok("log_session", transcript=[{"role": "user", "content": "Remember these codenames."}], notes=notes)
    proposal = server.ok("propose_dream", engine="heuristic", max_sessions=1)
    assert [op["op_id"] for op in proposal["operations"]] == [f"op{n}" for n in range(1, OPS_PER_PROPOSAL + 1)]
    return proposal["id"]


def unique_edits(edits: Arg) -> Arg:
    """Edited texts get a unique tail, so no edit re-adds an entry an earlier example made."""
    if edits.kind != "good" or not isinstance(edits.value, dict):
        return edits
    return Arg({op: f"{text} #{uuid.uuid4().hex[:8]}" for op, text in edits.value.items()}, "good")


@MODES
def test_apply_dream_survives_any_decisions_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:

        @FUZZ
        @given(args=apply_arguments(), extra=extra_field)
        def fuzz(args, extra):
            if args["proposal_id"].value == FRESH_PROPOSAL:
                args = {**args, "proposal_id": Arg(fresh_proposal(server), "good")}
            args = {**args, "edits": unique_edits(args["edits"])}
            server.check("apply_dream", args, extra)

        run_counted(server, "apply_dream", fuzz)


# --- revert_dream ------------------------------------------------------------------------------

FRESH_APPLIED = "<fresh applied proposal>"
PENDING = "<a pending proposal>"
REVERTED = "<an already reverted proposal>"


@MODES
def test_revert_dream_survives_any_proposal_id_and_names_what_is_wrong(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        reverted = fresh_proposal(server)
        server.ok("apply_dream", proposal_id=reverted, approve="all")
        server.ok("revert_dream", proposal_id=reverted)
        proposal_ids = argument(st.just(FRESH_APPLIED),
                             odd=st.one_of(st.sampled_from([PENDING, REVERTED, "drm_missing", "", "drm_" + "f" * 10]), odd_text),
                             bad=st.one_of(string_junk(), st.none()), omitted="bad")

        @FUZZ
        @given(proposal_id=proposal_ids, extra=extra_field)
        def fuzz(proposal_id, extra):
            value = proposal_id.value
            if value == FRESH_APPLIED:
                value = fresh_proposal(server)
                server.ok("apply_dream", proposal_id=value, approve="all")
            elif value == PENDING:
                value = fresh_proposal(server)
            elif value == REVERTED:
                value = reverted
            server.check("revert_dream", {"proposal_id": Arg(value, proposal_id.kind)}, extra)

        run_counted(server, "revert_dream", fuzz)


# --- inputs the service once mishandled ----------------------------------------------------------


@MODES
@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
                         ids=["year-1-east", "year-9999-west"])
def test_a_timestamp_at_the_edge_of_the_calendar_is_a_tool_error_that_names_the_timestamp(tmp_path, mode, timestamp):
    with serving(tmp_path, mode) as server:
        result = server.call("log_session", {"transcript": [{"role": "user", "content": "hi", "timestamp": timestamp}]})
        assert result.is_error and "timestamp" in text_of(result)


@MODES
@pytest.mark.parametrize(("tool", "arguments"), [
    ("log_session", {"transcript": [{"role": "user", "content": "a\ud800b"}]}),
    ("log_session", {"transcript": [{"role": "user", "content": "ok"}], "notes": ["n\udfff"]}),
    ("log_session", {"transcript": [{"role": "user", "content": "ok"}], "title": "t\ud800"}),
    ("propose_dream", {"engine": "heuristic", "instructions": "\ud800"}),
    ("apply_dream", {"proposal_id": "drm_\ud800", "approve": "all"}),
], ids=["content", "note", "title", "instructions", "proposal-id"])
def test_a_lone_surrogate_is_a_tool_error_quoting_the_text_and_nothing_is_stored(tmp_path, mode, tool, arguments):
    """Only an in-process client can send one (stdio and HTTP reject it while parsing JSON)."""
    with serving(tmp_path, mode) as server:
        result = server.call(tool, arguments)
        assert result.is_error and "not valid Unicode" in text_of(result) and "\\ud" in text_of(result)
        logged = server.ok("log_session", transcript=[turn("hi")])
        assert logged["sessions_awaiting_dream"] == 1, "the refused call must have stored nothing"


@MODES
def test_an_empty_agent_id_is_refused_like_an_empty_session_id(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        result = server.call("log_session", {"transcript": [{"role": "user", "content": "hi"}], "agent_id": ""})
        assert result.is_error and "agent_id" in text_of(result)


@MODES
def test_no_turns_and_only_blank_notes_is_an_empty_transcript(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        result = server.call("log_session", {"transcript": [], "notes": ["  ", "\t"]})
        assert result.is_error and "empty" in text_of(result)



@MODES
def test_a_query_that_looks_like_json_is_searched_as_text(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        server.ok("log_session", transcript=[{"role": "user", "content": 'The API answered {"status": 503} again'}])
        view = server.ok("read_memory", query='{"status": 503}')
        assert view["episodes"]


@MODES
def test_optional_text_that_looks_like_json_is_kept_as_the_text_sent(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        logged = server.ok("log_session", transcript=[turn("hi")], title='["draft"]', outcome_summary='{"ok": true}',
                           ended=False)
        shown = server.ok("read_memory", query="null", scope=None)
        assert "sessions_awaiting_dream" in logged and "entries" in shown
        refused = server.call("propose_dream", {"engine": "heuristic", "scope": "[1]"})
        assert refused.is_error and "scope '[1]' is not valid" in text_of(refused)


# --- size limits -------------------------------------------------------------------------------

README = Path(__file__).parent.parent / "README.md"


def turn(content: str, role: str = "user") -> dict:
    return {"role": role, "content": content}


def halves(total: int) -> list[dict]:
    """`total` characters over two turns (one string that long would be a single huge turn)."""
    return [turn("x" * (total // 2)), turn("y" * (total - total // 2), "assistant")]


# (id, log_session arguments at the limit, one past it, what the refusal must say)
LOG_LIMITS = [
    ("transcript-chars", {"transcript": halves(MAX_TRANSCRIPT_CHARS)}, {"transcript": halves(MAX_TRANSCRIPT_CHARS + 1)},
     [f"{MAX_TRANSCRIPT_CHARS:,}", "characters"]),
    ("turns", {"transcript": [turn("t")] * MAX_TURNS}, {"transcript": [turn("t")] * (MAX_TURNS + 1)},
     [str(MAX_TURNS), "turns"]),
    ("note-count", {"transcript": [turn("t")], "notes": [f"note {n}" for n in range(MAX_NOTES)]},
     {"transcript": [turn("t")], "notes": [f"note {n}" for n in range(MAX_NOTES + 1)]}, [f"{MAX_NOTES} notes"]),
    ("note-length", {"transcript": [turn("t")], "notes": ["n" * MAX_NOTE_CHARS]},
     {"transcript": [turn("t")], "notes": ["n" * (MAX_NOTE_CHARS + 1)]}, ["notes", f"{MAX_NOTE_CHARS} characters"]),
    ("title", {"transcript": [turn("t")], "title": "T" * MAX_TITLE_CHARS},
     {"transcript": [turn("t")], "title": "T" * (MAX_TITLE_CHARS + 1)}, ["title", f"{MAX_TITLE_CHARS} characters"]),
]


def refusal(server: Server, tool: str, arguments: dict) -> str:
    result = server.call(tool, arguments)
    assert result.is_error, f"{tool} accepted a value past its limit"
    return text_of(result)


@MODES
@pytest.mark.parametrize(("over", "at", "says"), [(o, a, s) for _, a, o, s in LOG_LIMITS], ids=[i for i, *_ in LOG_LIMITS])
def test_a_log_session_limit_refuses_one_past_it_whole_and_accepts_exactly_the_limit(tmp_path, mode, over, at, says):
    with serving(tmp_path, mode) as server:
        message = refusal(server, "log_session", over)
        assert all(part in message for part in says), message
        logged = server.ok("log_session", **at)
        assert logged["sessions_awaiting_dream"] == 1, "the refused call must have stored nothing"
    LIMITS_CHECKED[next(i for i, a, *_ in LOG_LIMITS if a is at)] += 1


@MODES
@pytest.mark.parametrize(("tool", "name", "lowest", "highest", "says"), [
    ("read_memory", "budget_tokens", 100, MAX_BUDGET_TOKENS, ["budget_tokens", "100", f"{MAX_BUDGET_TOKENS:,}"]),
    ("propose_dream", "max_sessions", 1, MAX_SESSIONS, ["max_sessions", "1", str(MAX_SESSIONS)]),
], ids=["budget-tokens", "max-sessions"])
def test_a_numeric_range_accepts_both_ends_and_refuses_just_outside_them(tmp_path, mode, tool, name, lowest, highest, says):
    with serving(tmp_path, mode) as server:
        server.ok("log_session", transcript=[turn("Where do the backups go?"), turn("To the cold bucket.", "assistant")],
                  notes=["Backups go to the cold bucket"])
        extra = {"engine": "heuristic"} if tool == "propose_dream" else {}
        for value in (lowest - 1, highest + 1):
            message = refusal(server, tool, {name: value, **extra})
            assert all(part in message for part in says), message
        for value in (lowest, highest):
            server.ok(tool, **{name: value, **extra})
    LIMITS_CHECKED[name] += 1


@MODES
def test_dream_instructions_are_accepted_at_the_limit_and_refused_one_past_it(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        server.ok("log_session", transcript=[turn("hi")], notes=["Lunch is at noon"])
        message = refusal(server, "propose_dream", {"engine": "heuristic", "instructions": "i" * (MAX_INSTRUCTIONS_CHARS + 1)})
        assert "instructions" in message and str(MAX_INSTRUCTIONS_CHARS) in message
        server.ok("propose_dream", engine="heuristic", instructions="i" * MAX_INSTRUCTIONS_CHARS)
    LIMITS_CHECKED["instructions"] += 1


def brief_and_session(server: Server, notes: int = 1) -> tuple[str, str]:
    logged = server.ok("log_session", transcript=[turn("Noted."), turn("Ok.", "assistant")],
                       notes=[f"Fact number {n}" for n in range(notes)])
    return server.ok("propose_dream", engine="agent")["id"], logged["session_id"]


def add(content: str, session_id: str, note: int = 0) -> dict:
    return {"kind": "add", "content": content, "rationale": "noted", "evidence": [{"session_id": session_id, "note_index": note}]}


@MODES
def test_an_operation_is_accepted_at_the_content_limit_and_refused_one_past_it(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        brief, session = brief_and_session(server)
        too_long = [add("c" * (MAX_OPERATION_CHARS + 1), session)]
        message = refusal(server, "propose_dream", {"brief_id": brief, "operations": too_long})
        assert "content" in message and f"{MAX_OPERATION_CHARS} characters" in message and "Nothing was stored" in message
        server.ok("propose_dream", brief_id=brief, operations=[add("c" * MAX_OPERATION_CHARS, session)])
    LIMITS_CHECKED["operation-content"] += 1


@MODES
def test_a_proposal_takes_at_most_two_hundred_operations(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        brief, session = brief_and_session(server, notes=3)
        too_many = [add(f"Fact {n} of the batch", session, n % 3) for n in range(MAX_OPERATIONS + 1)]
        message = refusal(server, "propose_dream", {"brief_id": brief, "operations": too_many})
        assert f"at most {MAX_OPERATIONS}" in message and "operations" in message
        proposal = server.ok("propose_dream", brief_id=brief, operations=too_many[:MAX_OPERATIONS])
        assert len(proposal["operations"]) == MAX_OPERATIONS
    LIMITS_CHECKED["operations-per-proposal"] += 1


@MODES
def test_an_edit_is_accepted_at_the_limit_and_refused_one_past_it(tmp_path, mode):
    with serving(tmp_path, mode) as server:
        proposal = fresh_proposal(server)
        too_long = {"op1": "e" * (MAX_OPERATION_CHARS + 1)}
        message = refusal(server, "apply_dream", {"proposal_id": proposal, "approve": ["op1"], "edits": too_long})
        assert "edit" in message and str(MAX_OPERATION_CHARS) in message
        applied = server.ok("apply_dream", proposal_id=proposal, approve=["op1"], edits={"op1": "e" * MAX_OPERATION_CHARS})
        assert applied["applied"] == ["op1"]
    LIMITS_CHECKED["edit"] += 1


@MODES
@pytest.mark.parametrize("arguments", [
    {"transcript": [{"role": "tool", "tool_name": "t" * (MAX_TRANSCRIPT_CHARS + 1), "content": "ok"}]},
    {"transcript": [turn("t")], "outcome_summary": "s" * (MAX_TRANSCRIPT_CHARS + 1)},
], ids=["tool-name", "outcome-summary"])
def test_no_field_of_a_log_session_call_gets_past_the_character_limit(tmp_path, mode, arguments):
    with serving(tmp_path, mode) as server:
        assert f"{MAX_TRANSCRIPT_CHARS:,}" in refusal(server, "log_session", arguments)


README_LIMITS = [
    pytest.param(f"{MAX_TURNS:,} turns", id="turns"),
    pytest.param(f"{MAX_TRANSCRIPT_CHARS:,} characters", id="transcript-chars"),
    pytest.param(f"{MAX_NOTES} notes of {MAX_NOTE_CHARS:,}", id="notes"),
    pytest.param(f"{MAX_TITLE_CHARS}-character title", id="title"),
    pytest.param(f"100–{MAX_BUDGET_TOKENS:,}", id="budget"),
    pytest.param(f"1–{MAX_SESSIONS}", id="max-sessions"),
    pytest.param(f"{MAX_INSTRUCTIONS_CHARS:,} characters", id="instructions"),
    pytest.param(f"edit: up to {MAX_OPERATION_CHARS:,}", id="edit"),
    pytest.param(f"{MAX_OPERATIONS} operations", id="operations"),
    pytest.param("operation's content", id="operation-content"),
]


@pytest.mark.parametrize("phrase", README_LIMITS)
def test_the_readme_states_each_limit(phrase):
    section = README.read_text(encoding="utf-8").split("## Limits", 1)[1].split("\n## ", 1)[0]
    assert phrase in " ".join(section.split())


@MODES
@pytest.mark.parametrize("name", ["session_id", "agent_id"])
def test_an_id_with_a_trailing_newline_is_refused(tmp_path, mode, name):
    with serving(tmp_path, mode) as server:
        result = server.call("log_session", {"transcript": [turn("hi")], name: "abc\n"})
        assert result.is_error and name in text_of(result)
