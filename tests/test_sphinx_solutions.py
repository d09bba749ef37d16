"""The book hides otter's solution markers; the code around them stays as written."""

from alexnet_book.sphinx_solutions import strip_solution_markers


def test_markers_are_removed_and_code_kept():
    source = (
        "def smallest(start):\n"
        "    # BEGIN SOLUTION\n"
        "    size = start  # SOLUTION\n"
        "    return size\n"
        "    # END SOLUTION\n"
        "q1 = 23  # SOLUTION NO PROMPT"
    )
    assert strip_solution_markers(source) == (
        "def smallest(start):\n"
        "    size = start\n"
        "    return size\n"
        "q1 = 23"
    )


def test_other_comments_are_left_alone():
    source = "x = 1  # the SOLUTION of the puzzle is 227\n# END of the loop"
    assert strip_solution_markers(source) == source
