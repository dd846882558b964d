"""What a model-backed dream is told about statements and their time.

The offline engine decides by rule what a user's statement is (`statements`) and which of
two values for one subject is current (`claims`: the newest by session and turn time
wins). The models behind the `anthropic` engine and the `agent` brief read the same rules
here, in one text both use, so the three engines cannot drift apart; and the service
checks every engine's replacements against them (`service.supersession`), so a model that
ignores them gets its change flagged rather than applied.
"""

from __future__ import annotations

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
