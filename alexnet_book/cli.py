"""The ``alexnet-book`` command.

    alexnet-book summary [--variant paper|torchvision] [--input-size N] [--num-classes N]
                         [--width W]

prints the per-layer table (shapes, parameters, neurons, multiply-adds) of the network.
"""

from __future__ import annotations

import argparse
import sys

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # bad option values: say what and how to fix, no traceback
        print(f"alexnet-book {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
