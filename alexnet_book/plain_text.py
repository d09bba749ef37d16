"""The book's MyST roles made plain, for chapter notebooks read outside the book.

The book renders ``{glue:text}`key:fmt``` as a number the chapter computed, ``{cite:t}`key``` as
"Author et al. (year)" and ``{term}`word``` as a link to the glossary. Jupyter and Colab show
the roles as they are typed, so a student notebook made from a chapter would read "conv1 slides
{glue:text}`kernels` kernels". ``fill_roles`` writes the plain text into a notebook's markdown
cells, with the values myst-nb would show: ``glued_values`` runs the chapter's cells up to its
exercises (never a solution) and reads what they glued, and myst-nb's own ``format_plain_text``
formats them.

Needs myst-nb and pybtex (the ``classroom`` extra).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["glued_values", "plain_markdown", "read_bibliography", "fill_roles"]

_GLUE_TEXT = re.compile(r"\{glue:text\}`([^`]+)`")
_CITE = re.compile(r"\{cite:([pt])\}`([^`]+)`")
_TERM = re.compile(r"\{term\}`([^`<]+?)(?:\s*<[^`>]+>)?`")


def glued_values(notebook: str | Path, *, stop_at: Callable[[object], bool],
                 timeout: int = 600) -> dict[str, str]:
    """The text form of every value that the cells of ``notebook`` before the first cell for
    which ``stop_at(cell)`` is true glue, by running those cells in the notebook's folder."""
    import nbformat
    from myst_nb.ext.glue import extract_glue_data_cell
    from nbclient import NotebookClient

    notebook = Path(notebook)
    nb = nbformat.read(str(notebook), as_version=4)
    stop = next((i for i, cell in enumerate(nb.cells) if stop_at(cell)), len(nb.cells))
    nb.cells = nb.cells[:stop]
    NotebookClient(nb, timeout=timeout,
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    values = {}
    for cell in nb.cells:
        for key, output in extract_glue_data_cell(cell):
            values[key] = output["data"]["text/plain"]
    return values


def _citation(keys: str, parenthetical: bool, bibliography: Mapping[str, tuple[str, str]]) -> str:
    cited = []
    for key in (key.strip() for key in keys.split(",")):
        if key not in bibliography:
            cited.append(key)
            continue
        authors, year = bibliography[key]
        cited.append(f"{authors}, {year}" if parenthetical else f"{authors} ({year})")
    text = "; ".join(cited)
    return f"({text})" if parenthetical else text


def plain_markdown(source: str, values: Mapping[str, str],
                   bibliography: Mapping[str, tuple[str, str]] | None = None) -> str:
    """``source`` with its glue, cite and term roles replaced by the text the book shows.

    ``values`` maps glue keys to their ``text/plain`` form (see ``glued_values``);
    ``bibliography`` maps citation keys to (authors, year) (see ``read_bibliography``); an
    unknown citation key stays as it is. A glue key without a value is an error.
    """
    from myst_nb.core.variables import format_plain_text

    def glue(match: re.Match) -> str:
        key_format = match[1].rsplit(":", 1)  # as myst-nb's role splits it
        key, fmt = (key_format[0], "s") if len(key_format) == 1 else key_format
        if key not in values:
            raise KeyError(f"{{glue:text}}`{match[1]}`: nothing was glued under {key!r} before "
                           "the exercises")
        return format_plain_text(values[key], fmt)

    source = _GLUE_TEXT.sub(glue, source)
    source = _CITE.sub(lambda m: _citation(m[2], m[1] == "p", bibliography or {}), source)
    return _TERM.sub(lambda m: m[1], source)


def read_bibliography(path: str | Path) -> dict[str, tuple[str, str]]:
    """{key: (authors, year)} from a BibTeX file, authors as the book's author-year style
    writes them: "Krizhevsky et al.", "Simonyan and Zisserman", "Hinton"."""
    from pybtex.database import parse_file

    entries = {}
    for key, entry in parse_file(str(path)).entries.items():
        people = entry.persons.get("author", [])
        names = [" ".join(person.last_names).replace("{", "").replace("}", "")
                 for person in people]
        if len(names) > 2:
            authors = f"{names[0]} et al."
        else:
            authors = " and ".join(names) or entry.fields.get("title", key)
        entries[key] = (authors, entry.fields.get("year", "n.d."))
    return entries


def fill_roles(notebook: str | Path, values: Mapping[str, str],
               bibliography: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Rewrite the markdown cells of ``notebook`` in place with ``plain_markdown``."""
    import nbformat

    notebook = Path(notebook)
    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, values, bibliography)
    nbformat.write(nb, str(notebook))
