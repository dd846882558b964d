"""Reading facts, preferences and rules out of plain user turns, and telling one subject's new
value from a different subject (`reverie.claims`, `reverie.engines.statements`)."""

from datetime import UTC, datetime, timedelta

import pytest
from reverie import claims
from reverie.engines.statements import change_terms, statements

DAY = timedelta(days=1)
T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("turn, kind", [
    ("By the way, I'm currently on page 200 of the book.", "fact"),
    ("We moved the API to port 9090.", "fact"),
    ("I prefer pytest over unittest.", "preference"),
    ("Please always add a Testing section to PR descriptions.", "instruction"),
    ("Run make lint before pushing.", "instruction"),
], ids=["page", "port", "prefer", "always", "before-pushing"])
def test_a_user_turn_yields_what_it_states(turn, kind):
    (found,) = statements(turn)
    assert found.kind == kind


@pytest.mark.parametrize("turn", [
    "Can you recommend a good book about history?",
    "I'm thinking of moving the API to port 9090.",
    "Add date-fns to apps/web.",
    "Review PR #431 please.",
    "I want to make sure I get the best value for my money.",
    "That's a great list!",
], ids=["question", "hypothetical", "task", "review-task", "stock-phrase", "chit-chat"])
def test_questions_requests_plans_and_chit_chat_are_not_memory(turn):
    assert statements(turn) == []


def test_we_still_dont_know_is_not_a_pitfall():
    assert all(s.category != "pitfall" for s in statements("I've read 120 pages of the book and we still don't know."))


def test_an_excerpt_is_never_split_inside_a_value():
    assert claims.sentences("We run Python 3.11 on $1,000 boxes at 7:30. E.g. the cron. Next one.") == [
        "We run Python 3.11 on $1,000 boxes at 7:30.", "E.g. the cron.", "Next one."]


@pytest.mark.parametrize("old, new", [
    ("I'm currently on page 200 of A Short History.", "I'm now on page 220 of A Short History."),
    ("I just reached 500 followers last week.", "I'm now at 600 followers."),
    ("Team database: PostgreSQL 14", "Team database: PostgreSQL 16"),
    ("Weekly reports go out on Friday.", "Weekly reports go out on Monday now."),
], ids=["page", "followers", "label", "weekday"])
def test_a_newer_value_for_one_subject_outdates_the_older(old, new):
    assert claims.outdated([(old, T0), (new, T0 + 9 * DAY)]) == {0}


@pytest.mark.parametrize("a, b", [
    ("Staging DB is Postgres 15", "Prod DB is Postgres 16"),
    ("acme-web runs on Node 20 with pnpm.", "acme-api runs on Node 18 with npm."),
    ("Refunds over $500 must be escalated to a supervisor.", "Refunds under $50 can be approved without a receipt."),
    ("I lead a team of 4 engineers, plus my manager: 5 people.", "I lead a team of 4 engineers now."),
], ids=["staging-prod", "two-projects", "two-thresholds", "a-list-restated"])
def test_near_misses_stay_two_facts(a, b):
    assert claims.outdated([(a, T0), (b, T0 + DAY)]) == set()


def test_only_the_newest_of_equal_subjects_survives_whatever_the_order_given():
    texts = [("I've watched 15 videos of the course.", T0 + 2 * DAY), ("I've watched 10 videos of the course.", T0)]
    assert claims.outdated(texts) == {1}


def test_a_question_decides_which_subjects_are_judged():
    texts = [("I have 3 cats and 500 followers.", T0), ("I have 4 cats now.", T0 + DAY)]
    assert claims.outdated(texts, query="how many followers do I have") == set()
    assert claims.outdated(texts, query="how many cats do I have") == {0}


def test_a_change_names_the_value_left_behind():
    assert {"npm"} <= change_terms("We switched from npm to pnpm.")
    assert {"braintree"} <= change_terms("Payments now go through Stripe; Braintree is retired.")
    assert change_terms("The team uses pnpm.") == frozenset()
