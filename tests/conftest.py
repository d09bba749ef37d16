"""Fixtures shared by the tests that need the built book."""

import subprocess
import sys
from pathlib import Path

import pytest

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
