"""Each deployable runs on what its extra installs, and the packages keep their boundaries.

An edge box installs ``riverguard[edge]`` and the data centre ``riverguard[hub]``
(pyproject.toml). Each component is imported in a fresh interpreter in which
every installed distribution its extra does not bring (read from the installed
metadata, requirements followed transitively), and every package of ours it
may not use, fails to import as if absent. A component that needs anything
else fails here instead of on a freshly installed machine; the edge importing
the hub or the simulators fails here too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

OUR_PACKAGES = {"riverguard", "edge", "hub", "simulators", "bench", "tests"}

# What each deployable imports to run, and which of our packages it may reach.
DEPLOYABLES = {
    "edge": (("edge.main", "edge.agent", "riverguard.cli"), {"riverguard", "edge"}),
    "hub": (("hub.main", "hub.app", "riverguard.cli"), {"riverguard", "hub"}),
}

GUARD = """
import sys
refused = set(sys.argv[1].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in refused:
            raise ModuleNotFoundError(f"{name} is not installed by this deployable's extra")
        return None

sys.meta_path.insert(0, Refuse())
import importlib
for module in sys.argv[2].split(","):
    importlib.import_module(module)
import riverguard.cli
riverguard.cli.build_parser()
"""


def _closure(extra: str) -> set[str]:
    """Distribution names that ``riverguard[extra]`` installs, transitively."""
    seen: set[str] = set()
    todo = [("riverguard", frozenset({extra}))]
    while todo:
        name, extras = todo.pop()
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            active = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": e}) for e in (extras or {""})
            )
            if not active:
                continue
            dist = _normalise(requirement.name)
            if dist == "riverguard":
                todo.append((dist, frozenset(requirement.extras)))
            elif dist not in seen:
                seen.add(dist)
                todo.append((dist, frozenset(requirement.extras)))
    return seen


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _refused(deployable: str, ours: set[str]) -> set[str]:
    """Top-level modules of every installed distribution its extra does not bring, and
    our packages it may not reach."""
    brought = _closure(deployable)
    installed = {
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(_normalise(d) in brought for d in dists)
    }
    return (installed | OUR_PACKAGES) - ours


@pytest.mark.parametrize("deployable", sorted(DEPLOYABLES))
def test_a_deployable_imports_only_what_its_extra_installs(deployable: str) -> None:
    modules, ours = DEPLOYABLES[deployable]
    refused = _refused(deployable, ours)
    result = subprocess.run(
        [sys.executable, "-c", GUARD, ",".join(sorted(refused)), ",".join(modules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr[-2000:]


def test_the_edge_extra_brings_no_database_or_web_stack() -> None:
    edge = _closure("edge")
    for heavy in ("fastapi", "sqlalchemy", "uvicorn", "asyncpg", "alembic", "argon2-cffi"):
        assert heavy not in edge
    assert {"fastapi", "sqlalchemy", "asyncpg"} <= _closure("hub")


def test_the_guard_refuses_an_import_outside_the_extra() -> None:
    """The check can fail: the edge's allowance does not cover the hub's web stack."""
    refused = _refused("edge", {"riverguard", "edge"})
    assert {"fastapi", "hub", "simulators"} <= refused
    result = subprocess.run(
        [sys.executable, "-c", GUARD, ",".join(sorted(refused)), "hub.app"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 != result.returncode
    assert "is not installed by this deployable's extra" in result.stderr
