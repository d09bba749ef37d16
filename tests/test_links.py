"""Every link in the built book resolves, and every external link is listed in one place.

The `-W` build already fails on a broken cross-reference; this reads the HTML it wrote and
follows every internal `href` and `src` to its file and anchor. External links are compared
with `book/external_links.txt`, which `python -m alexnet_book.links` checks over the network
(never in CI).
"""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from test_repository import _toc_files

from alexnet_book.links import read_link_list

pytestmark = pytest.mark.browser  # reads the built book, like the browser tests

ROOT = Path(__file__).resolve().parents[1]
LINK_LIST = ROOT / "book" / "external_links.txt"


class _Page(HTMLParser):
    """The ids a page defines, the links it makes, and the external links in its article."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.article_links = set(), [], set()
        self._article_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(a for a in (attrs.get("id"), attrs.get("name") if tag == "a" else None) if a)
        if tag == "article":
            self._article_depth += 1
        for attribute in ("href", "src"):
            if attrs.get(attribute):
                self.links.append(attrs[attribute])
                if self._article_depth and _is_external(attrs[attribute]):
                    self.article_links.add(attrs[attribute])

    def handle_endtag(self, tag):
        if tag == "article":
            self._article_depth -= 1


def _is_external(link):
    return urlparse(link).scheme in ("http", "https")


def _pages(html_root):
    pages = {}
    for path in html_root.rglob("*.html"):
        if "_static" in path.parts:
            continue
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = page
    return pages


@pytest.fixture(scope="module")
def pages(built_book):
    return _pages(built_book)


def _broken_internal_links(pages):
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parsed = urlparse(link)
            if parsed.scheme or parsed.netloc:  # http(s), mailto, data, javascript
                continue
            address, anchor = parsed.path, parsed.fragment
            target = (path.parent / unquote(address)).resolve() if address else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.name}: {link} (no such file)")
            elif anchor and target.suffix == ".html" and unquote(anchor) not in pages[target].ids:
                broken.append(f"{path.name}: {link} (no such anchor)")
    return broken


def test_every_internal_link_and_anchor_resolves(pages, built_book):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for docname in [toc["root"], *_toc_files(toc["parts"])]:  # the check reads every chapter
        assert (built_book / f"{docname}.html").resolve() in pages, docname
    assert _broken_internal_links(pages) == []


def test_the_check_finds_a_broken_anchor(pages, tmp_path):
    """The control: a page that links to a missing anchor and a missing file is caught."""
    (tmp_path / "a.html").write_text('<p id="here"><a href="#here">ok</a><a href="#gone">x</a>'
                                     '<a href="b.html">y</a></p>')
    broken = _broken_internal_links(_pages(tmp_path))
    assert broken == ["a.html: #gone (no such anchor)", "a.html: b.html (no such file)"]


def test_external_links_are_the_listed_ones(pages):
    used = set().union(*(page.article_links for page in pages.values()))
    listed = set(read_link_list(LINK_LIST))
    assert sorted(used - listed) == [], f"add these to {LINK_LIST.name}"
    assert sorted(listed - used) == [], f"no page links to these; remove them from {LINK_LIST.name}"
