"""What the wheel is built from: one version, the license it claims, and every file the code reads.

Building and installing the wheel needs the network (setuptools from PyPI, the dependencies),
so that runs in CI as .ci/wheel-smoke; these checks read the sources and stay offline.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import reverie
from reverie.cli import main

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "server" / "reverie"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once_and_the_installed_metadata_and_cli_report_it(capsys):
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "reverie.__version__"}
    assert importlib.metadata.version("reverie-mcp") == reverie.__version__
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"reverie {reverie.__version__}\n"


def test_the_license_file_is_the_license_pyproject_declares():
    assert PYPROJECT["project"]["license"] == "MIT" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    assert any(int(need.split(">=")[1]) >= 77 for need in PYPROJECT["build-system"]["requires"]
               if need.startswith("setuptools>=")), "the SPDX license string needs setuptools >= 77"


def test_every_file_beside_the_code_is_declared_package_data_so_the_wheel_ships_it():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["reverie"]
    data = [path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*")
            if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts]
    assert "py.typed" in data
    assert [file for file in data if not any(fnmatch.fnmatch(file, pattern) for pattern in patterns)] == []
