"""No import circle in `notifications/` and `config/`, lazy imports included (issue 20).

The graph is built from the source, not from `sys.modules`: every `import` and `from … import`
statement of every module counts, wherever it stands (at the top, inside a function or a method,
under `if TYPE_CHECKING:`). An import moved into a function still ties the two modules together:
it only hides the circle from Python's import machinery, and the day someone lifts it to the top
the process no longer starts. `from x import y` counts as importing `x.y` when `x.y` is a module
(the package's `__init__` runs first, but `x.y` is what the importer needs), as importing `x`
otherwise. Relative imports are resolved against the importing module's package.

Only modules of the project are nodes; Django, Celery and the rest are leaves and cannot close a
circle back into it.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("notifications", "config")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_names(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    return {imported for imported in found if imported in modules and imported != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_names(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module, as one circle through it.

    Tarjan's algorithm, iterative (a deep chain of imports must not reach the recursion limit);
    the circle shown is a shortest one from the component's first module back to itself.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [shortest_circle(graph, component) for component in sorted(components)]


def shortest_circle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to it, inside the component."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is no circle")  # a component of more than one module always has one


def describe(circle: list[str]) -> str:
    return " -> ".join(circle)


def test_the_project_imports_in_no_circle():
    graph = import_graph()
    assert "notifications.core.outbox.lifecycle" in graph, "the graph must cover the project's modules"
    found = circles(graph)
    assert not found, "import circles (imports inside functions count):\n" + "\n".join(map(describe, found))


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        # a lazy import inside a function closes the circle as much as one at the top
        ({"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n",
          "pkg/b.py": "def f():\n    from pkg import a\n    return a\n"}, [["pkg.a", "pkg.b", "pkg.a"]]),
        # `from pkg.sub import thing` imports pkg.sub, whose package imports nothing back
        ({"pkg/__init__.py": "", "pkg/sub/__init__.py": "from pkg.sub.c import C\n",
          "pkg/sub/c.py": "from pkg import d\nC = 1\n", "pkg/d.py": "X = 1\n"}, []),
        # `from pkg import d` where d is a module names the module, and a relative import resolves
        ({"pkg/__init__.py": "", "pkg/c.py": "from . import d\n",
          "pkg/d.py": "class D:\n    def m(self):\n        from pkg.c import x\n"}, [["pkg.c", "pkg.d", "pkg.c"]]),
        # three modules round, reported once with its members in order
        ({"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import B\n", "pkg/b.py": "from pkg.c import C\nB = 1\n",
          "pkg/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.a import A\nC = 1\n"},
         [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]),
    ],
)
def test_circles_are_found_from_the_source(tmp_path, monkeypatch, sources, expected):
    for relative, text in sources.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("pkg",))
    assert circles(import_graph()) == expected
