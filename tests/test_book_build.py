"""A broken chapter or a broken cross-reference stops the build, and the log says where.

Each test builds a two-page book in a temporary folder with the project's own execution and
Sphinx settings from `_config.yml`, so a change there that lets failures through fails here.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
FAILING_LINE = "raise ValueError('conv9 does not exist')"


def _project_config():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    execution = {k: v for k, v in config["sphinx"]["config"].items() if k.startswith("nb_")}
    return {
        "title": "A tiny book",
        "execute": {**config["execute"], "execute_notebooks": "force"},
        "sphinx": {"extra_extensions": config["sphinx"]["extra_extensions"], "config": execution},
    }


def _write_book(folder: Path, intro: str, chapter_cells) -> None:
    (folder / "_config.yml").write_text(yaml.safe_dump(_project_config()))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    (folder / "intro.md").write_text(intro)
    notebook = new_notebook(cells=[new_markdown_cell("(chapter)=\n# The chapter"), *chapter_cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, folder / "chapter.ipynb")


def _build(folder: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(JUPYTER_BOOK), "build", str(folder), *options],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("options", [(), ("-W",)], ids=["plain", "warnings-as-errors"])
def test_a_chapter_that_fails_to_execute_fails_the_build_naming_chapter_and_cell(tmp_path, options):
    _write_book(tmp_path, "# Intro\n\nSee {ref}`chapter`.\n",
                [new_code_cell("x = 1"), new_code_cell(FAILING_LINE)])
    result = _build(tmp_path, *options)
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # no colour codes
    assert result.returncode != 0, "a chapter that fails to execute must fail the build"
    assert str(tmp_path / "chapter.ipynb") in log, "the log must name the chapter"
    assert FAILING_LINE in log, "the log must show the failing cell"
    assert "ValueError: conv9 does not exist" in log
    assert not (tmp_path / "_build" / "html" / "chapter.html").exists()


def test_a_broken_cross_reference_fails_the_strict_build(tmp_path):
    _write_book(tmp_path, "# Intro\n\nSee {ref}`no-such-label`.\n", [new_code_cell("x = 1")])
    result = _build(tmp_path, "-W")
    assert result.returncode != 0
    assert "no-such-label" in result.stdout + result.stderr


def test_the_tiny_book_builds_when_nothing_is_broken(tmp_path):
    """The control: the same book, with the reference and the cell fixed, builds cleanly."""
    _write_book(tmp_path, "# Intro\n\nSee {ref}`chapter`.\n", [new_code_cell("x = 1")])
    result = _build(tmp_path, "-W")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "_build" / "html" / "chapter.html").exists()
