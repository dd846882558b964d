"""Imports point one way: mcp_server / cli → service → engines, store → models.

Every module under server/reverie is parsed with `ast` (never imported, so a module that
fails to import is still checked) and every import in it — at the top, inside functions,
under `if TYPE_CHECKING` — is resolved to an absolute module name and held against
`RULES`. A rule names the modules it binds, by prefix, and what they must not import.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).parents[1] / "server" / "reverie"
MCP_STACK = ("mcp", "mcp_types")  # the MCP SDK and its wire types package


@dataclass(frozen=True)
class Rule:
    binds: str  # a module, and every module below it
    forbids: tuple[str, ...]
    why: str


RULES = [
    Rule("reverie.engines", ("reverie.mcp_server", "reverie.cli", "reverie.service", *MCP_STACK),
         "engines propose from a DreamInput; they never reach up to the use cases or the MCP layer"),
    Rule("reverie.engines", ("reverie.store",), "engines never touch the database; the service hands them data"),
    Rule("reverie.store", ("reverie.mcp_server", "reverie.cli", "reverie.service", *MCP_STACK),
         "the store is the bottom layer above models; it knows nothing of its callers"),
    Rule("reverie.service", ("reverie.mcp_server", "reverie.cli"),
         "the use cases are shared by MCP and the CLI, so they import neither"),
    Rule("reverie.formats", ("reverie.store", "reverie.service", "reverie.engines", "reverie.mcp_server", "reverie.cli",
                             *MCP_STACK),
         "a format translates files to and from an export document; importing it is the service's job"),
]
SQL_DRIVERS = ("sqlite3", "aiosqlite")  # only reverie.store may import these
MODELS = "reverie.models"  # may import only the standard library and pydantic


def is_within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imported_names(module: str, is_package: bool, tree: ast.AST) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in `tree`.

    `from a import b` yields both `a` and `a.b`, because `b` may be a submodule
    (`from reverie import cli` imports reverie.cli).
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            found += [(base, node.lineno)] + [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _absolute(package: str, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every wrong-way import in `source`, as 'module:line imports X (why)'."""
    found = []
    for name, line in imported_names(module, is_package, ast.parse(source)):
        found += [f"{module}:{line} imports {name} ({why})" for why in _broken_rules(module, name)]
    return sorted(set(found))


def _broken_rules(module: str, name: str) -> list[str]:
    broken = [rule.why for rule in RULES
              if is_within(module, rule.binds) and any(is_within(name, f) for f in rule.forbids)]
    if not is_within(module, "reverie.store") and any(is_within(name, d) for d in SQL_DRIVERS):
        broken.append("only reverie.store speaks SQL")
    if module == MODELS and not _stdlib_or_pydantic(name):
        broken.append("models import only the standard library and pydantic")
    return broken


def _stdlib_or_pydantic(name: str) -> bool:
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names or top in ("__future__", "pydantic")


def modules() -> list[tuple[str, bool, Path]]:
    """(module name, is a package, file) for every .py file under server/reverie."""
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found.append((".".join(parts[:-1] if is_package else parts), is_package, path))
    return found


MODULES = modules()


def test_the_walk_finds_every_layer_of_the_package():
    # Guards against a moved folder silently leaving nothing to check.
    names = {name for name, _, _ in MODULES}

    assert {"reverie", "reverie.models", "reverie.cli", "reverie.mcp_server", "reverie.service",
            "reverie.store", "reverie.engines"} <= names
    assert any(is_within(name, "reverie.store") and name != "reverie.store" for name in names)
    assert any(is_within(name, "reverie.engines") and name != "reverie.engines" for name in names)


@pytest.mark.parametrize(("module", "is_package", "path"), MODULES, ids=[name for name, _, _ in MODULES])
def test_no_module_imports_against_the_layering(module, is_package, path):
    found = violations(module, path.read_text(encoding="utf-8"), is_package)

    assert found == [], "wrong-way imports:\n" + "\n".join(found)


# --- the checker itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "is_package", "reported"),
    [
        ("reverie.engines.fake", "from reverie.store import Database\n", False, "reverie.store"),
        ("reverie.engines.fake", "from ..store import sessions\n", False, "reverie.store.sessions"),
        ("reverie.engines", "from . import x\nfrom ..service import dreams\n", True, "reverie.service.dreams"),
        ("reverie.engines.fake", "def later():\n    import reverie.cli\n", False, "reverie.cli"),
        ("reverie.engines.fake", "from mcp.server import MCPServer\n", False, "mcp.server"),
        ("reverie.store.fake", "from reverie import service\n", False, "reverie.service"),
        ("reverie.store.fake", "import mcp_types\n", False, "mcp_types"),
        ("reverie.service.fake", "from reverie.mcp_server import build_server\n", False, "reverie.mcp_server"),
        ("reverie.service.fake", "import sqlite3\n", False, "sqlite3"),
        ("reverie.engines.fake", "import aiosqlite\n", False, "aiosqlite"),
        ("reverie.models", "from reverie.text import words\n", False, "reverie.text"),
        ("reverie.models", "import anyio\n", False, "anyio"),
        ("reverie.storage", "import sqlite3\n", False, "sqlite3"),
    ],
    ids=["engine-absolute-store", "engine-relative-store", "engine-package-relative-service",
         "engine-lazy-cli", "engine-mcp", "store-service", "store-mcp-types", "service-mcp-server",
         "service-sqlite3", "engine-aiosqlite", "models-reverie", "models-third-party",
         "store-prefix-is-not-the-store"],
)
def test_the_checker_reports_a_forbidden_import_with_module_line_and_name(module, source, is_package, reported):
    found = violations(module, source, is_package)

    assert any(f" imports {reported} (" in message for message in found), found
    assert all(message.startswith(f"{module}:") for message in found)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("reverie.engines.fake", "from reverie.models import DreamInput\nfrom reverie.engines import clustering\n"),
        ("reverie.store.fake", "import aiosqlite\nimport sqlite3\nfrom reverie.models import Memory\n"),
        ("reverie.service.fake", "from reverie.store import Database\nfrom reverie.engines import engine_named\n"),
        ("reverie.cli", "from reverie.mcp_server import build_server\nfrom reverie.service import Reverie\n"),
        ("reverie.models", "from __future__ import annotations\nfrom datetime import datetime\n"
                           "from pydantic import BaseModel\n"),
        ("reverie.engines.fake", "import mcpx\nimport reverie.cli_colors\n"),
    ],
    ids=["engine-models", "store-sql", "service-store-engines", "cli-anything", "models-stdlib-pydantic",
         "similar-names-are-not-forbidden"],
)
def test_the_checker_accepts_imports_that_follow_the_layering(module, source):
    assert violations(module, source) == []
