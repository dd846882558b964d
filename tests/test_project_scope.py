"""Project scope: a Claude Code session belongs to its project, and so does what a dream learns from it.

The project of a folder is its git root (`reverie.projects`); its memory is kept under
`project:<key>`. Sessions are ended through the real SessionEnd hook in project folders
made in tmp_path, dreamt over with the heuristic engine, and recalled through the
SessionStart hook or the service.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from claude_code_sessions import Workspace, deploy_steps
from conftest import memory_entry, remember
from mcp import Client
from reverie.config import Settings
from reverie.mcp_server import build_server
from reverie.models import Identity
from reverie.projects import base_key, project_root
from reverie.service import open_reverie
from reverie.store.migrations import MIGRATIONS

PITFALL = "`Bash` fails with “error: the VPN is not connected”"
STATED = "The staging server is called pluto."
NOW = datetime(2026, 10, 1, tzinfo=UTC)

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


@pytest.fixture
def workspace(tmp_path, cli, settings) -> Workspace:
    return Workspace(tmp_path / "work", cli, settings.database)


# --- which project, which key ------------------------------------------------------------


def test_a_folder_inside_a_git_clone_belongs_to_the_clone(tmp_path):
    (tmp_path / "billing" / ".git").mkdir(parents=True)
    (tmp_path / "billing" / "src" / "invoices").mkdir(parents=True)

    assert project_root(tmp_path / "billing" / "src" / "invoices") == (tmp_path / "billing").resolve()


def test_a_worktree_whose_git_entry_is_a_file_is_a_project_of_its_own(tmp_path):
    (tmp_path / "billing-hotfix" / "src").mkdir(parents=True)
    (tmp_path / "billing-hotfix" / ".git").write_text("gitdir: /elsewhere/.git/worktrees/hotfix\n")

    assert project_root(tmp_path / "billing-hotfix" / "src") == (tmp_path / "billing-hotfix").resolve()


def test_a_folder_outside_any_git_clone_is_its_own_project(tmp_path):
    (tmp_path / "notes" / "drafts").mkdir(parents=True)

    assert project_root(tmp_path / "notes" / "drafts") == (tmp_path / "notes" / "drafts").resolve()


@pytest.mark.parametrize(("root", "key"), [("/src/billing", "billing"), ("/src/Billing API", "billing-api"),
                                           ("/src/--über_tool.v2", "ber_tool.v2"), ("/", "project")],
                         ids=["plain", "space-and-capitals", "unsafe-characters", "filesystem-root"])
def test_a_key_is_the_root_folders_name_spelled_safely(root, key):
    assert base_key(Path(root)) == key


async def test_two_clones_with_the_same_name_get_two_keys_and_the_first_keeps_the_plain_name(workspace, settings):
    mine, theirs = workspace.project("maya/api"), workspace.project("vendor/api")
    async with open_reverie(settings) as reverie:
        first = await reverie.project_key(str(mine), claim=True)
        second = await reverie.project_key(str(theirs), claim=True)
        again = await reverie.project_key(str(mine / "sub"))

    assert first == again == "api"
    assert second.startswith("api-") and second != first


async def test_a_folder_reads_the_key_it_will_claim_and_keeps_it_once_claimed(workspace, settings):
    first, later = workspace.project("one/web"), workspace.project("two/web")
    async with open_reverie(settings) as reverie:
        await reverie.project_key(str(first), claim=True)
        before = await reverie.project_key(str(later))
        claimed = await reverie.project_key(str(later), claim=True)
        after = await reverie.project_key(str(later))

    assert before == claimed == after != "web"


# --- what a dream learns goes to its project ---------------------------------------------------


def test_what_a_dream_learns_from_one_projects_sessions_is_filed_under_that_project(workspace):
    billing, website = workspace.project("billing"), workspace.project("website")
    workspace.end(billing, deploy_steps("Deploy the billing service please"))
    workspace.end(workspace.project("billing/src", git=False), deploy_steps("Deploy it again after the fix"))

    proposal = workspace.dream()
    (pitfall,) = [op for op in proposal["operations"] if PITFALL in op["content"]]
    workspace.reverie("apply", proposal["id"], "--approve", "all", db=workspace.db)  # a person approved it

    assert pitfall["scope"] == "project:billing"
    assert PITFALL in workspace.start(billing).out
    assert PITFALL not in workspace.start(website).out


def test_a_fact_stated_in_one_project_is_filed_under_it_and_applied_in_auto_mode(workspace):
    billing = workspace.project("billing")
    workspace.end(billing, [("user", STATED), ("say", "Noted.")])

    (fact,) = workspace.dream("--auto")["proposal"]["operations"]

    assert (fact["scope"], fact["risk"]) == ("project:billing", [])
    assert STATED in workspace.start(billing).out
    assert STATED not in workspace.start(workspace.project("website")).out


def test_a_fact_stated_in_two_projects_is_proposed_for_review_and_not_applied_on_its_own(workspace):
    workspace.end(workspace.project("billing"), [("user", STATED), ("say", "Noted.")])
    workspace.end(workspace.project("website"), [("user", STATED), ("say", "Noted.")])

    (fact,) = workspace.dream("--auto")["proposal"]["operations"]

    assert "cross_project" in fact["risk"]
    assert not fact["scope"].startswith("project:")
    assert STATED not in workspace.start(workspace.project("docs")).out  # auto mode left it for a person


# --- what a project sees --------------------------------------------------------------------


def entries_in(*scopes: str) -> list[dict]:
    return [{**memory_entry(f"mem_{i}", f"Kept in {scope}", NOW), "scope": scope} for i, scope in enumerate(scopes)]


async def test_in_a_project_memory_shows_that_projects_entries_the_shared_and_the_users_but_no_other_projects(
        reverie):
    await remember(reverie, *entries_in("project:billing", "project:website", "shared", "user", "agent:tester"))

    view = await reverie.read_memory(project="billing")

    assert sorted(e.content for e in view.entries) == [
        "Kept in agent:tester", "Kept in project:billing", "Kept in shared", "Kept in user"]


async def test_a_token_working_in_a_project_it_was_not_granted_sees_the_rest_of_its_view(reverie):
    await remember(reverie, *entries_in("project:billing", "project:website", "shared"))
    token = Identity(agent_id="tester", grants=frozenset({"read:shared", "project:website"}))

    view = await reverie.read_memory(project="billing", identity=token)

    assert [e.content for e in view.entries] == ["Kept in shared"]


# --- data from before project scopes -----------------------------------------------------------


def database_before_projects(path) -> None:
    """A database as Reverie left it before m007, with one session and its note."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, statements in MIGRATIONS[: [n for n, _ in MIGRATIONS].index("m007_project_scopes")]:
        for statement in statements:
            connection.execute(statement)
        connection.execute("INSERT INTO _migrations VALUES (?, ?)", (name, NOW.isoformat()))
    connection.execute("INSERT INTO sessions (id, agent_id, content_hash, started_at, ended_at, logged_at) "
                       "VALUES ('old', 'tester', '', ?1, ?1, ?1)", (NOW.isoformat(),))
    connection.execute("INSERT INTO notes (session_id, idx, content, created_at) "
                       "VALUES ('old', 0, 'The staging database is called pluto', ?)", (NOW.isoformat(),))
    connection.close()


@pytest.mark.sqlite_only(reason="an upgrade of a SQLite file from before m007; PostgreSQL's schema began after it")
async def test_sessions_logged_before_project_scopes_belong_to_no_project_and_stay_visible_in_every_one(settings):
    database_before_projects(settings.db_path)

    async with open_reverie(settings) as reverie:
        view = await reverie.read_memory(project="billing")
        exported = await reverie.export()

    assert [n.content for n in view.notes] == ["The staging database is called pluto"]
    assert [s["project"] for s in exported["sessions"]] == [None]


async def test_a_server_started_for_a_project_shows_read_memory_callers_that_projects_view(tmp_path, settings):
    billing = tmp_path / "billing"
    billing.mkdir()
    settings = dataclasses.replace(settings, project_dir=billing)
    async with open_reverie(settings) as reverie:
        await remember(reverie, *entries_in("project:billing", "project:website", "shared"))

    async with Client(build_server(settings)) as client:
        view = (await client.call_tool("read_memory", {})).structured_content

    assert sorted(e["content"] for e in view["entries"]) == ["Kept in project:billing", "Kept in shared"]


def test_serve_takes_its_project_from_the_flag_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REVERIE_PROJECT", str(tmp_path / "from-env"))
    assert Settings.resolve(tmp_path / "m.db").project_dir == tmp_path / "from-env"
    assert Settings.resolve(tmp_path / "m.db", project=str(tmp_path / "flag")).project_dir == tmp_path / "flag"
    monkeypatch.delenv("REVERIE_PROJECT")
    assert Settings.resolve(tmp_path / "m.db").project_dir is None
