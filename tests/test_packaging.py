"""The engine as a user installs it: wheels built from this tree, in a fresh virtual environment.

The same check ``.ci/run`` makes; it runs here whenever pip can reach a package
index (it skips, saying so, only when it cannot, and never under CI).
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tornado_engine"


def shipped_source_files() -> set[str]:
    """Every file of the package a running engine may need: its modules, page files and markers."""
    return {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def test_the_wheel_holds_every_file_of_the_package(fresh_install):
    (wheel,) = fresh_install.dist.glob("tornado_engine-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    assert shipped_source_files() - shipped == set()


def test_an_installed_wheel_runs_an_order_through_serve(fresh_install):
    """Imports from the environment, serves on the embedded Redis, confirms an order, stops cleanly."""
    result = subprocess.run(
        [
            str(fresh_install.python),
            str(REPO / ".ci" / "smoke_order.py"),
            str(fresh_install.venv),
            str(fresh_install.workdir),
        ],
        cwd=fresh_install.workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no Redis server left behind" in result.stdout
