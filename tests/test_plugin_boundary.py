"""The plugin boundary, read from the source: the core imports no plugin, plugins import only the public API.

The bundled venues are built exactly as a third party builds one, so they may
import ``tornado_engine`` (the names it exports) and, in tests, the kit in
``tornado_engine.testing``; nothing deeper. The engine, in turn, knows no
plugin by name: the simulation is a plugin distribution like any other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import tornado_engine

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "tornado_engine"
PLUGINS = ROOT / "plugins"
PUBLIC_MODULES = {"tornado_engine", "tornado_engine.testing"}


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """Every absolute import in ``path``: (module, names taken from it, line)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [alias.name for alias in node.names], node.lineno


def plugin_modules() -> set[str]:
    """The top-level modules the distributions under ``plugins/`` provide."""
    found = set()
    for distribution in PLUGINS.iterdir():
        for entry in distribution.iterdir() if distribution.is_dir() else ():
            if (entry / "__init__.py").is_file():
                found.add(entry.name)
            elif entry.suffix == ".py" and entry.name != "setup.py":
                found.add(entry.stem)
    return found


def top_level(module: str) -> str:
    return module.partition(".")[0]


CORE_FILES = sorted(CORE.rglob("*.py"))
PLUGIN_FILES = sorted(PLUGINS.rglob("*.py"))


def test_the_bundled_plugins_are_where_the_checks_look():
    assert {
        "tornado_engine_simulation",
        "tornado_engine_mock_raydium",
        "tornado_engine_mock_meteora",
        "tornado_engine_example_venue",
    } <= plugin_modules()
    assert not (CORE / "simulation").exists()


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_plugin(path):
    plugins = plugin_modules()
    for module, _, line in imports(path):
        assert top_level(module) not in plugins, f"{path.relative_to(ROOT)}:{line} imports plugin {module}"


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_api(path):
    for module, names, line in imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if top_level(module) != "tornado_engine":
            continue
        assert module in PUBLIC_MODULES, f"{where} imports {module}; use what tornado_engine exports"
        if module == "tornado_engine":
            private = set(names) - set(tornado_engine.__all__)
            assert not private, f"{where} imports {sorted(private)}, which tornado_engine does not export"
