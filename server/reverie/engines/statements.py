"""What a user's turn states that is worth remembering, read by rules from plain transcripts.

A sentence the user says is one of:

- a *fact*: something about themselves, their project, team, tools or environment with a
  value — "I'm now on page 220", "we moved the API to port 9090", "my manager is Dana",
  "I switched to Dunkin'", "The staging server is at staging.acme.dev";
- a *preference*: "I prefer pytest", "I like short commit messages";
- a standing *instruction*: "please always add a Testing section", "never force-push to
  main", "from now on, answer in German", "run make lint before pushing";
- or nothing to keep: a question, a request for this session ("can you…", "give me…"),
  chit-chat, a plan or a hypothetical ("I'm thinking of…", "if we…").

The category follows from the kind, not from one word: "we still don't know" is not a
pitfall. A correction ("actually, …") is kept as what it says, and marked, so that it
replaces what it corrects. The assistant's words are never read here: its suggestions are
not the user's facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reverie import claims
from reverie.models import Category

Kind = Literal["fact", "preference", "instruction"]

_LEAD_IN = re.compile(
    r"^(?:(?:oh|and|also|so|but|anyway|btw|by the way|speaking of (?:which|\w+(?: \w+)?)|well|ok(?:ay)?|yes|yeah|"
    r"no|hey|hi|great|thanks|thank you|cool|alright|plus|oh and|actually|just so you know|fyi|i see|i think|"
    r"i realized|i just realized|i remember|for the record|as for [\w ]{1,30}|as you know)[,:!\-–— ]+\s*)+",
    re.I,
)
_QUESTION_START = re.compile(
    r"^(?:what|how|why|when|where|who|whom|which|whose|can|could|would|will|should|shall|do|does|did|is|are|"
    r"was|were|am|have|has|may|might|any|isn't|aren't|don't you|do you)\b",
    re.I,
)
_TENTATIVE = re.compile(
    r"\b(?:if|whether|maybe|perhaps|might|wonder(?:ing)?|thinking (?:of|about)|considering|planning|plan to|"
    r"hoping|hope to|going to|gonna|want to|wanna|would like|'d like|trying to decide|not sure|unsure|"
    r"looking for|looking to|looking into|curious|guess|suppose|imagine|should i|could you|can you|"
    r"would you|let me know|help me|recommend|suggest|ideas?|tips?)\b",
    re.I,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|mine|we|we're|we've|our|us|me)\b", re.I)
_PREFERENCE = re.compile(
    r"\b(?:i|we)\s+(?:really\s+|much\s+|generally\s+|usually\s+|always\s+)?(?:prefer|like|love|hate|dislike|"
    r"can't stand|don't like|do not like|enjoy)s?\b(?!\s+(?:the|that|this|these|those|your|it|how|what)\b)"
    r"|\bmy favou?rite\b|\bi'd rather\b|\bi would rather\b|\b(?:the )?user (?:prefers|likes|wants|dislikes|hates)\b",
    re.I,
)
_STANDING = re.compile(
    r"\b(?:always|never|from now on|going forward|in future|in the future|by default|every time|whenever|"
    r"each time|no longer|anymore|must|must not|mustn't|need to be|needs to be|has to|have to|"
    r"before (?:\w+ing|a \w+|every)|after (?:\w+ing|a \w+|every))\b",
    re.I,
)
# Imperatives that ask for something now ("give me…") rather than set a rule.
_REQUEST_VERBS = frozenset(
    """give tell show find explain list summarize summarise compare generate create provide help recommend
    suggest write draft translate calculate describe share send check look search try let see thank thanks
    imagine consider pick choose remind make""".split()
)
_IMPERATIVE = re.compile(r"^(?:please\s+)?(?:(?:always|never|just)\s+)?(?:don't|do not|never|always|[a-z]+)\b", re.I)
_CORRECTION = re.compile(r"^\s*(?:actually|correction|sorry|no|wait)\b|\bnot\s+\$?\d|\bi meant\b", re.I)
MIN_WORDS, MAX_WORDS = 2, 60


@dataclass(frozen=True)
class Statement:
    text: str          # the sentence, lead-in words ("By the way, …") dropped
    kind: Kind
    category: Category
    correction: bool   # "actually, …": it replaces what it corrects
    leaves: frozenset[str] = frozenset()  # old values its sentence names as left behind (`change_terms`)


def statements(turn: str) -> list[Statement]:
    """The memory-worthy sentences of one user turn."""
    found = []
    for sentence in claims.sentences(turn):
        kept = [(clause, text, kind) for clause, text in _clauses(sentence) if (kind := classify(text))]
        leaves = change_terms(sentence) if kept else frozenset()  # "moved to unittest; stop using pytest"
        found += [Statement(text[0].upper() + text[1:], kind, _category(kind, text),
                            bool(_CORRECTION.search(clause)), leaves) for clause, text, kind in kept]
    return found


def _clauses(sentence: str) -> list[tuple[str, str]]:
    """(clause, its words without a lead-in): the sentence, if it states something as a
    whole; else its parts joined by ";" ("Convert this file; I prefer pytest")."""
    whole = _LEAD_IN.sub("", sentence).strip()
    if ";" not in sentence or classify(whole):
        return [(sentence, whole)]
    parts = [part for part in re.split(r";\s+", sentence) if part]
    return [(part, _LEAD_IN.sub("", part).strip()) for part in parts]


def classify(sentence: str) -> Kind | None:
    if not MIN_WORDS <= len(sentence.split()) <= MAX_WORDS or _asks(sentence) or _pasted(sentence):
        return None
    if _PREFERENCE.search(sentence):
        return "preference"
    if _instruction(sentence):
        return "instruction"
    if _TENTATIVE.search(sentence) or _NOT_A_FACT.search(sentence):
        return None
    return "fact" if _fact(sentence) else None


# Plans, what the assistant can do, and feelings are not facts to keep.
_NOT_A_FACT = re.compile(
    r"^(?:you|your|it|this|that|there|here|for example|e\.g\.|moreover|however|overall|in addition)\b"
    r"|\b(?:i'll|i will|we'll|we will|let's|i'd|i feel|i felt|i'm (?:excited|happy|glad|sure|interested|curious|so|"
    r"really|not sure)|i think|i guess|will|would|must have|might|can|could|may)\b(?! be \w+ed\b)",
    re.I,
)
# Said to the other person, or exclaimed: a reaction, not a fact ("Glad you had support.",
# "Being yourself is great!"). First-person facts may end with "!" ("I'm now at 600 followers!").
_REACTION = re.compile(
    r"!\s*$|^(?:glad|sorry|nice|great|awesome|cool|wow|congrats|congratulations|sounds|looks|hope|must|being|so)\b"
    r"|\byou(?:'re|'ve| are| were| had| have| did| must| should| guys)\b",
    re.I,
)


def _pasted(sentence: str) -> bool:
    """Markdown or a template pasted in to work on, not something said."""
    return "**" in sentence or "##" in sentence or sentence.count('"') > 4


def _asks(sentence: str) -> bool:
    return "?" in sentence or bool(_QUESTION_START.match(sentence))


def _instruction(sentence: str) -> bool:
    """A rule for every session: an imperative that is not a request for this one."""
    if re.search(r"(?:^no\s+\w+|,\s*please)[^?]*[.!]?$", sentence, re.I):
        return True  # "No emoji in commit messages, please."
    match = _IMPERATIVE.match(sentence)
    if match is None or _FIRST_PERSON.match(sentence):
        return False
    verb = match.group(0).split()[-1].lower()
    if _STANDING.search(sentence):  # an order, or a rule that opens with when it holds ("From now on, …")
        return verb in _RULE_VERBS | _TASK_VERBS | _REQUEST_VERBS or bool(_STANDING.match(sentence))
    return verb in _RULE_VERBS and not _THIS_TASK.search(sentence)


# Verbs that open a rule ("Use black with line length 100"); others open a task for now
# ("Add date-fns to apps/web", "Review PR #431") unless a standing word says otherwise.
_RULE_VERBS = frozenset("use prefer avoid keep don't do never always answer reply respond escalate format".split())
_THIS_TASK = re.compile(r"\b(?:it|this|that|these|those|here|now|today)\b|#\d", re.I)
_TASK_VERBS = frozenset(
    """run put log store deploy commit push call name add remove start stop switch set test apply include
    annotate mirror document rebase merge squash sign wrap indent pin lock update upgrade install build lint
    review tag label ship release backup restore backfill fix""".split()
)


def _fact(sentence: str) -> bool:
    """A first-person or plain declarative that gives something a value, or says what changed."""
    if sentence.split()[0].lower().strip(",:;!") in _REQUEST_VERBS | _RULE_VERBS | _TASK_VERBS:
        return False  # an imperative asks for something; it states nothing
    if _PASSING.search(sentence):
        return False  # "We shut at five today", "Ticket #7802: …": this task's state, not a lasting fact
    if _MOVED_TO.search(sentence) or change_terms(sentence):
        return True
    if _FIRST_PERSON.search(sentence):
        return any(c.unit for c in claims.claims(sentence)) or _named_value(sentence)
    if _REACTION.search(sentence):
        return False
    return len(sentence.split()) <= 20 and bool(_VERB.search(sentence) or _LABELLED.match(sentence))


# A plain sentence states something only if it says what a thing is or does ("Wow, Melanie!" does not).
_VERB = re.compile(r"\b(?:is|are|was|were|be|has|have|had|uses?|runs?|lives?|needs?|must|owns?|goes|go|reads?|"
                   r"stores?|requires?|expires?|belongs|holds?|takes?|works?|points?|sits?|stays?|mirrors?)\b", re.I)
_LABELLED = re.compile(r"^[\w' -]{2,40}:\s+\S")  # "Primary database host: db-primary.internal"
_PASSING = re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening)|right now)\b|#\d", re.I)
_MOVED_TO = re.compile(r"\b(?:upgraded|downgraded|renamed|changed|moved|switched|migrated|raised|lowered|bumped)\s+"
                       r"(?:\w+\s+)?to\s+\S", re.I)


_NAMED = re.compile(
    r"\b(?:is|are|was|were|uses?|runs? on|lives? (?:on|at|in)|moved to|switched to|is at|owns?|leads?|"
    r"belongs to|goes through|go through|is on|are on|is in|needs?|has to|owns|is responsible for)\s+(?:the\s+|a\s+|an\s+|my\s+|our\s+)?"
    r"(?:[A-Z][\w'.-]+|[\w-]+\.[\w.-]+|`[^`]+`|\w+[-_]\w+)"
)


def _named_value(sentence: str) -> bool:
    """"my manager is Dana", "Staging lives on staging.acme.dev", "the team uses pnpm"."""
    return bool(_NAMED.search(sentence)) or bool(re.search(r"\b(?:uses?|owns?)\s+\w+", sentence))


def _category(kind: Kind, text: str) -> Category:
    if kind == "preference":
        return "preference"
    if kind == "instruction":
        return "workflow" if re.search(r"\b(?:before|after|then|first)\b", text, re.I) else "preference"
    return "fact"


def change_terms(text: str) -> frozenset[str]:
    """Words a statement names as the value it leaves behind: "switched from *npm*",
    "*Braintree* is retired", "instead of *Tuesdays*", "no *tabs*", "stop using *pytest*"."""
    if not _LEFT_HINT.search(text):
        return frozenset()  # most statements: none of the words a change is said with
    found = set()
    for pattern in _LEFT_BEHIND:
        for match in pattern.finditer(text):
            # "from PostgreSQL 14 to PostgreSQL 16": what the rest says again is the subject, not the old value
            kept = {claims.stem(w) for w in claims.tokens(text[match.end():])}
            found |= {claims.stem(w) for w in claims.tokens(match.group("old"))} - kept
    return frozenset(w for w in found if w not in _NOT_A_VALUE)


_OLD = r"(?P<old>[\w.+#/-]+(?:\s+[\w.+#/-]+)?)"
_CHANGED = r"(?:switched|moved|migrated|changed|upgraded|downgraded|converted|transitioned|swapped|went)"
# Each names the old value in a frame only a change is said in: "from X to" counts after
# "switched" ("switched from npm to pnpm"), not in "from start to finish" or "home from work".
_LEFT_BEHIND = [
    re.compile(rf"\b{_CHANGED}\s+(?:\w+\s+){{0,3}}?from\s+{_OLD}\s+to\b", re.I),
    re.compile(r"\binstead\s+of\s+(?!\w+ing\b|just\b|the\b|a\b|my\b)(?P<old>[\w.+#/-]+(?:\s+[\w.+#/-]+)?)", re.I),
    re.compile(rf"\breplaced\s+{_OLD}\s+with\b", re.I),
    re.compile(rf"\b(?:no longer use|stop using|stopped using|quit using|don't use .{{0,20}}anymore|moved off)\s+{_OLD}",
               re.I),
    re.compile(r"\b(?P<old>[\w.+#/-]+)\s+(?:is|was|has been|got)\s+(?:now\s+)?(?:retired|deprecated|gone|dropped|removed)",
               re.I),
    re.compile(r"[;,]\s*no\s+(?P<old>[\w.+#/-]+)\s*(?:anywhere|anymore|any more|[.(]|$)", re.I),
]
_LEFT_HINT = re.compile(r"\b(?:from|instead|replaced|no longer|stop|stopped|quit|retired|deprecated|gone|dropped|"
                        r"removed|no|off)\b", re.I)
_NOT_A_VALUE = frozenset("the a an my our it this that using use more".split())
