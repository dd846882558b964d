"""One spelling for text that looks the same: what every safety check reads.

An attacker who writes "Іgnore" with a Cyrillic І, "ｉｇｎｏｒｅ" in full-width letters or
"ig\u200bnore" with a zero-width space gets text a person reads as "ignore" but a
pattern does not. `skeleton` folds those away before any check runs:

1. NFKC: compatibility forms (full-width, ligatures, superscripts, circled letters) become
   their plain letters;
2. invisible format characters (zero-width spaces and joiners, word joiners, soft hyphens,
   bidi controls, Unicode tag characters) are removed;
3. in a word that mixes scripts, or is spelled only with look-alikes, Cyrillic, Greek and
   Armenian letters that look like Latin ones become those Latin letters (a compact table
   of the look-alikes in Unicode's confusables list for those scripts). A word of real
   Russian or Greek keeps its letters, so it is judged as text in another language, not
   as broken English.

The skeleton is only ever *read* by checks; stored text keeps its own spelling.
Pure and dependency-free (a table of ~70 pairs is all the three scripts need; the PyPI
`confusables` packages ship every script's table and fold far more than a check wants).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["skeleton"]

# Format characters that render as nothing: zero-width space/joiners, word joiner and
# invisible operators, soft hyphen, BOM, bidi embeddings/overrides/isolates, tag characters.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")

_LOOKALIKES = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Һ": "H",
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h",
    "ɡ": "g", "ӏ": "l", "Ӏ": "I", "ѵ": "v", "ә": "e",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "α": "a", "ι": "i", "κ": "k", "ν": "v", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ε": "e", "ϲ": "c", "ϳ": "j",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ա": "w", "զ": "q",
    # Latin letters that pass for others
    "ı": "i", "ſ": "s", "ℓ": "l",
}
_FOLD = str.maketrans(_LOOKALIKES)


_WORD = re.compile(r"\w+")


def skeleton(text: str) -> str:
    """`text` as the checks read it: NFKC, without invisible characters, look-alikes as Latin."""
    if text.isascii():
        return text  # nothing to fold: most memory text
    flat = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _WORD.sub(_latin_if_spoofed, flat)


def _latin_if_spoofed(match: re.Match[str]) -> str:
    word = match.group()
    foreign = [c for c in word if not c.isascii()]
    if foreign and (len(foreign) < len(word) or all(c in _LOOKALIKES for c in foreign)):
        return word.translate(_FOLD)
    return word
