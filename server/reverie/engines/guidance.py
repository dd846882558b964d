"""What a model-backed dream is told about statements and their time.

The offline engine decides by rule what a user's statement is (`statements`) and which of
two values for one subject is current (`claims`: the newest by session and turn time
wins). The models behind the `anthropic` engine and the `agent` brief read the same rules
here, in one text both use, so the three engines cannot drift apart; and the service
checks every engine's replacements against them (`service.supersession`), so a model that
ignores them gets its change flagged rather than applied. Both read the same rules for
quoting evidence (which `reverie.citations` enforces), for scopes, and for staleness (of
existing entries, by when they were last seen, never of what the sessions just said).
"""

from __future__ import annotations

from reverie.models import DreamInput

STATEMENTS = """What counts as a statement of the user's to remember:
- a fact about themselves, their project, team, tools or environment that has a value: a number, name, \
version, place, host or date ("I'm on page 200", "we moved the API to port 9090", "my manager is Dana");
- a durable preference ("I prefer pytest") or a standing instruction ("always run make lint before pushing");
- a correction ("actually, it's 400, not 500"), which replaces what it corrects.
Not statements: questions (asking about an earlier value, "what page was I on before?", states no new one), \
requests for the task at hand, plans and hypotheticals ("I'm thinking of switching…"), chit-chat, and the \
assistant's own suggestions."""

TIMES = """Times: each session's header gives when it started (UTC); a turn said at another time shows its \
own time in brackets after its number (#7 [16:40] user: …, with the date when the day differs). A turn \
without one was said when its session started."""

CURRENT_VALUE = """Which value is current:
- One subject, two values: the one said last wins, by the session and turn times shown, never by the order \
in which sessions, candidates or entries are listed. An entry's time is when it was observed.
- Replace an entry (update) only with a statement said after the entry was observed, about the same subject. \
Evidence older than the entry it replaces is history, not news: the change is flagged older_than_target and \
waits for a person.
- Near misses are two facts, both kept (add, never update): another qualifier (the staging vs the production \
database), another person (Alice's manager vs Bob's), another context (tabs in Makefiles vs spaces in Python), \
another thing of one kind (the prices in two markets). An update not about its target's subject is flagged \
unrelated_update and waits for a person.
- Saying the same value again, or asking about an earlier one, changes nothing."""

QUOTING = """Quoting evidence: copy a few words (up to about 200 characters) exactly from one turn or note, without \
its "#12 user:" label or time. A quote may run across the lines of a turn: line breaks and the indentation of \
continued lines are ignored when it is matched, and so is case. Never join two pieces with "…", never quote \
across two turns, never quote from memory entries or candidate summaries. A quote not found in the turn or note \
it cites is refused, never corrected: you are told what that turn says, and answer again."""

SCOPES = """Scopes: "user" for facts about the person and their own preferences (what they read, their name, how \
they like answers), which every agent may use; "project:<key>" for conventions of one repository (its test \
runner, layout, commands, versions); "agent:<id>" for what only that agent needs; "shared" for what every \
agent needs that is neither about the person nor one repository. An entry keeps its scope when updated."""


def staleness(dream: DreamInput) -> str:
    """Staleness is of existing entries, by when they were last seen: sessions may be years old."""
    return (f"Today is {dream.now.date()}. Staleness applies only to entries of the current memory: one that "
            f"nobody read or restated for {dream.stale_after_days} days (by its observed and last read dates) "
            "may be pruned. What the reviewed sessions say is new knowledge, however long ago it was said: "
            "never skip or prune it for its age.")


def scopes_section(dream: DreamInput) -> str:
    """The scopes this dream's operations may name: its agents', its projects', the person's and everyone's."""
    agents = sorted({s.agent_id for s in dream.sessions})
    held = {m.scope for m in dream.memories}
    scopes = sorted({"user", "shared", *(f"agent:{a}" for a in agents),
                     *(f"project:{s.project}" for s in dream.sessions if s.project),
                     *(s for s in held if s.startswith(("agent:", "project:")))})
    who = f"The sessions are by agent {', '.join(agents)}." if agents else "No new sessions."
    return f"{who} Scopes this dream may use: {', '.join(scopes)}."
