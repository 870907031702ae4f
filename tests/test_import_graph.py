"""No module of the ``ladder`` package imports another that imports it back, directly or through
others, counting the imports inside functions (the lazy ones) too.

The graph is read from the source with ``ast``: an edge A -> B for every ``import B`` /
``from B import name`` in A (``from P import m`` is an edge to the submodule ``P.m`` when that
is a module, else to ``P``; relative imports are resolved against A's package). Only imports
written in a module count: importing ``ladder.x`` also runs ``ladder/__init__.py``, which is
not an edge from the importer (otherwise every module would sit in a cycle with the package).
Imports under ``if TYPE_CHECKING:`` never run and are not edges.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "ladder"


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package_dir`` (a package)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
        or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif _type_checking_only(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source (top level,
    functions, classes, ``if`` blocks)."""
    files = module_files(package_dir)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..m import y
                    anchor = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in files else base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_ladder_package_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR)
    cycle = find_cycle(graph)
    assert cycle is None, ("import cycle in the ladder package: " + " -> ".join(cycle)
                           + " (move what both need into a module that imports neither)")


def test_the_graph_sees_every_kind_of_import():
    """Edges the walker must find in the real package: a top-level import, a function-level
    one, and ``from ladder import <submodule>``; and data/imagenette share datasets_common."""
    graph = import_graph(PACKAGE_DIR)
    assert "ladder.ladders.schema" in graph["ladder.data.loaders"]  # top level
    assert "ladder.data.device" in graph["ladder.data.loaders"]  # inside build_loaders
    assert "ladder.ladders.rungs" in graph["ladder.ladders.inspect"]  # from ladder import rungs
    assert "ladder.data.common" in graph["ladder.data.imagenette"]
    assert "ladder.data.loaders" not in graph["ladder.data.imagenette"]


def test_a_lazy_import_back_is_a_cycle(tmp_path):
    """Two modules importing each other only inside functions, as data.py and imagenette.py
    did, are reported; relative imports resolve inside the package."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import os\n\ndef f():\n    from pkg.b import g\n    return g\n")
    (pkg / "b.py").write_text("def g():\n    from . import a\n    return a\n")
    (pkg / "sub" / "c.py").write_text("from ..a import f\nfrom pkg import b\n")
    (pkg / "d.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from pkg import a\n"
                              "else:\n    from pkg import b\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub.c"] == {"pkg.a", "pkg.b"}
    assert graph["pkg.d"] == {"pkg.b"}  # the TYPE_CHECKING branch never runs
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    (pkg / "b.py").write_text("def g():\n    return 1\n")
    assert find_cycle(import_graph(pkg)) is None


ARCHITECTURE = PACKAGE_DIR.parent / "docs" / "architecture.md"


def written_direction(path: Path = ARCHITECTURE) -> dict[str, set[str]]:
    """Part -> the parts it may import, from the table in docs/architecture.md (rows
    ``| `ladder/<part>/` | owns | a, b, c |``; ``—`` for none)."""
    rules: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`ladder/") and cells[0].endswith("/`"):
            part = cells[0].strip("`").split("/")[1]
            rules[part] = {p.strip() for p in cells[2].split(",") if p.strip() not in ("", "—")}
    return rules


def part_of(module: str) -> str | None:
    """The part (subpackage) a module belongs to; None for the top-level entry points."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and (PACKAGE_DIR / pieces[1]).is_dir() else None


def test_every_part_is_written_down_and_says_what_it_may_import():
    rules = written_direction()
    parts = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    assert parts == set(rules), f"parts without a row in docs/architecture.md: {parts ^ set(rules)}"
    for part, allowed in rules.items():
        assert allowed <= set(rules), f"{part} may import unknown parts {allowed - set(rules)}"
        doc = ast.get_docstring(ast.parse((PACKAGE_DIR / part / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"ladder/{part}/__init__.py does not say what it may import"
        said = set(re.findall(r":mod:`ladder\.(\w+)`", doc.split("May import", 1)[1]))
        assert said == allowed, (f"ladder/{part}/__init__.py says it may import {sorted(said)}, "
                                 f"docs/architecture.md says {sorted(allowed)}")


def test_no_import_runs_against_the_written_direction():
    rules = written_direction()
    against = sorted(f"{a} -> {b}" for a, targets in import_graph(PACKAGE_DIR).items()
                     for b in targets
                     if part_of(a) and part_of(b) and part_of(a) != part_of(b)
                     and part_of(b) not in rules[part_of(a)])
    assert not against, "imports against docs/architecture.md: " + ", ".join(against)


def test_an_import_against_the_direction_is_caught(tmp_path):
    """The check fails on a package where a lower part imports a higher one."""
    pkg = tmp_path / "ladder"
    for part in ("low", "high"):
        (pkg / part).mkdir(parents=True)
        (pkg / part / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "a.py").write_text("from ladder.low import b\n")
    (pkg / "low" / "b.py").write_text("from ladder.high import a\n")
    graph = import_graph(pkg)
    rules = {"low": set(), "high": {"low"}}
    parts = lambda m: m.split(".")[1]  # noqa: E731
    against = [(a, b) for a, ts in graph.items() for b in ts
               if parts(a) != parts(b) and parts(b) not in rules[parts(a)]]
    assert against == [("ladder.low.b", "ladder.high.a")]
