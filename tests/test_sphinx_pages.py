"""The book's page corrections: one copy of each inline script, and a valid theme mode."""

from types import SimpleNamespace

from sphinx.builders.html._assets import _JavaScript

from alexnet_book.sphinx_pages import _default_to_auto_mode, _drop_repeated_inline_scripts


def test_a_repeated_inline_script_is_kept_once_and_files_are_untouched():
    settings = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("_static/a.js"), _JavaScript(None, body=settings),
               _JavaScript("", body=settings), _JavaScript("_static/a.js", defer="defer"),
               _JavaScript(None, body="const other = 1")]
    context = {"script_files": list(scripts)}
    _drop_repeated_inline_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[3], scripts[4]]


def test_the_theme_mode_defaults_to_auto_and_a_chosen_one_is_kept():
    config = SimpleNamespace(html_context={})
    _default_to_auto_mode(None, config)
    assert config.html_context["default_mode"] == "auto"
    config = SimpleNamespace(html_context={"default_mode": "dark"})
    _default_to_auto_mode(None, config)
    assert config.html_context["default_mode"] == "dark"
