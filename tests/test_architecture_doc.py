"""docs/architecture.rst names every module of the tree, and nothing that is gone.

The page is how a newcomer finds the folder for a step of the journey; a module
added, moved or removed without it would make the page lie.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tornado_engine"
DOC = ROOT / "docs" / "architecture.rst"


def modules() -> set[str]:
    """Every module of the package as the page writes it: ``web/socket``, ``engine``, ``testing/``."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        if relative.name == "__init__":
            if relative.parent == Path("."):
                names.add("__init__")
            elif relative.parent.parent == Path("."):
                names.add(f"{relative.parent.as_posix()}/")
            continue
        names.add(relative.as_posix())
    return names


def documented() -> set[str]:
    """The names in the first column of the page's module table."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("``tornado_engine/``", 1)[1].split("``plugins/``", 1)[0]
    names = set()
    for line in table.splitlines():
        if line.startswith("``"):
            first_column = line.split("  ", 1)[0]
            names.update(re.findall(r"``([^`]+)``", first_column))
    return names


def test_every_module_is_on_the_architecture_page() -> None:
    packages_with_only_init = {name for name in modules() if name.endswith("/")}
    missing = modules() - documented() - packages_with_only_init
    missing |= {
        p
        for p in packages_with_only_init
        if p not in documented() and not any(m.startswith(p) and m != p for m in documented())
    }
    assert not missing, f"docs/architecture.rst does not describe: {sorted(missing)}"


def test_the_architecture_page_names_no_module_that_is_gone() -> None:
    real = modules() | {"web/static/"}
    gone = {name for name in documented() if name not in real}
    assert not gone, f"docs/architecture.rst describes modules that do not exist: {sorted(gone)}"
