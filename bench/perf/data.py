"""Seeded synthetic data: memories, sessions of ~200 turns, and the queries agents ask.

Everything is drawn from one `random.Random(seed)`, so a run is repeatable: the same seed
gives the same texts, ids and query mix (timestamps are placed relative to `now`).

Words come from `vocabulary` (common domain words, component names, versions, paths and
Zipf-skewed rare code names). Memory lengths are skewed: most are one sentence, a few run
to ~1,500 characters. Sessions follow a tool workflow with
user messages, tool calls and outputs, ~5% failed calls whose error lines recur across
sessions (pitfalls), preferences the user restates, and notes (some restated across
sessions, so dreams find duplicates).

Memories are loaded through the store layer (`memories.insert_memory`) inside one
`Database.transaction()`; sessions through `Reverie.log_session`, the ingest path itself.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from reverie.models import CATEGORIES, Category, Evidence, Memory, Outcome, Turn
from reverie.service import Reverie
from reverie.store import Database, memories
from reverie.text import shorten

from bench.perf.vocabulary import DOMAIN, ENVS, FIELDS, TECH, TOOLS, Vocabulary

WORKFLOWS = [
    ["grep", "read_file", "edit_file", "run_tests", "git_commit"],
    ["sql_query", "read_file", "edit_file", "run_tests"],
    ["build", "run_tests", "deploy", "http_get"],
    ["search_docs", "read_file", "send_email"],
    ["open_ticket", "sql_query", "send_email"],
    ["lint", "edit_file", "run_tests", "git_commit", "git_push"],
]
ERRORS = {  # the first line of a failed call; numbers vary, so the dream's signature recurs
    "run_tests": ["FAILED tests/test_{c}.py::test_totals - AssertionError: expected {n} got {m}",
                  "ERROR collecting tests: ModuleNotFoundError: No module named '{c}_fixtures'"],
    "deploy": ["deploy failed: health check on {c} timed out after {n}s", "ImagePullBackOff: tag {n} not found"],
    "sql_query": ["ERROR: relation \"{c}_events\" does not exist at character {n}", "canceling statement due to statement timeout"],
    "git_push": ["! [rejected] main -> main (non-fast-forward)"],
    "http_get": ["HTTP 503 Service Unavailable from {c} after {n} ms"],
    "bash": ["bash: poetry: command not found", "Permission denied (publickey)."],
    "build": ["error TS2345: Argument of type 'string' is not assignable to parameter of type 'number' ({n},{m})"],
    "edit_file": ["old_string not found in file ({n} candidates)"],
    "lint": ["E501 line too long ({n} > 100 characters)"],
}
PREFERENCES = [
    "I prefer pytest over unittest for new tests.", "Please always run the linter before committing.",
    "I prefer short commit messages in the imperative mood.", "From now on use UTC in every log line.",
    "I'd like replies in bullet points, not paragraphs.", "Please never push directly to main.",
    "I prefer tabs over spaces in the Makefile.", "We prefer Terraform over clicking in the console.",
    "Please always include the ticket number in the branch name.", "I want migrations reviewed by a second person.",
    "I prefer metric dashboards in Grafana over ad-hoc SQL.", "Don't deploy on Fridays after noon.",
]
# What agents ask read_memory, as we expect it (see generate_queries): no topic at a session
# start, a task in the user's words, a question, a name the memory holds, one word.
QUERY_KINDS = ["none", "task", "question", "name", "word"]
QUERY_WEIGHTS = [15, 35, 25, 15, 10]


@dataclass
class SessionData:
    id: str
    agent_id: str
    title: str
    turns: list[Turn]
    notes: list[str]
    outcome: Outcome


@dataclass
class Query:
    kind: str          # one of QUERY_KINDS
    text: str | None   # None: read_memory without a query (the session-start call)


# --- memories ------------------------------------------------------------------------------------


def _fact(v: Vocabulary) -> str:
    r = v.rng
    return r.choice([
        lambda: f"{v.component()} runs on {v.tech()} in {r.choice(ENVS)} for the {v.codename()} {v.domain()}.",
        lambda: f"{v.codename().capitalize()} {v.component()} {r.choice(FIELDS)}: {v.codename()} {v.domain()}.",
        lambda: f"The {v.component()} {v.domain()} config lives in `{v.path()}`.",
        lambda: (f"{v.component()} talks to {v.component()} over {r.choice(['gRPC', 'HTTP', 'Kafka'])}; "
                 f"the {v.codename()} {v.domain()} timeout is {r.randint(2, 90)} seconds."),
    ])()


def _preference(v: Vocabulary) -> str:
    r = v.rng
    return r.choice([
        lambda: f"The user prefers {v.domain()} over {v.domain()} for {v.component()} {v.domain()}.",
        lambda: f"Write {v.component()} changes with {v.domain(2)}; the user dislikes {v.domain()} {v.codename()}.",
        lambda: f"Keep replies to the {v.codename()} team about {v.component()} short and about {v.domain(2)}.",
    ])()


def _workflow(v: Vocabulary) -> str:
    r = v.rng
    return r.choice([
        lambda: (f"For a {v.component()} release on {v.codename()}, run `make {v.domain()}`, "
                 f"then `{r.choice(TOOLS)} {v.codename()}`, then check the {v.domain()} dashboard."),
        lambda: (f"Before merging {v.component()} changes for {v.codename()}, "
                 f"run {r.choice(TOOLS)} and {r.choice(TOOLS)} with {v.domain(2)}."),
    ])()


def _pitfall(v: Vocabulary) -> str:
    r = v.rng
    tool = r.choice(list(ERRORS))
    error = r.choice(ERRORS[tool]).format(c=v.codename(), n=r.randint(1, 999), m=r.randint(1, 999))
    return r.choice([
        lambda: f"`{tool}` fails with “{error}” on {v.component()} when {v.domain(2)}; use {v.domain()} {v.codename()} instead.",
        lambda: (f"Never {r.choice(['deploy', 'migrate', 'restart', 'reindex'])} {v.component()} "
                 f"during {v.domain()} {v.codename()}: {v.domain(3)}."),
    ])()


def _insight(v: Vocabulary) -> str:
    return f"Learned that {v.component()} {v.domain(2)} because {v.domain(3)} {v.codename()}."


TEMPLATES = {"fact": _fact, "preference": _preference, "workflow": _workflow, "pitfall": _pitfall, "insight": _insight}
CATEGORY_WEIGHTS = [40, 15, 15, 15, 15]
SCOPES, SCOPE_WEIGHTS = ["shared", "user", "agent:default", "agent:other"], [35, 15, 40, 10]


def memory_text(v: Vocabulary, category: Category) -> str:
    """One sentence for most entries, a few sentences for some, ~1,500 characters for a few."""
    extra = v.rng.choices([0, v.rng.randint(1, 2), v.rng.randint(3, 6), v.rng.randint(8, 16)], [55, 30, 12, 3])[0]
    text = " ".join([TEMPLATES[category](v), *(v.sentence() for _ in range(extra))])
    return text[:1_900]


def generate_memories(n: int, seed: int, now: datetime, *, duplicate_pairs: int = 0, stale_share: float = 0.01) -> list[Memory]:
    """`n` memories (ids `mem_<seed>_<i>`); `duplicate_pairs` of them restate another one.

    Observed within the last 80 days, except `stale_share` of them (older than 90 days and
    unread, which a dream proposes to prune). A duplicate repeats its original with one
    more word, so the heuristic engine sees Jaccard ≥ 0.6 and proposes a merge.
    """
    v = Vocabulary.build(random.Random(seed))
    r = v.rng
    made: list[Memory] = []
    for i in range(n - duplicate_pairs):
        category = r.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        text = memory_text(v, category)
        while i < duplicate_pairs and len(text.split()) < 12:  # long enough that one extra word keeps it similar
            text = memory_text(v, category)
        age = timedelta(days=r.uniform(91, 400) if r.random() < stale_share and i >= duplicate_pairs else r.uniform(0, 80))
        made.append(_memory(f"mem_{seed}_{i}", text, category, r.choices(SCOPES, SCOPE_WEIGHTS)[0], now - age, r))
    for i in range(duplicate_pairs):
        original = made[i]
        made.append(original.model_copy(update={"id": f"mem_{seed}_dup{i}", "content": original.content + " Confirmed."}))
    return made


def _memory(memory_id: str, text: str, category: Category, scope: str, observed: datetime, r: random.Random) -> Memory:
    evidence = [Evidence(session_id=f"ses_hist{r.randint(0, 5_000)}", event_index=r.randint(0, 199), quote=shorten(text))
                for _ in range(r.randint(1, 3))]
    return Memory(id=memory_id, content=text, category=category, scope=scope, confidence=round(r.uniform(0.5, 0.95), 2),
                  evidence=evidence, created_at=observed, updated_at=observed, observed_at=observed)


async def load_memories(db: Database, items: list[Memory], batch: int = 10_000) -> None:
    """Insert through the store layer, one transaction per `batch` rows."""
    for start in range(0, len(items), batch):
        async with db.transaction():
            for memory in items[start : start + batch]:
                await memories.insert_memory(db, memory)


# --- sessions ------------------------------------------------------------------------------------


def generate_sessions(count: int, turns: int, seed: int, now: datetime) -> list[SessionData]:
    """`count` sessions of `turns` turns each, the newest ending just before `now`."""
    v = Vocabulary.build(random.Random(seed))
    recurring_notes = [memory_text(v, "fact").split(". ")[0].rstrip(".") + "." for _ in range(40)]
    return [_session(v, i, count, turns, now, recurring_notes) for i in range(count)]


def _session(v: Vocabulary, i: int, count: int, length: int, now: datetime, recurring: list[str]) -> SessionData:
    r = v.rng
    start = now - timedelta(hours=3 * (count - i) + 1)
    workflow, component = r.choice(WORKFLOWS), v.component()
    clock = (start + timedelta(seconds=20 * k) for k in itertools.count())
    turns = list(itertools.islice(_turns(v, workflow, component, clock), length))
    notes = [r.choice(recurring) if r.random() < 0.5 else memory_text(v, "fact") for _ in range(r.randint(0, 4))]
    return SessionData(id=f"ses_bench_{i:04d}", agent_id=r.choices(["default", "other"], [85, 15])[0],
                       title=f"{' '.join(workflow[:2])} on {component}", turns=turns, notes=notes,
                       outcome=r.choices(["success", "partial", "failure", "unknown"], [75, 10, 10, 5])[0])


def _turns(v: Vocabulary, workflow: list[str], component: str, clock: Iterator[datetime]) -> Iterator[Turn]:
    """Endless: a user request, then the workflow's tool calls with outputs, some failing."""
    r = v.rng
    while True:
        ask = f"Can you look at {component} {v.domain(2)}? {v.sentence()}"
        if r.random() < 0.15:
            ask += " " + r.choice(PREFERENCES)
        yield Turn(role="user", content=ask, timestamp=next(clock))
        yield Turn(role="assistant", content=f"I'll start with {workflow[0]}. " + v.sentence(), timestamp=next(clock))
        for tool in workflow:
            yield from _call(v, tool, component, clock)


def _call(v: Vocabulary, tool: str, component: str, clock: Iterator[datetime]) -> Iterator[Turn]:
    r = v.rng
    arguments = json.dumps({"target": f"{component}/{v.codename()}", "args": v.domain(r.randint(1, 4))})
    yield Turn(role="assistant", content=arguments, tool_name=tool, timestamp=next(clock))
    if tool in ERRORS and r.random() < 0.08:
        error = r.choice(ERRORS[tool]).format(c=component.split("-")[0], n=r.randint(1, 999), m=r.randint(1, 999))
        yield Turn(role="tool", content=error + "\n" + v.sentence(), tool_name=tool, is_error=True, timestamp=next(clock))
        yield Turn(role="assistant", content=json.dumps({"target": component, "retry": v.domain()}), tool_name=tool,
                   timestamp=next(clock))
    lines = r.choices([1, r.randint(3, 10), r.randint(20, 60)], [50, 35, 15])[0]
    output = "\n".join(f"{v.path()}:{r.randint(1, 900)}: {v.domain(r.randint(2, 8))}" for _ in range(lines))
    yield Turn(role="tool", content=output, tool_name=tool, timestamp=next(clock))


def history_sessions(first: int, stop: int, turns: int, seed: int, now: datetime) -> Iterator[SessionData]:
    """Sessions `first`..`stop - 1` of an older history, one at a time (a million turns
    would not fit in memory at once): session i started 3·(i + 1) hours before `now`, so
    they all come before the `generate_sessions` ones a dream reviews first."""
    v = Vocabulary.build(random.Random(seed + first))
    recurring = [memory_text(v, "fact").split(". ")[0].rstrip(".") + "." for _ in range(40)]
    for i in range(first, stop):
        made = _session(v, 0, 0, turns, now - timedelta(hours=3 * (i + 1)), recurring)
        yield SessionData(**(made.__dict__ | {"id": f"ses_hist_{i:05d}"}))


async def log_sessions(reverie: Reverie, items: Iterable[SessionData]) -> None:
    for s in items:
        await reverie.log_session(s.turns, session_id=s.id, agent_id=s.agent_id, title=s.title, notes=s.notes,
                                  outcome=s.outcome)


# --- queries -------------------------------------------------------------------------------------


def generate_queries(n: int, seed: int) -> list[Query]:
    """`n` read_memory queries in a fixed mix of kinds (QUERY_KINDS / QUERY_WEIGHTS).

    - none: a session start without a topic (the SessionStart hook, most first calls);
    - task: what the user asked for, as an agent passes it on ("fix the billing-api retry
      timeout on staging"): a component, two or three domain words, maybe an environment;
    - question: "how do we roll back the auth-worker cache after a deploy failure?";
    - name: one code name of a team or project, drawn from those the memories and sessions
      use (Zipf ranks 10-300: each appears in a few entries at 1k, dozens at 100k), never
      one that matches nothing;
    - word: a component or technology name alone.
    """
    v = Vocabulary.build(random.Random(seed))
    r = random.Random(seed + 1)
    makers = {
        "none": lambda: None,
        "task": lambda: (f"{r.choice(['fix', 'debug', 'speed up', 'add', 'review'])} the {v.component()} "
                         f"{' '.join(r.sample(DOMAIN, r.randint(2, 3)))}"
                         f"{' on ' + r.choice(ENVS) if r.random() < 0.4 else ''}"),
        "question": lambda: (f"how do we {r.choice(['deploy', 'roll back', 'debug', 'migrate'])} the {v.component()} "
                             f"{r.choice(DOMAIN)} after a {r.choice(DOMAIN)} {r.choice(['failure', 'incident', 'change'])}?"),
        "name": lambda: v.codenames[r.randint(10, 300)],
        "word": lambda: r.choice([v.component(), r.choice(list(TECH))]),
    }
    return [Query(kind, makers[kind]()) for kind in r.choices(QUERY_KINDS, QUERY_WEIGHTS, k=n)]
