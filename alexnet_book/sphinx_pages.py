"""A Sphinx extension for the book: two corrections to the pages the theme writes.

Both were found by opening the built pages in a browser (tests/test_browser.py), where each one
logged a console error on every page:

- The theme mode. pydata-sphinx-theme starts a page in ``html_context["default_mode"]``,
  which jupyter-book leaves empty, so the theme's script reports "Got invalid theme mode" and
  falls back to "auto". We say "auto" (follow the reader's system setting) ourselves.
- Inline scripts written twice. sphinx-thebe adds its settings as an inline script after the
  HTML builder has started; Sphinx 7.4 then lists that script twice (once with the file name
  ``None``, once with ``""``), and the second copy fails with "Identifier 'THEBE_JS_URL' has
  already been declared". Each page keeps the first copy of every inline script.

Enabled in ``_config.yml`` under ``sphinx.extra_extensions``.
"""

from __future__ import annotations

__all__ = ["setup"]


def _default_to_auto_mode(app, config) -> None:
    config.html_context.setdefault("default_mode", "auto")


def _drop_repeated_inline_scripts(app, pagename, templatename, context, doctree) -> None:
    seen_bodies = set()
    kept = []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body")
        if body:
            if body in seen_bodies:
                continue
            seen_bodies.add(body)
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("config-inited", _default_to_auto_mode)
    app.connect("html-page-context", _drop_repeated_inline_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
