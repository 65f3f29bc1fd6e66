"""The package's layout: imports run one way, so each module can be read on its own.

The import graph is read from the source with ``ast``: imports at module level
and inside functions count, imports under ``if TYPE_CHECKING:`` do not (they
never run). A cycle means two modules cannot be understood, or loaded, apart;
a function-level import of one of our own modules is how a cycle hides.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tornado_engine

PACKAGE = "tornado_engine"
ROOT = Path(tornado_engine.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import that can run, with whether it sits inside a function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                yield from imports(ast.Module(body=[child], type_ignores=[]), in_function)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
            continue
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from imports(node, nested)


def targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of this package an import statement loads."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = {
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
        }
    found = set()
    for name in names:
        while name and name not in MODULES:  # ``import a.b.c`` where c is not a module of ours
            name = name.rpartition(".")[0]
        if name.split(".")[0] == PACKAGE and name:
            found.add(name)
    return found


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges module -> modules it imports, and every function-level import of our own modules."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    hidden: list[str] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function in imports(tree):
            found = targets(module, node) - {module}
            graph[module] |= found
            if in_function and found:
                hidden.append(f"{module} line {node.lineno}: {', '.join(sorted(found))}")
    return graph, hidden


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package():
    graph, _ = import_graph()
    assert "tornado_engine.engine" in graph
    assert "tornado_engine.web.app" in graph
    assert "tornado_engine.engine" in graph["tornado_engine.web.app"]


def test_there_are_no_import_cycles():
    graph, _ = import_graph()
    assert cycles(graph) == []


def test_no_module_of_the_package_is_imported_inside_a_function():
    _, hidden = import_graph()
    assert hidden == []


def test_the_composition_root_does_not_import_the_web_layer():
    graph, _ = import_graph()
    assert not any(target.startswith("tornado_engine.web") for target in graph["tornado_engine.engine"])


def test_metrics_do_not_import_the_engine():
    graph, _ = import_graph()
    assert "tornado_engine.engine" not in graph["tornado_engine.observability.metrics"]
