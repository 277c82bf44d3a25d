"""The documents point only at what is in the repository, and at what is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A Markdown link or image: [text](target) or ![alt](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path in backticks: a top-level folder of the repository, then a file or a folder.
REPO_PATH = re.compile(
    r"`((?:riverguard|edge|hub|console|simulators|bench|deploy|tests|scripts|docs|examples)"
    r"/[\w./-]*)`"
)
# Topic names look like paths without being files.
NOT_FILES = ("riverguard/v1/",)


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_link_of_a_document_stays_in_the_repository_and_exists(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or a heading of the same page
        path = (document.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(target)
    assert [] == broken


def _named_paths(document: Path) -> set[str]:
    text = document.read_text(encoding="utf-8")
    return {path for path in REPO_PATH.findall(text) if not path.startswith(NOT_FILES)}


def test_the_architecture_names_the_modules_of_the_flow() -> None:
    assert len(_named_paths(REPO / "docs" / "architecture.md")) > 40


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_file_a_document_names_exists(document: Path) -> None:
    """A module renamed or moved is renamed in the documents too."""
    assert [] == sorted(path for path in _named_paths(document) if not (REPO / path).exists())


DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
# A short commit hash: seven or more hex digits, letters and digits both.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b")


def _sections(text: str) -> list[tuple[list[str], str]]:
    """Each section's headings (its own and its parents') and its body."""
    sections: list[tuple[list[str], str]] = []
    trail: list[str] = []
    body: list[str] = []
    for line in [*text.split("\n"), "# end"]:
        heading = re.match(r"^(#+) ", line)
        if heading is None:
            body.append(line)
            continue
        sections.append((list(trail), "\n".join(body)))
        trail = [*trail[: len(heading.group(1)) - 1], line]
        body = []
    return sections


def test_every_table_of_figures_in_performance_carries_a_date_and_a_commit() -> None:
    """A figure is read together with when and what was measured."""
    text = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    undated = []
    for headings, body in _sections(text):
        figures = [row for row in body.split("\n") if row.startswith("|") and re.search(r"\d", row)]
        context = "\n".join([*headings, body])
        if figures and not (DATE.search(context) and COMMIT.search(context)):
            undated.append(headings[-1] if headings else "(top)")
    assert [] == undated


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_commands_run_as_written_with_no_bare_riverguard(document: Path) -> None:
    """`riverguard` is not on the PATH: a clone runs scripts/riverguard (or .venv's)."""
    bare = []
    inside = False
    for line in document.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            inside = not inside
        elif inside and re.match(r"\s*riverguard\s", line):
            bare.append(line.strip())
    assert [] == bare
