"""The built book, read as a reader reads it: every page opened in a real (headless) Chromium.

Selected with `pytest -m browser` (`.ci/run` does). The `built_book` fixture (conftest.py)
builds the book with `jupyter-book build . -W`; the pages are served on localhost and read by
the Chromium that `alexnet-book pdf` prints with (Debian's `chromium`, or $CHROMIUM), driven by
Playwright's Python client; nothing is downloaded. Without Chromium the tests skip, unless
`ALEXNET_BOOK_REQUIRE_BROWSER=1` (set by CI) makes that a failure. Screenshots of the conv1
chapter land in `_build/screenshots/`.
"""

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from test_repository import _toc_files

from alexnet_book.pdf import CHROMIUM_ARGS, SETTLE_JS

pytestmark = pytest.mark.browser
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright  # `browser` extra

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_docnames():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *_toc_files(toc["parts"])]


PAGES = _toc_docnames()
SITE_PAGES = [*PAGES, "genindex", "search"]  # with the pages Sphinx adds to every book


def _is_notebook(docname):
    return (ROOT / f"{docname}.ipynb").exists()


@pytest.fixture(scope="module")
def site(built_book, serve_folder):
    return serve_folder(built_book)


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class OpenedPage:
    """A page loaded in the browser, with what went wrong while it loaded."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(
            f"HTTP {r.status}: {r.url}"))
        self.page.goto(url, wait_until="load")
        self.page.evaluate(SETTLE_JS)  # images loaded, maths typeset, as before printing

    def close(self):
        self.page.close()


# The article's text outside code, where unrendered TeX would show.
_PROSE_TEXT = """() => {
  const article = (document.querySelector("article") || document.body).cloneNode(true);
  article.querySelectorAll("pre, code, script, style, mjx-container").forEach(n => n.remove());
  return article.textContent;
}"""


@pytest.fixture(scope="module")
def opened(browser, site):
    """Every page of the site, opened once, keyed by docname."""
    pages = {docname: OpenedPage(browser, f"{site}/{docname}.html") for docname in SITE_PAGES}
    yield pages
    for page in pages.values():
        page.close()


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_page_loads_without_console_errors(opened, docname):
    assert opened[docname].errors == []


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_math_is_rendered_by_mathjax(opened, docname):
    page = opened[docname].page
    formulas = page.locator(".math").count()
    typeset = page.locator(".math mjx-container").count()
    assert typeset == formulas, f"{formulas - typeset} of {formulas} formulas left untypeset"
    prose = page.evaluate(_PROSE_TEXT)
    for raw_tex in ("$$", "\\(", "\\[", "\\begin{"):
        assert raw_tex not in prose, f"raw TeX {raw_tex!r} left in the page"


def test_chapters_with_math_have_it(opened):
    """The control for the test above: the arithmetic chapter's formulas are typeset."""
    page = opened["book/foundations/output_size"].page
    assert page.locator(".math mjx-container").count() > 0


@pytest.mark.parametrize("docname", SITE_PAGES)
def test_every_image_loaded(opened, docname):
    broken = opened[docname].page.evaluate(
        "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src)")
    assert broken == []


def _expected_launch_links(docname):
    owner_repo = urlparse(CONFIG["repository"]["url"]).path.strip("/")
    branch = CONFIG["repository"]["branch"]
    notebook = f"{docname}.ipynb"
    buttons = CONFIG["launch_buttons"]
    return {
        "colab": f"{buttons['colab_url']}/github/{owner_repo}/blob/{branch}/{notebook}",
        "binder": f"{buttons['binderhub_url']}/v2/gh/{owner_repo}/{branch}"
                  f"?urlpath=lab/tree/{notebook}",
    }


@pytest.mark.parametrize("docname", [d for d in PAGES if _is_notebook(d)])
def test_launch_links_open_this_chapter_in_the_configured_repository(opened, docname):
    page = opened[docname].page
    links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    for service, expected in _expected_launch_links(docname).items():
        assert expected in links, f"no {service} link to {expected}"


def _solution_cells(docname):
    cells = json.loads((ROOT / f"{docname}.ipynb").read_text())["cells"]
    return [c for c in cells
            if c["metadata"].get("mystnb", {}).get("code_prompt_show") == "Show solution"]


GRADED = [d for d in PAGES if _is_notebook(d) and _solution_cells(d)]


def test_every_chapter_with_exercises_has_folded_solutions():
    with_exercises = [d for d in PAGES if _is_notebook(d)
                      and "# ASSIGNMENT CONFIG" in (ROOT / f"{d}.ipynb").read_text()]
    assert with_exercises and GRADED == with_exercises


@pytest.mark.parametrize("docname", GRADED)
def test_solutions_are_folded_until_clicked(opened, docname):
    page = opened[docname].page
    solutions = page.locator("details", has=page.locator("summary", has_text="Show solution"))
    assert solutions.count() == len(_solution_cells(docname))
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        code = solution.locator("pre").first
        assert not code.is_visible(), f"solution {index + 1} is shown before it is clicked"
        solution.locator("summary").click()
        assert code.is_visible(), f"solution {index + 1} does not open when clicked"


@pytest.mark.parametrize("position", range(len(PAGES)), ids=PAGES)
def test_previous_and_next_links_follow_the_table_of_contents(opened, site, position):
    page = opened[PAGES[position]].page
    for selector, neighbour in (("a.left-prev", position - 1), ("a.right-next", position + 1)):
        links = page.locator(selector)
        if 0 <= neighbour < len(PAGES):
            assert links.count() == 1, f"no {selector} link"
            href = links.first.evaluate("a => a.href")
            assert href == f"{site}/{PAGES[neighbour]}.html"
        else:
            assert links.count() == 0


def test_search_finds_lrn(browser, site):
    page = browser.new_page()
    page.goto(f"{site}/search.html?q=LRN")
    page.wait_for_function(
        "() => (document.querySelector('#search-results .search-summary') || {})"
        ".innerText?.startsWith('Search finished')", timeout=30_000)
    found = page.eval_on_selector_all("ul.search li a", "links => links.map(a => a.href)")
    page.close()
    assert any(link.split("#")[0].endswith("book/ideas/lrn.html") for link in found), found


def test_screenshots_of_conv1_light_and_dark(opened):
    page = opened["book/layers/conv1"].page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "conv1.png", full_page=True)
    page.evaluate("() => document.documentElement.dataset.theme = 'dark'")
    page.screenshot(path=SCREENSHOTS / "conv1-dark.png", full_page=True)
    page.evaluate("() => document.documentElement.dataset.theme = 'light'")
    for name in ("conv1.png", "conv1-dark.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
