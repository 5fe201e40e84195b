"""The package's shape: no import cycles, and imports only go the designed way
(front ends -> API -> engine -> backends -> models, hardware -> plain types).

Read from the source with ``ast``, so a lazy import inside a function counts like a
top-level one, and so does an import under ``if TYPE_CHECKING:``: it never runs, but it is a
dependency a reader (and a type checker) follows, so it counts for cycles and direction.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import llmux_jupyter

PACKAGE = "llmux_jupyter"
ROOT = Path(llmux_jupyter.__file__).parent

# The parts, lowest first: a part may import the parts below it, never those above. The
# top-level modules (errors, units, config, api, __init__) are parts of their own.
LAYERS = [
    "errors",
    "units",
    "types",
    "models",
    "hardware",
    "backends",
    "engine",
    "config",
    "api",
    "frontends",
    "__init__",
]
# Neighbours in the list that are side by side in the design: neither imports the other.
SIDE_BY_SIDE = {frozenset({"models", "hardware"})}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """'llmux_jupyter.engine.chat' -> 'engine'; 'llmux_jupyter' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> list[Import]:
    """Our modules that the file at ``path`` imports."""
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py", known)


def imports_in(source: str, module: str, is_package: bool, known: set[str]) -> list[Import]:
    """Our modules that ``source`` (the text of ``module``) imports; ``from pkg import
    submodule`` names the submodule when it is in ``known``."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append(Import(module, target, node.lineno))
    return found


def all_imports() -> list[Import]:
    modules = _modules()
    return [found for path in modules.values() for found in imports_of(path, set(modules))]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for found in all_imports():
        if found.target != found.source:
            edges.setdefault(found.source, set()).add(found.target)
    assert cycles(edges) == []


def test_imports_go_one_way() -> None:
    wrong = [
        f"{found.source}:{found.line} imports {found.target}"
        for found in all_imports()
        if not may_import(part_of(found.source), part_of(found.target))
    ]
    assert wrong == []


def may_import(source: str, target: str) -> bool:
    if source == target:
        return True
    if frozenset({source, target}) in SIDE_BY_SIDE:
        return False
    return LAYERS.index(target) < LAYERS.index(source)


def test_every_part_has_a_layer() -> None:
    assert {part_of(module) for module in _modules()} == set(LAYERS)


def test_subpackage_inits_import_nothing() -> None:
    """Importing ``llmux_jupyter.engine`` must not drag in its siblings (or anything heavy)."""
    for module, path in _modules().items():
        if path.name == "__init__.py" and module != PACKAGE:
            assert imports_of(path, set(_modules())) == [], module


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import llmux_jupyter.engine.chat\n", ["llmux_jupyter.engine.chat"]),
        ("from ..engine import chat\n", ["llmux_jupyter.engine.chat"]),
        ("from ..errors import LLMuxError\n", ["llmux_jupyter.errors"]),
        ("from .chat import ChatStream\n", ["llmux_jupyter.frontends.chat"]),
        ("import json\nfrom typing import Any\n", []),
    ],
)
def test_imports_in_reads_every_form(source: str, expected: list[str]) -> None:
    """The checker itself: relative, absolute and submodule imports all resolve."""
    known = {"llmux_jupyter.engine.chat", "llmux_jupyter.frontends.chat"}
    found = imports_in(source, "llmux_jupyter.frontends.probe", False, known)
    assert [f.target for f in found] == expected


def test_type_checking_imports_count() -> None:
    """An import only a type checker runs is an edge too: it is how api -> frontends.picker
    -> frontends.status -> api hid a cycle."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..api import LLM\n"
    found = imports_in(source, "llmux_jupyter.frontends.probe", False, set())
    assert [f.target for f in found] == ["llmux_jupyter.api"]


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
