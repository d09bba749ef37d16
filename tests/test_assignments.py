"""Every chapter with exercises becomes an assignment whose checks can fail and can pass.

One ``make_assignments`` run over the real book is shared by the module. For each chapter the
generated student notebook, untouched, is run once against every test: its public checks (the
ones a student runs, shipped in ``student/tests``) fail and it scores 0.

That the master's solutions get full marks is checked twice elsewhere, so this module does not
execute every chapter a third time: nbval runs each chapter's test cells against its solutions
(every test cell ends by calling its test), and CI's ``alexnet-book assignments`` grades the
solutions the way otter does (``otter assign`` runs them against the generated tests and fails
unless every test passes; ``test_classroom`` shows a wrong solution stops it). The last test
here keeps that CI step from being dropped or told to skip the grading.
"""

import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("otter")

from otter.execute import grade_notebook  # noqa: E402

from alexnet_book import classroom  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = classroom.find_assignment_chapters(BOOK)


def test_the_chapters_with_exercises_are_assignments():
    names = {path.stem for path in CHAPTERS}
    assert "output_size" in names
    assert all("_template" not in path.parts for path in CHAPTERS)


@pytest.fixture(scope="module")
def assignments(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("assignments")
    # check_solutions=False: nbval and CI's `alexnet-book assignments` grade the solutions.
    # plain_text=False: filling the numbers runs each chapter once more; CI's step does it for
    # every chapter, and test_the_student_notebook_reads_with_numbers for one.
    results = classroom.make_assignments(BOOK, out_dir, repo_url="http://127.0.0.1:9/published",
                                         check_solutions=False, plain_text=False)
    return {result.master.stem: result for result in results}


def _questions(result):
    return sorted(path.stem for path in (result.autograder_zip.parent / "tests").glob("*.py"))


def _untouched_outcomes(result, monkeypatch):
    """Run the untouched student notebook once against every test, public and hidden.

    Returns ({question: [passed, ...] for its public cases}, {question: score}).
    """
    notebook = result.student_notebook
    all_tests = result.autograder_zip.parent / "tests"
    monkeypatch.chdir(notebook.parent)  # the notebook's grader.check cells write .OTTER_LOG here
    graded = grade_notebook(str(notebook), tests_glob=sorted(map(str, all_tests.glob("*.py"))),
                            cwd=str(notebook.parent), test_dir=str(all_tests))
    public = {name: [case.passed for case in outcome.test_case_results
                     if not case.test_case.hidden]
              for name, outcome in graded.results.items()}
    scores = {name: outcome.score for name, outcome in graded.results.items()}
    return public, scores


@pytest.mark.parametrize("chapter", [path.stem for path in CHAPTERS])
def test_an_untouched_notebook_fails_its_checks_and_scores_zero(assignments, chapter,
                                                                monkeypatch):
    # One execution of the student's notebook serves both views: the checks a student runs
    # (the public tests, also shipped in student/tests) fail, and grading gives no points.
    result = assignments[chapter]
    public_files = sorted(p.stem for p in (result.student_notebook.parent / "tests").glob("*.py"))
    assert public_files == _questions(result)
    public, scores = _untouched_outcomes(result, monkeypatch)
    assert sorted(public) == _questions(result)
    for question in _questions(result):
        assert public[question], f"{chapter} {question}: no public test a student can run"
        assert not all(public[question]), f"{chapter} {question}: an empty answer passes"
        assert scores[question] == 0, f"{chapter} {question}: an empty answer scores points"


@pytest.mark.parametrize("chapter", [path.stem for path in CHAPTERS])
def test_no_solution_reaches_students(assignments, chapter):
    result = assignments[chapter]
    assert classroom.find_solution_leaks(result.master, result.student_notebook.parent) == []
    student = result.student_notebook.read_text()
    assert "# SOLUTION" not in student and "# HIDDEN" not in student
    colab = result.colab_notebook.read_text()
    assert "google.colab" in colab and "/published/" in colab


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_grading_environment_installs_this_package(path):
    config = classroom._assignment_config(path)
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    requirements = config.get("requirements", [])
    assert any(re.fullmatch(rf"alexnet-book @ git\+{re.escape(repository)}", r)
               for r in requirements), requirements
    assert any(r.startswith("torch") for r in requirements)


def test_cli_reports_a_malformed_chapter_by_name_and_cell(tmp_path, capsys):
    import nbformat

    from alexnet_book.cli import main

    chapter = nbformat.read(str(BOOK / "foundations" / "output_size.ipynb"), as_version=4)
    end_question = next(i for i, c in enumerate(chapter.cells)
                        if c.cell_type == "raw" and c.source.startswith("# END QUESTION"))
    del chapter.cells[end_question]
    (tmp_path / "book").mkdir()
    nbformat.write(chapter, str(tmp_path / "book" / "broken.ipynb"))
    assert main(["assignments", str(tmp_path / "out"), "--book", str(tmp_path / "book")]) == 2
    error = capsys.readouterr().err
    assert "broken.ipynb" in error and "cell index" in error


def test_ci_grades_every_chapters_solutions(monkeypatch, tmp_path):
    import inspect
    import shlex

    from alexnet_book.cli import main

    ci_commands = [shlex.split(line) for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip().startswith("alexnet-book assignments")]
    assert ci_commands, ".ci/run must make the assignments, which grades the solutions"
    for command in ci_commands:
        assert "--chapter" not in command, f"CI must grade every chapter, not {command}"
    # The command grades, and fills the numbers into the prose: it leaves make_assignments'
    # check_solutions and plain_text at their defaults, on.
    parameters = inspect.signature(classroom.make_assignments).parameters
    calls = []
    monkeypatch.setattr(classroom, "make_assignments", lambda *a, **kw: calls.append(kw) or [])
    main(ci_commands[0][1:2] + [str(tmp_path)])
    assert calls
    for option in ("check_solutions", "plain_text"):
        default = parameters[option].default
        assert default is True and calls[0].get(option, default) is True


# The roles the student notebooks' prose may use: alexnet_book.plain_text fills these in.
FILLED_ROLES = {"glue:text", "cite:p", "cite:t", "term"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_prose_uses_only_roles_that_are_filled_in(path):
    import nbformat

    cells = nbformat.read(str(path), as_version=4).cells
    roles = {role for cell in cells if cell.cell_type == "markdown"
             for role in re.findall(r"\{([a-z:-]+)\}`", cell.source)}
    assert roles <= FILLED_ROLES, f"a student notebook would show {roles - FILLED_ROLES} raw"


def test_the_student_notebook_reads_with_numbers(tmp_path):
    import nbformat

    (result,) = classroom.make_assignments(BOOK, tmp_path, check_solutions=False,
                                           chapters=["output_size"],
                                           repo_url="http://127.0.0.1:9/published")
    for notebook in (result.student_notebook, result.colab_notebook):
        prose = " ".join(cell.source for cell in nbformat.read(str(notebook), as_version=4).cells
                         if cell.cell_type == "markdown")
        assert "{glue:" not in prose and "{cite:" not in prose and "{term}" not in prose
        prose = " ".join(prose.split())
        # By hand: (227 - 11) / 4 + 1 = 55, 55 · 55 · 96 = 290,400; the paper's 60,965,224
        # parameters are 61 million.
        assert "conv1 produces 55×55 outputs per kernel" in prose
        assert "55 × 55 × 96 = 290,400 values" in prose
        assert "The paper's network has 61 million parameters" in prose
        assert "(Krizhevsky et al., 2012)" in prose
