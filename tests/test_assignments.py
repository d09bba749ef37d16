"""Every chapter with exercises becomes an assignment whose checks can fail and can pass.

One ``make_assignments`` run over the real book is shared by the module. For each chapter the
generated student notebook is checked as a student would check it (the public tests in
``student/tests``: untouched, they fail) and graded as a teacher would grade it (``otter run``
with the autograder zip: untouched it scores 0; with the master's solutions, the autograder
notebook, full marks, so every check passes).
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
    # check_solutions=False: the grading test below gives the solutions full marks itself.
    results = classroom.make_assignments(BOOK, out_dir, repo_url="http://127.0.0.1:9/published",
                                         check_solutions=False)
    return {result.master.stem: result for result in results}


def _questions(result):
    return sorted(path.stem for path in (result.autograder_zip.parent / "tests").glob("*.py"))


def _public_outcomes(notebook, tests_dir, monkeypatch):
    """{question: [passed, ...]} for the public tests a student runs with grader.check."""
    monkeypatch.chdir(notebook.parent)  # the notebook's grader.check cells write .OTTER_LOG here
    graded = grade_notebook(str(notebook), tests_glob=sorted(map(str, tests_dir.glob("*.py"))),
                            cwd=str(notebook.parent), test_dir=str(tests_dir))
    return {name: [case.passed for case in result.test_case_results]
            for name, result in graded.results.items()}


@pytest.mark.parametrize("chapter", [path.stem for path in CHAPTERS])
def test_student_checks_fail_on_the_untouched_notebook(assignments, chapter, monkeypatch):
    result = assignments[chapter]
    public_tests = result.student_notebook.parent / "tests"
    untouched = _public_outcomes(result.student_notebook, public_tests, monkeypatch)
    assert sorted(untouched) == _questions(result)
    for question in _questions(result):
        assert not all(untouched[question]), f"{chapter} {question}: an empty answer passes"


@pytest.mark.parametrize("chapter", [path.stem for path in CHAPTERS])
def test_otter_run_scores_zero_untouched_and_full_with_solutions(assignments, chapter,
                                                                  tmp_path):
    # Full marks mean every test passed, the public checks among them; each grading executes
    # the whole chapter, so the solved notebook's public checks are not run a third time.
    result = assignments[chapter]
    untouched = classroom.grade_submission(result.autograder_zip, result.student_notebook,
                                           tmp_path / "untouched")
    solved = classroom.grade_submission(result.autograder_zip,
                                        result.autograder_zip.parent / result.master.name,
                                        tmp_path / "solved")
    assert set(untouched) == set(solved) == set(_questions(result))
    assert all(score.score == 0 for score in untouched.values()), untouched
    assert all(score.score == score.max_score > 0 for score in solved.values()), solved


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
