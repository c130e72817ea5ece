"""The README is a short front door, and every link of it and of docs/ leads somewhere that exists.

Links are read from the Markdown text outside code blocks; a relative target must be a file of the
repository, and a ``#anchor`` must be a heading of the target page, slugged as GitHub slugs
headings (lower case, punctuation dropped, spaces as hyphens, repeats numbered).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_BYTES = 15 * 1024

_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(path: Path) -> list[str]:
    """The lines of ``path`` outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline code marks and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading anchor of ``path``, a repeated one numbered ``-1``, ``-2`` as GitHub does."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose_lines(path):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(path: Path) -> list[str]:
    links = [target for line in _prose_lines(path) for target in _LINK.findall(line)]
    return [target for target in links if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_the_slug_rule_on_headings_of_these_pages() -> None:
    assert _slug("Verdicts and constraints: `esr check`") == "verdicts-and-constraints-esr-check"
    assert _slug("The NTIRE Efficient-SR series, 2022-2026") == "the-ntire-efficient-sr-series-2022-2026"
    assert _slug("Training the seed's model") == "training-the-seeds-model"


def test_the_readme_is_at_most_15_kb() -> None:
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move reference text into docs/"


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_docs_index_links_every_page() -> None:
    index = DOCS / "README.md"
    linked = {(DOCS / target.partition("#")[0]).resolve() for target in _relative_links(index)}
    pages = {page.resolve() for page in DOCS.glob("*.md") if page != index}
    missing = sorted(page.name for page in pages - linked)
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"


def test_the_readme_links_the_docs_index() -> None:
    assert "docs/README.md" in _relative_links(README)
