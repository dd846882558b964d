"""Imports point one way: mcp_server / cli → service → engines, store → models.

Every module under server/reverie is parsed with `ast` (never imported, so a module that
fails to import is still checked) and every import in it — at the top, inside functions,
under `if TYPE_CHECKING` — is resolved to an absolute module name and held against
`LAYERS`. Each layer names the modules it binds, by prefix, and the only Reverie modules
it *may* import (a whitelist: its own layer is always allowed). A module bound by no layer
fails the test, so a new file has to be given a place before it can land.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).parents[1] / "server" / "reverie"
MCP_STACK = ("mcp", "mcp_types")  # the MCP SDK and its wire types package

# Plain helpers every layer may use: the domain's values, text, time, errors and settings.
FOUNDATION = (
    "reverie", "reverie.citations", "reverie.claims", "reverie.claude_transcript", "reverie.clock", "reverie.collector",
    "reverie.config", "reverie.confusables", "reverie.decisions", "reverie.effect", "reverie.errors",
    "reverie.excerpt", "reverie.projects", "reverie.provenance", "reverie.report", "reverie.safety",
    "reverie.text", "reverie.transcript",
)
EVERY_LAYER = ("mcp", "service", "tokens", "engines", "store", "formats", "foundation", "models")


@dataclass(frozen=True)
class Layer:
    name: str
    binds: tuple[str, ...]  # modules, each with every module below it (`reverie` binds only itself)
    may_import: tuple[str, ...]  # the other layers whose modules it may import
    why: str
    speaks_mcp: bool = False  # whether it may import the MCP SDK


LAYERS = [
    Layer("entry", ("reverie.cli", "reverie.demo", "reverie.hooks", "reverie.http_server"), EVERY_LAYER,
          "the programs a person or a host starts; they wire every layer together", speaks_mcp=True),
    Layer("mcp", ("reverie.mcp_server", "reverie.auth", "reverie.review_app"),
          ("service", "tokens", "foundation", "models"),
          "the MCP layer turns tools into use cases; it never reaches the store or an engine itself",
          speaks_mcp=True),
    Layer("service", ("reverie.service", "reverie.session_start", "reverie.terminal_review"),
          ("store", "engines", "foundation", "models"),
          "the use cases are shared by MCP and the CLI, so they import neither"),
    Layer("tokens", ("reverie.tokens",), ("foundation", "models"),
          "the tokens file is read by the transports, beneath the use cases"),
    Layer("engines", ("reverie.engines",), ("foundation", "models"),
          "engines propose from a DreamInput; they never touch the database, the use cases or MCP"),
    Layer("store", ("reverie.store",), ("foundation", "models"),
          "the store knows nothing of its callers"),
    Layer("formats", ("reverie.formats",), ("foundation", "models"),
          "a format translates files to and from an export document; importing it is the service's job"),
    Layer("foundation", FOUNDATION, ("models",), "the helpers serve every layer, so they import none of them"),
    Layer("models", ("reverie.models",), (), "models import only the standard library and pydantic"),
]
SQL_DRIVERS = ("sqlite3", "aiosqlite", "psycopg", "psycopg_pool")  # only reverie.store may import these
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


def layer_of(module: str) -> Layer | None:
    """The layer binding `module`: the one whose prefix matches longest."""
    matches = [(len(prefix), layer) for layer in LAYERS for prefix in layer.binds
               if module == prefix or (prefix != "reverie" and is_within(module, prefix))]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every wrong-way import in `source`, as 'module:line imports X (why)'."""
    layer = layer_of(module)
    found = [] if layer else [f"{module}: in no layer; give it one in LAYERS (tests/test_architecture.py)"]
    for name, line in imported_names(module, is_package, ast.parse(source)):
        found += [f"{module}:{line} imports {name} ({why})" for why in _broken_rules(module, layer, name)]
    return sorted(set(found))


def _broken_rules(module: str, layer: Layer | None, name: str) -> list[str]:
    broken = []
    if layer is not None and not _whitelisted(layer, name):
        broken.append(f"{layer.name} may import only {', '.join(layer.may_import) or 'no Reverie layer'}: "
                      f"{layer.why}")
    if layer is not None and not layer.speaks_mcp and any(is_within(name, m) for m in MCP_STACK):
        broken.append(f"only the entry and mcp layers speak MCP: {layer.why}")
    if not is_within(module, "reverie.store") and any(is_within(name, d) for d in SQL_DRIVERS):
        broken.append("only reverie.store speaks SQL")
    if module == MODELS and not _stdlib_or_pydantic(name):
        broken.append("models import only the standard library and pydantic")
    return broken


def _whitelisted(layer: Layer, name: str) -> bool:
    target = _layer_imported(name)
    return target is None or target is layer or target.name in layer.may_import


def _layer_imported(name: str) -> Layer | None:
    """The layer of an imported Reverie name; None for anything outside Reverie.

    `from reverie import __version__` yields `reverie.__version__`, a name and not a module:
    a Reverie name no layer binds belongs to the package root, `reverie`.
    """
    if not is_within(name, "reverie"):
        return None
    return layer_of(name) or layer_of("reverie")


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
        ("reverie.mcp_server", "from reverie.store import memories\n", False, "reverie.store.memories"),
        ("reverie.tokens", "from reverie.service.access import check_grants\n", False, "reverie.service.access"),
        ("reverie.text", "from reverie import engines\n", False, "reverie.engines"),
        ("reverie.store.fake", "from reverie.engines import heuristic\n", False, "reverie.engines.heuristic"),
    ],
    ids=["engine-absolute-store", "engine-relative-store", "engine-package-relative-service",
         "engine-lazy-cli", "engine-mcp", "store-service", "store-mcp-types", "service-mcp-server",
         "service-sqlite3", "engine-aiosqlite", "models-reverie", "models-third-party",
         "store-prefix-is-not-the-store", "mcp-store", "tokens-service", "foundation-engines",
         "store-engines"],
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
        ("reverie.mcp_server", "from reverie import __version__\nfrom reverie.tokens import find_token\n"),
        ("reverie.text", "from reverie.clock import now\nfrom reverie.models import Memory\n"),
    ],
    ids=["engine-models", "store-sql", "service-store-engines", "cli-anything", "models-stdlib-pydantic",
         "similar-names-are-not-forbidden", "mcp-version-and-tokens", "foundation-helpers-and-models"],
)
def test_the_checker_accepts_imports_that_follow_the_layering(module, source):
    assert violations(module, source) == []


def test_a_module_in_no_layer_is_reported_until_it_is_given_one():
    found = violations("reverie.newcomer", "import json\n")

    assert found == ["reverie.newcomer: in no layer; give it one in LAYERS (tests/test_architecture.py)"]


def test_every_layer_named_in_a_whitelist_exists():
    names = {layer.name for layer in LAYERS}

    assert {allowed for layer in LAYERS for allowed in layer.may_import} <= names


# --- the environment is read in one place ------------------------------------------------

ENVIRONMENT_READER = "reverie.config"  # every variable Reverie honours is read (and documented) there
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb"}


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that touch the process environment: `os.environ`, `os.getenv`, or
    `from os import environ`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            found.append(node.lineno)
        elif (isinstance(node, ast.ImportFrom) and node.module == "os"
              and any(alias.name in ENVIRONMENT_NAMES for alias in node.names)):
            found.append(node.lineno)
    return sorted(found)


OUTSIDE_CONFIG = [(name, path) for name, _, path in MODULES if name != ENVIRONMENT_READER]


@pytest.mark.parametrize(("module", "path"), OUTSIDE_CONFIG, ids=[name for name, _ in OUTSIDE_CONFIG])
def test_only_config_reads_the_environment(module, path):
    lines = environment_reads(path.read_text(encoding="utf-8"))

    assert lines == [], f"{module} reads the environment on lines {lines}: add a function to reverie.config"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("import os\nkey = os.environ.get('K')\n", [2]),
        ("import os\nkey = os.environ['K']\n", [2]),
        ("import os\n\ndef f():\n    return os.getenv('K')\n", [4]),
        ("from os import environ\n", [1]),
        ("import os\npath = os.getcwd()\nos.replace('a', 'b')\n", []),
    ],
    ids=["environ-get", "environ-item", "getenv-in-function", "from-os-import-environ", "other-os-calls"],
)
def test_the_environment_check_finds_every_way_of_reading_it(source, lines):
    assert environment_reads(source) == lines
