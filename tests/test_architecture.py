"""Issue 12's two structural rules, read from the package's source with `ast` (evhub is never imported):

1. No import cycle among evhub's modules, counting every import: at module level, inside functions
   and methods, under `if TYPE_CHECKING:`, in `try` blocks, relative or absolute, and
   `importlib.import_module` of a constant name. A cycle is named `a -> b -> a`, each step with the
   file:line of the import that makes it, so the developer sees which import to change.
2. Outside the store modules no code tests which store it has: no `isinstance`/`issubclass` against
   JsonlStore, PgStore or Store (alone or in a tuple), no `type(x) is PgStore` (or `x.__class__`),
   no `case JsonlStore():`, and no comparison of a `kind` or `__class__.__name__` with a store's
   name ("jsonl", "postgresql", "JsonlStore", "PgStore"). Importing a store class to construct one
   is allowed.

The checkers take {module name: source text}, so the self-tests below show on small made-up
packages that each kind of import and each kind of store test is seen: the rules cannot pass merely
because they found nothing.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "evhub"
PACKAGE_DIR = ROOT / PACKAGE

# The modules allowed to know which store they are.
STORE_MODULES = frozenset({"_store.py", "_pgstore.py", "_jsonl.py"})
STORE_CLASSES = frozenset({"JsonlStore", "PgStore", "Store"})
# The classes whose identity may not be tested by type(x)/x.__class__ (Store is the base of both).
CONCRETE_STORES = frozenset({"JsonlStore", "PgStore"})
STORE_NAMES = frozenset({"jsonl", "postgresql", "JsonlStore", "PgStore"})


class Import(NamedTuple):
    """One import statement that makes an edge: where it is and what it says."""

    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.text})"


# module -> imported evhub module -> the imports that make that edge
Graph = dict[str, dict[str, list[Import]]]


class Violation(Import):
    """A forbidden test of which store the code has: where it is and what it says."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


# --- reading the package ---------------------------------------------------------------------------


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """evhub/__init__.py -> evhub, evhub/_hub.py -> evhub._hub."""
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(module: str, packages: frozenset[str]) -> str:
    """The file a module name stands for, relative to the repository: evhub._hub -> evhub/_hub.py."""
    base = module.replace(".", "/")
    return f"{base}/__init__.py" if module in packages else f"{base}.py"


@cache
def package_sources() -> Mapping[str, str]:
    """{module name: source} for every .py file of the package."""
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def parse(source: str, filename: str) -> ast.Module:
    """A module's tree, parsed once however many checks read it (the trees are never changed)."""
    return ast.parse(source, filename=filename)


def packages_of(modules: Mapping[str, str] | frozenset[str], root: str = PACKAGE) -> frozenset[str]:
    """The names that are packages (an __init__.py): the root and any name another module is under."""
    names = set(modules)
    return frozenset({root} | {n for n in names if any(o.startswith(n + ".") for o in names)})


# --- rule 1: the import graph ----------------------------------------------------------------------


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of `from <level dots><target> import ...` written in `module`."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    if target:
        parts.extend(target.split("."))
    return ".".join(parts)


def _known_prefix(name: str, modules: Mapping[str, str]) -> str | None:
    """The longest known module that `name` is or is inside (evhub._x.y -> evhub._x)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _imported_modules(
    node: ast.AST, module: str, modules: Mapping[str, str], packages: frozenset[str]
) -> list[str]:
    """The package's modules one AST node imports, if it is an import at all."""
    if isinstance(node, ast.Import):
        found = [_known_prefix(a.name, modules) for a in node.names]
        return [m for m in found if m is not None]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = _resolve_relative(module, module in packages, node.level, node.module)
        else:
            base = node.module or ""
        if base in packages:
            # `from . import x`: an edge to the submodule x when there is one, else to the package.
            out = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append(sub if sub in modules else base)
            return out
        known = _known_prefix(base, modules)
        return [known] if known is not None else []
    if isinstance(node, ast.Call):
        # importlib.import_module("evhub._x") / import_module("._x", "evhub" or __package__)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("import_module", "__import__") or not node.args:
            return []
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            return []
        target = first.value
        if target.startswith("."):
            level = len(target) - len(target.lstrip("."))
            target = _resolve_relative(module, module in packages, level, target[level:] or None)
        known = _known_prefix(target, modules)
        return [known] if known is not None else []
    return []


def import_graph(sources: Mapping[str, str], root: str = PACKAGE) -> Graph:
    """Module -> the package's modules it imports anywhere in its source, with the imports' lines.

    A module importing itself is no edge. An import of a submodule (`from . import _x`,
    `import evhub._x`, `from evhub._x import y`) is an edge to that submodule only, not to the
    package's __init__ (which Python runs first, but which is part of no cycle unless imported).
    """
    packages = packages_of(sources, root)
    graph: Graph = {m: {} for m in sources}
    for module, source in sources.items():
        path = module_path(module, packages)
        tree = parse(source, path)
        for node in ast.walk(tree):
            for target in _imported_modules(node, module, sources, packages):
                if target == module:
                    continue
                imp = Import(path, getattr(node, "lineno", 0), ast.unparse(node))
                graph[module].setdefault(target, []).append(imp)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (each one holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def _shortest_path(graph: Graph, start: str, end: str, within: set[str]) -> list[str]:
    """The shortest import path start -> ... -> end staying inside `within` (one exists in an SCC)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == end:
            break
        for w in sorted(graph.get(v, {})):
            if w in within and w not in came_from:
                came_from[w] = v
                queue.append(w)
    path: list[str] = []
    at: str | None = end
    while at is not None:
        path.append(at)
        at = came_from[at]
    return path[::-1]


def cycles(graph: Graph) -> list[list[str]]:
    """Cycles, each as [a, b, ..., a], such that every import edge lying on some cycle is in one.

    For each edge u -> v inside a strongly connected component, the shortest cycle through it;
    the same cycle found from several of its edges is named once, starting at its smallest module.
    """
    found: set[tuple[str, ...]] = set()
    for component in strongly_connected(graph):
        members = set(component)
        for u in component:
            for v in sorted(graph[u]):
                if v not in members:
                    continue
                loop = [u, *_shortest_path(graph, v, u, members)[:-1]]
                start = loop.index(min(loop))
                found.add(tuple(loop[start:] + loop[:start]))
    return [[*loop, loop[0]] for loop in sorted(found)]


def describe_cycles(graph: Graph) -> str:
    """The failure message: each cycle as `a -> b -> a`, then the imports that make each step."""
    out: list[str] = []
    for loop in cycles(graph):
        out.append(" -> ".join(loop))
        for a, b in zip(loop, loop[1:], strict=False):
            for imp in graph[a][b]:
                out.append(f"    {a} -> {b}: {imp}")
    return "\n".join(out)


# --- rule 2: nobody but the stores asks which store it has -----------------------------------------


def _store_class_names(tree: ast.AST) -> set[str]:
    """The local names that stand for a store class, aliases included (`import JsonlStore as J`)."""
    names = set(STORE_CLASSES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in STORE_CLASSES and alias.asname:
                    names.add(alias.asname)
    return names


def _is_store_class(node: ast.AST, names: set[str], only: frozenset[str] | None = None) -> bool:
    """A reference to a store class (`JsonlStore`, `_store.JsonlStore`), or a tuple/set/list holding one."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_store_class(e, names, only) for e in node.elts)
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return False
    if name not in names:
        return False
    if only is None:
        return True
    return name in only or name not in STORE_CLASSES  # an alias: its class is unknown here, count it


def _is_type_of(node: ast.AST) -> bool:
    """`type(x)` or `x.__class__`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type":
        return True
    return isinstance(node, ast.Attribute) and node.attr == "__class__"


def _is_kind_of(node: ast.AST) -> bool:
    """`kind`, `x.kind`, `x.__class__.__name__` or `type(x).__name__`."""
    if isinstance(node, ast.Name):
        return node.id == "kind"
    if isinstance(node, ast.Attribute):
        if node.attr == "kind":
            return True
        return node.attr in ("__name__", "__qualname__") and _is_type_of(node.value)
    return False


def _is_store_name(node: ast.AST) -> bool:
    """The string "jsonl", "postgresql", "JsonlStore" or "PgStore", or a tuple/set/list holding one."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_store_name(e) for e in node.elts)
    return isinstance(node, ast.Constant) and node.value in STORE_NAMES


def _store_tests(tree: ast.AST, names: set[str]) -> Iterator[ast.AST]:
    """The nodes of a tree that test which store something is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                if _is_store_class(node.args[1], names):
                    yield node
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_type_of(o) for o in operands) and any(
                _is_store_class(o, names, CONCRETE_STORES) for o in operands
            ):
                yield node
            elif any(_is_kind_of(o) for o in operands) and any(_is_store_name(o) for o in operands):
                yield node
        elif isinstance(node, ast.MatchClass):
            if _is_store_class(node.cls, names):
                yield node
        elif isinstance(node, ast.Match) and _is_kind_of(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue) and _is_store_name(pattern.value):
                        yield pattern


def store_type_tests(sources: Mapping[str, str], root: str = PACKAGE) -> list[Violation]:
    """Every test of which store it has, in every module but the store modules."""
    packages = packages_of(sources, root)
    out: list[Violation] = []
    for module, source in sorted(sources.items()):
        path = module_path(module, packages)
        if Path(path).name in STORE_MODULES:
            continue
        tree = parse(source, path)
        for node in _store_tests(tree, _store_class_names(tree)):
            out.append(Violation(path, getattr(node, "lineno", 0), ast.unparse(node)))
    return sorted(out)


# --- the rules, on the package ---------------------------------------------------------------------


def test_the_package_is_read() -> None:
    # Guards the checks below against passing on nothing: the package's modules are found, parsed,
    # and their imports seen (the package re-exports Hub, so evhub -> evhub._hub is an edge).
    sources = package_sources()
    assert {"evhub", "evhub._hub", "evhub._store", "evhub._cli"} <= set(sources)
    graph = import_graph(sources)
    assert "evhub._hub" in graph["evhub"]
    assert sum(len(targets) for targets in graph.values()) > len(sources)


def test_no_import_cycle_among_evhub_modules() -> None:
    graph = import_graph(package_sources())
    found = describe_cycles(graph)
    assert not found, (
        "import cycles among evhub's modules (every import counts: module level, inside functions, "
        f"under TYPE_CHECKING); break each by changing one of its imports:\n{found}"
    )


def test_no_code_outside_the_store_modules_tests_which_store_it_has() -> None:
    found = store_type_tests(package_sources())
    assert not found, (
        f"code outside {', '.join(sorted(STORE_MODULES))} tests which store it has; make it a Store "
        "method instead:\n" + "\n".join(str(v) for v in found)
    )


# --- the checkers themselves, on made-up packages --------------------------------------------------


def edges(graph: Graph) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets}


def test_a_cycle_through_a_function_local_and_a_type_checking_import_is_found() -> None:
    sources = {
        "evhub": "",
        "evhub._a": "def f() -> None:\n    from ._b import g\n    g()\n",
        "evhub._b": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from ._a import f\n"
            "def g() -> None: ...\n"
        ),
    }
    graph = import_graph(sources)
    assert cycles(graph) == [["evhub._a", "evhub._b", "evhub._a"]]
    message = describe_cycles(graph)
    assert message.splitlines()[0] == "evhub._a -> evhub._b -> evhub._a"
    assert "evhub/_a.py:2 (from ._b import g)" in message
    assert "evhub/_b.py:3 (from ._a import f)" in message


def test_a_cycle_in_a_method_is_found_and_every_cycle_of_a_component_is_named() -> None:
    sources = {
        "evhub": "from ._hub import Hub\n",
        "evhub._hub": (
            "from . import _history\n"
            "class Hub:\n"
            "    def verify(self) -> None:\n"
            "        import evhub._verify\n"
        ),
        "evhub._history": "from evhub import _hub\n",
        "evhub._verify": "def verify() -> None:\n    from evhub._hub import Hub\n",
        "evhub._values": "",
    }
    assert cycles(import_graph(sources)) == [
        ["evhub._history", "evhub._hub", "evhub._history"],
        ["evhub._hub", "evhub._verify", "evhub._hub"],
    ]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("from . import _x\n", "evhub._x"),
        ("from ._x import y\n", "evhub._x"),
        ("from ._x import y as z\n", "evhub._x"),
        ("import evhub._x\n", "evhub._x"),
        ("import evhub._x as x\n", "evhub._x"),
        ("from evhub import _x\n", "evhub._x"),
        ("from evhub._x import y\n", "evhub._x"),
        ("from . import Thing\n", "evhub"),
        ("from evhub import Thing\n", "evhub"),
        ("import evhub\n", "evhub"),
        ("try:\n    from ._x import y\nexcept ImportError:\n    pass\n", "evhub._x"),
        ("class C:\n    def m(self) -> None:\n        from ._x import y\n", "evhub._x"),
        ("import importlib\nm = importlib.import_module('evhub._x')\n", "evhub._x"),
        ("from importlib import import_module\nm = import_module('._x', __package__)\n", "evhub._x"),
    ],
)
def test_each_form_of_import_is_an_edge(source: str, target: str) -> None:
    graph = import_graph({"evhub": "", "evhub._x": "", "evhub._y": source})
    assert edges(graph) == {("evhub._y", target)}


def test_importing_a_submodule_is_no_edge_to_the_package() -> None:
    # The package imports _x; _x importing its sibling _y (however spelled) is no cycle through __init__.
    sources = {
        "evhub": "from ._x import X\n",
        "evhub._x": "import evhub._y\nfrom evhub import _y\nfrom . import _y\n",
        "evhub._y": "import os\n",
    }
    graph = import_graph(sources)
    assert edges(graph) == {("evhub", "evhub._x"), ("evhub._x", "evhub._y")}
    assert cycles(graph) == []
    # but importing a name the package __init__ defines is an edge into it, and here a cycle
    sources["evhub._y"] = "def f() -> None:\n    from evhub import X\n"
    assert cycles(import_graph(sources)) == [["evhub", "evhub._x", "evhub._y", "evhub"]]


def test_a_module_importing_itself_or_outside_the_package_is_no_edge() -> None:
    sources = {"evhub": "", "evhub._x": "from . import _x\nimport json\nfrom os import path\nimport evhubby\n"}
    assert edges(import_graph(sources)) == set()


@pytest.mark.parametrize(
    "check",
    [
        "isinstance(store, JsonlStore)",
        "isinstance(self.store, PgStore)",
        "isinstance(store, Store)",
        "isinstance(store, (int, JsonlStore))",
        "isinstance(store, _store.JsonlStore)",
        "isinstance(store, J)",
        "issubclass(cls, PgStore)",
        "type(store) is JsonlStore",
        "type(store) == PgStore",
        "type(store) is not PgStore",
        "type(store) in (JsonlStore, PgStore)",
        "store.__class__ is JsonlStore",
        "store.kind == 'jsonl'",
        "'postgresql' != self.store.kind",
        "kind == 'jsonl'",
        "store.kind in ('jsonl', 'postgresql')",
        "store.__class__.__name__ == 'PgStore'",
        "type(store).__name__ == 'JsonlStore'",
    ],
)
def test_each_store_test_is_found(check: str) -> None:
    source = (
        "from . import _store\n"
        "from ._store import JsonlStore, Store\n"
        "from ._store import JsonlStore as J\n"
        "from ._pgstore import PgStore\n"
        f"def f(store: Store) -> bool:\n    return {check}\n"
    )
    found = store_type_tests({"evhub": "", "evhub._hub": source})
    assert found == [Violation("evhub/_hub.py", 6, check)]


def test_a_match_on_the_store_is_found() -> None:
    source = (
        "from ._store import JsonlStore\n"
        "def f(store: object) -> int:\n"
        "    match store:\n"
        "        case JsonlStore():\n"
        "            return 1\n"
        "    match store.kind:\n"
        "        case 'postgresql':\n"
        "            return 2\n"
        "    return 0\n"
    )
    found = store_type_tests({"evhub": "", "evhub._verify": source})
    assert [(v.path, v.line) for v in found] == [("evhub/_verify.py", 4), ("evhub/_verify.py", 7)]


def test_constructing_a_store_or_testing_anything_else_is_allowed() -> None:
    source = (
        "from ._store import JsonlStore, Store\n"
        "from ._pgstore import PgStore\n"
        "def open_store(where: str | None) -> Store:\n"
        "    store: Store = PgStore(where) if where else JsonlStore('events.jsonl')\n"
        "    kind = 'postgresql' if where else 'jsonl'\n"
        "    return store if isinstance(store, object) and kind else store\n"
        "def claimed(c: object) -> bool:\n"
        "    return getattr(c, 'kind') == 'claimed' and type(c) is int\n"
    )
    assert store_type_tests({"evhub": "", "evhub._place": source}) == []


def test_the_store_modules_may_test_which_store_they_are() -> None:
    check = "def f(s: object) -> bool:\n    return isinstance(s, JsonlStore)\n"
    sources = {"evhub": "", "evhub._store": check, "evhub._pgstore": check, "evhub._jsonl": check, "evhub._x": check}
    assert [v.path for v in store_type_tests(sources)] == ["evhub/_x.py"]
