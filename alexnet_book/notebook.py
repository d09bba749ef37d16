"""Helpers the chapters share when they run as notebooks (in the book build, Jupyter or Colab)."""

from __future__ import annotations

import sys

__all__ = ["glue", "glue_facts", "in_colab"]


def in_colab() -> bool:
    """True when running in Google Colab."""
    return "google.colab" in sys.modules


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue}`` roles.

    In the book build this is myst-nb's ``glue``. Colab and plain Jupyter do not have myst-nb,
    and the reader there sees the value in the code instead, so without it this does nothing.
    Like myst-nb's, it returns nothing, so a cell that ends with it shows no stray output.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def glue_facts(facts: dict, prefix: str = "") -> None:
    """``glue`` every number and string of ``facts`` under ``prefix + key``.

    Made for ``alexnet_book.shapes.describe_layer``: ``glue_facts(describe_layer("conv2"))``
    lets the prose write ``{glue:text}`params:,``` and ``{glue:text}`mac_share:.1%```.
    Tuples and other values are skipped: glue their text forms (``in_text``, ``out_text``).
    """
    for key, value in facts.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            glue(prefix + key, value)
