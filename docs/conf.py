"""Sphinx configuration: the reference lives in docs/, README.rst is the front page.

Built in the test suite with warnings as errors (tests/test_docs_build.py), so a
broken link, a bad heading or a page left out of the tree fails CI.
"""

project = "tornado-engine"
author = "the tornado-engine developers"
copyright = "2026, the tornado-engine developers"
extensions: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
