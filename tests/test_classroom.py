"""The classroom versions: otter-grader assignments made from a master notebook.

One ``make_assignments`` run on ``fixtures/tiny_master.ipynb`` (three questions: a number, a
function, a multiple choice) is shared by the module; the student version is graded for real
with otter's own tools.
"""

import functools
import http.server
import re
import shlex
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("otter")

import nbformat  # noqa: E402  (otter brings nbformat; skip the module first when it is absent)

from alexnet_book import classroom  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_master.ipynb"
SOLUTION_TEXTS = ["(size - kernel) // stride + 1", "return (size + 2 * padding - kernel)",
                  'q3_answer = "b"']
HIDDEN_TESTS = ["test_q1_value", "test_q2_padding", "test_q3_value"]
FULL_MARKS = {"q1": 1.0, "q2": 2.0, "q3": 1.0}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A folder served over HTTP, standing in for where the assignments are published."""
    folder = tmp_path_factory.mktemp("published")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def made(tmp_path_factory, published):
    book = tmp_path_factory.mktemp("book")
    shutil.copy(FIXTURE, book / FIXTURE.name)
    site_dir, url = published
    out_dir = tmp_path_factory.mktemp("assignments")  # the teacher's: never published
    (result,) = classroom.make_assignments(book, out_dir, repo_url=url)
    classroom.publish_for_students(out_dir, site_dir)
    return result


def _edited_fixture(tmp_path, edit, name="tiny_master.ipynb"):
    nb = nbformat.read(str(FIXTURE), as_version=4)
    edit(nb.cells)
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def _cell_index(path, text):
    cells = nbformat.read(str(path), as_version=4).cells
    (index,) = [i for i, cell in enumerate(cells) if text in cell.source]
    return index


# --- finding and validating masters --------------------------------------------------------


def test_find_assignment_chapters_finds_masters_only(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "chapter.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Plain")]),
                   str(tmp_path / "plain.ipynb"))
    (tmp_path / "_build").mkdir()
    shutil.copy(FIXTURE, tmp_path / "_build" / "chapter.ipynb")
    assert classroom.find_assignment_chapters(tmp_path) == [tmp_path / "chapter.ipynb"]


def test_fixture_master_is_valid():
    classroom.validate_master(FIXTURE)


def test_fenced_otter_markdown_cells_are_markers_too(tmp_path):
    def fence_raw_cells(cells):
        for index, cell in enumerate(cells):
            if cell.cell_type == "raw":
                _fence(index, tags=["remove-cell"])(cells)

    classroom.validate_master(_edited_fixture(tmp_path, fence_raw_cells))


def _delete(*indices):
    def edit(cells):
        for index in sorted(indices, reverse=True):
            del cells[index]
    return edit


def _set_source(index, source):
    def edit(cells):
        cells[index].source = source
    return edit


def _insert_raw(index, source):
    def edit(cells):
        cells.insert(index, nbformat.v4.new_raw_cell(source))
    return edit


def _append_to(index, text):
    def edit(cells):
        cells[index].source += text
    return edit


def _set_tags(index, tags):
    def edit(cells):
        cells[index].metadata["tags"] = tags
    return edit


def _fence(index, tags):
    def edit(cells):
        cells[index] = nbformat.v4.new_markdown_cell(f"```otter\n{cells[index].source}\n```",
                                                     metadata={"tags": tags})
    return edit


BEGIN, ALL = "# BEGIN QUESTION", "all_or_nothing: true"
# Fixture cells: 0 config, 3 BEGIN QUESTION q1, 5 BEGIN SOLUTION, 6 answer, 7 END SOLUTION,
# 8 BEGIN TESTS, 9-10 tests, 11 END TESTS, 12 END QUESTION, 13 BEGIN QUESTION q2, ..., 32 END
# QUESTION q3.
MALFORMED = {
    "question never closed": (_delete(32), 23, "never closed"),
    "solution outside a question": (_insert_raw(2, "# BEGIN SOLUTION"), 2, "outside a question"),
    "solution never closed": (_delete(7), 7, "inside the solution block opened at cell index 5"),
    "end without begin": (_delete(8), 10, "# END TESTS without a matching # BEGIN TESTS"),
    "question inside a question": (_delete(12), 12, "inside question 'q1'"),
    "question without tests": (_delete(8, 9, 10, 11), 3, "question 'q1' has no tests"),
    "question without name": (_set_source(3, f"{BEGIN}\npoints: 1\n{ALL}"), 3, "no 'name'"),
    "question without points": (_set_source(3, f"{BEGIN}\nname: q1\n{ALL}"), 3, "no 'points'"),
    "points split over the tests": (_set_source(3, f"{BEGIN}\nname: q1\npoints: 1"), 3, ALL),
    "marker outside a solution block": (_delete(5, 7), 5, "solution marker outside"),
    "solution cell without markers": (_set_source(6, "conv1_side = 55"), 6, "no '# SOLUTION'"),
    "lower-case marker": (_set_source(6, "conv1_side = 55  # solution"), 6, "upper-case"),
    "no config": (_delete(0), 0, "no # ASSIGNMENT CONFIG"),
    "ok-format tests": (_set_source(0, "# ASSIGNMENT CONFIG\nname: t"), 0, "ok_format: false"),
    "two statements in a test": (_append_to(9, "\nassert True"), 9, "one test function"),
    "test cell shown in the book": (_set_tags(9, []), 9, "tag this cell 'remove-cell'"),
    "solution not folded in the book": (_set_tags(6, []), 6, "tag this cell 'hide-input'"),
    "fenced marker shown in the book": (_fence(3, tags=[]), 3, "tag this cell 'remove-cell'"),
    "fence inside prose": (_append_to(1, "\n\n```otter\n# BEGIN QUESTION\nname: q0\n```"), 1,
                           "mixes prose"),
}


@pytest.mark.parametrize("edit, index, problem", MALFORMED.values(), ids=MALFORMED.keys())
def test_validate_master_names_the_broken_cell(tmp_path, edit, index, problem):
    path = _edited_fixture(tmp_path, edit)
    with pytest.raises(ValueError, match=f"cell index {index}: .*{problem}") as error:
        classroom.validate_master(path)
    assert str(path) in str(error.value)


def test_make_assignments_validates_before_running_otter(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _edited_fixture(book, _delete(5, 7))
    with pytest.raises(ValueError, match="solution marker outside"):
        classroom.make_assignments(book, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_colab_variant_needs_test_files(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    config = "# ASSIGNMENT CONFIG\nname: tiny_master\ntests:\n  ok_format: false"
    _edited_fixture(book, _set_source(0, config))
    with pytest.raises(ValueError, match="files: true"):
        classroom.make_assignments(book, tmp_path / "out", repo_url="https://github.com/o/r")


def test_a_wrong_solution_stops_otter_assign(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    _edited_fixture(book, _set_source(6, "conv1_side = 54  # SOLUTION"))
    with pytest.raises(RuntimeError, match="otter assign"):
        classroom.make_assignments(book, tmp_path / "out")


def test_tests_base_url():
    repo = "https://github.com/alexnet-book/alexnet-layer-by-layer"
    raw = "https://raw.githubusercontent.com/alexnet-book/alexnet-layer-by-layer"
    assert classroom.tests_base_url(repo) == f"{raw}/main"
    published = f"{repo}/tree/gh-pages/assignments"
    assert classroom.tests_base_url(published) == f"{raw}/gh-pages/assignments"
    assert classroom.tests_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="http"):
        classroom.tests_base_url("github.com/o/r")


# --- what otter assign made -----------------------------------------------------------------


def test_student_and_autograder_folders(made):
    student_dir = made.student_notebook.parent
    assert made.student_notebook.name == FIXTURE.name
    tests = sorted(p.name for p in (student_dir / "tests").glob("*.py"))
    assert tests == ["q1.py", "q2.py", "q3.py"]
    assert made.autograder_zip.parent.name == "autograder"
    with zipfile.ZipFile(made.autograder_zip) as archive:
        environment = archive.read("environment.yml").decode()
        assert sorted(n for n in archive.namelist() if n.startswith("tests/")) == [
            "tests/q1.py", "tests/q2.py", "tests/q3.py"]
    assert "- numpy" in environment  # the config's `requirements` reach the grading image


def test_student_notebook_holds_no_solution(made):
    student_dir = made.student_notebook.parent
    assert classroom.find_solution_leaks(made.master, student_dir) == []
    texts = [made.student_notebook.read_text()]
    texts += [p.read_text() for p in (student_dir / "tests").glob("*.py")]
    for secret in SOLUTION_TEXTS + HIDDEN_TESTS + ["SOLUTION"]:
        assert not any(secret in text for text in texts), secret
    assert made.student_notebook.read_text().count("...") >= 3


def test_leak_check_finds_solutions_in_a_student_folder(made, tmp_path):
    autograder_dir = made.autograder_zip.parent
    shutil.copy(autograder_dir / FIXTURE.name, tmp_path / FIXTURE.name)
    shutil.copytree(autograder_dir / "tests", tmp_path / "tests")
    leaks = "\n".join(classroom.find_solution_leaks(made.master, tmp_path))
    answer = "conv1_side = (size - kernel) // stride + 1  # SOLUTION"
    assert f"solution marker left in {answer!r}" in leaks
    assert "solution line 'return (size + 2 * padding - kernel) // stride + 1'" in leaks
    assert all(f"hidden test {name!r}" in leaks for name in HIDDEN_TESTS)


def _public_check_score(notebook, tests_dir):
    from otter.execute import grade_notebook

    tests = sorted(str(p) for p in Path(tests_dir).glob("*.py"))
    results = grade_notebook(str(notebook), tests_glob=tests, test_dir=str(tests_dir))
    return results.total, results.possible


def test_public_checks_fail_on_the_student_version_and_pass_on_the_master(made, monkeypatch):
    student_dir = made.student_notebook.parent
    monkeypatch.chdir(student_dir)  # otter's init cell opens the notebook by its name
    assert _public_check_score(made.student_notebook, student_dir / "tests") == (0, 4)
    assert _public_check_score(made.master, student_dir / "tests") == (4, 4)


# --- grading with otter run -----------------------------------------------------------------


def _scores(made, submission, out_dir):
    graded = classroom.grade_submission(made.autograder_zip, submission, out_dir)
    assert {name: s.max_score for name, s in graded.items()} == FULL_MARKS
    return {name: s.score for name, s in graded.items()}


def test_otter_run_gives_full_marks_to_the_solutions(made, tmp_path):
    solved = made.autograder_zip.parent / FIXTURE.name  # the master, solutions in place
    assert _scores(made, solved, tmp_path) == FULL_MARKS


def test_otter_run_gives_zero_to_the_untouched_student_version(made, tmp_path):
    assert _scores(made, made.student_notebook, tmp_path) == {"q1": 0, "q2": 0, "q3": 0}


def test_a_wrong_answer_that_passes_the_public_checks_scores_zero(made, tmp_path):
    # Without all_or_nothing, otter splits a question's points over its public and hidden
    # tests, and these answers of the right form but the wrong value would earn half.
    nb = nbformat.read(str(made.autograder_zip.parent / FIXTURE.name), as_version=4)
    for cell in nb.cells:
        cell.source = (cell.source.replace("conv1_side = (size - kernel) // stride + 1",
                                           "conv1_side = 54")
                       .replace('q3_answer = "b"', 'q3_answer = "a"'))
    submission = tmp_path / "submission.ipynb"
    nbformat.write(nb, str(submission))
    assert _scores(made, submission, tmp_path / "out") == {"q1": 0.0, "q2": 2.0, "q3": 0.0}


def test_a_crashing_cell_costs_only_its_question(made, tmp_path):
    nb = nbformat.read(str(made.autograder_zip.parent / FIXTURE.name), as_version=4)
    (answer,) = [cell for cell in nb.cells if cell.source.startswith("def output_side")]
    answer.source = "raise RuntimeError('my code crashed')"
    submission = tmp_path / "submission.ipynb"
    nbformat.write(nb, str(submission))
    assert _scores(made, submission, tmp_path / "out") == {"q1": 1.0, "q2": 0.0, "q3": 1.0}


# --- publishing ----------------------------------------------------------------------------


def test_only_what_students_may_see_is_published(made, published):
    site_dir, _ = published
    files = [p for p in site_dir.rglob("*") if p.is_file()]
    assert {p.relative_to(site_dir).parts[1] for p in files} == {"student", "colab"}
    assert (site_dir / "tiny_master" / "student" / "tests" / "q1.py").is_file()
    published_text = "\n".join(p.read_text(errors="replace") for p in files)
    for secret in SOLUTION_TEXTS + HIDDEN_TESTS:
        assert secret not in published_text
    assert not any(p.suffix == ".zip" for p in files)


def test_publishing_into_the_assignments_folder_itself_is_refused(made):
    out_dir = made.student_notebook.parents[2]
    with pytest.raises(ValueError, match="another folder"):
        classroom.publish_for_students(out_dir, out_dir)
    with pytest.raises(ValueError, match="no assignment"):
        classroom.publish_for_students(made.student_notebook.parent, out_dir / "site")


def test_the_command_publishes_with_publish(tmp_path, capsys):
    from alexnet_book.cli import main

    (tmp_path / "book").mkdir()
    shutil.copy(FIXTURE, tmp_path / "book" / FIXTURE.name)
    out_dir, site_dir = tmp_path / "assignments", tmp_path / "site"
    assert main(["assignments", str(out_dir), "--book", str(tmp_path / "book"), "--tests-url",
                 "http://127.0.0.1:9/site", "--publish", str(site_dir)]) == 0
    assert f"copied the student/ and colab/ folders to {site_dir}" in capsys.readouterr().out
    assert sorted(p.name for p in (site_dir / "tiny_master").iterdir()) == ["colab", "student"]
    assert (out_dir / "tiny_master" / "autograder").is_dir()


def test_the_command_takes_a_chapter_path_from_here_and_says_what_it_replaced(
        tmp_path, capsys, monkeypatch):
    from alexnet_book.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "book").mkdir()
    shutil.copy(FIXTURE, tmp_path / "book" / FIXTURE.name)
    command = ["assignments", "out", "--chapter", "book/tiny_master.ipynb", "--tests-url",
               "http://127.0.0.1:9/site"]
    assert main(command) == 0
    first = capsys.readouterr().out
    assert "tiny_master: student out/tiny_master/student/tiny_master.ipynb" in first
    assert main(command) == 0
    assert "tiny_master (replaced the earlier one): student" in capsys.readouterr().out


def test_the_command_run_outside_the_repository_says_how_to_fix_it(tmp_path, capsys,
                                                                   monkeypatch):
    from alexnet_book.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["assignments", "out"]) == 2
    assert "--book book is not a folder: run the command from the repository's root" in \
        capsys.readouterr().err


# --- the prose students read -----------------------------------------------------------------


def test_a_number_the_chapter_never_glued_stops_with_the_chapter_named(tmp_path):
    def refer_to_nothing(cells):
        cells[1].source += "\n\nconv1 is {glue:text}`never_glued` pixels wide."

    book = tmp_path / "book"
    book.mkdir()
    _edited_fixture(book, refer_to_nothing)
    with pytest.raises(RuntimeError, match=r"could not fill the numbers of .*tiny_master.ipynb"
                                           r".*never_glued"):
        classroom.make_assignments(book, tmp_path / "out", check_solutions=False)


def test_the_student_notebook_shows_the_glued_number(tmp_path):
    def glue_a_number(cells):
        cells[2].source += "\nfrom myst_nb import glue\nglue('side', (size - kernel) // stride + 1)"
        cells[1].source += "\n\nconv1 is {glue:text}`side` positions wide."

    book = tmp_path / "book"
    book.mkdir()
    _edited_fixture(book, glue_a_number)
    (result,) = classroom.make_assignments(book, tmp_path / "out", check_solutions=False)
    prose = nbformat.read(str(result.student_notebook), as_version=4).cells[1].source
    assert prose.endswith("conv1 is 55 positions wide.")  # (227 - 11) // 4 + 1, by hand


# --- the package the autograder installs ----------------------------------------------------


def test_the_autograder_installs_the_package_it_was_made_with(tmp_path):
    import alexnet_book

    def require_the_package(cells):
        cells[0].source = cells[0].source.replace(
            "  - numpy", "  - numpy\n  - alexnet-book @ git+https://example.invalid/repo")

    book = tmp_path / "book"
    book.mkdir()
    _edited_fixture(book, require_the_package)
    (result,) = classroom.make_assignments(book, tmp_path / "out", check_solutions=False)
    with zipfile.ZipFile(result.autograder_zip) as autograder:
        environment = autograder.read("environment.yml").decode()
        [wheel_name] = [n for n in autograder.namelist() if n.endswith(".whl")]
        wheel_bytes = autograder.read(wheel_name)
    assert f"- alexnet-book @ file:///autograder/source/{wheel_name}" in environment
    assert "example.invalid" not in environment
    (tmp_path / "wheel.whl").write_bytes(wheel_bytes)
    with zipfile.ZipFile(tmp_path / "wheel.whl") as wheel:
        packaged = wheel.read("alexnet_book/classroom.py").decode()
    assert packaged == Path(alexnet_book.__file__).with_name("classroom.py").read_text()


def test_an_autograder_without_the_package_gets_no_wheel(made):
    with zipfile.ZipFile(made.autograder_zip) as autograder:
        assert not any(n.endswith(".whl") for n in autograder.namelist())


# --- the teaching page's commands -----------------------------------------------------------

TEACHING_PAGE = Path(__file__).parents[1] / "book" / "appendix" / "teaching.md"


def _page_commands(*programs):
    blocks = re.findall(r"```bash\n(.*?)```", TEACHING_PAGE.read_text(), flags=re.S)
    return [shlex.split(line.strip()) for block in blocks for line in block.splitlines()
            if line.strip().split(" ")[0] in programs]


def test_the_teaching_pages_otter_commands_are_ones_otter_accepts(tmp_path, monkeypatch):
    from otter.cli import cli

    monkeypatch.chdir(tmp_path)
    commands = _page_commands("otter", "mkdir")
    assert {words[1] for words in commands if words[0] == "otter"} == {"run", "grade"}
    for words in commands:
        if words[0] == "mkdir":  # the page's own mkdir -p, as a teacher runs it
            (tmp_path / words[-1]).mkdir(parents=True, exist_ok=True)
            continue
        command = cli.commands[words[1]]
        for word in words[2:]:  # the files and folders the command names, as a teacher has them
            if "/" in word or word.endswith(".ipynb"):
                path = tmp_path / word  # a "*" is a glob to the shell and a name to the test
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir(exist_ok=True) if word.endswith("/") else path.touch()
        params = command.make_context(words[1], words[2:]).params  # unknown options fail here
        if words[1] == "grade":
            assert params["name"], "otter grade stops without -n (the Docker image's name)"


def test_the_teaching_pages_own_commands_parse():
    from alexnet_book.cli import _parser

    commands = _page_commands("alexnet-book")
    assert commands
    for words in commands:
        assert _parser().parse_args(words[1:]).command == "assignments"


# --- the Colab variant ----------------------------------------------------------------------


def test_colab_variant_downloads_its_checks(made, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(str(made.colab_notebook), as_version=4)
    assert not any(secret in cell.source for cell in nb.cells for secret in SOLUTION_TEXTS)
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"
    nb.cells.insert(0, nbformat.v4.new_code_cell(fake_colab))
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sorted(p.name for p in (tmp_path / "tests").glob("*.py")) == ["q1.py", "q2.py", "q3.py"]
    (check_q1,) = [cell for cell in nb.cells if cell.source == 'grader.check("q1")']
    output = str(check_q1.outputs)
    assert "conv1_side should be a whole number" in output
