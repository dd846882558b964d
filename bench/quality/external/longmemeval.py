"""LongMemEval knowledge-update questions, one case each (`longmemeval_ku_dev.json`).

The haystack is `with_distractors` by default — the question's evidence sessions inside
~50 sessions of unrelated chat, the benchmark's realistic "S" setting — or only the
evidence sessions. The file does not list a haystack in date order; the case does.

The evidence is the turns marked `has_answer` in the evidence sessions. The gold answer is
scored by ans_hit only where the evidence states it verbatim ("Yes", "Five" for "fifth
issue" and the abstentions never are). ku_fresh wants that answer, or else `new_value`,
and counts only questions with hand-labelled `stale_values`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from bench.quality.external.cases import Case, Question, as_utc, dated
from bench.quality.external.measures import stated

FILE = "longmemeval_ku_dev.json"


def load(directory: Path, distractors: bool = True) -> list[Case]:
    questions = json.loads((directory / FILE).read_text(encoding="utf-8"))
    return [case(q, q["with_distractors"] if distractors else q) for q in questions]


def case(q: dict, haystack: dict) -> Case:
    sessions = [(parse_date(d), [turn(t) for t in s])
                for d, s in zip(haystack["haystack_dates"], haystack["haystack_sessions"], strict=True)]
    return Case(q["question_id"], dated(sessions), [question(q)])


def turn(t: dict) -> dict:
    return {"role": t["role"], "content": t["content"]}


def parse_date(text: str) -> datetime:
    """'2023/08/11 (Fri) 20:17'."""
    return as_utc(datetime.strptime(text, "%Y/%m/%d (%a) %H:%M"))


def question(q: dict) -> Question:
    evidence = [t["content"] for s in q["haystack_sessions"] for t in s if t.get("has_answer")]
    gold = str(q["answer"])
    verbatim = stated(gold, evidence)
    current = gold if verbatim else (q.get("new_value") or None)
    stale = tuple(q.get("stale_values") or ())
    return Question(q["question_id"], q["question"], answer=gold if verbatim else None,
                    current=current if stale else None, stale=stale)
