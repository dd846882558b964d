"""What a memory entry would make an agent do: tell a plain fact from an order or a destination.

Memory is loaded into every later session, so an entry that tells the agent to do
something, or names a place data can go, acts on the agent's next work. Injected text
arrives in any language, any script, any wording, so no list of bad phrases can catch it;
these checks go the other way and recognise what is *safe*:

- `plain_fact`: a short declarative statement in English ("Staging cluster name:
  kestrel-2", "The team uses pnpm, not npm") with no order in it, no obligation, no
  word addressed to the agent and no destination. Anything not recognised as one — an
  imperative, a rule, a workflow, text in another language or script — is not a plain
  fact, and what rests on an agent's word alone then waits for a person.
- `names_destination`: an email address, a URL, a host name or IP address, a file path or
  a credential file (`~/.aws/credentials`, `.env`, `id_rsa`): somewhere data is read
  from or sent to. Such an entry always waits for a person, whoever said it.

Every check reads the text's `confusables.skeleton`, so look-alike letters and invisible
characters change nothing. Pure functions; no I/O.
"""

from __future__ import annotations

import re

from reverie.confusables import skeleton
from reverie.text import STOPWORDS

__all__ = ["ALWAYS", "destinations", "names_destination", "plain_fact"]

# --- destinations ---------------------------------------------------------------------------

# Top-level domains of hosts people name. File extensions that are also country codes
# (.py, .sh, .md, .rs, .pl) are left out, so "setup.py" is a file name, not a host.
_TLD = (r"com|net|org|io|dev|app|ai|co|cloud|info|biz|xyz|site|online|tech|me|us|uk|de|fr|ru|cn|jp|nl|eu|"
        r"ch|se|no|es|it|pt|br|in|ca|au|example|test|invalid|local|localhost|internal|corp|lan|onion")
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_URL = r"\b[a-z][a-z0-9+.-]{1,15}://\S+"
_HOST = rf"\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLD})\b(?![.-]?\w)"
_IP = r"\b\d{1,3}(?:\.\d{1,3}){3}\b"
# A path: starts at home (~), the root (/x), the current or parent directory, a drive letter,
# or has two or more segments (src/app.py); a lone "a/b" choice ("npm/pnpm") is no path.
_PATH = r"(?:~|\.{1,2})?/[\w.-]+|\b[a-z]:\\|\b[\w.-]+/[\w.-]+/[\w./-]*|(?<![\w/])\.{1,2}/\w"
_CREDENTIAL_FILE = (r"(?<![\w-])(?:\.env(?:\.\w+)?|\.netrc|\.pgpass|\.npmrc|\.pypirc|\.git-credentials|\.htpasswd|"
                    r"id_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?|\.ssh|\.aws|\.kube|\.docker|\.gnupg|"
                    r"credentials\.json|kubeconfig|\w+\.(?:pem|key|p12|pfx|kdbx|keystore))\b")

DESTINATION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(_EMAIL, re.I)),
    ("url", re.compile(_URL, re.I)),
    ("host", re.compile(_HOST, re.I)),
    ("ip_address", re.compile(_IP)),
    ("credential_file", re.compile(_CREDENTIAL_FILE, re.I)),
    ("path", re.compile(_PATH, re.I)),
)


# Kinds that are where data is sent or read from whatever the sentence says about them.
ALWAYS = frozenset({"email", "url", "credential_file", "ip_address"})


def destinations(text: str) -> list[str]:
    """The kinds of destination `text` names, in the order checked (empty when none)."""
    flat = skeleton(text)
    return [kind for kind, pattern in DESTINATION_PATTERNS if pattern.search(flat)]


def names_destination(text: str) -> bool:
    return bool(destinations(text))


# --- plain facts ------------------------------------------------------------------------------

# Words that make a sentence an order, a rule or a request rather than a report of how
# things are. A fact may still hold one ("the build never passes on Fridays"): it then
# waits for a person, which costs a click, not a leak.
_OBLIGATION = re.compile(
    r"\b(?:must|should|shall|ought|always|never|please|pls|make\s+sure|be\s+sure|remember\s+to|"
    r"from\s+now\s+on|need(?:s)?\s+to|has\s+to|have\s+to|(?:is|are)\s+(?:required\s+|expected\s+|supposed\s+)?to\s+be|"
    r"(?:is|are)\s+(?:required|expected|supposed)\s+to|"
    r"do\s+not|don'?t|dont|avoid|instead\s+of\s+asking|you|your|yourself|let'?s)\b",
    re.I,
)
# What leads into the sentence proper: list marks, "Note:", "Tip -", "Step 2." and the like.
_LEAD_IN = re.compile(r"^\s*(?:[-*•>#]+\s*|\d+[.)]\s*|(?:note|tip|rule|todo|reminder|step\s*\d*)\s*[:.-]\s*)+", re.I)
# Words English sentences are made of. A statement counts as English when at least a
# fifth of its words are among them (a labelled value needs one); French, German, Dutch
# or a bare command ("commit with -n") rarely are. A few are words of other languages too
# ("in", "an", "is"), which the share, not their presence, makes harmless.
_ENGLISH = frozenset(STOPWORDS | set(
    """isn't aren't wasn't doesn't didn't can't won't it's uses used runs ran lives lived works worked happen
    happens happened takes took owns owned prefers preferred likes liked wants wanted needs goes went starts started
    ends ended means costs holds kept keeps called named based since until via per all any each every one two""".split()))
# The commonest words of the other languages written in Latin letters (French, German,
# Spanish, Italian, Portuguese, Dutch, Polish): a sentence holding as many of them as of
# English ones is not English, whatever else it holds. Words English shares are left out.
_FOREIGN = frozenset(
    """le la les des du au aux et est sont une un pour sur avec dans qui que ne pas vous nous il elle ce cette
    der die das den dem des und ist sind nicht mit zu ein eine einen werden wird sie alle auf auch ich wir ihr
    el los las y es para con por del al lo su sus se una uno como pero muy
    il di che della delle gli e sono non con per una questo questa
    o os as da do das dos em um uma para com não são
    de het een en van niet naar voor met zijn worden dit deze
    w z na nie jest się do że to""".split()
) - _ENGLISH
# A label and its value: "Deploy window: Tuesdays 10:00". A short value needs no more to
# be a fact; a long one must read as English too.
_LABELLED = re.compile(r"^\s*[A-Za-z][\w '()/.&+-]{0,50}?:\s+\S")
_SHORT_VALUE = 3
ENGLISH_SHARE = 0.2


def plain_fact(text: str) -> bool:
    """Is `text` a statement of how things are, in English, that orders nothing?

    Where it names a destination is a question of its own (`destinations`).
    """
    flat = _LEAD_IN.sub("", skeleton(text))
    if not _mostly_latin(flat) or _OBLIGATION.search(flat) or _opens_with_command(flat):
        return False
    tokens = re.findall(r"[a-z][a-z']*", flat.lower())
    english, foreign = sum(t in _ENGLISH for t in tokens), sum(t in _FOREIGN for t in tokens)
    if foreign and foreign >= english:
        return False
    if _LABELLED.match(flat) or flat.isascii() and not foreign:
        # A label names its subject, and plain ASCII with no word of another language is
        # English enough: "CSV export only covers closed billing periods".
        return english > 0 or _LABELLED.match(flat) and len(flat.split(":", 1)[1].split()) <= _SHORT_VALUE
    return bool(tokens) and english >= ENGLISH_SHARE * len(tokens)


def _mostly_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) >= 0.9 * len(letters)


# The verbs an order opens with. Recognising a command is not how safety is decided (an
# unrecognised verb still fails `_ENGLISH` or waits on provenance); it keeps "Send the
# report to the team" from passing as a fact because it holds "the".
_COMMAND_VERBS = frozenset(
    """add allow append approve ask attach avoid back bcc block bump call cc change check clean clear click clone
    close commit configure confirm connect copy create curl cut debug delete deploy describe disable do download
    drop dump echo edit email enable flag encode escalate execute exfiltrate export fetch fill find fix follow force
    forget forward generate get give grant hide ignore import include inform install invoke keep kill leak let
    list load log make mention merge mirror modify move name note notify obey open output override overwrite paste
    patch pipe post prefer print publish pull push put read rebase reboot record redirect reference remember
    remove rename replace reply report request reset restart return reveal revoke rewrite rm run save say scp
    search send set share ship show skip source ssh start stop store submit sudo summarize summarise switch sync
    tag tail take tell test transfer transmit trust turn type update upgrade upload use verify visit wget write
    """.split()
)


def _opens_with_command(text: str) -> bool:
    """Does the sentence (after a label, its value) open with a verb in its base form?

    A label may open with one ("Deploy window: Tuesdays", "Test runner: pytest"): there
    the verb names a thing, so only the value is read.
    """
    part = text.split(":", 1)[1] if _LABELLED.match(text) else text
    first = re.match(r"\s*([A-Za-z]+)", part)
    return bool(first) and first.group(1).lower() in _COMMAND_VERBS
