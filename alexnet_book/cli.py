"""The ``alexnet-book`` command.

    alexnet-book summary [--variant paper|torchvision] [--input-size N] [--num-classes N]
                         [--width W]

prints the per-layer table (shapes, parameters, neurons, multiply-adds) of the network.

    alexnet-book assignments OUT_DIR [--book book] [--chapter NAME ...] [--tests-url URL]

makes the otter-grader assignments of every chapter that has exercises (see
``alexnet_book.classroom``): OUT_DIR/<chapter>/student, .../autograder and .../colab.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .model import VARIANTS, AlexNet
from .shapes import layer_table

__all__ = ["main"]


def _summary(args: argparse.Namespace) -> int:
    options = dict(num_classes=args.num_classes, width=args.width, init="pytorch")
    if args.input_size is not None:
        options["input_size"] = args.input_size
    model = AlexNet(args.variant, **options)
    print(layer_table(model))
    return 0


def _pages_url(book_dir: Path) -> str | None:
    """Where GitHub Pages serves the repository named in the book's _config.yml, if any."""
    config = book_dir.resolve().parent / "_config.yml"
    if not config.is_file():
        return None
    match = re.search(r"https://github\.com/([^/\s]+)/([^/\s]+?)(?:\.git)?/?\s*$",
                      config.read_text(), flags=re.M)
    return f"https://{match[1]}.github.io/{match[2]}" if match else None


def _assignments(args: argparse.Namespace) -> int:
    from .classroom import make_assignments  # needs the "classroom" extra (otter-grader)

    book = Path(args.book)
    tests_url = args.tests_url
    if tests_url is None and (pages := _pages_url(book)):
        tests_url = f"{pages}/assignments"
    results = make_assignments(book, args.out_dir, repo_url=tests_url, chapters=args.chapter)
    if not results:
        print(f"no chapter under {book} has an # ASSIGNMENT CONFIG cell", file=sys.stderr)
        return 1
    for result in results:
        print(f"{result.master.stem}: student {result.student_notebook}; "
              f"autograder {result.autograder_zip}"
              + (f"; Colab {result.colab_notebook}" if result.colab_notebook else ""))
    if tests_url:
        print(f"Colab notebooks fetch their checks from {tests_url}/<chapter>/student/tests: "
              f"publish {args.out_dir} there.")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alexnet-book",
                                     description="AlexNet, layer by layer: the book's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="print the per-layer table of AlexNet")
    summary.add_argument("--variant", choices=sorted(VARIANTS), default="paper")
    summary.add_argument("--input-size", type=_positive_int, default=None,
                         help="square input size (default: 227 paper, 224 torchvision)")
    summary.add_argument("--num-classes", type=_positive_int, default=1000)
    summary.add_argument("--width", type=float, default=1.0,
                         help="multiplies every layer's kernel count (e.g. 0.125)")
    summary.set_defaults(run=_summary)

    assignments = commands.add_parser(
        "assignments", help="make otter-grader assignments from the chapters' exercises")
    assignments.add_argument("out_dir", metavar="OUT_DIR", type=Path,
                             help="where to write <chapter>/{student,autograder,colab}")
    assignments.add_argument("--book", default="book", help="folder of the chapters (book)")
    assignments.add_argument("--chapter", action="append",
                             help="only this chapter (its name, e.g. output_size); repeatable")
    assignments.add_argument("--tests-url", default=None,
                             help="URL where OUT_DIR will be published, from which the Colab "
                                  "notebooks fetch their checks (default: the GitHub Pages site "
                                  "of the repository in _config.yml, /assignments)")
    assignments.set_defaults(run=_assignments)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, RuntimeError) as error:  # say what and how to fix, no traceback
        print(f"alexnet-book {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
