"""Defences against what an untrusted transcript may carry: secrets and injected orders.

Transcripts hold whatever the user pasted and whatever tools printed, so before anything
from them becomes memory two questions are asked. `redact` removes credentials, replacing
each with `[REDACTED:<kind>]`; `instruction_like` says whether a piece of text reads like an
order aimed at the agent (a prompt injection) rather than a fact or a preference.
`quoted_in` checks a model's quote against stored text, which was redacted before storing.

Invariants:
- `SECRET_PATTERNS` is applied in order, specific before generic, so a key with a known
  prefix is named for its vendor rather than caught by an assignment or hex rule.
- Where a secret sits in a readable frame (`password: …`, `Bearer …`, `user:pass@host`)
  only the value is replaced, so the redacted text still says what was there.
- Redaction is idempotent: no pattern matches a `[REDACTED:…]` marker, so redacting
  twice changes nothing and counts nothing.
- `redact` returns what running every pattern over the text would: the literals and
  shapes it checks first only skip scans that cannot match.
- Every function here is pure; `instruction_like` reads text through `confusables.skeleton`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:  # module attributes built on first access (`__getattr__` below)
    SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...]  # (kind, pattern), applied in this order
    INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...]

__all__ = ["INJECTION_PATTERNS", "SECRET_PATTERNS", "holds_secret", "instruction_like", "may_hold_secret", "quoted_in",
           "redact", "visible"]

# A value that is already a marker must never be redacted again (idempotence).
_NOT_MARKER = r"(?!\[REDACTED:)"

# --- credential-looking values in `key: value` assignments -----------------------------
#
# The rule that keeps prose intact ("the password policy requires 12 characters", "reset
# your password: go to settings"): a value counts as a credential only if it has no
# spaces, is at least 6 characters, is not a placeholder (`$VAR`, `<password>`, `{x}`,
# `***`) and is not a common word such as "required" or "reset". After `=` or inside
# quotes the text is code, so that is enough. After a bare `:`, a space or "is" it may be
# prose, so the value must also hold a digit or a symbol other than sentence punctuation:
# "password: hunter2" and "the password is hunter2" are redacted, "password: required"
# and "the secret is patience." are not. A bare space is only accepted after an
# identifier-shaped key (`client_secret abc123…`), never after a plain word, because
# "password policy" and "token limit 128000" are ordinary English.
_COMMON_WORDS = (
    "required|requires|reset|changed|change|expired|expires|invalid|incorrect|missing|"
    "updated|update|unknown|hidden|redacted|protected|provided|removed|rotated|revoked|"
    "enabled|disabled|optional|example|placeholder|undefined|none|null|empty|"
    "policy|manager|field|please|should|cannot"
)
_VALUE_CHAR = r"[^\s'\"`,;&]"
# Bounds on how far a pattern may scan keep redaction linear on hostile input (a long
# run of "password:password:…" would otherwise be re-scanned from every occurrence).
_MAX_VALUE = 512
# The last character may not be sentence punctuation, so "is hunter2." keeps its full stop.
_VALUE_BODY = rf"{_VALUE_CHAR}{{5,{_MAX_VALUE}}}[^\s'\"`,;&.!?)]"
_CODE_VALUE = rf"{_NOT_MARKER}(?![$<{{%*])(?!(?:{_COMMON_WORDS})\b){_VALUE_BODY}"
_CREDENTIAL_MARK = r"[0-9@#$%^*_+=\\~|]"
_PROSE_VALUE = rf"(?={_VALUE_CHAR}{{0,{_MAX_VALUE}}}?{_CREDENTIAL_MARK}){_CODE_VALUE}"
_SECRET_WORD = r"(?:password|passwd|passphrase|pass|pwd|secret|api[_-]?key|apikey|access[_-]?key|token)"
# SECRET_KEY, token_value: a secret word may carry one of these after it and stay a secret's name.
_SECRET_SUFFIX = r"(?:[_-](?:key|value|hash|b64|base64|salt))?"
# PGPASSWORD, MYSQLPWD: an environment variable's name glued to the word, uppercase as shells write them.
_GLUED = r"(?-i:[A-Z][A-Z0-9]{0,19})(?=(?-i:PASSWORD|PASSWD|PWD|SECRET|TOKEN))"

_ASSIGNMENT = rf"""
    (?<![\w-])(?:(?P<prefix>(?:[A-Za-z0-9]+[_-])+)|{_GLUED})?{_SECRET_WORD}{_SECRET_SUFFIX}(?![A-Za-z0-9])["']?
    (?:
        [ \t]*=[ \t]*["']?(?P<secret_code>{_CODE_VALUE})          # key=value, KEY="value"
      | [ \t]*:[ \t]*["'](?P<secret_quoted>{_CODE_VALUE})         # "key": "value"
      | [ \t]*:[ \t]*(?P<secret_prose>{_PROSE_VALUE})             # key: value
      | [ \t]+is[ \t]+(?P<secret_is>{_PROSE_VALUE})                # the password is hunter2
      | (?(prefix)[ \t]+(?P<secret_bare>{_PROSE_VALUE})|(?!))    # client_secret value
    )
"""

# A 40-character hex string is also a git commit id, so hex alone proves nothing; it is
# only a secret when a key-ish word stands right before it.
_HEX_SECRET = r"""
    (?<![A-Za-z0-9])(?:api)?(?:key|secret|token|passw(?:or)?d|credentials?|auth|authorization|signature)
    (?:[_-][\w-]{0,20})?["']?
    (?:[ \t]*[:=][ \t]*|[ \t]+(?:is[ \t]+)?)["']?
    (?P<secret>[0-9a-fA-F]{40,})\b
"""

_PEM_PRIVATE_KEY = r"""
    -----BEGIN[ ][A-Z0-9 ]*PRIVATE[ ]KEY(?:[ ]BLOCK)?-----      # PEM, OpenSSH, PGP armour
    (?:[\s\S]*?-----END[ ][A-Z0-9 ]*PRIVATE[ ]KEY(?:[ ]BLOCK)?-----
      | (?:[A-Za-z0-9+/=\s]|[A-Za-z][\w-]*:[^\n]*)*+)   # cut off before its END line; PGP's "Version:" lines
"""

# Command lines: `--password=X`, `--token X`, `mysql -pX`, `sshpass -p X`, `docker login -p X`,
# `curl -u user:X`. The flag names the value, so any value counts, markers aside.
# An opening quote is matched before the group, so the value goes and its quotes stay.
_FLAG_VALUE = rf"""{_NOT_MARKER}(?![$<{{%*])(?:(?<=')[^'\n]{{1,{_MAX_VALUE}}}(?=')|(?<=")[^"\n]{{1,{_MAX_VALUE}}}(?=")
                 |[^\s'"`;&|]{{1,{_MAX_VALUE}}})"""
_CLI_PASSWORD = rf"""
    (?<![\w-])--(?:[a-z0-9]+-){{0,3}}(?:password|passwd|pass|passphrase|token|secret|api-?key|access-key)
        (?:=|[ \t]+)["']?(?P<secret_long>{_FLAG_VALUE})
  | \b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n|;&]{{0,200}}?[ \t]-p["']?(?P<secret_glued>{_FLAG_VALUE})
  | \b(?:sshpass[ \t]+|docker[ \t]+login\b[^\n|;&]{{0,200}}?[ \t])-p[ \t]*["']?(?P<secret_p>{_FLAG_VALUE})
  | (?<![\w-])(?:-u|--user)[ \t]+["']?[^\s:'"]{{1,256}}:["']?(?P<secret_user>{_FLAG_VALUE})
"""

# `Authorization: Basic …`, `Proxy-Authorization: Token …`: whatever scheme, the credential goes.
_AUTHORIZATION = rf"""
    \b(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?(?:[A-Za-z][\w-]{{0,30}}[ \t]+)?
    (?P<secret>{_NOT_MARKER}(?=[A-Za-z0-9._~+/=%:-]*[^A-Za-z\s])[A-Za-z0-9._~+/=%:-]{{8,{_MAX_VALUE}}})
"""
# Every cookie is a session, so the header's whole value goes, up to the line's end.
_COOKIE = rf"""\b(?:set-)?cookie["']?[ \t]*:[ \t]*["']?(?P<secret>{_NOT_MARKER}[^\s"';=]{{1,256}}=[^\r\n"']{{1,4096}})"""
# A webhook URL is its own credential: whoever has it can post.
_WEBHOOK = r"""https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/)[A-Za-z0-9/_-]{8,}"""
# .netrc: `machine host login alice password X`, on one line or several.
_NETRC = rf"""\b(?:machine|default|login)\b[^\n]{{0,200}}?[ \t]password[ \t]+["']?(?P<secret>{_FLAG_VALUE})"""


def _src(pattern: str, flags: int = 0) -> tuple[str, int]:
    """A pattern's source, compiled on first use (`_secret_pattern`, `_injection_patterns`):
    a process that redacts or screens nothing, such as a SessionStart hook, never pays the
    ~15 ms that compiling them all takes."""
    return pattern, flags


_SECRET_SOURCES: tuple[tuple[str, tuple[str, int]], ...] = (
    ("private_key", _src(_PEM_PRIVATE_KEY, re.X)),
    ("anthropic_key", _src(r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}")),
    ("openai_key", _src(r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("aws_access_key_id", _src(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    (
        "aws_secret_access_key",
        _src(
            rf"(?:aws_)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<secret>{_NOT_MARKER}[A-Za-z0-9/+=]{{40}})",
            re.I,
        ),
    ),
    ("github_token", _src(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("gitlab_token", _src(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("slack_token", _src(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("stripe_key", _src(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("google_api_key", _src(r"\bAIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])")),
    ("npm_token", _src(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("reverie_token", _src(r"\brvt_[A-Za-z0-9_-]{20,}")),
    ("huggingface_token", _src(r"\bhf_[A-Za-z0-9]{30,}")),
    ("pypi_token", _src(r"\bpypi-AgE[A-Za-z0-9_-]{50,}")),
    ("digitalocean_token", _src(r"\bdo[por]_v1_[a-f0-9]{64}\b")),
    ("azure_account_key", _src(rf"AccountKey=(?P<secret>{_NOT_MARKER}[A-Za-z0-9+/]{{40,}}={{0,2}})")),
    ("sendgrid_key", _src(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),
    ("twilio_api_key", _src(r"\bSK[0-9a-f]{32}\b")),
    ("jwt", _src(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("webhook_url", _src(_WEBHOOK)),
    # Opaque tokens nearly always hold a digit or symbol; demanding one keeps prose like
    # "bearer authentication" out.
    (
        "bearer_token",
        _src(
            rf"\b(?i:bearer)[ \t]+(?P<secret>{_NOT_MARKER}(?=[A-Za-z0-9._~+/=-]*[^A-Za-z\s])[A-Za-z0-9._~+/=-]{{16,}})"
        ),
    ),
    ("authorization_header", _src(_AUTHORIZATION, re.X | re.I)),
    ("cookie_header", _src(_COOKIE, re.X | re.I)),
    ("cli_password", _src(_CLI_PASSWORD, re.X | re.I)),
    ("netrc_password", _src(_NETRC, re.X)),
    (
        "url_password",
        _src(rf"\b[a-zA-Z][a-zA-Z0-9+.-]{{0,30}}://[^\s:/@]{{0,256}}:(?P<secret>{_NOT_MARKER}[^\s/@]{{1,256}})@"),
    ),
    ("hex_secret", _src(_HEX_SECRET, re.X | re.I)),
    ("secret_assignment", _src(_ASSIGNMENT, re.X | re.I)),
)

_SECRET_KINDS = tuple(kind for kind, _ in _SECRET_SOURCES)
_SECRET_SOURCE = dict(_SECRET_SOURCES)


@functools.cache
def _secret_pattern(kind: str) -> re.Pattern[str]:
    source, flags = _SECRET_SOURCE[kind]
    return re.compile(source, flags)


# What each pattern cannot match without: lowercase literals, at least one of which must be
# in the case-folded text. Most turns of a transcript hold none of them and skip every
# scan; a turn that mentions "auth" or "token" runs only the patterns that need those words.
# A new pattern must add its literals here (test_ingest_speed_paths checks every kind has
# some, and that redaction matches running every pattern).
_LITERALS: dict[str, tuple[str, ...]] = {
    "private_key": ("-----begin ",),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "aws_access_key_id": ("akia", "asia"),
    "aws_secret_access_key": ("secret_access_key", "secretaccesskey"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": ("glpat-",),
    "slack_token": ("xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"),
    "stripe_key": ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    "google_api_key": ("aiza",),
    "npm_token": ("npm_",),
    "reverie_token": ("rvt_",),
    "huggingface_token": ("hf_",),
    "pypi_token": ("pypi-age",),
    "digitalocean_token": ("dop_v1_", "doo_v1_", "dor_v1_"),
    "azure_account_key": ("accountkey=",),
    "sendgrid_key": ("sg.",),
    "twilio_api_key": tuple(f"sk{digit}" for digit in "0123456789abcdef"),
    "jwt": ("eyj",),
    "webhook_url": ("hooks.slack.com/", "/api/webhooks/"),
    "authorization_header": ("authorization",),
    "cookie_header": ("cookie",),
    "cli_password": ("--", "-u", "mysql", "mariadb", "sshpass", "docker"),
    "netrc_password": ("machine", "login", "default"),
    "bearer_token": ("bearer",),
    "url_password": ("://",),
    "hex_secret": ("key", "secret", "token", "passw", "credential", "auth", "signature"),
    "secret_assignment": ("pass", "pwd", "secret", "apikey", "api_key", "api-key", "access_key", "access-key",
                          "accesskey", "token"),
}


def _trie(words: list[str]) -> str:
    """A regex for any of `words`, branching one character at a time, longest first.

    re tries each alternative of "a|b|c" in turn at every position, so a flat list of ~70
    literals costs as much as the scans it guards; a trie fails after a character or two.
    """
    branches: dict[str, list[str]] = {}
    for word in words:
        if word:
            branches.setdefault(word[0], []).append(word[1:])
    alternatives = [re.escape(first) + _trie(rests) for first, rests in sorted(branches.items())]
    if "" in words:
        alternatives.append("")
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


_ALL_LITERALS = sorted({literal for literals in _LITERALS.values() for literal in literals})


# Built on first use, as the patterns are: a SessionStart hook checks an agent id or two,
# which `_clues` reads without them (`_SHORT`).
@functools.cache
def _literal() -> re.Pattern[str]:
    return re.compile(_trie(_ALL_LITERALS))


@functools.cache
def _kinds_at() -> dict[str, frozenset[str]]:
    """The kinds whose literal starts where each (longest) literal does: it or a prefix of it."""
    return {found: frozenset(kind for kind, literals in _LITERALS.items() if any(found.startswith(x) for x in literals))
            for found in _ALL_LITERALS}


# Up to this length a text is searched for the literals with `in`, one by one, until the
# trie is built: a process that checks only ids and names (a SessionStart hook: its agent
# id) never spends the ~2 ms building it. But the loop costs ~10 µs a text where the trie
# takes ~1, so once a process has checked _SHORT_SCANS short texts (logging a session: its
# short turns) or one longer text, every text is searched with the trie.
_SHORT = 64
_SHORT_SCANS = 32
_short_scans = itertools.count()

# Under re.I these four letters match an ASCII one, but str.lower() leaves them alone (or,
# for İ, adds a combining dot), so a literal test would miss "paſsword: hunter2".
_REGEX_CASE_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _folded(text: str) -> str:
    """`text` lowercased the way the case-insensitive patterns compare letters."""
    return text.lower() if text.isascii() else text.translate(_REGEX_CASE_FOLD).lower()


class _Clues(NamedTuple):
    folded: str
    hits: list[tuple[int, str]]  # (where, the longest literal starting there)
    kinds: frozenset[str]  # the patterns one of whose literals is in the text


def _clues(folded: str) -> _Clues:
    if (len(folded) <= _SHORT and _literal.cache_info().currsize == 0 and next(_short_scans) < _SHORT_SCANS
            and not any(literal in folded for literal in _ALL_LITERALS)):
        return _Clues(folded, [], frozenset())
    hits, literal = [], _literal()
    for match in literal.finditer(folded):
        hits.append((match.start(), match.group()))
        # finditer resumes after the match, but a literal may start inside it ("sk-----begin ").
        hits += [(at, inner.group()) for at in range(match.start() + 1, match.end())
                 if (inner := literal.match(folded, at))]
    kinds_at = _kinds_at()
    return _Clues(folded, hits, frozenset().union(*(kinds_at[found] for _, found in hits)))


# The two generic patterns are the slow ones (every word start is a candidate) and prose
# says "token" or "auth" often, so they also need a shape that every match of theirs has.
# A shape may be looser than its pattern, never stricter.
_HEX_DIGITS = bytes.maketrans(b"0123456789abcdef", b"x" * 16)
_FORTY_HEX = b"x" * 40
# _SECRET_WORD is lowercase: without re.I it matches the folded text just as the pattern,
# under re.I, matches the original.
_ASSIGNED = rf"{_SECRET_WORD}{_SECRET_SUFFIX}[\"']?(?:[ \t]*[=:]|[ \t]+is[ \t])"  # key=, key:, key is
_BARE = rf"{_SECRET_WORD}{_SECRET_SUFFIX}[\"']?[ \t]"  # after a prefix: client_secret abc123


# Shapes that every match has at the position of one of its kind's literals: a turn that
# mentions "cookies", "authorization" or a `--flag` runs those patterns only when the shape is there.
_SHAPE_AT = {
    "cli_password": r"--(?:[a-z0-9]+-){0,3}(?:pass|token|secret|api-?key|access-key)"
                    r"|-u(?:ser)?[ \t]+[\"']?[^\s:'\"]+:|mysql|mariadb|sshpass|docker[ \t]+login",
    "cookie_header": r"cookie[\"']?[ \t]*:",
    "authorization_header": r"authorization[\"']?[ \t]*[:=]",
    "netrc_password": r"(?:machine|default|login)\b[^\n]{0,200}?[ \t]password[ \t]",
}


@functools.cache
def _compiled(source: str) -> re.Pattern[str]:
    """A shape (or `_INVISIBLE`) compiled on first use: many processes never need one."""
    return re.compile(source)


def _has_shape_at(kind: str, clues: _Clues) -> bool:
    shape, kinds_at = _compiled(_SHAPE_AT[kind]), _kinds_at()
    return any(shape.match(clues.folded, at) for at, found in clues.hits if kind in kinds_at[found])


def _has_shape(kind: str, clues: _Clues) -> bool:
    if kind in _SHAPE_AT:
        return _has_shape_at(kind, clues)
    if kind == "hex_secret":  # 40 hex digits in a row (a bytes table is ~10x faster than re here)
        return _FORTY_HEX in clues.folded.encode().translate(_HEX_DIGITS)
    if kind == "secret_assignment":  # looked for only where a secret word starts
        folded, assigned, bare, kinds_at = clues.folded, _compiled(_ASSIGNED), _compiled(_BARE), _kinds_at()
        return any(assigned.match(folded, at) or (folded[at - 1 : at] in ("_", "-") and bare.match(folded, at))
                   for at, found in clues.hits if kind in kinds_at[found])
    return True


# Characters that render as nothing. Between two visible ASCII characters they serve no
# script (joiners in emoji and Persian, direction marks in Hebrew sit beside non-ASCII), and
# one inside a key would split it past every pattern, so they go before anything is matched.
_INVISIBLE = "(?<=[!-~])[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+(?=[!-~])"


def visible(text: str) -> str:
    """`text` without the invisible characters hidden inside ASCII words (keys, passwords)."""
    return text if text.isascii() else _compiled(_INVISIBLE).sub("", text)


def redact(text: str) -> tuple[str, int]:
    """Replace every secret with `[REDACTED:<kind>]`; return the new text and how many.

    Every text Reverie stores passes here, so this is also where U+0000 becomes U+FFFD:
    PostgreSQL text cannot hold it, and a memory must read the same on either backend.
    """
    text = visible(text).replace("\x00", "\ufffd")
    clues, total = _clues(_folded(text)), 0
    if not clues.hits:
        return text, 0  # most turns of a transcript
    for kind in _SECRET_KINDS:
        if kind in clues.kinds and _has_shape(kind, clues):
            text, count = _secret_pattern(kind).subn(_REPLACERS[kind], text)
            if count:
                # A marker is new text the later patterns must see, as a scan by every pattern would.
                clues, total = _clues(_folded(text)), total + count
    return text, total


class _Turn(Protocol):
    @property
    def content(self) -> str: ...
    @property
    def tool_name(self) -> str | None: ...


TurnT = TypeVar("TurnT", bound=_Turn)


def redacted_turns(turns: Sequence[TurnT], rebuilt: Callable[[TurnT, str, str | None], TurnT]) -> tuple[list[TurnT], int]:
    """Each turn with its text and tool name redacted (`rebuilt` makes the new turn: a model
    or a plain record), and how many secrets there were."""
    clean, total = [], 0
    for turn in turns:
        content, count = redact(turn.content)
        tool_name, in_name = redact(turn.tool_name) if turn.tool_name else (None, 0)
        total += count + in_name
        # Most turns redact to themselves; reusing them saves a copy each.
        changed = content != turn.content or tool_name != turn.tool_name
        clean.append(rebuilt(turn, content, tool_name) if changed else turn)
    return clean, total


def may_hold_secret(text: str) -> bool:
    """False only when `text` holds none of the literals every secret pattern needs, so that
    `redact` would return it unchanged: a cheap test for text that a caller would otherwise
    take apart before redacting (a transcript's JSON line)."""
    return bool(_literal().search(_folded(visible(text))))


def holds_secret(text: str) -> bool:
    """Does `text` hold a secret, even glued to a prefix (`ses-sk-ant-…`)? For short ids and names,
    which are refused rather than rewritten: each tail after a separator is tried on its own."""
    starts = [0, *(at + 1 for at, char in enumerate(text) if not char.isalnum())]
    return redact(text)[0] != text or any(redact(text[start:])[1] for start in starts[1:])


def quoted_in(quote: str, text: str) -> bool:
    """Is `quote` in `text`, ignoring case, spacing and a trailing "…"?

    `text` was stored redacted, so the quote is redacted the same way before comparing:
    a model that copies a secret from the transcript it read still cites the right turn.
    """
    return _flat(redact(quote)[0].rstrip("…")) in _flat(text)


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


def _replacer(kind: str) -> Callable[[re.Match[str]], str]:
    marker = f"[REDACTED:{kind}]"

    def replace(match: re.Match[str]) -> str:
        start, end = _secret_span(match)
        whole, offset = match.group(0), match.start()
        return whole[: start - offset] + marker + whole[end - offset :]

    return replace


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    """The part to hide: a `secret*` group when the pattern frames its value, else all."""
    for name, value in match.groupdict().items():
        if name.startswith("secret") and value is not None:
            return match.span(name)
    return match.span()


_REPLACERS = {kind: _replacer(kind) for kind in _SECRET_KINDS}


# --- instructions aimed at the agent ----------------------------------------------------
#
# Memory holds facts and the user's own preferences, which are often imperative ("Always
# run the tests before committing", "Use pnpm, not npm"). So an imperative alone is never
# suspicious; what is suspicious is overriding earlier instructions, claiming a new role,
# hiding things from the user, moving data somewhere, or switching protections off.

_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_URL = r"(?:https?|ftp)://\S+"
_AI_NAME = r"(?:ai|assistant|agent|llm|claude|chatgpt|gpt)s?"
_AI = r"(?:ai|assistant|agent|llm|model|claude|chatgpt|gpt)s?"
_MOVE_VERB = r"(?:send|e-?mail|forward|upload|post|share|transmit|leak|cc|bcc)(?:s|es|ed|d|ing)?"

_INJECTION_SOURCES: tuple[tuple[str, tuple[str, int]], ...] = (
    (
        "override_instructions",
        _src(
            r"\b(?:ignore|disregard|forget|override)\s+(?:\w+\s+){0,4}?"
            r"(?:instructions?|prompts?|rules|directions|directives|guidelines|(?:everything|all)\s+above|the\s+above)\b",
            re.I,
        ),
    ),
    ("role_change", _src(r"\byou\s+are\s+now\b|\bact\s+as\s+(?:an?\s+)?unrestricted\b", re.I)),
    ("new_instructions", _src(r"\b(?:new|updated|revised)\s+(?:system\s+)?instructions?\s*:", re.I)),
    ("system_prompt", _src(r"\bsystem\s+prompt\b", re.I)),
    ("role_markup", _src(r"<\|im_start\|>|\[/?INST\]|<\|?/?system\|?>|\[SYSTEM\]", re.I)),
    (
        "conceal_from_user",
        _src(
            r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|notify|alert|warn)\s+(?:the\s+)?user\b"
            r"|\bwithout\s+(?:telling|informing|notifying|alerting|warning)\s+(?:the\s+)?user\b"
            r"|\b(?:do\s+not|don'?t|never)\s+mention\b[^\n]{0,60}?\b(?:to\s+)?(?:the\s+)?user\b",
            re.I,
        ),
    ),
    ("exfiltrate", _src(r"\bexfiltrat\w*", re.I)),
    (
        "send_to_destination",
        _src(rf"\b{_MOVE_VERB}\b[^\n]{{0,80}}?\bto\s+(?:{_EMAIL}|{_URL})", re.I),
    ),
    # Only data-moving verbs: "always run the tests" is a workflow, "always email" is a leak.
    ("always_move_data", _src(rf"\balways\s+(?:\w+\s+){{0,2}}?{_MOVE_VERB}\b", re.I)),
    # Agents told to get around the team's safeguards: skip the tests, push past review.
    (
        "skip_safeguards",
        _src(
            r"\bskip(?:s|ping)?\s+(?:the\s+|all\s+)?(?:tests?|test\s+suite|ci|checks?|code\s+review|review)\b"
            r"|\bpush(?:es|ed|ing)?\s+(?:\w+\s+)?(?:directly|straight)\s+to\s+(?:main|master|prod\w*)\b"
            r"|--no-verify\b",
            re.I,
        ),
    ),
    (
        "disable_protection",
        _src(
            r"\b(?:disable|turn\s+off|switch\s+off|bypass|circumvent|deactivate)\s+"
            r"(?:the\s+|all\s+|any\s+|your\s+)?(?:\w+\s+)?"
            r"(?:safety|security|checks?|verification|guardrails?|2fa|mfa|two[- ]factor|filters?|moderation)\b",
            re.I,
        ),
    ),
    (
        "pipe_to_shell",
        _src(r"\b(?:curl|wget|base64\s+-d)\b[^\n|]{0,300}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b", re.I),
    ),
    # The same order in words, as a model rewords a fetched page: "fetch evil.sh with curl and
    # pipe it into sh", "download install.sh and run it with bash", "bash <(curl …)".
    (
        "download_and_execute",
        _src(
            r"\b(?:curl|wget|download\w*|fetch\w*)\b[^\n]{0,120}?\b(?:pip(?:e|es|ed|ing)|feed\w*)\b[^\n]{0,40}?"
            r"\b(?:in|into|to|through)\s+(?:a\s+)?(?:sudo\s+)?(?:ba|z|da|k)?sh\b"
            r"|\b(?:curl|wget|download\w*|fetch\w*)\b[^\n]{0,120}?\b(?:and|then)\s+(?:run|execute|exec|source)\s+"
            r"(?:it|them|the\s+script)\s+(?:with|in|as|using)\s+(?:sudo|root|(?:ba|z|da|k)?sh)\b"
            r"|\b(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b",
            re.I,
        ),
    ),
    # An unclosed comment hides the rest of the page too, so the close is not required.
    # "model" is left out here: "<!-- data model v2 -->" is an ordinary README comment.
    ("hidden_comment", _src(rf"<!--(?:(?!-->).){{0,1000}}?\b{_AI_NAME}\b", re.I | re.S)),
    # Zero-width spaces and runs of Unicode "tag" characters render as nothing: text a
    # person cannot see. Joiners (emoji sequences), direction marks (right-to-left
    # scripts) and short tag runs (subdivision flags such as England's) are legitimate.
    ("invisible_text", _src("[\u200b\u2060-\u2064]|[\U000e0000-\U000e007f]{8,}")),
    (
        "addressed_to_ai",
        _src(
            rf"\b(?:important|note|attention|urgent)\b\s*[:!-]\s*(?:the\s+|all\s+)?{_AI}\b[^.\n]{{0,40}}?"
            rf"\b(?:must|should|shall|needs?\s+to|has\s+to)\b"
            rf"|\b{_AI}\s+(?:reading|processing|summari[sz]ing)\s+this\b",
            re.I,
        ),
    ),
)


def instruction_like(text: str) -> bool:
    """True when `text` reads like an order aimed at the agent rather than a fact.

    The patterns read the text as written (invisible characters are a finding of their
    own) and as its confusable skeleton, so "Іgnore" with a Cyrillic І reads as "Ignore".
    """
    return any(pattern.search(form) for form in _forms(text) for _, pattern in _injection_patterns())


@functools.cache
def _injection_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((name, re.compile(source, flags)) for name, (source, flags) in _INJECTION_SOURCES)


def __getattr__(name: str) -> object:
    """`SECRET_PATTERNS` and `INJECTION_PATTERNS`, compiled when first asked for (see `_src`)."""
    if name == "SECRET_PATTERNS":
        return tuple((kind, _secret_pattern(kind)) for kind in _SECRET_KINDS)
    if name == "INJECTION_PATTERNS":
        return _injection_patterns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _forms(text: str) -> tuple[str, ...]:
    from reverie.confusables import skeleton  # here: most processes screen nothing (the hooks)

    folded = skeleton(text)
    return (text,) if folded == text else (text, folded)
