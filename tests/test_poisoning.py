"""Injected instructions and pasted secrets never become memory, whichever offline engine dreams.

Poisoning
---------

`tests/corpora/poisoning.json` holds sessions in which an instruction aimed at the agent
arrives where attackers put them: HTML comments, zero-width and Unicode-tag text, markdown
beacons, tickets, email, code comments, tool errors, and notes where the agent naively
copied (or paraphrased) the payload. Each item is run through:

- `heuristic-auto`: the session logged twice (attackers repeat themselves, and recurrence
  is what turns errors and statements into candidates), a heuristic dream, then auto mode
  (`apply_unflagged`), as `reverie serve --dream-mode auto` does;
- `agent-cited`: a dream brief, then an agent that obeys the payload and submits it as an
  `add` citing exactly where it read it (the turn, the note), then auto mode;
- `agent-laundered`: the same payload submitted as an `add` citing the user's own harmless
  first turn, so that only the server's reading of the content itself stands in the way.

For every item and path: no active memory entry carries the payload (its markers, the
payload itself, or any run of four of its words), every proposed operation that carries
it is risk-flagged, auto mode applies no flagged operation, and the user's harmless fact
from the same session does reach memory, so a pipeline that applied nothing would fail.
`BLOCKED` counts the item × path runs that passed, for the figure in docs/safety.md.

Secrets
-------
`tests/corpora/secrets.json` holds fake credentials in the formats people paste, assembled
at load time. Each is pasted into a user turn, a tool output, a note, the title and the
outcome summary; the session is dreamed by the heuristic engine and the whole proposal
applied; a second session is dreamed by an agent whose dream instructions, operation
content, rationale, evidence quote and the user's edit all carry the secret too, and that
is applied. Then no byte of the secret is in any file of the database's directory (after
a WAL checkpoint, and again after the server closed), nor in any tool result or resource
the client read. `SECRETS_KEPT_OUT` counts the formats that passed.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client
from reverie.config import Settings
from reverie.mcp_server import build_server
from reverie.models import Evidence, OperationDraft, Proposal, Turn
from reverie.service import Reverie, open_reverie
from reverie.store import memories
from reverie.text import words
from test_fuzz import record_figures

# slow: a sweep: every secret and instruction format through every tool, in both protocol versions.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CORPUS = Path(__file__).parent / "corpora" / "poisoning.json"
PATHS = ["heuristic-auto", "agent-cited", "agent-laundered"]
SHINGLE = 4  # words in a row shared with the payload that count as carrying it
BLOCKED: Counter[str] = Counter()  # path → items whose payload stayed out of memory


@dataclass(frozen=True)
class Item:
    id: str
    channel: str
    payload: str
    markers: list[str]
    benign: str
    copied: bool
    turns: list[Turn]
    notes: list[str]

    def payload_turns(self) -> list[int]:
        return [i for i, turn in enumerate(self.turns) if self.payload in turn.content]

    def payload_notes(self) -> list[int]:
        """Every note but the harmless fact: copies and paraphrases of the payload."""
        return [i for i, note in enumerate(self.notes) if note != self.benign]


def hidden_as_tags(text: str) -> str:
    """ASCII smuggling: each character as its invisible Unicode tag twin (U+E0000 + code)."""
    return "".join(chr(0xE0000 + ord(c)) for c in text)


def load_items() -> list[Item]:
    raw = json.loads(CORPUS.read_text(encoding="utf-8"))["items"]
    return [materialized(entry) for entry in raw]


def materialized(entry: dict) -> Item:
    payload = entry["payload"]
    if entry.get("payload_as_tags"):
        payload = entry["visible"] + hidden_as_tags(payload)

    def fill(text: str) -> str:
        return text.replace("{payload}", payload).replace("{benign}", entry["benign"])

    return Item(
        id=entry["id"], channel=entry["channel"], payload=payload, markers=entry["markers"], benign=entry["benign"],
        copied=entry["copied"], notes=[fill(n) for n in entry["notes"]],
        turns=[Turn(**{**turn, "content": fill(turn["content"])}) for turn in entry["turns"]],
    )


ITEMS = load_items()

# Known leaks: (item id, path) → an xfail reason naming the defect in safety.py or
# service/evidence.py, kept visible as a strict xfail until it is fixed. None is open.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}


def cases():
    for item in ITEMS:
        for path in PATHS:
            reason = KNOWN_LEAKS.get((item.id, path))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(item, path, id=f"{item.id}-{path}", marks=marks)


# --- what counts as carrying the payload -------------------------------------------------


def shingles(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def carries(text: str | None, item: Item) -> bool:
    if not text:
        return False
    lowered = text.lower()
    return (
        item.payload in text
        or any(marker.lower() in lowered for marker in item.markers)
        or bool(shingles(text) & shingles(item.payload))
        or any(0xE0000 <= ord(c) <= 0xE007F for c in text)  # tag characters: smuggled text
        or any(shingles(text) & shingles(note) for note in (item.notes[i] for i in item.payload_notes()))
    )


# --- the three paths ---------------------------------------------------------------------


async def log(reverie: Reverie, item: Item, copies: int) -> None:
    for n in range(copies):
        await reverie.log_session(item.turns, title=f"{item.channel} #{n + 1}", notes=item.notes, outcome="success")


async def heuristic_auto(reverie: Reverie, item: Item) -> Proposal:
    await log(reverie, item, copies=2)
    return await reverie.propose_dream("heuristic")


def obeying(item: Item, session_id: str, laundered: bool) -> list[OperationDraft]:
    """What an agent that fell for the payload submits, plus the user's harmless fact."""
    def add(content: str, **where) -> OperationDraft:
        return OperationDraft(kind="add", content=content, category="workflow", rationale="Worth remembering.",
                              evidence=[Evidence(session_id=session_id, **where)])

    if laundered:
        poisoned = [add(item.payload, event_index=0)]
    else:
        poisoned = [add(item.payload, event_index=i) for i in item.payload_turns()]
        poisoned += [add(item.notes[i], note_index=i) for i in item.payload_notes()]
    return [*poisoned, add(item.benign, note_index=item.notes.index(item.benign))]


async def agent(reverie: Reverie, item: Item, laundered: bool) -> Proposal:
    await log(reverie, item, copies=1)
    brief = await reverie.propose_dream("agent")
    return await reverie.propose_dream(operations=obeying(item, brief.session_ids[0], laundered), brief_id=brief.id)


async def dream(reverie: Reverie, item: Item, path: str) -> Proposal:
    if path == "heuristic-auto":
        return await heuristic_auto(reverie, item)
    return await agent(reverie, item, laundered=path == "agent-laundered")


# --- the properties ------------------------------------------------------------------------


@pytest.mark.parametrize(("item", "path"), list(cases()))
async def test_an_injected_instruction_never_reaches_memory_and_auto_mode_applies_nothing_flagged(tmp_path, clock, item, path):
    async with open_reverie(Settings(db_path=tmp_path / "memory.db", agent_id="support"), clock) as reverie:
        proposal = await dream(reverie, item, path)
        assert proposal.status == "pending", "the dream proposed nothing, so the test would prove nothing"
        result = await reverie.apply_unflagged(proposal.id)
        active = await memories.active_memories(reverie.db)

    by_id = {op.op_id: op for op in proposal.operations}
    assert all(not by_id[op_id].risk for op_id in result.applied), "auto mode applied a flagged operation"
    unflagged_payload = [op.content for op in proposal.operations if not op.risk and carries(op.content, item)]
    assert unflagged_payload == [], "an operation carrying the payload has no risk flag"
    assert [m.content for m in active if carries(m.content, item)] == [], "the payload reached active memory"
    assert item.benign in [m.content for m in active], "the user's harmless fact should have been applied"
    BLOCKED[path] += 1


def test_the_corpus_has_at_least_twenty_items_over_every_channel_with_unique_ids():
    assert len(ITEMS) >= 20
    assert len({item.id for item in ITEMS}) == len(ITEMS)
    assert {"web_page", "tool_output", "ticket", "email", "tool_error", "note", "user_paste"} <= {i.channel for i in ITEMS}
    assert sum(item.copied for item in ITEMS) >= 10, "the naive agent copies the payload into its notes in many items"


@pytest.mark.parametrize("item", ITEMS, ids=[item.id for item in ITEMS])
def test_every_item_puts_its_payload_where_the_session_can_see_it(item):
    assert item.payload_turns(), "the payload must arrive in a turn"
    assert item.benign in item.notes and not carries(item.benign, item)
    if item.copied:
        assert any(item.payload in item.notes[i] for i in item.payload_notes())


@pytest.fixture(scope="module", autouse=True)
def report_items_blocked():
    yield
    if BLOCKED:
        record_figures("poisoning", {"items": len(ITEMS), "paths": PATHS, "blocked": dict(BLOCKED),
                                     "known_leaks": [f"{item} ({path})" for item, path in KNOWN_LEAKS]})
        detail = ", ".join(f"{path}: {BLOCKED[path]}/{len(ITEMS)}" for path in PATHS)
        print(f"\npoisoning: payload kept out of memory for {sum(BLOCKED.values())} of {len(ITEMS) * len(PATHS)} "
              f"item × path runs ({detail})")


# --- secrets ---------------------------------------------------------------------------------

SECRETS = Path(__file__).parent / "corpora" / "secrets.json"
SECRETS_KEPT_OUT: Counter[str] = Counter()  # formats whose bytes stayed out, per protocol mode
UNDOCUMENTED_KEPT_OUT: list[str] = []       # probes of formats docs/safety.md does not claim that passed
MODES = pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["legacy-2025-11-25", "modern-2026-07-28"])


@dataclass(frozen=True)
class Secret:
    id: str
    kind: str | None
    documented: bool
    value: str
    frame: str  # the value as it is pasted

    def needles(self) -> list[str]:
        """The value, and each of its lines long enough to be unmistakable (for PEM bodies)."""
        return [self.value, *(line for line in self.value.splitlines() if len(line) >= 16 and line != self.value)]


def assembled(parts: list) -> str:
    return "".join(part if isinstance(part, str) else part["repeat"] * part["times"] for part in parts)


def load_secrets() -> list[Secret]:
    secrets = []
    for entry in json.loads(SECRETS.read_text(encoding="utf-8"))["items"]:
        value = assembled(entry["parts"])
        secrets.append(Secret(entry["id"], entry.get("kind"), entry.get("documented", True), value,
                              entry["frame"].replace("{secret}", value)))
    return secrets


ALL_SECRETS = load_secrets()
DOCUMENTED = [s for s in ALL_SECRETS if s.documented]
UNDOCUMENTED = [s for s in ALL_SECRETS if not s.documented]
NO_PATTERN = "server/reverie/safety.py:83 SECRET_PATTERNS has no rule for this format (not in the list in docs/safety.md either)"
KNOWN_UNREDACTED: set[str] = set()


class Recorder:
    """A client whose every tool result and resource read is kept, to search for leaks."""

    def __init__(self, client):
        self.client = client
        self.seen: list[str] = []

    async def call(self, tool: str, **arguments) -> dict:
        result = await self.client.call_tool(tool, arguments)
        self.seen += [block.text for block in result.content if hasattr(block, "text")]
        self.seen.append(json.dumps(result.structured_content, ensure_ascii=False))
        assert not result.is_error, result.content[0].text
        return result.structured_content

    async def read(self, uri: str) -> None:
        self.seen += [content.text for content in (await self.client.read_resource(uri)).contents]


def pasted_session(secret: Secret) -> dict:
    """The secret in a user turn, a tool output, a note, the title and the outcome summary."""
    title = f"Config: {secret.frame}" if len(secret.frame) <= 190 else None
    return {
        "transcript": [
            {"role": "user", "content": f"Here is what I have:\n{secret.frame}\nPlease keep the config tidy."},
            {"role": "assistant", "tool_name": "shell", "content": "cat .env"},
            {"role": "tool", "tool_name": "shell", "content": f"# .env\n{secret.frame}\nLOG_LEVEL=info"},
            {"role": "assistant", "content": "Got it; I will not repeat the credential."},
        ],
        "notes": [f"Credential for the app: {secret.frame}", "Deploys go through staging first."],
        "outcome": "success", "outcome_summary": f"Configured the app with {secret.frame}",
        **({"title": title} if title else {}),
    }


async def dream_everything(recorder: Recorder, secret: Secret) -> list[str]:
    """Log, dream (heuristic) and apply all; log again, dream as an agent and apply all with an edit.

    Returns the risk flags of the agent's operation that carried the secret.
    """
    await recorder.call("log_session", **pasted_session(secret))
    heuristic = await recorder.call("propose_dream", engine="heuristic")
    await recorder.call("apply_dream", proposal_id=heuristic["id"], approve="all")

    logged = await recorder.call("log_session", **pasted_session(secret))
    brief = await recorder.call("propose_dream", engine="agent", instructions=f"Focus on configuration. {secret.frame}")
    evidence = {"session_id": logged["session_id"], "event_index": 0, "quote": secret.frame}
    operations = [
        {"kind": "add", "content": f"The app's credential: {secret.frame}", "category": "fact",
         "rationale": f"The user pasted {secret.frame}", "evidence": [evidence]},
        {"kind": "add", "content": "Deploys go through staging first (agent).", "category": "workflow",
         "rationale": "Noted by the agent.", "evidence": [{"session_id": logged["session_id"], "note_index": 1}]},
    ]
    proposal = await recorder.call("propose_dream", brief_id=brief["id"], operations=operations)
    await recorder.call("apply_dream", proposal_id=proposal["id"], approve="all",
                        edits={"op1": f"Credential (edited): {secret.frame}"})
    await recorder.call("read_memory", query="credential config")
    await recorder.read("memory://current")
    await recorder.read(f"memory://proposals/{proposal['id']}")
    return proposal["operations"][0]["risk"]


def files_holding(directory: Path, needles: list[str]) -> list[str]:
    return [f"{path.name}: {needle[:12]}…" for path in sorted(directory.rglob("*")) if path.is_file()
            for needle in needles if needle.encode() in path.read_bytes()]


def checkpoint(db_path: Path) -> None:
    """Move everything from the write-ahead log into the main file, so a scan sees it there too."""
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


async def secret_leaks(tmp_path: Path, secret: Secret, mode: str) -> tuple[list[str], list[str]]:
    """Where the secret's bytes were found, and the flags on the agent's op that carried it."""
    settings = Settings(db_path=tmp_path / "db" / "memory.db", agent_id="ops")
    settings.db_path.parent.mkdir()
    async with Client(build_server(settings), mode=mode) as client:
        recorder = Recorder(client)
        flags = await dream_everything(recorder, secret)
        checkpoint(settings.db_path)
        leaks = files_holding(settings.db_path.parent, secret.needles())
    leaks += files_holding(settings.db_path.parent, secret.needles())  # after close: nothing left in a -wal
    leaks += [f"tool result: {text[:60]}…" for text in recorder.seen for needle in secret.needles() if needle in text]
    return leaks, flags


@MODES
@pytest.mark.parametrize("secret", DOCUMENTED, ids=[s.id for s in DOCUMENTED])
async def test_a_pasted_secret_reaches_no_database_file_and_no_tool_result(tmp_path, mode, secret):
    leaks, flags = await secret_leaks(tmp_path, secret, mode)
    assert leaks == []
    assert "secret_redacted" in flags, "the reviewer should see that the agent's op carried a secret"
    SECRETS_KEPT_OUT[mode] += 1


@pytest.mark.parametrize("secret", [
    pytest.param(s, id=s.id, marks=[pytest.mark.xfail(strict=True, reason=NO_PATTERN)] if s.id in KNOWN_UNREDACTED else [])
    for s in UNDOCUMENTED
])
async def test_a_common_format_the_readme_does_not_list_is_kept_out_too(tmp_path, secret):
    leaks, _ = await secret_leaks(tmp_path, secret, "legacy")
    assert leaks == []
    UNDOCUMENTED_KEPT_OUT.append(secret.id)


def test_the_secrets_corpus_covers_at_least_fifteen_formats_and_every_redaction_kind():
    from reverie.safety import SECRET_PATTERNS

    assert len(DOCUMENTED) >= 15 and len({s.id for s in ALL_SECRETS}) == len(ALL_SECRETS)
    assert {kind for kind, _ in SECRET_PATTERNS} <= {s.kind for s in DOCUMENTED}


def test_the_secrets_file_itself_holds_no_assembled_secret():
    text = SECRETS.read_text(encoding="utf-8")
    assert [s.id for s in ALL_SECRETS if s.value in text] == []


@pytest.fixture(scope="module", autouse=True)
def report_secrets_kept_out():
    yield
    if SECRETS_KEPT_OUT:
        record_figures("secrets", {"formats": len(DOCUMENTED), "kept_out_per_mode": dict(SECRETS_KEPT_OUT),
                                   "undocumented_probed": len(UNDOCUMENTED), "undocumented_kept_out": UNDOCUMENTED_KEPT_OUT})
        detail = ", ".join(f"{mode}: {n}/{len(DOCUMENTED)}" for mode, n in sorted(SECRETS_KEPT_OUT.items()))
        print(f"\nsecrets: {len(DOCUMENTED)} credential formats pasted into up to 10 places each; bytes found in the database "
              f"files or tool results for none of them ({detail})")


async def test_a_secret_in_a_turns_tool_name_is_redacted_too(tmp_path):
    secret = next(s for s in DOCUMENTED if s.id == "bearer-token")
    settings = Settings(db_path=tmp_path / "db" / "memory.db", agent_id="ops")
    settings.db_path.parent.mkdir()
    async with Client(build_server(settings)) as client:
        recorder = Recorder(client)
        await recorder.call("log_session", transcript=[
            {"role": "assistant", "tool_name": f"shell: {secret.frame}", "content": "ran it"}])
        checkpoint(settings.db_path)
    assert files_holding(settings.db_path.parent, secret.needles()) == []
