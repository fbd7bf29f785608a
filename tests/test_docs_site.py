"""The documentation site as a reader gets it: built offline, nothing loaded from the network, every diagram
with its script, and an API reference that documents what is public and shows nothing private.

Needs the ``docs`` extra (mkdocs, mkdocstrings); skipped with the reason when it is not installed.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

import sessiondata

ROOT = Path(__file__).resolve().parents[1]

mkdocs_config = pytest.importorskip("mkdocs.config", reason="the docs extra is not installed")
mkdocs_build = pytest.importorskip("mkdocs.commands.build", reason="the docs extra is not installed")
griffe = pytest.importorskip("griffe", reason="the docs extra is not installed")

_REMOTE = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+["']""", re.I
)
# Private module names, private attributes, and pointers to a (private) module's docstring.
_PRIVATE_TEXT = re.compile(r"sessiondata\._[a-z]\w*|self\._\w+|\b_tracker\w*|``_\w+``|the module docstring")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    config = mkdocs_config.load_config(str(ROOT / "mkdocs.yml"), site_dir=str(out), strict=True)
    here = os.getcwd()
    os.chdir(ROOT)  # the snippets extension resolves its paths from the working directory
    try:
        mkdocs_build.build(config)
    finally:
        os.chdir(here)
    return out


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    return pages


def test_the_site_loads_nothing_remote(site: Path) -> None:
    remote = {
        f"{page.relative_to(site)}: {m.group(0)}"
        for page in _pages(site)
        for m in _REMOTE.finditer(page.read_text(encoding="utf-8"))
    }
    assert not remote


def test_every_diagram_page_carries_the_bundled_mermaid_script(site: Path) -> None:
    assert (site / "js" / "mermaid.min.js").stat().st_size > 1_000_000
    diagrams = [p for p in _pages(site) if 'class="mermaid"' in p.read_text(encoding="utf-8")]
    assert site / "architecture" / "index.html" in diagrams
    for page in diagrams:
        scripts = re.findall(r'<script src="([^"]+)"', page.read_text(encoding="utf-8"))
        assert any(s.endswith("js/mermaid.min.js") for s in scripts), page


def test_pages_without_a_diagram_do_not_load_mermaid(site: Path) -> None:
    # 3.5 MB of script: a reader of the API reference should not download it.
    plain = [p for p in _pages(site) if 'class="mermaid"' not in p.read_text(encoding="utf-8")]
    assert site / "api" / "store" / "index.html" in plain
    for page in plain:
        assert "mermaid.min.js" not in page.read_text(encoding="utf-8"), page


def test_the_api_reference_shows_nothing_private(site: Path) -> None:
    found = []
    for page in sorted((site / "api").rglob("*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
        found += [f"{page.relative_to(site)}: {m.group(0)}" for m in _PRIVATE_TEXT.finditer(text)]
        ids = re.findall(r'id="(sessiondata\.[^"]+)"', page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(site)}: #{i}" for i in ids if re.search(r"\._[a-z]", i)]
    assert not found


def test_every_public_attribute_has_text() -> None:
    package = griffe.load("sessiondata", search_paths=[str(ROOT / "src")], docstring_parser="google")
    silent = []
    for name in sessiondata.__all__:
        obj = package[name] if not name.startswith("__") else None
        if obj is None:
            continue
        obj = obj.final_target if obj.is_alias else obj
        if not obj.is_class:
            continue
        listed: set[str] = set()
        for section in obj.docstring.parsed if obj.docstring else []:
            if section.kind.value == "attributes":
                listed.update(a.name for a in section.value)
        for member_name, member in obj.members.items():
            if member_name.startswith("_") or member.docstring or member_name in listed:
                continue
            silent.append(f"{name}.{member_name}")
    # A member with no text is internal; the reference hides it (show_if_no_docstring: false). These are
    # the versions, described in the class docstring's text rather than as attributes.
    internal = {f"SymbolSessionData.{f}" for f in ("bars_version", "ticks_version", "quotes_version")}
    assert sorted(set(silent) - internal) == []


def test_every_figure_fits_the_text_column() -> None:
    # Material shows a wider image scaled down to the column (688 px in a 1280 px window), its labels with
    # it: the scaling figure drawn 1,210 px wide had 5-6 px labels on the page.
    figures = sorted((ROOT / "docs" / "img").glob("*.png"))
    assert figures
    for png in figures:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", png
        assert int.from_bytes(head[16:20], "big") <= 688, png
