"""The documentation holds together: every relative link of README.md and docs/ leads to a
file and heading that exist, every code comment that cites a README or docs/ heading names
one that exists, and docs/settings.md is what `make docs` generates from `Settings` now."""

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from mgrecs.cli import settings_doc
from support.paths import REPO_ROOT

DOCS = sorted(
    [
        REPO_ROOT / "README.md",
        *(REPO_ROOT / "docs").glob("*.md"),
        REPO_ROOT / "bench" / "RESULTS.md",
    ]
)
CODE_DIRS = ("libs", "services", "bench", "tests", "deploy", ".ci")
CODE_SUFFIXES = {".py", ".yml", ".toml", ".env", ".Dockerfile", ".js", ".html", ".css", ".md", ""}
"""Files with comments: sources, configuration, Dockerfiles, scripts (`.ci/run`: no suffix)."""
SKIP_DIRS = {"__pycache__", "node_modules", "static-offline-docs"}

MD = MarkdownIt("commonmark").enable("table")
CITATION = re.compile(
    r"\b(README(?:\.md)?|docs/[\w-]+\.md)`?(?:'s)?(?:#([\w-]+)|(?:,| \") ?\"?([^\n]*))?"
)
"""A cited document, then an `#anchor` or, after `, ` or ` "`, the text that must begin
with one of its headings: `(README, Security)`, `docs/api.md, Ingest API`,
`README's "Security"`, `README.md#security`. A bare mention (`the README's test
command`, `(docs/aws.md)`) names no heading and only needs the file."""
HEADING_END = set(")\"'`.,:;")


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _plain(inline: Token) -> str:
    return "".join(child.content for child in inline.children or [] if child.type != "softbreak")


@cache
def headings(path: Path) -> tuple[str, ...]:
    """The plain text of every heading of a markdown file, in order."""
    tokens = MD.parse(path.read_text())
    return tuple(
        _plain(tokens[i + 1]) for i, token in enumerate(tokens) if token.type == "heading_open"
    )


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every `#anchor` GitHub makes for the file's headings (a repeated one gets `-1`, …)."""
    seen: dict[str, int] = {}
    found = set()
    for text in headings(path):
        slug = github_slug(text)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


def links(path: Path) -> Iterator[str]:
    """The target of every markdown link of the file (code blocks are not links)."""
    for token in MD.parse(path.read_text()):
        for child in token.children or []:
            if child.type == "link_open":
                yield str(child.attrGet("href"))


def broken_links(path: Path) -> list[str]:
    """Relative links of `path` whose file, or whose heading, does not exist."""
    broken = []
    for href in links(path):
        if re.match(r"[a-z][a-z+.-]*:", href):  # https:, mailto:
            continue
        target, _, anchor = href.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists() or anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(href)
    return broken


def _cited_file(name: str) -> Path:
    return REPO_ROOT / ("README.md" if name.startswith("README") else name)


def _names_a_heading(text: str, titles: tuple[str, ...]) -> bool:
    text = text.replace("`", "")
    for title in titles:
        title = title.replace("`", "")
        if text.startswith(title) and (len(text) == len(title) or text[len(title)] in HEADING_END):
            return True
    return False


def broken_citations(text: str) -> list[str]:
    """Citations in `text` (comment markers and line breaks already folded) of a file or
    heading that does not exist."""
    broken = []
    for match in CITATION.finditer(text):
        name, anchor, rest = match.groups()
        file = _cited_file(name)
        if not file.exists() or anchor is not None and anchor not in anchors(file):
            broken.append(match[0])
        elif rest is not None and not _names_a_heading(rest, headings(file)):
            broken.append(match[0][:120])
    return broken


def fold(source: str) -> str:
    """Comments and docstrings as running text: each line break, with the comment marker
    and indentation after it, becomes one space."""
    return re.sub(r"[ \t]*\n[ \t]*(?:#+[ \t]*|//[ \t]*|\*[ \t]*)?", " ", source)


def code_files() -> Iterator[Path]:
    yield REPO_ROOT / "Makefile"
    for top in CODE_DIRS:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if (
                path.is_file()
                and path.suffix in CODE_SUFFIXES
                and not SKIP_DIRS & set(path.relative_to(REPO_ROOT).parts)
            ):
                yield path


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    assert len(DOCS) > 10
    broken = {str(path.relative_to(REPO_ROOT)): broken_links(path) for path in DOCS}
    assert not {path: hrefs for path, hrefs in broken.items() if hrefs}


def test_every_cited_heading_exists() -> None:
    files = [*code_files(), *DOCS]
    assert len(files) > 200
    broken = {}
    for path in files:
        if found := broken_citations(fold(path.read_text(errors="replace"))):
            broken[str(path.relative_to(REPO_ROOT))] = found
    assert not broken


def test_the_checks_find_what_does_not_exist(tmp_path: Path) -> None:
    readme = "README"  # written apart, so that this file holds no broken citation itself
    assert broken_citations(f"(see {readme}, Security) and {readme}'s test command") == []
    assert broken_citations(fold("# (docs/concepts.md, Customer\n    # identities)")) == []
    assert broken_citations(f"({readme}, Secure)") == [f"{readme}, Secure)"]
    assert broken_citations(f"({readme}, Security and more)") == [f"{readme}, Security and more)"]
    assert broken_citations(f'{readme}\'s "Nowhere"') == [f'{readme}\'s "Nowhere"']
    assert broken_citations("docs/" + "nothing.md") == ["docs/nothing.md"]
    assert broken_citations(f"docs/api.md#{'ingest-api'}, docs/api.md#{'nowhere'}") == [
        "docs/api.md#nowhere"
    ]
    page = tmp_path / "page.md"
    page.write_text("# A `code` title\n\n[ok](#a-code-title) [gone](#gone) [file](missing.md)\n")
    assert broken_links(page) == ["#gone", "missing.md"]


def test_github_slugs() -> None:
    assert github_slug("Pull connector (`mgrecs sync`)") == "pull-connector-mgrecs-sync"
    assert github_slug("Keys, rate limits and CORS") == "keys-rate-limits-and-cors"
    assert github_slug("`GET /v1/users/{id}/buy-again`") == "get-v1usersidbuy-again"


def test_settings_page_is_generated_from_settings_now() -> None:
    assert settings_doc.undocumented() == [], "give each setting a docstring"
    assert (REPO_ROOT / "docs" / "settings.md").read_text() == settings_doc.render(), (
        "docs/settings.md is stale: run `make docs`"
    )
