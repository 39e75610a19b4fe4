"""Packaging: the installed package layout, catalogue import names and the headless core."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Folders at the top of the repository that install inside ``netdoctor``.
CATALOGUE_FOLDERS = {"checks": "netdoctor.checks", "collectors": "netdoctor.collectors", "fixers": "netdoctor.fixers"}

#: Modules that must load without Textual: everything but the interactive views.
CORE_PACKAGES = ("netdoctor.model", "netdoctor.capture", "netdoctor.checks", "netdoctor.collectors", "netdoctor.fixers")
CORE_MODULES = ("netdoctor.engine", "netdoctor.collect", "netdoctor.target", "netdoctor.sources", "netdoctor.report")


def run_python(code: str, cwd: Path) -> str:
    """Run code in a fresh interpreter outside the repository and return its stdout."""
    completed = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def package_folders() -> set[str]:
    """Return the import name of every folder in the source tree that contains an ``__init__.py``."""
    names = set()
    for init in (REPO / "netdoctor").rglob("__init__.py"):
        relative = init.parent.relative_to(REPO)
        names.add(".".join(relative.parts))
    for folder, package in CATALOGUE_FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            names.add(".".join((package, *relative.parts)))
    return {name for name in names if "__pycache__" not in name}


def test_packages_list_matches_folders() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]

    assert set(setuptools["packages"]) == package_folders()
    assert len(setuptools["packages"]) == len(set(setuptools["packages"]))
    for folder, package in CATALOGUE_FOLDERS.items():
        assert setuptools["package-dir"][package] == folder


def test_console_script_entry_point() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())

    assert config["project"]["scripts"]["netdoctor"] == "netdoctor.cli:main"


_IMPORT_ALL = """
import importlib, json, pkgutil, sys
for package_name in {packages!r}:
    package = importlib.import_module(package_name)
    for module in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(module.name)
for module_name in {modules!r}:
    importlib.import_module(module_name)
files = {{}}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path:
        files.setdefault(path, []).append(name)
print(json.dumps({{"modules": sorted(sys.modules), "files": files}}))
"""


def import_everything(cwd: Path) -> dict[str, object]:
    code = _IMPORT_ALL.format(packages=CORE_PACKAGES, modules=CORE_MODULES)
    result: dict[str, object] = json.loads(run_python(code, cwd))
    return result


def test_catalogue_imports_under_one_name(tmp_path: Path) -> None:
    result = import_everything(tmp_path)
    modules = set(result["modules"])  # type: ignore[call-overload]

    for folder in CATALOGUE_FOLDERS:
        assert folder not in modules
        assert not any(name.startswith(f"{folder}.") for name in modules)
    files: dict[str, list[str]] = result["files"]  # type: ignore[assignment]
    twice = {path: names for path, names in files.items() if len(names) > 1 and "netdoctor" in path}
    assert twice == {}


def test_headless_core_without_textual(tmp_path: Path) -> None:
    modules = set(import_everything(tmp_path)["modules"])  # type: ignore[call-overload]

    assert "textual" not in modules
    assert "netdoctor.model" in modules
    assert "netdoctor.engine" in modules

