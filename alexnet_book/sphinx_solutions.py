"""A Sphinx extension for the book: hide otter-grader's solution markers in rendered code.

Chapters are also otter-grader master notebooks, whose solution code carries markers
(``# SOLUTION`` at the end of a line, ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines). otter
needs them in the notebook; a reader of the book does not. This removes them from the code
blocks of the rendered pages only. Enabled in ``_config.yml`` under ``sphinx.extra_extensions``.
"""

from __future__ import annotations

import re

from docutils import nodes

__all__ = ["strip_solution_markers", "setup"]

_MARKER_LINE = re.compile(r"^\s*# (?:BEGIN|END) SOLUTION(?: NO PROMPT)?\s*$")
_MARKER_SUFFIX = re.compile(r"\s*# SOLUTION(?: NO PROMPT)?\s*$")


def strip_solution_markers(text: str) -> str:
    """``text`` without otter's solution marker lines and end-of-line markers."""
    return "\n".join(_MARKER_SUFFIX.sub("", line) for line in text.splitlines()
                     if not _MARKER_LINE.match(line))


def _strip_from_doctree(app, doctree) -> None:
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        if "SOLUTION" in text:
            clean = strip_solution_markers(text)
            block.rawsource = clean
            block.children = [nodes.Text(clean)]


def setup(app):
    app.connect("doctree-read", _strip_from_doctree)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
