"""The documentation holds together: README.md stays a few screens long and links every file
of docs/, and no relative link between the Markdown files points at a missing file or heading."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [README, ROOT / "SECURITY.md", *DOCS, *sorted(ROOT.glob("plugins/*/README.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def relative_links(path: Path) -> list[str]:
    """The link targets of ``path`` that are files of this repository (code blocks aside)."""
    text = FENCE.sub("", path.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of ``path``."""
    text = FENCE.sub("", path.read_text())
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in HEADING.findall(text)}


def test_readme_fits_a_few_screens():
    assert len(README.read_bytes()) <= 15_000


def test_readme_links_every_doc():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in relative_links(README)}
    assert DOCS and not [p.name for p in DOCS if p.resolve() not in linked]


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file, or heading in a Markdown file, is missing."""
    broken = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve()
        if not linked.exists() or (anchor and linked.suffix == ".md"
                                   and anchor not in anchors(linked)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("path", [p for p in MARKDOWN if p.exists()],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)} links to what does not exist: {broken}"


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page one\n\n[ok](#page-one) [gone](missing.md) [here](page.md#page-one) "
                    "[no heading](page.md#nowhere) [web](https://example.org/x.md)\n"
                    "```\n[code](not-a-link.md)\n```\n")
    assert broken_links(page) == ["missing.md", "page.md#nowhere"]
