"""The dream review screen (an MCP App) in headless Chromium, behind the official ext-apps AppBridge.

A real dream over the demo sessions is handed to the page as a host would hand it the
`propose_dream` result; tests/browser/run_review.mjs then clicks, types and presses keys as a
person would, and reports what the host saw (tool calls, context updates, sizes) and what the
page showed. The host shim answers `apply_dream` with canned results; the call the page made
is then replayed against the real service, so a call the server would refuse fails here too.

Needs Node ≥ 20, Chromium at /usr/bin/chromium (or $CHROMIUM_PATH) and `npm ci` in
tests/browser; without them these tests skip, or fail when $CI is set (.ci/run installs all three).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import anyio
import pytest
from conftest import chat
from mcp_types import CallToolResult, TextContent
from reverie.demo import log_demo_sessions
from reverie.models import ApplyResult, Proposal
from reverie.review_app import REVIEW_URI, review_html
from reverie.store import memories as memory_store

# slow: drives the review page in headless Chromium.
pytestmark = pytest.mark.slow

BROWSER_DIR = Path(__file__).parent / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
STALE = "Proposal {id} is stale: memory changed since it was made. Run propose_dream for a fresh one."


# --- the page itself ------------------------------------------------------------------------


def test_the_review_page_is_packaged_under_a_ui_uri():
    html = review_html()

    assert REVIEW_URI == "ui://reverie/review.html"
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "</html>" in html


def test_the_review_page_loads_nothing_from_outside():
    # Hosts block every origin the resource does not declare, and this one declares none.
    outside = re.findall(r"https?://|(?:src|href|action)\s*=\s*[\"']?//|@import|url\(", review_html(), re.IGNORECASE)

    assert outside == []


# --- in the browser -------------------------------------------------------------------------


@pytest.fixture
def browser_tools():
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js >= 20 (node)")
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("the Node packages (cd tests/browser && npm ci)")
    if missing:
        message = f"The browser test needs {', '.join(missing)}; .ci/run installs them."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def tool_result(model, text: str, *, is_error: bool = False) -> dict:
    """A CallToolResult as it crosses the wire, like mcp_server's results."""
    result = CallToolResult(content=[TextContent(type="text", text=text)], is_error=is_error,
                            structured_content=model.model_dump(mode="json") if model else None)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def run_page(proposal: Proposal, steps: list[dict], responses: list[dict], *, echo: bool = False) -> dict:
    scenario = {
        "html": review_html(),
        "toolInput": {"engine": "heuristic"},
        "toolResult": tool_result(proposal, proposal.report),
        "toolResponses": responses,
        "echoToolResults": echo,
        "steps": steps,
    }
    with anyio.fail_after(120):
        done = await anyio.run_process(["node", str(BROWSER_DIR / "run_review.mjs")], input=json.dumps(scenario).encode(),
                                       check=False, cwd=BROWSER_DIR)
    stdout = done.stdout.decode()
    observed = json.loads(stdout) if stdout.startswith("{") else {"error": stdout}
    assert done.returncode == 0 and "error" not in observed, (
        f"run_review.mjs failed: {observed.get('error')}\nstderr: {done.stderr.decode()[-2000:]}\n"
        f"steps done: {observed.get('stepsDone')}\nconsole: {observed.get('console')}")
    return observed


def assert_clean(observed: dict) -> None:
    """Nothing went wrong that a person would not see: no errors, no outside requests, no unnamed controls."""
    assert observed["pageErrors"] == []
    assert observed["console"] == []  # CSP violations would show up here
    assert observed["unexpectedRequests"] == []
    assert observed["images"] == 0
    assert observed["unlabelled"] == []


def page_says(applied: ApplyResult) -> str:
    """The outcome the page shows a person: its own words, not the `message` written for the assistant."""
    total, undo = len(applied.applied) + len(applied.rejected), "it" if len(applied.applied) == 1 else "them"
    return (f"Applied {len(applied.applied)} of {total} change{'' if total == 1 else 's'} as revision {applied.revision}. "
            f"To undo {undo}, ask the assistant to revert dream {applied.proposal_id}.")


def canned_apply(proposal: Proposal, approve: list[str], message: str) -> ApplyResult:
    rejected = [op.op_id for op in proposal.operations if op.op_id not in approve]
    return ApplyResult(proposal_id=proposal.id, status="partially_applied" if rejected else "applied", revision=1,
                       applied=approve, rejected=rejected, memories_added=[f"mem_{i}" for i in range(len(approve))],
                       memories_archived=[], message=message)


@pytest.mark.anyio
async def test_a_person_reviews_the_demo_dream_and_the_page_applies_exactly_their_decisions(reverie, browser_tools):
    await log_demo_sessions(reverie)
    proposal = await reverie.propose_dream("heuristic")
    flagged = [op.op_id for op in proposal.operations if op.risk]
    safe = [op.op_id for op in proposal.operations if not op.risk]
    assert len(flagged) >= 1 and len(safe) >= 3, "the demo dream must keep flagged and unflagged changes"
    edited, declined, risky = safe[0], safe[1], flagged[0]
    edit_text = next(op.content for op in proposal.operations if op.op_id == edited) + " (checked with the team)"
    approve = [op.op_id for op in proposal.operations if op.op_id != declined and (not op.risk or op.op_id == risky)]
    applied = canned_apply(proposal, approve, f"Applied {len(approve)} of {len(proposal.operations)} changes as revision 1.")
    steps = [
        {"snapshot": "initial"},
        {"click": "Approve all unflagged"},
        {"decide": declined, "choice": "Reject", "key": "Space"},
        {"decide": risky, "choice": "Approve"},
        {"edit": declined, "text": "An edit to a change I rejected"},
        {"edit": edited, "text": " "},
        {"snapshot": "empty_edit"},
        {"edit": edited, "text": edit_text},
        {"snapshot": "decided"},
        {"click": "Apply", "exact": False, "key": "Enter"},
        {"waitForOutcome": "Not applied"},
        {"snapshot": "refused"},
        {"click": "Apply", "exact": False},
        {"waitForOutcome": page_says(applied)},
        {"waitForHost": "modelContext", "count": 1},
        {"snapshot": "applied"},
    ]
    refusal = tool_result(None, STALE.format(id=proposal.id), is_error=True)

    observed = await run_page(proposal, steps, [refusal, tool_result(applied, applied.message)], echo=True)

    initial, decided = observed["snapshots"]["initial"], observed["snapshots"]["decided"]
    assert {op_id for op_id, op in initial["ops"].items() if op["approved"]} == set()
    assert all(initial["ops"][op_id]["rejected"] for op_id in flagged)
    assert {op_id for op_id, op in initial["ops"].items() if op["risk"]} == set(flagged)
    assert all("Flagged" in initial["ops"][op_id]["risk"] for op_id in flagged)
    assert initial["apply"]["label"] == f"Reject all {len(proposal.operations)} changes"
    for op in proposal.operations:
        shown = initial["ops"][op.op_id]["text"]
        assert op.content in shown and op.rationale in shown and op.kind in shown
        assert all(e.session_id in shown and e.quote in shown for e in op.evidence)
    empty = observed["snapshots"]["empty_edit"]
    assert empty["apply"]["disabled"] is True and "can't be empty" in empty["ops"][edited]["hint"]
    assert "will not be applied" in decided["ops"][declined]["hint"]
    assert {op_id for op_id, op in decided["ops"].items() if op["approved"]} == set(approve)
    assert decided["apply"] == {"label": f"Apply {len(approve)} approved changes", "disabled": False}

    expected = {"name": "apply_dream", "arguments": {"proposal_id": proposal.id, "approve": approve, "edits": {edited: edit_text}}}
    assert observed["host"]["toolCalls"] == [expected, expected]
    refused = observed["snapshots"]["refused"]
    assert refused["outcomeRole"] == "alert" and STALE.format(id=proposal.id) in refused["outcome"]
    assert refused["apply"]["disabled"] is False
    assert {op_id for op_id, op in refused["ops"].items() if op["approved"]} == set(approve)
    final = observed["snapshots"]["applied"]
    assert final["outcome"] == page_says(applied) and final["outcomeRole"] == "status"
    assert final["notice"] == (f"Your decisions are applied: {len(approve)} approved, {len(applied.rejected)} rejected. "
                               "There is nothing left to decide.")
    assert "Nothing is approved yet" in initial["notice"]
    assert final["apply"]["disabled"] is True and all(op["disabled"] for op in final["ops"].values())
    assert {op_id: op["status"] for op_id, op in final["ops"].items()} == (
        {op_id: "applied" for op_id in applied.applied} | {op_id: "rejected" for op_id in applied.rejected})
    assert observed["host"]["modelContext"][0]["structuredContent"] == applied.model_dump(mode="json")
    assert observed["host"]["appInfo"]["name"] == "reverie-dream-review"
    assert any(size["height"] > 0 for size in observed["host"]["sizes"])
    assert_clean(observed)

    real = await reverie.apply_dream(**expected["arguments"])
    assert real.applied == approve
    assert edit_text in [memory.content for memory in await memory_store.active_memories(reverie.db)]


@pytest.mark.anyio
async def test_an_update_shows_the_old_entry_beside_the_new_text_and_never_runs_markup_from_memory(reverie, browser_tools):
    await log_demo_sessions(reverie)
    await reverie.apply_unflagged((await reverie.propose_dream("heuristic")).id)
    markup = '<img src=x onerror="parent.postMessage(1, \'*\')">'
    await reverie.log_session(chat("We moved to PostgreSQL 17 last night.", "Noted."), agent_id="coding-agent",
                              notes=[f"Team database: PostgreSQL 17 {markup}"], outcome="success")
    proposal = await reverie.propose_dream("heuristic")
    update = next(op for op in proposal.operations if op.kind == "update")
    applied = canned_apply(proposal, [update.op_id], "Applied 1 change as revision 2.")
    steps = [
        {"decide": update.op_id, "choice": "Approve", "key": "Space"},
        {"snapshot": "decided"},
        {"click": "Apply", "exact": False},
        {"waitForOutcome": page_says(applied)},
    ]

    observed = await run_page(proposal, steps, [tool_result(applied, applied.message)])

    shown = observed["snapshots"]["decided"]["ops"][update.op_id]
    assert shown["before"] == "Before" + "".join(update.before)
    assert "Team database: PostgreSQL 16" in shown["before"]
    assert shown["after"] == "After" + update.content and markup in shown["after"]
    assert observed["host"]["toolCalls"] == [
        {"name": "apply_dream", "arguments": {"proposal_id": proposal.id, "approve": [update.op_id], "edits": {}}}]
    assert_clean(observed)


def test_the_review_page_words_every_risk_flag_for_a_person():
    # A flag the page has no words for would show as its bare identifier, e.g. "names_destination".
    from typing import get_args

    from reverie.models import RiskFlag

    page = review_html()
    missing = [flag for flag in get_args(RiskFlag) if not re.search(rf"^\s+{flag}: \"", page, re.MULTILINE)]

    assert missing == []
