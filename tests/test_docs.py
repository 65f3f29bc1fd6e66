"""docs/plugins.rst documents every hook and the whole venue interface with exact signatures.

Like datasette's test_plugin_hooks_are_documented: change a hook or a public
method of Venue without changing its documentation and this fails.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from tornado_engine.venues import api as venue
from tornado_engine.venues import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.rst"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def signature_text(function) -> str:
    """The signature as the docs write it: ``async def name(arg: Type = default) -> Return``."""
    signature = inspect.signature(function)
    params = []
    for param in signature.parameters.values():
        text = param.name
        if param.annotation is not param.empty:
            text += f": {param.annotation}"  # string annotations: the source text
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = "" if signature.return_annotation is signature.empty else f" -> {signature.return_annotation}"
    prefix = "async def" if inspect.iscoroutinefunction(function) else "def"
    return f"{prefix} {function.__name__}({', '.join(params)}){returns}"


HOOKS = {name: f for name, f in vars(hookspecs).items() if hasattr(f, f"{hookspecs.PROJECT_NAME}_spec")}
VENUE_METHODS = {n: f for n, f in vars(venue.Venue).items() if not n.startswith("_") and callable(f)}
DATA_CLASSES = [venue.VenueSettings, venue.QuoteRequest, venue.Quote, venue.SwapRequest, venue.SwapResult]


def test_there_are_hooks_and_methods_to_document():
    assert "register_venues" in HOOKS
    assert {"quote", "build", "swap", "status", "supports"} <= set(VENUE_METHODS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_documented_with_its_signature(doc, name):
    assert f".. _hook_{name}:" in doc, f"docs/plugins.rst has no section for hook {name}"
    assert signature_text(HOOKS[name]) in doc, f"document {signature_text(HOOKS[name])!r}"


def test_no_documented_hook_is_gone(doc):
    assert set(re.findall(r"\.\. _hook_(\w+):", doc)) == set(HOOKS)


@pytest.mark.parametrize("name", sorted(VENUE_METHODS))
def test_every_venue_method_is_documented_with_its_signature(doc, name):
    assert f".. _venue_method_{name}:" in doc, f"docs/plugins.rst has no section for Venue.{name}"
    assert signature_text(VENUE_METHODS[name]) in doc, f"document {signature_text(VENUE_METHODS[name])!r}"


def test_no_documented_venue_method_is_gone(doc):
    assert set(re.findall(r"\.\. _venue_method_(\w+):", doc)) == set(VENUE_METHODS)


@pytest.mark.parametrize("cls", DATA_CLASSES, ids=lambda c: c.__name__)
def test_every_data_class_is_documented_field_by_field(doc, cls):
    lines = [f"class {cls.__name__}:"]
    for field in dataclasses.fields(cls):
        default = "" if field.default is dataclasses.MISSING else f" = {field.default!r}"
        lines.append(f"    {field.name}: {field.type}{default}")
    block = "\n".join(f"   {line}" for line in lines)
    assert block + "\n\n" in doc, f"docs/plugins.rst should hold, exactly:\n{block}"


@pytest.mark.parametrize("error", ["VenueError", "RetryableVenueError", "FinalVenueError"])
def test_every_error_class_is_documented(doc, error):
    assert f"``{error}``" in doc


def test_the_docs_are_valid_restructuredtext(doc):
    docutils_core = pytest.importorskip("docutils.core")
    import io

    warnings = io.StringIO()
    docutils_core.publish_doctree(doc, settings_overrides={"warning_stream": warnings, "report_level": 2})
    assert warnings.getvalue() == ""


def test_signature_text_notices_a_changed_signature():
    """The check is only as good as this rendering: a changed argument must change the text."""

    async def quote(self, request: venue.QuoteRequest, timeout: float = 1.0) -> venue.Quote:
        raise NotImplementedError

    assert signature_text(quote) == (
        "async def quote(self, request: venue.QuoteRequest, timeout: float = 1.0) -> venue.Quote"
    )
    assert signature_text(quote) != signature_text(venue.Venue.quote)
