"""docs/plugins.rst documents every hook, the whole venue interface and the public API, exactly.

Like datasette's test_plugin_hooks_are_documented: change a hook or a public
method of Venue without changing its documentation and this fails; export a
name without documenting it, or tell authors to import one that is not
exported, and this fails too.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import tornado_engine
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
POOL_ADMIN_METHODS = {n: f for n, f in vars(venue.PoolAdmin).items() if not n.startswith("_") and callable(f)}
EXPORTS = {name for name in tornado_engine.__all__ if not name.startswith("__")}
DATA_CLASSES = [venue.VenueSettings, venue.QuoteRequest, venue.Quote, venue.SwapRequest, venue.SwapResult]


def imported_from(doc: str, module: str) -> set[str]:
    """Every name the guide's examples import with ``from <module> import ...``."""
    names: set[str] = set()
    for match in re.finditer(rf"from {re.escape(module)} import (?:\(([^)]*)\)|([^\n]+))", doc):
        text = match.group(1) if match.group(1) is not None else match.group(2)
        names |= {name.strip() for name in text.split(",") if name.strip()}
    return names


def test_there_are_hooks_and_methods_to_document():
    assert "register_venues" in HOOKS
    assert {"quote", "build", "swap", "status", "supports"} <= set(VENUE_METHODS)
    assert {"describe_pools", "add_pool"} == set(POOL_ADMIN_METHODS)


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


@pytest.mark.parametrize("name", sorted(POOL_ADMIN_METHODS))
def test_every_pool_admin_method_is_documented_with_its_signature(doc, name):
    assert f".. _pool_admin_method_{name}:" in doc, f"docs/plugins.rst has no section for PoolAdmin.{name}"
    signature = signature_text(POOL_ADMIN_METHODS[name])
    assert signature in doc, f"document {signature!r}"


def test_no_documented_pool_admin_method_is_gone(doc):
    assert set(re.findall(r"\.\. _pool_admin_method_(\w+):", doc)) == set(POOL_ADMIN_METHODS)


def test_every_name_the_guide_imports_from_tornado_engine_is_exported(doc):
    imported = imported_from(doc, "tornado_engine")
    assert "hookimpl" in imported
    assert imported <= set(tornado_engine.__all__), f"not exported: {sorted(imported - EXPORTS)}"


def test_the_public_api_section_imports_exactly_the_exports(doc):
    section = doc[doc.index("The public API\n---") : doc.index("The venue adapter interface\n---")]
    assert imported_from(section, "tornado_engine") == EXPORTS


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_export_is_described_beyond_the_list(doc, name):
    listed = doc[doc.index("The public API\n---") : doc.index("The venue adapter interface\n---")]
    rest = doc.replace(listed, "")
    assert re.search(rf"\b{name}\b", rest), f"describe {name} in docs/plugins.rst"
    assert getattr(tornado_engine, name) is not None


def test_the_guide_names_no_engine_module_beyond_the_public_api(doc):
    named = set(re.findall(r"\btornado_engine\.(\w+)", doc))
    assert named <= EXPORTS | {"testing"}, f"not public: {sorted(named - EXPORTS - {'testing'})}"


def test_every_name_the_guide_imports_from_the_simulation_toolkit_is_exported(doc):
    toolkit = pytest.importorskip("tornado_engine_simulation")
    imported = imported_from(doc, "tornado_engine_simulation")
    assert "SimulatedVenue" in imported
    assert imported <= set(toolkit.__all__)


@pytest.mark.parametrize("package", ["tornado_engine", "tornado_engine_simulation"])
def test_the_public_packages_are_typed(package):
    module = pytest.importorskip(package)
    assert (Path(module.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize("cls", DATA_CLASSES, ids=lambda c: c.__name__)
def test_every_data_class_is_documented_field_by_field(doc, cls):
    lines = [f"class {cls.__name__}:"]
    for field in dataclasses.fields(cls):
        default = "" if field.default is dataclasses.MISSING else f" = {field.default!r}"
        lines.append(f"    {field.name}: {field.type}{default}")
    block = "\n".join(f"   {line}" for line in lines)
    assert block + "\n\n" in doc, f"docs/plugins.rst should hold, exactly:\n{block}"


@pytest.mark.parametrize(
    "error",
    ["VenueError", "RetryableVenueError", "FinalVenueError", "InsufficientLiquidityError", "SlippageError"],
)
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
