"""The repository keeps its promises: clean notebooks, one setup cell, README commands in CI."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CHAPTERS = [p for p in NOTEBOOKS if "_template" not in p.parts]
TEMPLATE = BOOK / "_template" / "chapter.ipynb"


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"])


def _setup_cell(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert code, f"{path} has no code cell"
    return code[0]


def test_there_are_chapters():
    assert CHAPTERS and TEMPLATE in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_committed_without_outputs(path):
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {index} has outputs: strip them"
            assert cell.get("execution_count") is None, f"{path.name} cell {index} has a count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_setup_cell_is_the_templates(path):
    cell, template = _setup_cell(path), _setup_cell(TEMPLATE)
    assert _source(cell) == _source(template), f"{path.name}: copy the setup cell from the template"
    assert "hide-cell" in cell["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_has_a_parameters_cell(path):
    tagged = [c for c in _cells(path) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


def test_setup_cell_installs_from_the_configured_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = re.search(r'REPOSITORY = "([^"]+)"', _source(_setup_cell(TEMPLATE))).group(1)
    assert url == config["repository"]["url"]


def _toc_files(entries):
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        yield from _toc_files(entry.get("chapters", []) + entry.get("sections", []))


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"], *_toc_files(toc["parts"])]
    for name in files:
        assert any((ROOT / f"{name}{suffix}").exists() for suffix in ("", ".md", ".ipynb")), name
    listed = {str(ROOT / f"{name}.ipynb") for name in files}
    assert {str(p) for p in CHAPTERS} <= listed, "add every chapter to _toc.yml"


def _readme_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, f"the README has exactly two commands, found {commands}"
    build, test = commands
    assert "jupyter-book build ." in build
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines(), "CI must run the README's test command verbatim"
    assert "jupyter-book build . -W" in ci


LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


def test_the_layers_part_lists_one_chapter_per_layer_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    [part] = [part for part in toc["parts"] if part["caption"] == "The layers"]
    assert [entry["file"] for entry in part["chapters"]] == [f"book/layers/{n}" for n in LAYERS]


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_chapter_is_graded_and_shows_its_layer(layer):
    import nbformat

    from alexnet_book.classroom import find_assignment_chapters

    path = BOOK / "layers" / f"{layer}.ipynb"
    assert path in find_assignment_chapters(BOOK / "layers")
    chapter = nbformat.read(str(path), as_version=4)
    questions = [c for c in chapter.cells if c.cell_type == "raw"
                 and c.source.startswith("# BEGIN QUESTION")]
    assert len(questions) >= 3, f"{layer}: at least three graded exercises"
    code = "\n".join(c.source for c in chapter.cells if c.cell_type == "code")
    # The numbers come from the package, the share figure highlights this layer, and a real
    # photograph goes through the trained network.
    assert "describe_layer(" in code and "plot_layer_costs(" in code
    assert f'highlight="{layer}"' in code or "highlight=LAYER" in code
    assert "sample_photo(" in code and "small_trained_alexnet(" in code


IDEAS = ["relu", "lrn", "overlapping_pooling", "dropout", "augmentation", "two_gpus"]


def test_the_ideas_part_lists_one_chapter_per_idea_each_graded_with_an_ablation():
    import nbformat

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    [part] = [part for part in toc["parts"] if part["caption"] == "The ideas"]
    assert [entry["file"] for entry in part["chapters"]] == [f"book/ideas/{n}" for n in IDEAS]
    for idea in IDEAS:
        chapter = nbformat.read(str(BOOK / "ideas" / f"{idea}.ipynb"), as_version=4)
        code = "\n".join(c.source for c in chapter.cells if c.cell_type == "code")
        assert "run_ablation(" in code and f'"{idea}"' in code, \
            f"{idea}: the ablation runs with the package's run_ablation"
        questions = [c for c in chapter.cells if c.cell_type == "raw"
                     and c.source.startswith("# BEGIN QUESTION")]
        assert len(questions) >= 3, f"{idea}: at least three graded exercises"


# $$…$$ blocks, \begin{…}…\end{…} environments and $…$ inline maths in a markdown cell.
_MATH = re.compile(r"\$\$.*?\$\$|\\begin\{(\w+\*?)\}.*?\\end\{\1\}|\$[^$\n]+\$", flags=re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_glued_number_inside_maths(path):
    # MathJax shows a {glue:text} role inside maths as its source, not as the number.
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "markdown":
            for math in _MATH.finditer(_source(cell)):
                assert "{glue" not in math.group(0), \
                    f"{path.name} cell {index}: a glue role inside maths; move it into the prose"
