"""The external quality bench (`python -m bench.quality --external`) on data these tests write.

The public data never enters the repository or the test suite: each test writes the few
questions, turns or pairs it needs, in the public files' formats. The measures are held
to the data README's definitions; the end-to-end run checks what is counted, not what
the engine achieves (that is the bench's output, and it changes as the engine does).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # bench/ sits beside tests/ at the repo root, not installed

from bench.quality.__main__ import main as quality_main
from bench.quality.external import command, locomo, longmemeval
from bench.quality.external.agent import connect
from bench.quality.external.cases import Case, Clock, Question, Session, batches, clock_after, dream_time
from bench.quality.external.figures import Measure, restates, supersedes
from bench.quality.external.measures import Reading, ans_hit, evid_hit, ku_fresh, normalise, occurs
from bench.quality.external.pairs import Pair, outcome

MAY_1 = datetime(2023, 5, 1, 9, 0, tzinfo=UTC)


def read(text: str) -> Reading:
    return Reading.of(text)


# --- measures --------------------------------------------------------------------------------


def test_normalising_lowercases_and_drops_punctuation_and_articles():
    assert normalise("The “Snack Stadium”, an A-list idea!\n  A win.") == "snack stadium alist idea win"


@pytest.mark.parametrize(("phrase", "text", "found"), [
    ("17", "I've added 17 new ones", True),
    ("17", "I have 170 postcards", False),
    ("17", "collecting since 2017", False),
    ("17", "(from session-17)", False),
    ("5", "my 5th project", False),
    ("7:00 pm", "the gym at 17:00 pm", False),
    ("7:00 pm", "the gym at 7:00 PM.", True),
    ("living room", "moved it from the Living-Room? no: living room", True),
], ids=["whole", "longer-number", "year", "session-id", "ordinal", "time-inside-time", "time", "words"])
def test_a_number_is_found_only_as_a_whole_number(phrase, text, found):
    assert occurs(phrase, read(text)) is found


def test_ku_fresh_wants_the_current_value_without_any_stale_one():
    question = Question("q", "How many postcards?", answer="25", current="25", stale=("17",))
    assert ku_fresh(question, read("I've added 25 new postcards")) is True
    assert ku_fresh(question, read("I've added 25 new postcards (earlier: 17)")) is False
    assert ku_fresh(question, read("I've added 125 new postcards")) is False
    assert ku_fresh(question, read("I've added 17 since 2025")) is False


def test_questions_a_measure_does_not_apply_to_are_not_counted():
    bare = Question("q", "Do I have a spare screwdriver?")
    assert ans_hit(bare, read("yes")) is None
    assert ku_fresh(bare, read("yes")) is None
    assert evid_hit(bare, read("yes")) is None


def test_evid_hit_is_the_share_of_evidence_turns_whose_content_words_are_80_percent_present():
    question = Question("q", "What does Mel do?", evidence=(
        "I just signed up for a pottery class yesterday.",  # content words: signed pottery class yesterday
        "Painting sunsets calms me down.",                  # painting sunsets calms
    ))
    assert evid_hit(question, read("Mel signed up for a pottery class")) == 0.0  # 3 of 4 is under 80%
    assert evid_hit(question, read("signed: pottery class, yesterday")) == 0.5
    assert evid_hit(question, read("yesterday, class: pottery (signed) … calms, painting sunsets")) == 1.0


def test_a_question_the_dream_made_worse_is_named():
    measure = Measure("evid_hit")
    for qid, before, after in [("kept", 1.0, 1.0), ("lost", 0.5, 0.0), ("gained", 0.0, 1.0), ("unscored", None, 1.0)]:
        measure.add(qid, before, after)
    assert measure.ids == ["kept", "lost", "gained"] and measure.lowered == ["lost"]
    assert measure.mean(measure.before) == 0.5


# --- statement pairs ---------------------------------------------------------------------------


PAIR = Pair(1, "Team database: PostgreSQL 14", "Team database: PostgreSQL 16", "update")


def entry(content: str, *sources: str) -> dict:
    return {"content": content, "sources": list(sources)}


@pytest.mark.parametrize(("entries", "expected"), [
    ([], "none"),
    ([entry("Lunch is at noon", "other")], "none"),
    ([entry("Team database: PostgreSQL 14", "older"), entry("Team database: PostgreSQL 16", "newer")], "both"),
    ([entry("Team database: PostgreSQL 16", "older", "newer")], "merged, newer wording"),
    ([entry("Team database: PostgreSQL 14", "newer", "older")], "merged, older wording"),
    ([entry("Team database: PostgreSQL 16", "newer"), entry("Lunch is at noon", "other")], "newer only"),
    ([entry("Team database: PostgreSQL 14", "older")], "older only"),
], ids=["nothing", "unrelated-entry", "two-entries", "merged-newer", "merged-older", "newer-only", "older-only"])
def test_a_pair_outcome_is_read_from_which_active_entries_cite_which_session(entries, expected):
    assert outcome(PAIR, entries) == expected


# --- loading the public formats -------------------------------------------------------------------


def lme_question(qid: str, answer: str, stale: list[str], new_value: str) -> dict:
    """One LongMemEval knowledge-update question: the old value, then the new one, plus a distractor."""
    old = [{"role": "user", "content": "My cat Zanzibar is 6 months old.", "has_answer": True},
           {"role": "assistant", "content": "Kittens at that age love to play."}]
    new = [{"role": "user", "content": "Zanzibar turned 9 months old this week!", "has_answer": True},
           {"role": "assistant", "content": "Happy nine months to Zanzibar."}]
    chat = [{"role": "user", "content": "Any tips for growing basil on a windowsill?"},
            {"role": "assistant", "content": "Water it when the soil is dry."}]
    return {
        "question_id": qid, "question_type": "knowledge-update", "question": "How old is my cat Zanzibar?",
        "answer": answer, "question_date": "2023/12/20 (Wed) 22:41",
        "haystack_dates": ["2023/08/11 (Fri) 20:17", "2023/11/30 (Thu) 20:25"],
        "haystack_session_ids": ["a1", "a2"], "haystack_sessions": [old, new], "answer_session_ids": ["a1", "a2"],
        "stale_values": stale, "new_value": new_value,
        "with_distractors": {  # out of date order, as in the public file
            "haystack_dates": ["2023/11/30 (Thu) 20:25", "2023/09/03 (Sun) 18:27", "2023/08/11 (Fri) 15:58"],
            "haystack_session_ids": ["a2", "d1", "a1"], "haystack_sessions": [new, chat, old],
            "answer_session_ids": ["a1", "a2"],
        },
    }


def locomo_sample() -> dict:
    return {"sample_id": "conv-x", "conversation": {
        "speaker_a": "Caroline", "speaker_b": "Melanie",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Caroline", "dia_id": "D1:1", "text": "I went to a support group yesterday."},
            {"speaker": "Melanie", "dia_id": "D1:2", "text": "I painted a sunrise over the lake.",
             "blip_caption": "a photo of a painting"},
        ],
        "session_2_date_time": "10:37 am on 27 June, 2023",
        "session_2": [{"speaker": "Melanie", "dia_id": "D2:1", "text": "We went camping in the mountains."}],
    }, "qa": [
        {"question": "Who painted a sunrise?", "answer": "Melanie", "evidence": ["D1:2"], "category": 4},
        {"question": "Who went camping in the mountains after the support group?", "answer": "camping",
         "evidence": ["D2:1; D1:1", "D9:9"], "category": 1},
        {"question": "What did Caroline paint?", "adversarial_answer": "a sunrise", "evidence": ["D1:2"],
         "category": 5},
    ]}


def write_data(folder: Path, pairs: list[dict]) -> Path:
    folder.mkdir()
    lme = [lme_question("q-months", "9 months", ["6 months"], "9 months"), lme_question("q-yes", "Yes", [], "9")]
    (folder / longmemeval.FILE).write_text(json.dumps(lme), encoding="utf-8")
    (folder / locomo.FILE).write_text(json.dumps([locomo_sample()]), encoding="utf-8")
    (folder / "statement_pairs.json").write_text(json.dumps(pairs), encoding="utf-8")
    return folder


def test_a_longmemeval_haystack_is_logged_in_date_order_and_scored_only_where_it_can_be(tmp_path):
    folder = write_data(tmp_path / "data", [])
    months, yes = longmemeval.load(folder)
    assert [s.date.day for s in months.sessions] == [11, 3, 30]
    assert months.sessions[0].turns[0] == {"role": "user", "content": "My cat Zanzibar is 6 months old."}
    assert months.questions[0].answer == months.questions[0].current == "9 months"
    assert yes.questions[0].answer is None and yes.questions[0].current is None  # "Yes" is never stated
    assert len(longmemeval.load(folder, distractors=False)[0].sessions) == 2


def test_locomo_logs_both_speakers_as_users_and_skips_adversarial_questions(tmp_path):
    (case,) = locomo.load(write_data(tmp_path / "data", []))
    assert [t["role"] for s in case.sessions for t in s.turns] == ["user"] * 3
    assert [q.category for q in case.questions] == [4, 1]
    assert case.questions[0].answer is None  # "Melanie" is not in her turn's words
    assert case.questions[1].answer == "camping"
    assert case.questions[1].evidence == ("We went camping in the mountains.", "I went to a support group yesterday.")


def test_limit_keeps_the_first_questions_and_only_their_cases():
    cases = [Case(c, [], [Question(f"{c}{i}", "?") for i in range(3)]) for c in "ab"]
    assert [[q.id for q in c.questions] for c in command.limited(cases, 4)] == [["a0", "a1", "a2"], ["b0"]]


# --- end to end ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_server_runs_on_the_clock_a_day_after_the_data(tmp_path):
    session = Session("session-1", MAY_1, [{"role": "user", "content": "I prefer tabs."}])
    async with connect(tmp_path / "memory.db", clock_after(session.date)) as agent:
        await agent.log(session)
        proposal = (await agent.call("propose_dream", engine="heuristic")).structured_content
    assert proposal["created_at"].startswith("2023-05-02")


def test_the_whole_bench_runs_on_a_tiny_data_folder_through_mcp_and_writes_every_figure(tmp_path, capsys):
    pairs = [{"older": "I prefer tabs for indentation.", "newer": "I prefer tabs for indentation.", "label": "dup"},
             {"older": "Alice owns billing.", "newer": "Bob owns search.", "label": "distinct"}]
    folder = write_data(tmp_path / "data", pairs)
    assert quality_main(["--external", "--data", str(folder), "--json", str(tmp_path / "f.json"), "--verbose"]) == 0
    figures = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    lme, conversations = figures["datasets"]
    assert lme["cases"] == 2 and lme["measures"]["ans_hit"]["questions"] == 1
    assert lme["measures"]["ku_fresh"]["questions"] == 1
    assert lme["measures"]["ans_hit"]["before"] == 1.0  # one cat, two mentions: any read finds it
    assert conversations["questions"] == 2 and conversations["measures"]["evid_hit"]["questions"] == 2
    assert conversations["measures"]["evid_hit"]["before"] == 1.0  # the questions name their turns' rare words
    assert sum(figures["pairs"]["outcomes"]["dup"].values()) == 1
    assert [p["outcome"] for p in figures["pairs"]["pairs"]][0] != "none"  # the same preference, twice: kept
    out = capsys.readouterr().out
    assert "| ku_fresh |" in out and "Dup recall (one entry left) |" in out


def test_without_the_data_folder_the_bench_says_so_and_succeeds(tmp_path, capsys):
    assert quality_main(["--external", "--data", str(tmp_path / "absent")]) == 0
    assert "no data folder" in capsys.readouterr().out


# --- dreams on a schedule (--dream-every N) ---------------------------------------------------------


def said(text: str) -> list[dict]:
    return [{"role": "user", "content": text, "has_answer": True}, {"role": "assistant", "content": "Noted."}]


def port_question() -> dict:
    """The API's port, stated in session 1 and changed in session 3; session 2 is other chat."""
    old, new = said("Our API runs on port 8080."), said("We moved the API to port 9090.")
    chat = [{"role": "user", "content": "Any tips for growing basil on a windowsill?"},
            {"role": "assistant", "content": "Water it when the soil is dry."}]
    return {
        "question_id": "q-port", "question_type": "knowledge-update", "question": "Which port does our API run on?",
        "answer": "9090", "question_date": "2023/06/20 (Tue) 10:00",
        "haystack_dates": ["2023/05/01 (Mon) 09:00", "2023/05/15 (Mon) 09:00"], "haystack_session_ids": ["a1", "a2"],
        "haystack_sessions": [old, new], "answer_session_ids": ["a1", "a2"], "stale_values": ["8080"],
        "new_value": "9090",
        "with_distractors": {
            "haystack_dates": ["2023/05/15 (Mon) 09:00", "2023/05/08 (Mon) 09:00", "2023/05/01 (Mon) 09:00"],
            "haystack_session_ids": ["a2", "d1", "a1"], "haystack_sessions": [new, chat, old],
            "answer_session_ids": ["a1", "a2"],
        },
    }


def port_data(folder: Path) -> Path:
    folder.mkdir()
    (folder / longmemeval.FILE).write_text(json.dumps([port_question()]), encoding="utf-8")
    return folder


def test_batches_end_with_the_last_session_and_one_batch_without_a_schedule():
    sessions = [Session(f"session-{n}", MAY_1 + timedelta(days=n), []) for n in range(1, 6)]
    assert [[s.id[-1] for s in b] for b in batches(sessions, 2)] == [["1", "2"], ["3", "4"], ["5"]]
    assert [len(b) for b in batches(sessions, 5)] == [5]  # the dream after a full last batch is the final one
    assert batches(sessions, None) == [sessions]


def test_a_dream_runs_a_day_after_its_last_session_but_never_after_the_next_one_starts():
    last = Session("session-1", MAY_1, [])
    assert dream_time(last, None) == MAY_1 + timedelta(days=1)
    assert dream_time(last, Session("session-2", MAY_1 + timedelta(days=9), [])) == MAY_1 + timedelta(days=1)
    assert dream_time(last, Session("session-2", MAY_1 + timedelta(hours=2), [])) == MAY_1 + timedelta(hours=2)


def test_the_bench_clock_ticks_and_never_goes_back():
    clock = Clock(MAY_1)
    assert clock() == MAY_1 and clock() == MAY_1 + timedelta(seconds=1)
    clock.move_to(MAY_1)  # earlier than now: ignored
    assert clock() == MAY_1 + timedelta(seconds=2)
    clock.move_to(MAY_1 + timedelta(days=3))
    assert clock() == MAY_1 + timedelta(days=3)


def op(kind: str, sessions: list[str], rationale: str = "Stated.") -> dict:
    return {"kind": kind, "rationale": rationale, "evidence": [{"session_id": s, "quote": "…"} for s in sessions]}


def test_adds_are_counted_as_restating_when_they_cite_two_sessions_and_superseding_by_the_rationale():
    assert restates(op("add", ["s1", "s2", "s1"])) and not restates(op("add", ["s1", "s1"]))
    assert not restates(op("merge", ["s1", "s2"]))
    assert supersedes(op("add", ["s2"], "Stated in 1 session(s); supersedes the older “port 8080”."))
    assert not supersedes(op("add", ["s2"])) and not supersedes(op("update", ["s2"], "supersedes the older x"))


def test_one_dream_counts_an_add_that_supersedes_the_older_statement(tmp_path, capsys):
    folder = port_data(tmp_path / "data")
    assert quality_main(["--external", "--data", str(folder), "--json", str(tmp_path / "f.json")]) == 0
    (lme,) = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))["datasets"]
    assert lme["operations"]["dreams"] == 1 and lme["operations"]["superseding_adds"] == 1
    assert lme["dream_every"] is None
    out = capsys.readouterr().out
    assert "Mode: one dream" in out and "1 supersede an older statement" in out


def test_dreams_every_two_sessions_turn_a_changed_fact_into_an_update(tmp_path, capsys):
    folder = port_data(tmp_path / "data")
    argv = ["--external", "--data", str(folder), "--dream-every", "2", "--json", str(tmp_path / "f.json"), "--verbose"]
    assert quality_main(argv) == 0
    figures = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    (lme,) = figures["datasets"]
    assert figures["settings"]["dream_every"] == 2 and lme["dream_every"] == 2
    dreams = lme["dreams"]["q-port"]
    assert [d["sessions_logged"] for d in dreams] == [2, 3]
    # each dream a day after its last session: the first before session 3 (15 May), the last after it
    assert [d["at"][:16] for d in dreams] == ["2023-05-09T09:00", "2023-05-16T09:00"]
    assert [o["kind"] for o in dreams[0]["operations"]] == ["add"]      # the first dream adds port 8080 ...
    assert [o["kind"] for o in dreams[1]["operations"]] == ["update"]   # ... the last replaces it with 9090
    assert lme["operations"]["by_kind"]["update"] == 1 and lme["operations"]["dreams"] == 2
    out = capsys.readouterr().out
    assert "Mode: scheduled dreams (--dream-every 2)" in out
    assert "over 2 dreams" in out and "1 update" in out and "dream 2 of 2, after 3 session(s)" in out


def test_dream_every_must_be_a_positive_number(capsys):
    with pytest.raises(SystemExit):
        command.parse(["--dream-every", "0"])
    assert "must be 1 or more" in capsys.readouterr().err
