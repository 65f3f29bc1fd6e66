"""The reference in docs/ keeps up with the code: every engine.yaml setting is on the
configuration page, every page is in the Sphinx tree, and README links only pages that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

from tornado_engine.config.loader import ENGINE_SECTIONS
from tornado_engine.config.settings import setting_fields

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_engine_setting_is_on_the_configuration_page() -> None:
    page = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    missing = [
        f"{section}.{field.name}"
        for section, cls in ENGINE_SECTIONS.items()
        for field in setting_fields(cls)
        if f"{section}.{field.name}" not in page and f"``{field.name}``" not in page
    ]
    assert not missing, f"docs/configuration.rst does not describe: {missing}"


def test_every_page_is_in_the_docs_tree() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([a-z_]+)$", index, re.M))
    pages = {path.stem for path in DOCS.glob("*.rst")} - {"index"}
    assert pages == listed, f"pages not in docs/index.rst: {sorted(pages - listed)}"


def test_readme_links_only_files_that_exist() -> None:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    targets = re.findall(r"`[^`<]*<([^>]+\.rst)>`_", readme)
    assert targets, "README.rst links no reference pages"
    gone = [target for target in targets if not (ROOT / target).exists()]
    assert not gone, f"README.rst links missing files: {gone}"
