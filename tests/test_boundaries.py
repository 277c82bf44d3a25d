"""The packages keep to their side, read from the source of every file (its syntax tree, so
an import that one run happens not to reach still counts): the edge and the hub never import
each other, neither imports the simulators, and the shared ``riverguard`` imports none of
them at module level (its command line imports each component inside the command that runs
it, so that an edge box without the hub's dependencies can still run ``riverguard edge``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # absolute, relative imports resolved
    in_function: bool


@dataclass(frozen=True)
class Rule:
    importer: str
    imported: str
    # False: allowed inside a function body, which runs only when called.
    anywhere: bool = True

    def __str__(self) -> str:
        where = "" if self.anywhere else " at module level"
        return f"{self.importer} does not import {self.imported}{where}"

    def broken_by(self, found: Import) -> bool:
        top = found.module.split(".")[0]
        return self.imported == top and (self.anywhere or not found.in_function)


RULES = [
    Rule("edge", "hub"),
    Rule("hub", "edge"),
    Rule("edge", "simulators"),
    Rule("hub", "simulators"),
    Rule("riverguard", "hub", anywhere=False),
    Rule("riverguard", "edge", anywhere=False),
    Rule("riverguard", "simulators", anywhere=False),
]


def _package_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    # A module's package is its folder; a package's __init__ is the package itself.
    return parts[:-1]


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path, root: Path = REPO) -> Iterator[Import]:
    """Every import statement of ``path``, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _package_of(path, root)

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(path, child.lineno, alias.name, in_function)
            elif isinstance(child, ast.ImportFrom):
                yield Import(path, child.lineno, _absolute(child, package), in_function)
            else:
                inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                yield from visit(child, inside)

    yield from visit(tree, in_function=False)


def sources(package: str, root: Path = REPO) -> list[Path]:
    return sorted((root / package).rglob("*.py"))


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_the_packages_keep_their_boundaries(rule: Rule) -> None:
    files = sources(rule.importer)
    assert files, f"no sources under {rule.importer}/"
    broken = [
        f"{found.path.relative_to(REPO)}:{found.line} imports {found.module}"
        for path in files
        for found in imports_of(path)
        if rule.broken_by(found)
    ]
    assert [] == broken, str(rule)


def test_the_reader_sees_every_form_of_import(tmp_path: Path) -> None:
    """Plain, from, relative (resolved to the package) and inside a function or a
    TYPE_CHECKING block: each is found, and only the function's counts as not module level."""
    module = tmp_path / "edge" / "agent" / "thing.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import hub.store\n"
        "from hub import alarms\n"
        "from ..outbox import Outbox\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from simulators.fleet import Fleet\n"
        "class Later:\n"
        "    import simulators\n"
        "def later() -> None:\n"
        "    import hub.main\n",
        encoding="utf-8",
    )
    found = [(i.module, i.in_function) for i in imports_of(module, tmp_path)]
    assert [
        ("typing", False),
        ("hub.store", False),
        ("hub", False),
        ("edge.outbox", False),
        ("edge.agent", False),
        ("simulators.fleet", False),
        ("simulators", False),
        ("hub.main", True),
    ] == found
    edge_hub, core_hub = RULES[0], Rule("riverguard", "hub", anywhere=False)
    broken = [i for i in imports_of(module, tmp_path) if edge_hub.broken_by(i)]
    assert 3 == len(broken)
    assert 2 == len([i for i in imports_of(module, tmp_path) if core_hub.broken_by(i)])
