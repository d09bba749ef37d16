"""The book's MyST roles made plain for notebooks read outside the book (student notebooks)."""

import nbformat
import pytest

pytest.importorskip("myst_nb")
pytest.importorskip("pybtex")

from alexnet_book.plain_text import (  # noqa: E402
    fill_roles,
    glued_values,
    plain_markdown,
    read_bibliography,
)

BIB = """
@inproceedings{krizhevsky2012imagenet,
  author = {Krizhevsky, Alex and Sutskever, Ilya and Hinton, Geoffrey E.},
  title = {ImageNet Classification with Deep Convolutional Neural Networks},
  year = {2012}
}
@inproceedings{zeiler2014visualizing,
  author = {Zeiler, Matthew D. and Fergus, Rob},
  title = {Visualizing and Understanding Convolutional Networks},
  year = {2014}
}
"""


@pytest.fixture
def bibliography(tmp_path):
    (tmp_path / "references.bib").write_text(BIB)
    return read_bibliography(tmp_path / "references.bib")


def test_glue_roles_become_the_numbers_formatted_as_the_book_formats_them():
    # The values as a notebook's text/plain holds them (repr), the formats as the prose gives them.
    values = {"params": "34944", "share": "0.14556", "side": "55", "name": "'conv1'"}
    text = ("{glue:text}`params:,` parameters, {glue:text}`share:.1%` of the work, "
            "{glue:text}`side`×{glue:text}`side`, layer {glue:text}`name`")
    assert plain_markdown(text, values) == \
        "34,944 parameters, 14.6% of the work, 55×55, layer conv1"


def test_citations_read_as_the_books_author_year_style(bibliography):
    text = ("as {cite:t}`krizhevsky2012imagenet` showed "
            "{cite:p}`krizhevsky2012imagenet,zeiler2014visualizing`")
    assert plain_markdown(text, {}, bibliography) == (
        "as Krizhevsky et al. (2012) showed (Krizhevsky et al., 2012; Zeiler and Fergus, 2014)")
    assert plain_markdown("{cite:p}`unknown2020`", {}, bibliography) == "(unknown2020)"


def test_terms_keep_their_words():
    assert plain_markdown("a {term}`ReLU` and {term}`kernels <kernel>`", {}) == \
        "a ReLU and kernels"


def test_a_glue_key_without_a_value_is_an_error():
    with pytest.raises(KeyError, match="nothing was glued under 'missing'"):
        plain_markdown("{glue:text}`missing:.2f`", {"other": "1"})


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


def test_glued_values_runs_only_the_cells_before_the_stop(tmp_path):
    path = _notebook(tmp_path / "chapter.ipynb", [
        nbformat.v4.new_code_cell("from myst_nb import glue\nglue('side', (227 - 11) // 4 + 1)"),
        nbformat.v4.new_markdown_cell("conv1 is {glue:text}`side` wide"),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION"),
        nbformat.v4.new_code_cell("raise RuntimeError('an exercise must not run')"),
    ])
    values = glued_values(path, stop_at=lambda cell: cell.source == "# BEGIN QUESTION")
    assert values == {"side": "55"}

    fill_roles(path, values)
    cells = nbformat.read(str(path), as_version=4).cells
    assert cells[1].source == "conv1 is 55 wide"
    assert cells[3].source.startswith("raise")  # code is left alone
