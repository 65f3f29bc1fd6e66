"""``tornado-engine plugin new NAME``: a package whose tests, the conformance suite included, pass
before its author changes a line (run from the generated directory, not installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tornado_engine.venues.scaffold import ScaffoldError, new_plugin


def tornado_engine(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_plugin_new_writes_a_package_whose_tests_pass_unchanged(tmp_path):
    made = tornado_engine("plugin", "new", "my-dex", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "tornado-engine-my-dex"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "README.rst",
        "pyproject.toml",
        "tests/test_venue.py",
        "tornado_engine_my_dex.py",
    ]
    # The `pytest` script, not `python -m pytest`: that one would put the directory on sys.path itself.
    pytest_script = shutil.which("pytest", path=str(Path(sys.executable).parent)) or "pytest"
    run = subprocess.run(
        [pytest_script, "-q", "-p", "no:cacheprovider"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "TestConformance" not in run.stdout  # nothing failed or errored
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_the_generated_plugin_registers_its_kind_under_the_entry_point_it_declares(tmp_path):
    package = new_plugin("my-dex", tmp_path)
    pyproject = (package / "pyproject.toml").read_text()
    assert '[project.entry-points.tornado_engine]\nmy-dex = "tornado_engine_my_dex"' in pyproject
    assert 'KIND = "my-dex"' in (package / "tornado_engine_my_dex.py").read_text()


@pytest.mark.skipif(shutil.which("ruff") is None, reason="needs ruff")
def test_the_generated_plugin_is_lint_clean(tmp_path):
    package = new_plugin("my-dex", tmp_path)
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        result = subprocess.run(command, cwd=package, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["My_Dex", "1dex", "dex-", ""])
def test_a_bad_plugin_name_is_refused_saying_what_a_name_is(tmp_path, name):
    with pytest.raises(ScaffoldError, match="use lower-case letters, digits and hyphens"):
        new_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path):
    (tmp_path / "tornado-engine-my-dex").mkdir()
    result = tornado_engine("plugin", "new", "my-dex", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'tornado-engine-my-dex'} already exists: choose another name, or remove it"
    )
