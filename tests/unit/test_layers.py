"""The import graph of src/tierbench, derived from the source with `ast`: no cycles (lazy imports
inside functions count too), and every import points down the layers of docs/design.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "tierbench"

# Lowest first. A module may import only from its own layer or the ones below it; within a layer
# the no-cycle rule is the only constraint. The first matching prefix decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("data", ("tierbench.errors", "tierbench.exitcodes", "tierbench.models", "tierbench.options", "tierbench.judgespec",
              "tierbench.spec", "tierbench.resources", "tierbench.config", "tierbench.plan",
              "tierbench.store.atomic", "tierbench.transcript")),
    ("store / ratelimit / process", ("tierbench.store", "tierbench.ratelimit", "tierbench.process",
                                     "tierbench.progress", "tierbench.signals", "tierbench.sandbox",
                                     "tierbench.reaper")),
    ("agents / judges", ("tierbench.agents", "tierbench.judges")),
    ("run", ("tierbench.run", "tierbench.experiment", "tierbench.report")),
    ("execute", ("tierbench.execute",)),
    ("batch", ("tierbench.batch",)),
    ("cli / commands / view", ("tierbench.commands", "tierbench.cli", "tierbench.status", "tierbench.view",
                               "tierbench.scylla_import")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every tierbench module `path` imports, at module level or inside a function. `from a import b`
    counts as importing `a.b` when that is a module, else `a`. TYPE_CHECKING-only imports are skipped:
    they never run."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(tree, False)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        targets = {t for t in imports_of(path, name, set(paths)) if t in paths}
        targets.discard(name)
        # A package's own __init__ is not a dependency edge worth a cycle (importing a.b runs a).
        graph[name] = {t for t in targets if t != PACKAGE}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in this test and to docs/design.md")
    return best[1]


def test_the_graph_is_derived_from_the_source():
    graph = import_graph()
    assert "tierbench.execute.coordinator" in graph["tierbench.commands"]
    assert "tierbench.store.state" in graph["tierbench.execute.coordinator"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in sorted(import_graph().items()):
        if module == PACKAGE:
            continue
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize("module", ["tierbench.process", "tierbench.store.state", "tierbench.spec"])
def test_low_layers_import_nothing_above_them(module):
    graph = import_graph()
    assert all(layer_of(t) <= layer_of(module) for t in graph[module])
