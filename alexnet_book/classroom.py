"""Classroom versions of the chapters: otter-grader assignments made from the book's notebooks.

A chapter that is also an assignment is an otter-grader 7 *master notebook* (format v1): the
book renders it, nbval executes it with the solutions in place, and ``otter assign`` turns it into

- ``student/``: the chapter with every solution replaced by ``...``, a ``grader.check("q1")``
  cell after each question and the public tests in ``student/tests/``;
- ``autograder/``: the chapter with solutions, all tests (``# HIDDEN`` ones included) and the
  ``*-autograder_<timestamp>.zip`` that ``otter run`` and Gradescope grade with.

The master's markers are raw cells, which the book does not show (myst-nb skips raw cells that
have no ``format``), one per cell::

    # ASSIGNMENT CONFIG          (YAML: name, tests: {ok_format: false, files: true}, ...)
    # BEGIN QUESTION             (YAML: name, points, all_or_nothing: true; or manual: true)
      ...the prompt (markdown)...
    # BEGIN SOLUTION
      ...code cells whose answer lines end in "# SOLUTION" or sit between
         "# BEGIN SOLUTION" and "# END SOLUTION" comments (tag them hide-input)...
    # END SOLUTION
    # BEGIN TESTS
      ...code cells, each one test function and one call (tag them remove-cell);
         "# HIDDEN" on the first line keeps a test out of the student version...
    # END TESTS
    # END QUESTION

Otter does the work (``otter assign``, ``otter run``). This module adds what it lacks:

- ``find_assignment_chapters``: which notebooks of the book are masters;
- ``validate_master``: otter accepts some broken masters without a word (a question never
  closed, a ``# SOLUTION`` line outside a solution block, a solution cell without markers) and
  then ships the solution to students; this check refuses them and names the cell;
- ``make_assignments``: runs ``otter assign`` per chapter, then checks that no solution line,
  solution marker or hidden test reached the student version (``find_solution_leaks``), and can
  write a Colab variant that downloads its checks (otter's own ``tests_url_prefix`` works on
  JupyterLite only);
- ``grade_submission``: runs ``otter run`` and reads its ``results.json``;
- ``publish_for_students``: copies what students may see (``student/``, ``colab/``) to the
  folder that is published, never ``autograder/``.

otter-grader is the optional extra ``classroom``; it is imported only inside the functions.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, NoReturn

__all__ = [
    "AssignmentResult",
    "QuestionScore",
    "find_assignment_chapters",
    "validate_master",
    "make_assignments",
    "find_solution_leaks",
    "grade_submission",
    "tests_base_url",
    "publish_for_students",
]

# Any spelling of a solution marker in a code line: "# SOLUTION", "# BEGIN SOLUTION",
# "# END SOLUTION", "# SOLUTION NO PROMPT". Otter only acts on the upper-case ones.
_ANY_SOLUTION_MARKER = re.compile(r"#\s*(?:BEGIN\s+|END\s+)?SOLUTION\b", re.IGNORECASE)
_OTTER_SOLUTION_MARKER = re.compile(r"# ?(?:BEGIN |END )?SOLUTION\b")
_BEGIN_SOLUTION_LINE = re.compile(r"\s*# BEGIN SOLUTION\b")
_END_SOLUTION_LINE = re.compile(r".*# END SOLUTION\s*$")
_OTTER_FENCE = "```otter"
# Cell tags that make the book fold a solution and hide a test (myst-nb / sphinx-book-theme).
_SOLUTION_TAGS = ("hide-input", "hide-cell")
_TEST_TAGS = ("remove-cell",)
_SKIPPED_DIRS = {"_build", ".ipynb_checkpoints", "assignments", "dist"}
_BLOCK_ORDER_HINT = (
    "a question reads: # BEGIN QUESTION, prompt, # BEGIN SOLUTION ... # END SOLUTION, "
    "# BEGIN TESTS ... # END TESTS, # END QUESTION"
)


@dataclass(frozen=True)
class AssignmentResult:
    """What ``make_assignments`` wrote for one chapter."""

    master: Path
    student_notebook: Path
    autograder_zip: Path
    colab_notebook: Path | None = None


class QuestionScore(NamedTuple):
    score: float
    max_score: float


# --- reading notebooks and recognising otter's cells ---------------------------------------


def _read_notebook(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _marker_of(cell) -> tuple[str, str] | None:
    """("config", ""), ("begin", block) or ("end", block) for an otter marker cell, else None.

    Uses otter's own recognisers, so a raw cell and a markdown cell that holds only an
    "```otter" fence are both markers, exactly as ``otter assign`` reads them.
    """
    from otter.assign.blocks import BlockType, is_assignment_config_cell, is_block_boundary_cell

    if cell.cell_type not in ("raw", "markdown") or not cell.source.strip():
        return None
    if is_assignment_config_cell(cell):
        return ("config", "")
    for block in BlockType:
        if is_block_boundary_cell(cell, block):
            return ("begin", block.value)
        if is_block_boundary_cell(cell, block, end=True):
            return ("end", block.value)
    return None


def _cell_yaml(cell):
    from otter.assign.blocks import get_cell_config

    return get_cell_config(cell)


def _leading_cells(cells) -> list:
    """The cells before the first code cell: where a chapter keeps its assignment config."""
    leading = []
    for cell in cells:
        if cell.cell_type == "code":
            break
        leading.append(cell)
    return leading


def _is_master(path: Path) -> bool:
    cells = _read_notebook(path).cells
    return any(_marker_of(cell) == ("config", "") for cell in _leading_cells(cells))


def find_assignment_chapters(book_dir: str | Path) -> list[Path]:
    """The notebooks under ``book_dir`` that are otter master notebooks, sorted.

    A notebook is a master when one of its cells before the first code cell is an
    ``# ASSIGNMENT CONFIG`` cell. Build output (``_build``, ``assignments``, ``dist``),
    checkpoints and hidden folders are skipped.
    """
    book_dir = Path(book_dir)
    if not book_dir.is_dir():
        raise ValueError(f"book_dir {book_dir} is not a folder: pass the folder that holds "
                         "the chapters")
    chapters = []
    for path in sorted(book_dir.rglob("*.ipynb")):
        parts = path.relative_to(book_dir).parts[:-1]
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in parts):
            continue
        if _is_master(path):
            chapters.append(path)
    return chapters


# --- validating a master ----------------------------------------------------------------


@dataclass
class _OpenQuestion:
    name: str
    index: int
    manual: bool
    test_cells: int = 0


@dataclass
class _MasterWalk:
    """The state of one pass over a master's cells: which blocks are open, and where."""

    path: Path
    open_blocks: list[tuple[str, int]] = field(default_factory=list)
    question: _OpenQuestion | None = None
    config_index: int | None = None

    def fail(self, index: int, problem: str) -> NoReturn:
        raise ValueError(f"{self.path}, cell index {index}: {problem}")

    @property
    def innermost(self) -> str | None:
        return self.open_blocks[-1][0] if self.open_blocks else None

    def config(self, index: int, cell, leading: bool) -> None:
        if self.config_index is not None:
            self.fail(index, f"a second # ASSIGNMENT CONFIG (the first is cell index "
                             f"{self.config_index}): merge them into one cell")
        if not leading:
            self.fail(index, "the # ASSIGNMENT CONFIG cell comes after a code cell: move it "
                             "before the first code cell, where find_assignment_chapters looks")
        self.config_index = index
        _check_assignment_config(self, index, _cell_yaml(cell))

    def begin(self, index: int, block: str, cell) -> None:
        if block == "question":
            if self.question is not None:
                self.fail(index, f"# BEGIN QUESTION inside question {self.question.name!r} "
                                 f"(opened at cell index {self.question.index}): add a raw cell "
                                 "# END QUESTION before this one")
            self.question = _open_question(self, index, _cell_yaml(cell))
        elif self.question is None:
            self.fail(index, f"# BEGIN {block.upper()} outside a question: put it between "
                             f"# BEGIN QUESTION and # END QUESTION ({_BLOCK_ORDER_HINT})")
        elif len(self.open_blocks) > 1:
            opened_at = self.open_blocks[-1][1]
            self.fail(index, f"# BEGIN {block.upper()} inside the {self.innermost} block opened "
                             f"at cell index {opened_at}: add # END {self.innermost.upper()} "
                             "before this cell")
        self.open_blocks.append((block, index))

    def end(self, index: int, block: str) -> None:
        if self.innermost != block:
            if block not in (open_block for open_block, _ in self.open_blocks):
                self.fail(index, f"# END {block.upper()} without a matching # BEGIN "
                                 f"{block.upper()}: add the BEGIN cell or delete this one")
            opened_at = self.open_blocks[-1][1]
            self.fail(index, f"# END {block.upper()} while the {self.innermost} block opened at "
                             f"cell index {opened_at} is still open: add # END "
                             f"{self.innermost.upper()} before this cell")
        self.open_blocks.pop()
        if block == "question":
            _check_question_has_tests(self, self.question)
            self.question = None

    def content(self, index: int, cell) -> None:
        if cell.cell_type == "markdown" and _OTTER_FENCE in cell.source:
            self.fail(index, "this markdown cell mixes prose with an ```otter block: give the "
                             "block a cell of its own (or use a raw cell)")
        if cell.cell_type != "code":
            if self.innermost == "tests":
                self.fail(index, "a non-code cell inside # BEGIN TESTS: tests blocks hold only "
                                 "code cells, each one test function and one call to it")
            return
        if self.innermost == "tests":
            _check_test_cell(self, index, cell.source)
            _check_tags(self, index, cell, _TEST_TAGS, "the book hides the test (nbval and the "
                                                       "book build still run it)")
            self.question.test_cells += 1
        elif self.innermost == "solution":
            _check_solution_cell(self, index, cell.source)
            _check_tags(self, index, cell, _SOLUTION_TAGS, "the book folds the solution")
        else:
            _check_no_solution_markers(self, index, cell.source)

    def finish(self) -> None:
        if self.open_blocks:
            block, opened_at = self.open_blocks[-1]
            self.fail(opened_at, f"the {block} block opened here is never closed: add a raw "
                                 f"cell # END {block.upper()} after its last cell")
        if self.config_index is None:
            self.fail(0, "no # ASSIGNMENT CONFIG cell before the first code cell: add a raw "
                         "cell starting '# ASSIGNMENT CONFIG' at the top of the notebook")


def _check_tags(walk: _MasterWalk, index: int, cell, wanted: tuple[str, ...], why: str) -> None:
    if not set(wanted) & set(cell.metadata.get("tags", [])):
        walk.fail(index, f"tag this cell {wanted[0]!r} so that {why}")


def _check_assignment_config(walk: _MasterWalk, index: int, config) -> None:
    if not isinstance(config, dict):
        walk.fail(index, "the # ASSIGNMENT CONFIG cell is not a YAML mapping: write 'key: value' "
                         "lines under the first line")
    tests = config.get("tests") or {}
    if not isinstance(tests, dict) or tests.get("ok_format", True):
        walk.fail(index, "the assignment config must set 'tests: {ok_format: false}': our "
                         "notebooks keep no outputs, so otter's OK-format tests would have no "
                         "expected output to compare with")


def _open_question(walk: _MasterWalk, index: int, config) -> _OpenQuestion:
    if not isinstance(config, dict):
        walk.fail(index, "the # BEGIN QUESTION cell is not a YAML mapping: write 'name: q1' and "
                         "'points: 1' under the first line")
    for key in ("name", "points"):
        if config.get(key) is None:
            walk.fail(index, f"the question has no '{key}': add a line '{key}: ...' to this "
                             "# BEGIN QUESTION cell")
    manual = bool(config.get("manual", False))
    if not manual and config.get("all_or_nothing") is not True:
        walk.fail(index, "add 'all_or_nothing: true' to this # BEGIN QUESTION cell: otherwise "
                         "otter splits the points over the tests, and an answer that passes only "
                         "the public format check earns part of them")
    return _OpenQuestion(str(config["name"]), index, manual)


def _check_question_has_tests(walk: _MasterWalk, question: _OpenQuestion) -> None:
    if question.test_cells == 0 and not question.manual:
        walk.fail(question.index, f"question {question.name!r} has no tests: add a # BEGIN TESTS "
                                  "block with at least one test cell, or set 'manual: true' for "
                                  "a hand-graded question")


def _check_test_cell(walk: _MasterWalk, index: int, source: str) -> None:
    try:
        body = ast.parse(source).body
    except SyntaxError as error:
        walk.fail(index, f"the test cell does not parse ({error.msg}, line {error.lineno})")
    calls_only_itself = len(body) == 1 or (
        len(body) == 2 and isinstance(body[1], ast.Expr) and isinstance(body[1].value, ast.Call)
    )
    if not body or not isinstance(body[0], ast.FunctionDef) or not calls_only_itself:
        walk.fail(index, "an exception-based test cell holds one test function and one call to "
                         "it (def test_q1(x): ... then test_q1(x)); split it into several cells")


def _check_solution_cell(walk: _MasterWalk, index: int, source: str) -> None:
    _check_marker_case(walk, index, source)
    lines = source.splitlines()
    if not any(_OTTER_SOLUTION_MARKER.search(line) for line in lines):
        walk.fail(index, "this solution cell has no '# SOLUTION' marker, so otter would give it "
                         "to students unchanged: end each answer line with '# SOLUTION' or wrap "
                         "the answer in '# BEGIN SOLUTION' / '# END SOLUTION' comment lines")
    inside = False
    for line in lines:
        if _BEGIN_SOLUTION_LINE.match(line):
            if inside:
                walk.fail(index, "two '# BEGIN SOLUTION' lines without an '# END SOLUTION' "
                                 "between them")
            inside = True
        elif _END_SOLUTION_LINE.match(line):
            if not inside:
                walk.fail(index, "an '# END SOLUTION' line without '# BEGIN SOLUTION' above it")
            inside = False
    if inside:
        walk.fail(index, "a '# BEGIN SOLUTION' line is never closed: add '# END SOLUTION'")


def _check_marker_case(walk: _MasterWalk, index: int, source: str) -> None:
    for line in source.splitlines():
        marker = _ANY_SOLUTION_MARKER.search(line)
        if marker and not _OTTER_SOLUTION_MARKER.search(line):
            walk.fail(index, f"otter only recognises upper-case solution markers: write "
                             f"{marker.group(0).upper()!r} in {line.strip()!r}")


def _check_no_solution_markers(walk: _MasterWalk, index: int, source: str) -> None:
    for line in source.splitlines():
        if _ANY_SOLUTION_MARKER.search(line):
            where = f"question {walk.question.name!r}" if walk.question else "no question"
            walk.fail(index, f"a solution marker outside a # BEGIN SOLUTION block ({where}): "
                             f"otter would ship {line.strip()!r} to students unchanged; put the "
                             "cell between raw cells # BEGIN SOLUTION and # END SOLUTION")


def validate_master(path: str | Path) -> None:
    """Check the otter markers of the master notebook ``path``; raise ``ValueError`` if broken.

    The error names the notebook and the cell index (counted from 0, as ``nb.cells[i]``):
    BEGIN/END QUESTION, SOLUTION, TESTS or PROMPT that do not pair up, solution markers outside
    a question or outside a solution block, solution cells without markers, a question without
    name, points or (unless ``manual: true``) tests, test cells that are not one function and
    one call, an auto-graded question without ``all_or_nothing: true`` (a wrong answer would
    earn the points of the public tests it passes), and a missing config or one without
    ``tests: {ok_format: false}``. For the book
    it also wants solution cells tagged ``hide-input`` (folded), test cells and ``otter``-fenced
    markdown markers tagged ``remove-cell``; raw marker cells are never shown.
    """
    path = Path(path)
    cells = _read_notebook(path).cells
    leading_count = len(_leading_cells(cells))
    walk = _MasterWalk(path)
    for index, cell in enumerate(cells):
        marker = _marker_of(cell)
        if marker is None:
            walk.content(index, cell)
            continue
        if cell.cell_type == "markdown":  # an ```otter fence: the book would show it
            _check_tags(walk, index, cell, ("remove-cell",), "the book does not show this "
                        "```otter block (sphinx also fails -W on the unknown 'otter' lexer)")
        if marker[0] == "config":
            walk.config(index, cell, leading=index < leading_count)
        elif marker[0] == "begin":
            walk.begin(index, marker[1], cell)
        else:
            walk.end(index, marker[1])
    walk.finish()


def _assignment_config(path: Path) -> dict:
    for cell in _leading_cells(_read_notebook(path).cells):
        if _marker_of(cell) == ("config", ""):
            return _cell_yaml(cell)
    raise ValueError(f"{path} has no # ASSIGNMENT CONFIG cell before its first code cell")


# --- finding solutions in a student notebook ---------------------------------------------


def _solution_regions(cells):
    """Yield (index, cell, in_solution_block, hidden_test) for the content cells of a master."""
    block_stack: list[str] = []
    for index, cell in enumerate(cells):
        marker = _marker_of(cell)
        if marker is None:
            innermost = block_stack[-1] if block_stack else None
            hidden = innermost == "tests" and _is_hidden_test(cell.source)
            yield index, cell, innermost == "solution", hidden
        elif marker[0] == "begin":
            block_stack.append(marker[1])
        elif marker[0] == "end" and block_stack:
            block_stack.pop()


def _is_hidden_test(source: str) -> bool:
    """Otter's rule: a test is hidden when its first line is a comment with the word 'hidden'."""
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    return first.startswith("#") and bool(re.search(r"\bhidden\b", first, re.IGNORECASE))


def _kept_on_purpose(cell) -> bool:
    """Otter keeps a markdown solution cell in the student version when it is tagged so."""
    from otter.assign.solutions import OTTER_INCLUDE_TAG

    return OTTER_INCLUDE_TAG in cell.metadata.get("tags", [])


def _normalised(line: str) -> str:
    return _ANY_SOLUTION_MARKER.sub("", line).strip()


def _is_trivial(line: str) -> bool:
    return line in ("", "...", "pass") or line.startswith("#")


def _split_solution_cell(source: str) -> tuple[list[str], list[str]]:
    """(answer lines, kept lines) of a solution cell, as otter splits them."""
    answer, kept, inside = [], [], False
    for line in source.splitlines():
        if _BEGIN_SOLUTION_LINE.match(line):
            inside = True
        elif _END_SOLUTION_LINE.match(line):
            inside = False
        elif inside or _OTTER_SOLUTION_MARKER.search(line):
            answer.append(_normalised(line))
        else:
            kept.append(_normalised(line))
    return answer, kept


def _master_solutions(cells) -> tuple[dict[str, int], list[tuple[str, int]], list[str]]:
    """(solution code lines -> master cell index, markdown solutions, hidden test names)."""
    answer_lines: dict[str, int] = {}
    shared_lines: set[str] = set()
    markdown_answers: list[tuple[str, int]] = []
    hidden_tests: list[str] = []
    for index, cell, in_solution, hidden in _solution_regions(cells):
        if hidden:
            hidden_tests += [node.name for node in ast.parse(cell.source).body
                             if isinstance(node, ast.FunctionDef)]
        elif in_solution and cell.cell_type == "code":
            answer, kept = _split_solution_cell(cell.source)
            answer_lines.update({line: index for line in answer})
            shared_lines.update(kept)
        elif in_solution and cell.cell_type == "markdown" and not _kept_on_purpose(cell):
            markdown_answers.append((cell.source.strip(), index))
        elif cell.cell_type == "code":
            shared_lines.update(_normalised(line) for line in cell.source.splitlines())
    distinctive = {line: index for line, index in answer_lines.items()
                   if not _is_trivial(line) and line not in shared_lines}
    return distinctive, markdown_answers, hidden_tests


def _code_leaks(student_path: Path, cells, answer_lines: dict[str, int]) -> list[str]:
    leaks = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if _ANY_SOLUTION_MARKER.search(line):
                leaks.append(f"{student_path}, cell index {index}: solution marker left in "
                             f"{line.strip()!r}")
            elif _normalised(line) in answer_lines:
                master_index = answer_lines[_normalised(line)]
                leaks.append(f"{student_path}, cell index {index}: solution line "
                             f"{line.strip()!r} (master cell index {master_index})")
    return leaks


def find_solution_leaks(master: str | Path, student_dir: str | Path) -> list[str]:
    """Describe every piece of solution that reached the student version; [] when none did.

    Looks in ``student_dir/<master name>`` and ``student_dir/tests`` for: solution markers,
    answer lines of the master's solution cells (lines that also occur outside solutions in the
    master, and trivial ones such as ``...``, are not counted), markdown solutions, and the
    names of ``# HIDDEN`` test functions.
    """
    master, student_dir = Path(master), Path(student_dir)
    student_path = student_dir / master.name
    if not student_path.is_file():
        raise ValueError(f"no student notebook {student_path}: run make_assignments first")
    answer_lines, markdown_answers, hidden_tests = _master_solutions(_read_notebook(master).cells)
    student_cells = _read_notebook(student_path).cells
    leaks = _code_leaks(student_path, student_cells, answer_lines)
    for text, master_index in markdown_answers:
        if any(text in cell.source for cell in student_cells if cell.cell_type == "markdown"):
            leaks.append(f"{student_path}: markdown solution of master cell index {master_index}")
    student_texts = {student_path: student_path.read_text()}
    student_texts.update({p: p.read_text() for p in sorted(student_dir.glob("tests/*.py"))})
    for name in hidden_tests:
        for path, text in student_texts.items():
            if re.search(rf"\b{re.escape(name)}\b", text):
                leaks.append(f"{path}: hidden test {name!r}")
    return leaks


# --- running otter -----------------------------------------------------------------------


def _run_otter(args: list[str], what: str) -> subprocess.CompletedProcess:
    """Run ``python -m otter ARGS`` with this interpreter; raise RuntimeError if it fails."""
    done = subprocess.run([sys.executable, "-m", "otter", *args], capture_output=True, text=True)
    if done.returncode != 0:
        output = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                           if "IPKernelApp" not in line)
        raise RuntimeError(f"{what} failed (otter {args[0]}, exit code {done.returncode}):\n"
                           f"{output[-4000:]}")
    return done


def _autograder_zip(autograder_dir: Path) -> Path:
    zips = sorted(autograder_dir.glob("*-autograder_*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"expected one autograder zip in {autograder_dir}, found {len(zips)}")
    return zips[0]


def grade_submission(autograder_zip: str | Path, submission: str | Path,
                     out_dir: str | Path) -> dict[str, QuestionScore]:
    """Grade one notebook with ``otter run`` (no Docker: in this Python) and read the scores.

    Returns ``{question: QuestionScore(score, max_score)}`` from ``out_dir/results.json``.
    A cell that raises does not stop grading: the questions it breaks score 0, the rest count.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _run_otter(["run", "--no-logo", "-a", str(autograder_zip), "-o", str(out_dir),
                str(submission)], f"grading {submission}")
    results = json.loads((out_dir / "results.json").read_text())
    return {test["name"]: QuestionScore(float(test["score"]), float(test["max_score"]))
            for test in results["tests"] if test.get("score") is not None}


# --- the Colab variant -------------------------------------------------------------------


def tests_base_url(repo_url: str) -> str:
    """The URL of raw files under ``repo_url``, the folder where ``out_dir`` is published.

    ``https://github.com/OWNER/REPO/tree/BRANCH/PATH`` and ``https://github.com/OWNER/REPO``
    (branch ``main``) become ``https://raw.githubusercontent.com/OWNER/REPO/BRANCH/PATH``; any
    other http(s) URL (GitHub Pages, a raw URL, a local server) is used as it is.
    """
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?"
                         r"(?:/tree/([^/]+)(/.*)?)?/?", repo_url)
    if match:
        owner, repo, branch, path = match.groups()
        return f"https://raw.githubusercontent.com/{owner}/{repo}/{branch or 'main'}{path or ''}"
    if not re.match(r"https?://", repo_url):
        raise ValueError(f"repo_url must be an http(s) URL, got {repo_url!r}: pass e.g. "
                         "https://github.com/OWNER/REPO/tree/BRANCH/assignments")
    return repo_url.rstrip("/")


# The first cell of the Colab variant (str.format fields: requirement, tests_url, names).
_COLAB_SETUP = """\
# Colab only: install otter-grader and download this chapter's checks into ./tests.
import sys

if "google.colab" in sys.modules:
    import pathlib
    import subprocess
    import urllib.request

    requirement = {requirement!r}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)
    tests_url = {tests_url!r}
    pathlib.Path("tests").mkdir(exist_ok=True)
    for name in {names!r}:
        urllib.request.urlretrieve(f"{{tests_url}}/{{name}}.py", f"tests/{{name}}.py")"""

# What otter writes for `runs_on: colab`: no notebook path, since Colab has no notebook file.
_COLAB_INIT = '# Initialize Otter\nimport otter\ngrader = otter.Notebook(tests_dir="tests")'


def _write_colab_notebook(student_notebook: Path, tests_url: str, out_path: Path) -> Path:
    """The student notebook, with a first cell that fetches its checks when run in Colab.

    Otter's own init cell, ``otter.Notebook("<chapter>.ipynb")``, reads the notebook file from
    disk, which Colab does not have; it becomes ``otter.Notebook(tests_dir="tests")``, what
    otter writes for ``runs_on: colab``.
    """
    from importlib.metadata import version

    import nbformat

    nb = _read_notebook(student_notebook)
    init = [i for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and cell.source.startswith("# Initialize Otter")]
    if not init:
        raise ValueError(f"{student_notebook} has no otter init cell: keep 'init_cell: true' "
                         "(the default) in the assignment config to make a Colab variant")
    questions = sorted(p.stem for p in (student_notebook.parent / "tests").glob("*.py"))
    nb.cells[init[0]].source = _COLAB_INIT
    source = _COLAB_SETUP.format(requirement=f"otter-grader=={version('otter-grader')}",
                                 tests_url=tests_url, names=questions)
    setup = nbformat.v4.new_code_cell(source, metadata={"editable": False, "deletable": False})
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):  # cell ids arrived in nbformat 4.5
        setup.pop("id", None)
    nb.cells.insert(init[0], setup)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_path))
    return out_path


# --- making the assignments --------------------------------------------------------------


def _resolve_chapters(book_dir: Path, chapters: Iterable[str | Path] | None) -> list[Path]:
    found = find_assignment_chapters(book_dir)
    if chapters is None:
        return found
    by_stem = {path.stem: path for path in found}
    resolved = []
    for chapter in chapters:
        path = Path(chapter)
        if path.suffix != ".ipynb" and str(chapter) in by_stem:
            resolved.append(by_stem[str(chapter)])
            continue
        if not path.is_absolute() and not path.is_file():
            path = book_dir / path  # relative to the book's folder, as the chapters are named
        if not path.is_file():
            raise ValueError(f"chapter {chapter!r} is neither a notebook (a path from here or "
                             f"from {book_dir}) nor the name of an assignment chapter "
                             f"({', '.join(sorted(by_stem))})")
        resolved.append(path)
    return resolved


def _check_distinct_names(chapters: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in chapters:
        if path.stem in seen:
            raise ValueError(f"{seen[path.stem]} and {path} share the name {path.stem!r}, and "
                             "each chapter's assignment goes to out_dir/<name>: rename one")
        seen[path.stem] = path


def _check_tests_are_files(master: Path) -> None:
    tests = _assignment_config(master).get("tests") or {}
    if not tests.get("files", False):
        raise ValueError(f"{master}: a Colab variant needs the tests as files; add 'files: true' "
                         "under 'tests:' in its # ASSIGNMENT CONFIG (or pass repo_url=None)")


def _is_first_question(cell) -> bool:
    return _marker_of(cell) == ("begin", "question")


def _fill_roles(master: Path, student_notebook: Path, bibliography: dict) -> None:
    """Put the numbers and citations the book shows into the student notebook's prose."""
    from .plain_text import fill_roles, glued_values

    try:
        values = glued_values(master, stop_at=_is_first_question)
        fill_roles(student_notebook, values, bibliography)
    except Exception as error:  # a cell that fails, a role without a value: name the chapter
        raise RuntimeError(f"could not fill the numbers of {master} into its student version "
                           f"({type(error).__name__}: {error}); run the chapter to see why, or "
                           "pass plain_text=False") from error


def _make_one(master: Path, result_dir: Path, tests_url: str | None,
              check_solutions: bool, bibliography: dict | None) -> AssignmentResult:
    flags = ["--no-pdfs"] + ([] if check_solutions else ["--no-run-tests"])
    _run_otter(["assign", *flags, str(master), str(result_dir)], f"otter assign of {master}")
    student_dir = result_dir / "student"
    leaks = find_solution_leaks(master, student_dir)
    if leaks:
        raise RuntimeError(f"solution code reached the student version of {master}; fix the "
                           "master's markers and run again:\n  " + "\n  ".join(leaks))
    if bibliography is not None:
        _fill_roles(master, student_dir / master.name, bibliography)
    colab = None
    if tests_url is not None:
        shutil.rmtree(result_dir / "colab", ignore_errors=True)
        colab = _write_colab_notebook(student_dir / master.name,
                                      f"{tests_url}/{master.stem}/student/tests",
                                      result_dir / "colab" / master.name)
    return AssignmentResult(master, student_dir / master.name,
                            _autograder_zip(result_dir / "autograder"), colab)


# --- the package the autograder installs ------------------------------------------------

# Where otter's autograder (Docker and Gradescope alike) unpacks its zip.
_AUTOGRADER_SOURCE = "/autograder/source"
_REQUIREMENT_NAME = re.compile(r"^(\s*-\s*)alexnet[-_.]book\b.*$", re.IGNORECASE | re.MULTILINE)


def _build_package_wheel(work_dir: Path) -> Path | None:
    """A wheel of this package as it is here (a teacher's edits included), or None when it is
    not run from a source checkout (then the requirement in the chapters stays as it is)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        return None
    # Built from a copy, so that setuptools' build/ folder does not land in the checkout.
    source = work_dir / "source"
    shutil.copytree(root / "alexnet_book", source / "alexnet_book",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    # Offline with the setuptools at hand; else pip fetches one into an isolated build.
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    _run_command([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation,
                  "-w", str(work_dir), str(source)],
                 "building a wheel of alexnet-book for the autograder")
    (wheel,) = work_dir.glob("alexnet_book-*.whl")
    return wheel


def _run_command(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit code {done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-4000:]}")


def _bundle_package(autograder_zip: Path, wheel: Path) -> None:
    """Put ``wheel`` into the autograder zip and make its environment install that file instead
    of the repository's newest commit, so grading runs the package the assignment was made
    with."""
    temporary = autograder_zip.with_suffix(".tmp")
    with zipfile.ZipFile(autograder_zip) as old, \
            zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "environment.yml":
                data = _REQUIREMENT_NAME.sub(
                    rf"\1alexnet-book @ file://{_AUTOGRADER_SOURCE}/{wheel.name}",
                    data.decode()).encode()
            new.writestr(item, data)
        new.write(wheel, wheel.name)
    temporary.replace(autograder_zip)


def make_assignments(book_dir: str | Path, out_dir: str | Path, *, repo_url: str | None = None,
                     check_solutions: bool = True,
                     chapters: Iterable[str | Path] | None = None,
                     on_done: Callable[[AssignmentResult], None] | None = None,
                     plain_text: bool = True) -> list[AssignmentResult]:
    """Make the student and autograder versions of the assignment chapters of ``book_dir``.

    Each chapter (all masters found by ``find_assignment_chapters``, or ``chapters``: notebook
    paths relative to ``book_dir`` or chapter names) is validated first, all before any is
    built; then ``otter assign`` writes ``out_dir/<name>/{student,autograder}`` (with
    ``check_solutions``, it also grades the master's solutions and fails unless they score full
    marks; that executes the chapter once more), and the student
    version is checked for leaked solutions. With ``repo_url``, the URL of the folder where
    ``out_dir`` is published (see ``tests_base_url``), ``out_dir/<name>/colab/<name>.ipynb``
    is a student version that downloads its checks from there when run in Colab.
    With ``plain_text``, the student (and Colab) notebooks show the numbers, citations and
    terms that the book renders from its MyST roles instead of the roles themselves: the
    chapter's cells before its exercises run once more to compute them (see
    ``alexnet_book.plain_text``). ``on_done`` is called with each chapter's result as soon as
    it is made. A chapter's folders are made afresh: what an earlier run left in
    ``out_dir/<name>`` is replaced.

    When a chapter's requirements name ``alexnet-book`` and this package runs from a source
    checkout, its autograder zip carries a wheel of the package as it is here, and the grading
    environment installs that wheel: grading runs the code the assignment was made with, not
    whatever the repository holds on grading day.
    """
    book_dir, out_dir = Path(book_dir), Path(out_dir)
    masters = _resolve_chapters(book_dir, chapters)
    _check_distinct_names(masters)
    for master in masters:
        validate_master(master)
        if repo_url is not None:
            _check_tests_are_files(master)
    tests_url = tests_base_url(repo_url) if repo_url is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    bibliography = _bibliography(book_dir) if plain_text else None
    with tempfile.TemporaryDirectory() as work_dir:
        wheel = _build_package_wheel(Path(work_dir)) if masters else None
        for master in masters:
            result = _make_one(master, out_dir / master.stem, tests_url, check_solutions,
                               bibliography)
            if wheel is not None and _installs_this_package(master):
                _bundle_package(result.autograder_zip, wheel)
            results.append(result)
            if on_done is not None:
                on_done(result)
    return results


def _bibliography(book_dir: Path) -> dict:
    from .plain_text import read_bibliography

    bib = book_dir / "references.bib"  # the book's _config.yml: bibtex_bibfiles
    return read_bibliography(bib) if bib.is_file() else {}


def _installs_this_package(master: Path) -> bool:
    requirements = _assignment_config(master).get("requirements") or []
    return any(_REQUIREMENT_NAME.match(f"- {requirement}") for requirement in requirements)


# --- publishing --------------------------------------------------------------------------

# What students may see of a chapter's assignment; autograder/ holds the solutions and the
# hidden tests.
_PUBLIC_FOLDERS = ("student", "colab")


def publish_for_students(out_dir: str | Path, site_dir: str | Path) -> list[Path]:
    """Copy the ``student/`` and ``colab/`` folders of every assignment in ``out_dir`` to
    ``site_dir/<chapter>/``, where the Colab notebooks fetch their checks from; never
    ``autograder/``. Returns the chapter folders written under ``site_dir``."""
    out_dir, site_dir = Path(out_dir), Path(site_dir)
    chapters = sorted(path.parent for path in out_dir.glob("*/student"))
    if not chapters:
        raise ValueError(f"{out_dir} holds no assignment (no <chapter>/student folder): make "
                         "them first with make_assignments")
    if site_dir.resolve() == out_dir.resolve():
        raise ValueError(f"publish to another folder than {out_dir}: it holds the autograder "
                         "folders, with the solutions and the hidden tests")
    written = []
    for chapter in chapters:
        for name in _PUBLIC_FOLDERS:
            if (chapter / name).is_dir():
                shutil.copytree(chapter / name, site_dir / chapter.name / name,
                                dirs_exist_ok=True)
        written.append(site_dir / chapter.name)
    return written
