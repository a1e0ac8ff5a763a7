"""The package's import graph has no cycle: every module under hdmodules/ is parsed with `ast`,
each relative import (at the top, inside a function or under TYPE_CHECKING) is an edge, and a
cycle fails the test, named module by module."""

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hdmodules"


def module_name(file: Path) -> str:
    parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(file: Path, modules: set[str]) -> set[str]:
    """The modules of the package that `file` imports, relative or absolute."""
    name = module_name(file)
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):  # import hdmodules.x.y
            found |= {a.name for a in node.names if a.name in modules}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:  # from hdmodules.x import y
            target = node.module or ""
        for alias in node.names:  # `from . import yamlfile` imports the module yamlfile
            if f"{target}.{alias.name}" in modules:
                found.add(f"{target}.{alias.name}")
            elif target in modules:
                found.add(target)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports(f, modules) for f in files}


def test_the_graph_sees_relative_imports_at_every_level():
    graph = import_graph()
    assert "hdmodules.spec.yamlfile" in graph["hdmodules.spec.recipes"]  # from . import yamlfile
    assert "hdmodules.store.gc" in graph["hdmodules.cli.hit_store"]  # imported in a function


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (module -> modules it imports), first module repeated at the end."""
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        return list(reversed(e.args[1]))  # graphlib lists it against the import direction
    return None


def test_a_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    found = cycle(graph)
    assert found is not None and found[0] == found[-1] and set(found) == {"a", "b", "c"}
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    found = cycle(import_graph())
    assert found is None, "import cycle in hdmodules: " + " -> ".join(found or [])


# The layers, in the direction data flows: a module may import its own layer and the layers
# before it, never one after it. Base modules (directly under hdmodules/) import no layer.
LAYERS = ("base", "spec", "store", "build", "publish", "cli")


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "base"


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a layer to a later one, as `importer -> imported`."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(
        f"{m} -> {dep}"
        for m, deps in graph.items()
        for dep in deps
        if rank[layer(dep)] > rank[layer(m)]
    )


def test_no_import_runs_against_the_data_flow():
    assert against_the_flow(import_graph()) == []


def test_an_import_against_the_flow_is_found():
    graph = {"hdmodules.spec.resolve": {"hdmodules.store.layout"}, "hdmodules.errors": set()}
    assert against_the_flow(graph) == ["hdmodules.spec.resolve -> hdmodules.store.layout"]
    assert layer("hdmodules.errors") == "base" and layer("hdmodules.cli.hit") == "cli"
