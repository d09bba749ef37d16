"""Fixtures shared by the tests that build the book, serve pages or drive a browser."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alexnet_book.pdf import find_chromium

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book():
    """Build the book as CI and the deploy workflow do (warnings are errors); the HTML folder.

    Cheap when the execution cache in `_build/.jupyter_cache` is warm: nothing re-executes.
    """
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT), "-W"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    log = result.stdout + result.stderr
    problems = [line for line in log.splitlines() if "WARNING" in line or "Error" in line]
    assert result.returncode == 0, "\n".join(problems[:20]) + "\n…\n" + log[-3000:]
    return ROOT / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def serve_folder():
    """serve_folder(folder) serves it on localhost and returns the base URL (until the end)."""
    servers = []

    def serve(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="session")
def chromium():
    """The Chromium the package prints with (alexnet_book.pdf.find_chromium). Without one the
    test skips, unless ALEXNET_BOOK_REQUIRE_BROWSER=1 (CI sets it) makes that a failure."""
    try:
        return find_chromium()
    except FileNotFoundError as error:
        if os.environ.get("ALEXNET_BOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))
