"""A PDF of the whole book: jupyter-book's single-page HTML, printed by Chromium.

jupyter-book 1.x has two PDF builders, and neither works on a machine without a download:
``--builder pdfhtml`` prints with Playwright's own browser (``playwright install``, which fetches
it from a CDN), and ``--builder pdflatex`` needs TeX Live (about 350 MB of XeLaTeX and fonts).
This module does what ``pdfhtml`` does with the Chromium the system already has: jupyter-book
builds the book as one HTML page (``--builder singlehtml -W``, so a broken chapter fails the
PDF), and Playwright drives that Chromium to print it, once MathJax has typeset the maths.

    alexnet-book pdf [--book .] [--output _build/pdf/book.pdf]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PAGE_FORMAT", "build_pdf", "find_chromium", "fix_bookmarks", "print_pdf"]

# A4, the page the rest of the world (and this British-spelt book) prints on; Letter is 6 mm
# wider and 18 mm shorter, so a Letter printer scales it by 94% and nothing is lost.
PAGE_FORMAT = "A4"
MARGINS = {"top": "14mm", "bottom": "16mm", "left": "10mm", "right": "10mm"}
FOOTER = ('<div style="font-size: 9px; width: 100%; text-align: center; color: #555;">'
          '<span class="pageNumber"></span></div>')

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Without the networking switches Chromium's own background connections (updates, sync) are
# refused by a closed network and can stall it; the sandbox needs privileges a container lacks.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# jupyter-book's pdfhtml style (a cell is not split across pages), and on paper: each chapter
# (singlehtml marks it with a <span id="document-NAME">) starts a page, long code lines wrap
# instead of scrolling, and folded content (the setup cell, the solutions) stays out rather than
# leaving a "Show" button that cannot be clicked. On paper the chapters themselves follow the
# heading of the table of contents, so the page breaks before that heading instead of after it,
# where it would stand alone on an otherwise empty page.
PRINT_CSS = """
div.cell_input, div.cell_output, figure { break-inside: avoid; page-break-inside: avoid; }
span[id^="document-"] + section { break-before: page; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
details:not([open]) { display: none; }
section:has(> .toctree-wrapper) { break-before: page; }
.toctree-wrapper > span[id^="document-"]:first-child + section { break-before: auto; }
"""

# Runs in the page: load every image, then wait for MathJax's first typeset (if it loaded)
# and the fonts. Says how many maths elements the page has and how many MathJax typeset.
SETTLE_JS = """async () => {
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map((img) => img.decode().catch(() => null)));
  if (window.MathJax?.startup?.promise) await window.MathJax.startup.promise;
  await document.fonts.ready;
  return [document.querySelectorAll(".math").length,
          document.querySelectorAll("mjx-container").length];
}"""


# Runs in the page: the text of every heading, without Sphinx's "#" permalink.
HEADINGS_JS = """() => [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map((h) => {
  const copy = h.cloneNode(true);
  copy.querySelectorAll(".headerlink").forEach((link) => link.remove());
  return copy.textContent.replace(/\\s+/g, " ").trim();
})"""


def find_chromium() -> str:
    """The Chromium to print with: $CHROMIUM, else the first of CHROMIUM_NAMES on the PATH."""
    if path := os.environ.get("CHROMIUM"):
        if not Path(path).is_file():
            raise FileNotFoundError(f"CHROMIUM={path} is not a file: point it at a Chromium "
                                    "or Chrome executable")
        return path
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("no Chromium found to print the book with: install it "
                            "(`apt-get install chromium` on Debian/Ubuntu) or set "
                            "CHROMIUM=/path/to/chromium")


def _sync_playwright():
    try:
        import pypdf  # noqa: F401  (fix_bookmarks needs it after printing)
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("printing the book needs Playwright and pypdf: `pip install "
                           "playwright pypdf` (the project's `browser` extra provides both); "
                           "Playwright drives the Chromium installed here, so `playwright "
                           "install` is not needed") from None
    return sync_playwright


def print_pdf(html: str | Path, pdf: str | Path, *, chromium: str | None = None) -> Path:
    """Print one HTML file to ``pdf`` with Chromium, after images, maths and fonts are ready."""
    sync_playwright = _sync_playwright()
    chromium = chromium or find_chromium()
    html, pdf = Path(html).resolve(), Path(pdf)
    # jupyter-book's index.html only redirects to the root page, and Sphinx's singlehtml writes a
    # root page in a subfolder (book/intro.html) with links relative to the top folder: print a
    # copy of it at the top, where its styles and images resolve.
    if redirect := re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', html.read_text()):
        root_page = html.parent / redirect[1]
        html = html.parent / root_page.name
        if root_page != html:
            html.write_text(root_page.read_text())
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as error:  # playwright's Error: not a browser, or it would not start
            raise RuntimeError(f"could not start Chromium {chromium}: "
                               f"{str(error).splitlines()[0]}") from error
        try:
            page = browser.new_page()
            page.goto(html.as_uri(), wait_until="load")
            page.add_style_tag(content=PRINT_CSS)
            maths, typeset = page.evaluate(SETTLE_JS)
            if maths and not typeset:
                raise RuntimeError(
                    f"MathJax did not load, so {html.name} would print {maths} formula(s) as raw "
                    "TeX: keep `sphinx-mathjax-offline` in _config.yml's extensions (it serves "
                    "MathJax with the book) or build where MathJax's CDN is reachable")
            headings = page.evaluate(HEADINGS_JS)
            page.pdf(path=pdf, format=PAGE_FORMAT, margin=MARGINS, print_background=True,
                     display_header_footer=True, header_template="<span></span>",
                     footer_template=FOOTER, outline=True, tagged=True)
        finally:
            browser.close()
    fix_bookmarks(pdf, headings)
    return pdf


def _letters(text: str) -> str:
    return re.sub(r"\s+", "", text)


def fix_bookmarks(pdf: str | Path, headings: list[str]) -> int:
    """Give the PDF's bookmarks the headings' own text; returns how many it changed.

    Chromium builds the bookmarks from the laid-out headings, and some come out garbled: a
    heading broken over two lines loses the space at the break ("four pixelsapart"), and some
    are doubled ("SummarySummary"). Each bookmark whose letters are those of a heading, once or
    twice over, gets that heading's text.
    """
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    by_letters = {_letters(heading): heading for heading in headings}
    writer = PdfWriter(clone_from=str(pdf))
    changed = 0
    stack = [writer.root_object["/Outlines"].get("/First")] if "/Outlines" in writer.root_object \
        else []
    while stack:
        reference = stack.pop()
        if reference is None:
            continue
        item = reference.get_object()
        stack += [item.get("/Next"), item.get("/First")]
        title, letters = str(item["/Title"]), _letters(str(item["/Title"]))
        half = letters[: len(letters) // 2]
        heading = by_letters.get(letters) or (by_letters.get(half) if half * 2 == letters else None)
        if heading is not None and heading != title:
            item[NameObject("/Title")] = TextStringObject(heading)
            changed += 1
    if changed:
        writer.write(str(pdf))
    return changed


def _jupyter_book() -> str:
    """The jupyter-book next to this Python (a venv's bin/, even if not on the PATH), or on it."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if found := shutil.which("jupyter-book", path=path):
        return found
    raise FileNotFoundError("jupyter-book is not installed: pip install -e '.[book]'")


def build_pdf(book: str | Path = ".", output: str | Path | None = None, *,
              build_dir: str | Path | None = None, chromium: str | None = None) -> Path:
    """Build ``book`` (the folder of _config.yml and _toc.yml) as one HTML page and print it.

    jupyter-book writes to ``build_dir``/_build (default: the book's own _build, whose execution
    cache the HTML build shares); the PDF goes to ``output``, default ``build_dir``/_build/pdf/
    book.pdf, where jupyter-book's pdfhtml builder would put it.
    """
    book = Path(book)
    if not (book / "_config.yml").is_file():
        raise FileNotFoundError(f"{book.resolve()} has no _config.yml: pass the book's folder, "
                                "the one with _config.yml and _toc.yml, as --book")
    build_dir = Path(build_dir) if build_dir is not None else book
    output = Path(output) if output is not None else build_dir / "_build" / "pdf" / "book.pdf"
    # Check what printing needs before the build, which executes every chapter (minutes).
    chromium = chromium or find_chromium()
    _sync_playwright()
    command = [_jupyter_book(), "build", str(book), "--builder", "singlehtml", "-W",
               "--path-output", str(build_dir)]
    if (code := subprocess.run(command).returncode) != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {code}): its messages above "
                           "say which page (and, for a notebook, which cell) broke the build")
    return print_pdf(build_dir / "_build" / "singlehtml" / "index.html", output,
                     chromium=chromium)
