"""`alexnet-book pdf`: the whole book as one PDF (see alexnet_book.pdf).

The error paths run in milliseconds: every check comes before the build. The real print
(`-m browser`) builds a two-page book with jupyter-book and prints it with the system's Chromium.
"""

import sys
import textwrap

import pytest
from pypdf import PdfReader, PdfWriter

from alexnet_book.cli import main
from alexnet_book.pdf import find_chromium, fix_bookmarks, print_pdf


def _tiny_book(folder):
    """Two pages: the first with display maths and a cross-reference to the second."""
    files = {
        "_config.yml": """
            title: Tiny book
            author: The tests
            execute:
              execute_notebooks: "off"
            parse:
              myst_enable_extensions: [dollarmath]
            sphinx:
              extra_extensions: [sphinx-mathjax-offline]  # as the book: MathJax without a CDN
            """,
        "_toc.yml": """
            format: jb-book
            root: intro
            chapters:
              - file: second
            """,
        "intro.md": """
            # Tiny introduction

            Pythagoras: $$a^2+b^2=c^2$$

            See {doc}`second` for more.
            """,
        "second.md": """
            # The second page

            Nothing else.
            """,
    }
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def test_a_folder_without_config_is_refused(tmp_path, capsys):
    assert main(["pdf", "--book", str(tmp_path)]) == 2
    assert "has no _config.yml: pass the book's folder" in capsys.readouterr().err


def test_no_chromium_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find there
    assert main(["pdf", "--book", str(_tiny_book(tmp_path / "book"))]) == 2
    err = capsys.readouterr().err
    assert "no Chromium found" in err and "apt-get install chromium" in err
    assert "CHROMIUM=/path/to/chromium" in err


def test_chromium_variable_must_name_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="is not a file"):
        find_chromium()


def test_no_playwright_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHROMIUM", sys.executable)  # any file: never launched
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    assert main(["pdf", "--book", str(_tiny_book(tmp_path / "book"))]) == 2
    err = capsys.readouterr().err
    assert "pip install playwright" in err and "`browser` extra" in err


def test_a_program_that_is_no_browser_is_reported(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="needs playwright (the browser extra)")
    page = tmp_path / "page.html"
    page.write_text("<h1>Hello</h1>")
    with pytest.raises(RuntimeError, match="could not start Chromium /bin/false"):
        print_pdf(page, tmp_path / "page.pdf", chromium="/bin/false")


@pytest.mark.browser
def _bookmark_titles(pdf):
    titles = []

    def walk(items):
        for item in items:
            walk(item) if isinstance(item, list) else titles.append(item.title)

    walk(PdfReader(pdf).outline)
    return titles


def test_garbled_bookmarks_get_their_headings_text(tmp_path):
    # What Chromium printed for the book: a doubled title, one that lost the space at a line
    # break, and nested ones; plus a bookmark that is no heading, which stays as it is.
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    chapter = writer.add_outline_item(title="conv1: 96 kernels of 11×11, four pixelsapart", page_number=0)
    writer.add_outline_item(title="SummarySummary", page_number=0, parent=chapter)
    writer.add_outline_item(title="In the paper and in practice", page_number=0, parent=chapter)
    writer.add_outline_item(title="Not a heading", page_number=0)
    pdf = tmp_path / "garbled.pdf"
    writer.write(pdf)
    headings = ["conv1: 96 kernels of 11×11, four pixels apart", "Summary",
                "In the paper and in practice"]

    assert fix_bookmarks(pdf, headings) == 2
    assert _bookmark_titles(pdf) == ["conv1: 96 kernels of 11×11, four pixels apart",
                                     "Summary", "In the paper and in practice", "Not a heading"]
    assert fix_bookmarks(pdf, headings) == 0  # nothing left to mend


def test_a_tiny_book_prints_to_a_pdf(tmp_path, capsys, chromium):
    pytest.importorskip("playwright.sync_api", reason="needs playwright (the browser extra)")
    book, pdf = _tiny_book(tmp_path / "book"), tmp_path / "out" / "tiny.pdf"

    assert main(["pdf", "--book", str(book), "--output", str(pdf),
                 "--build-dir", str(tmp_path / "build")]) == 0
    assert f"PDF of the book: {pdf}" in capsys.readouterr().out
    assert pdf.read_bytes().startswith(b"%PDF-")
    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2  # each chapter starts a page
    assert "Tiny introduction" in text and "The second page" in text
    assert _bookmark_titles(pdf) == ["Tiny introduction", "The second page"]
    # (the command fails if MathJax typesets nothing, so the maths is in there too)
