"""Colab as a learner meets it: the setup cell installs the package, and a chapter then runs.

Selected with `pytest -m install` (`.ci/run` does). In a fresh virtual environment, the
chapters' own setup cell runs as it runs in Colab (``google.colab`` imported), with its
repository URL pointed at a clean clone of this repository (``git+file://``). The package must
then be installed from that clone, not in editable mode, and a chapter must execute with it in a
folder outside the repository. Colab ships a recent pip and Jupyter's kernel and client; they
are installed into the environment first, as they would be there. The clone holds what is committed: commit first.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "book" / "_template" / "chapter.ipynb"
CHAPTER = ROOT / "book" / "foundations" / "output_size.ipynb"


def _setup_cell_source():
    cells = json.loads(TEMPLATE.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def _run(*command, cwd=None, timeout=1200):
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    """A fresh environment in which the setup cell has installed the package from a clone."""
    work = tmp_path_factory.mktemp("colab")
    clone = work / "clone"
    _run("git", "clone", "--quiet", ROOT, clone)
    _run(sys.executable, "-m", "venv", work / "venv")
    python = work / "venv" / "bin" / "python"
    # Colab ships a recent pip (pip 23.2 refuses `name @ git+file:///path`), Jupyter's kernel
    # and its client.
    _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "nbclient", "ipykernel")
    setup_cell = _setup_cell_source()
    pointed = re.sub(r'REPOSITORY = "[^"]+"', f'REPOSITORY = "file://{clone}"', setup_cell)
    assert pointed != setup_cell, "the setup cell no longer sets REPOSITORY"
    as_in_colab = 'import sys, types\nsys.modules["google.colab"] = types.ModuleType("colab")\n'
    _run(python, "-c", as_in_colab + pointed, cwd=work)
    yield python, work
    shutil.rmtree(work, ignore_errors=True)  # a CUDA build of torch: several GB


def test_the_setup_cell_installs_the_package_from_the_repository_not_editable(colab_like):
    python, work = colab_like
    report = _run(python, "-c", (
        "import json, alexnet_book, importlib.metadata as m\n"
        "print(alexnet_book.__file__)\n"
        "print(m.distribution('alexnet-book').read_text('direct_url.json'))"), cwd=work)
    location, direct_url = report.split("\n", 1)
    origin = json.loads(direct_url)
    assert origin["url"] == f"file://{work / 'clone'}"
    assert origin["vcs_info"]["vcs"] == "git"
    assert not origin.get("dir_info", {}).get("editable", False)
    assert Path(location).is_relative_to(work / "venv"), f"imported from {location}"


def test_a_chapter_executes_with_the_installed_package(colab_like):
    python, work = colab_like
    chapter = work / "reader" / CHAPTER.name
    chapter.parent.mkdir()
    shutil.copy(CHAPTER, chapter)
    _run(python, "-c", (
        "import nbformat, nbclient\n"
        f"notebook = nbformat.read({str(chapter)!r}, as_version=4)\n"
        "nbclient.NotebookClient(notebook, timeout=300, kernel_name='python3').execute()\n"
        "print('executed', len(notebook.cells), 'cells')"), cwd=chapter.parent)
