"""What Claude Code's SessionStart hook prints: this project's memory, the last sessions'
recaps and pending proposals, within the budget — and nothing an earlier session's tooling printed.

Sessions are ended through the real SessionEnd hook in project folders made in tmp_path
(`claude_code_sessions.Workspace`); SessionStart runs as Claude Code runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from claude_code_sessions import Workspace, deploy_steps
from reverie.models import SessionRecord
from reverie.session_start import recap
from reverie.text import estimate_tokens

CONCLUSION = "Deploys need the VPN connected; once it was up the deploy went through."


@pytest.fixture
def workspace(tmp_path, cli) -> Workspace:
    return Workspace(tmp_path / "work", cli, tmp_path / "memory.db")


def test_before_any_dream_session_start_recaps_the_last_sessions_in_this_project(workspace):
    billing = workspace.project("billing")
    workspace.end(billing, deploy_steps("Deploy the billing service please"), day=13)
    workspace.end(billing, deploy_steps("Why did the invoice run fail last night?"), day=14)

    out = workspace.start(billing).out

    assert "nothing remembered" not in out
    assert out.splitlines()[:4] == [
        "# Reverie memory (working in billing)", "", "## Recent sessions in this project",
        "- 2026-10-14: Why did the invoice run fail last night?"]
    assert "- 2026-10-13: Deploy the billing service please" in out


def test_session_start_recaps_only_the_sessions_of_its_own_project(workspace):
    workspace.end(workspace.project("billing"), deploy_steps("Deploy the billing service please"))
    website = workspace.project("website")
    workspace.end(website, deploy_steps("Deploy the website"))

    out = workspace.start(website).out

    assert "Deploy the website" in out
    assert "billing" not in out


def test_session_start_shows_what_was_said_and_concluded_never_a_tool_call_or_its_output(workspace):
    billing = workspace.project("billing")
    workspace.end(billing, deploy_steps("Deploy the billing service please, the VPN should be fine"))

    out = workspace.start(billing, "--query", "VPN deploy").out

    assert CONCLUSION in out
    for tooling in ("TodoWrite", "todos", "make deploy", "error: the VPN is not connected", "Todos have been"):
        assert tooling not in out


def test_a_new_project_with_nothing_logged_starts_with_nothing_printed(workspace):
    workspace.end(workspace.project("billing"), deploy_steps("Deploy the billing service please"))

    assert workspace.start(workspace.project("website")).out == ""


@pytest.mark.parametrize("budget", [150, 300, 1500], ids=["tiny", "small", "default"])
def test_session_start_stays_within_its_budget(workspace, budget):
    billing = workspace.project("billing")
    for day in range(1, 13):
        workspace.end(billing, deploy_steps(f"Deploy build {day} of the billing service, and tell me "
                                            "what changed since the previous one in detail please"), day=day)
    workspace.dream()  # a proposal awaiting review takes its line too

    out = workspace.start(billing, "--budget", str(budget), "--query", "billing deploy VPN").out

    assert "Recent sessions" in out or budget < 300
    assert estimate_tokens(out) <= budget


def session(**fields) -> SessionRecord:
    return SessionRecord(id="s1", agent_id="claude-code", started_at=datetime(2026, 10, 14, tzinfo=UTC), **fields)


def test_a_recap_is_the_sessions_own_summary_when_it_has_one():
    summarised = session(title="billing: tests/test_invoices.py is failing",
                         outcome_summary="Fixed the failing billing tests (missing editable install)")

    assert recap(summarised, "billing") == "Fixed the failing billing tests (missing editable install)"


def test_a_recap_without_a_summary_is_the_first_request_and_how_the_session_ended():
    ended = session(title="billing: tests/test_invoices.py is failing", outcome="success")

    assert recap(ended, "billing") == "tests/test_invoices.py is failing — success"


def test_when_a_dream_is_due_session_start_asks_to_offer_the_dream_skill(workspace):
    billing = workspace.project("billing")
    for day in range(10, 15):  # five sessions: the default `dream_after`
        workspace.end(billing, deploy_steps(f"Deploy the billing service, take {day}"), day=day)

    out = workspace.start(billing).out

    assert "a dream is due (5 sessions await a dream)" in out and "/reverie:dream" in out


def test_no_dream_is_offered_while_sessions_are_too_few(workspace):
    billing = workspace.project("billing")
    workspace.end(billing, deploy_steps("Deploy the billing service please"))

    assert "/reverie:dream" not in workspace.start(billing).out
