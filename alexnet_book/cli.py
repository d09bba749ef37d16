"""The ``alexnet-book`` command.

    alexnet-book summary [--variant paper|torchvision] [--input-size N] [--num-classes N]
                         [--width W]

prints the per-layer table (shapes, parameters, neurons, multiply-adds) of the network.

    alexnet-book train [--data digits|NAME|imagefolder:PATH] [--variant paper|torchvision]
                       [--width W] [--epochs N] [--batch-size N] [--lr LR] [--amp [MODE]]
                       [--compile] [--channels-last] [--space-to-depth] [--checkpoint-dir DIR]
                       [--resume PATH] ...

trains AlexNet with the paper's recipe (see ``alexnet_book.train``) and prints the history;
under ``torchrun --nproc_per_node=N`` it trains on N processes with DistributedDataParallel.

    alexnet-book evaluate CHECKPOINT [--data digits|NAME|imagefolder:PATH] [--ten-crop] ...

rebuilds the network a ``train`` run saved in CHECKPOINT and prints its top-1 and top-5 error
on the dataset's validation set: one view of each image (the centre crop of a photograph), or
with ``--ten-crop`` the paper's test (the softmax averaged over ten crops).

    alexnet-book assignments OUT_DIR [--book book] [--chapter NAME ...] [--tests-url URL]
                             [--publish DIR]

makes the otter-grader assignments of every chapter that has exercises (see
``alexnet_book.classroom``): OUT_DIR/<chapter>/student, .../autograder and .../colab; with
``--publish DIR`` it copies only what students may see (student/ and colab/) to DIR.

    alexnet-book pdf [--book .] [--output PATH] [--build-dir DIR]

builds the whole book as one HTML page (``jupyter-book build --builder singlehtml -W``) and prints
it to a PDF with the system's Chromium (see ``alexnet_book.pdf``; needs the ``browser`` extra).

    alexnet-book check-links [LIST]

asks every address in the book's list of external links (``book/external_links.txt``) and
reports the ones that do not answer; it needs the network (see ``alexnet_book.links``).
"""

from __future__ import annotations

import argparse
import os
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
    # needs the "classroom" extra (otter-grader)
    from .classroom import make_assignments, publish_for_students

    book = Path(args.book)
    if not book.is_dir():
        raise ValueError(f"--book {book} is not a folder: run the command from the repository's "
                         "root, or pass --book PATH with the folder that holds the chapters")
    tests_url = args.tests_url
    if tests_url is None and (pages := _pages_url(book)):
        tests_url = f"{pages}/assignments"
    earlier = {path.parent.name for path in Path(args.out_dir).glob("*/autograder")}
    print(f"making assignments in {args.out_dir}: otter runs each chapter's notebook, so each "
          "takes a few seconds to a minute", flush=True)

    def report(result) -> None:  # as each chapter is made: each executes its notebook
        again = " (replaced the earlier one)" if result.master.stem in earlier else ""
        print(f"{result.master.stem}{again}: student {result.student_notebook}; "
              f"autograder {result.autograder_zip}"
              + (f"; Colab {result.colab_notebook}" if result.colab_notebook else ""),
              flush=True)

    results = make_assignments(book, args.out_dir, repo_url=tests_url, chapters=args.chapter,
                               on_done=report)
    if not results:
        print(f"no chapter under {book} has an # ASSIGNMENT CONFIG cell", file=sys.stderr)
        return 1
    if args.publish:
        publish_for_students(args.out_dir, args.publish)
        print(f"copied the student/ and colab/ folders to {args.publish}; autograder/ (the "
              "solutions and hidden tests) stays in " + str(args.out_dir))
    if tests_url:
        print(f"Colab notebooks fetch their checks from {tests_url}/<chapter>/student/tests: "
              "publish the student/ and colab/ folders there (--publish DIR copies just those), "
              "never autograder/.")
    return 0


def _pdf(args: argparse.Namespace) -> int:
    from .pdf import build_pdf  # needs the "browser" extra (playwright) and a Chromium

    pdf = build_pdf(args.book, args.output, build_dir=args.build_dir)
    print(f"PDF of the book: {pdf} ({pdf.stat().st_size:,} bytes)")
    return 0


def _check_links(args: argparse.Namespace) -> int:
    from .links import check_links, read_link_list

    urls = read_link_list(args.list)
    problems = check_links(urls, timeout=args.timeout)
    for url, problem in problems.items():
        print(f"{url}: {problem}", file=sys.stderr)
    print(f"{len(urls) - len(problems)} of {len(urls)} external links answered")
    return 1 if problems else 0


def _default_checkpoint_dir(data: str, variant: str) -> Path:
    """runs/<data>-<variant>; an image folder is named by its last path part."""
    name = data
    if data.startswith("imagefolder:"):
        name = "imagefolder-" + (Path(data.partition(":")[2]).name or "root")
    return Path("runs") / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + f"-{variant}")


def _train(args: argparse.Namespace) -> int:
    import torch

    from .data import load_data  # imported here: `summary` needs no datasets
    from .train import CHECKPOINT_NAME, TrainConfig, train

    checkpoint_dir = args.checkpoint_dir or _default_checkpoint_dir(args.data, args.variant)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, amp=args.amp, compile=args.compile,
        channels_last=args.channels_last, space_to_depth=args.space_to_depth,
        device=args.device, seed=args.seed,
        checkpoint_dir=checkpoint_dir, progress=not args.no_progress, num_workers=args.workers)
    bundle = load_data(args.data, root=args.root, image_size=args.image_size,
                       download=args.download, pca_lighting=args.pca_lighting)
    torch.manual_seed(args.seed)  # every process builds the same initial weights
    model = AlexNet(args.variant, num_classes=bundle.num_classes, in_channels=bundle.in_channels,
                    input_size=bundle.image_size, width=args.width, init=args.init)
    # CUDA only (the CPU keeps exact fp32): fixed input sizes let cuDNN pick its fastest
    # kernels, and fp32 matrix products may use TF32 tensor cores, as convolutions already do.
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    history = train(model, bundle.train, bundle.val, config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process reports
        print(f"{model.title} on {bundle.name}: {len(bundle.train):,} training and "
              f"{len(bundle.val):,} validation images, {bundle.num_classes} classes")
        print(history)
        if history.best is not None:
            best = history.best
            print(f"best: epoch {best.epoch}, validation top-1 error "
                  f"{100 * best.val_error:.2f}%")
        print(f"checkpoint: {Path(checkpoint_dir) / CHECKPOINT_NAME}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .data import load_data, ten_crop_val_set
    from .train import evaluate, load_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    if checkpoint.get("model_args") is None:
        raise ValueError(f"{args.checkpoint} does not say how to build its network (no "
                         "model_args: it is not an AlexNet, or train() wrote it before "
                         "checkpoints kept them); build the model, load checkpoint['model'] "
                         "and call alexnet_book.train.evaluate")
    model = AlexNet(**checkpoint["model_args"])
    model.load_state_dict(checkpoint["model"])
    bundle = load_data(args.data, root=args.root, image_size=model.input_size,
                       channels=model.in_channels if args.data == "digits" else None,
                       augment=False)
    if (bundle.num_classes, bundle.in_channels) != (model.num_classes, model.in_channels):
        raise ValueError(f"{args.checkpoint} holds a network for {model.num_classes} classes "
                         f"of {model.in_channels}-channel images, but {bundle.name} has "
                         f"{bundle.num_classes} classes of {bundle.in_channels}-channel images: "
                         "pass the --data it was trained on")
    dataset = ten_crop_val_set(bundle) if args.ten_crop else bundle.val
    result = evaluate(model, dataset, batch_size=args.batch_size, device=args.device,
                      amp=args.amp, num_workers=args.workers)
    print(f"{model.title}, {checkpoint['epoch']} epochs ({args.checkpoint}), on the "
          f"{bundle.name} validation set: {result}")
    return 0


def _add_device_options(parser) -> None:
    """--device and --amp, the same for train and evaluate."""
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--amp", nargs="?", const="auto", default="auto",
                        choices=["auto", "bf16", "fp16", "off"],
                        help="mixed precision (default auto: bf16 on recent GPUs, off on CPU)")


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="top-1 and top-5 error of a trained checkpoint, as the paper tested",
        description="Rebuild the network that `alexnet-book train` saved in CHECKPOINT and "
                    "report its top-1 and top-5 error on the validation set of --data: one "
                    "view of each image (the centre crop of a photograph), or with --ten-crop "
                    "the softmax averaged over the ten crops of the paper's Section 4.1.")
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", type=Path,
                          help="a last.pt written by alexnet-book train")
    evaluate.add_argument("--data", default="digits",
                          help="the dataset it was trained on (default digits)")
    evaluate.add_argument("--root", default="data", help="where datasets live (default data)")
    evaluate.add_argument("--ten-crop", action="store_true",
                          help="the paper's test: four corners, centre and their mirror "
                               "images, softmax averaged (photographs only)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=128,
                          help="images per batch (ten crops each with --ten-crop)")
    _add_device_options(evaluate)
    evaluate.add_argument("--workers", type=_whole, default=None,
                          help="DataLoader worker processes (default: chosen for this machine)")
    evaluate.set_defaults(run=_evaluate)


def _whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number ≥ {minimum}, got {value}")
        return value
    return parse


_positive_int, _whole = _whole_number(1), _whole_number(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _add_train_command(commands) -> None:
    train = commands.add_parser(
        "train", help="train AlexNet with the paper's recipe (SGD, lr drops on plateaus)",
        description="Train AlexNet with the paper's recipe (Section 5). Run it under "
                    "`torchrun --nproc_per_node=N` to train on N GPUs; --batch-size is the "
                    "global batch.")
    data = train.add_argument_group("data")
    data.add_argument("--data", default="digits",
                      help="dataset name (default digits, offline), e.g. cifar10, imagenette, "
                           "or imagefolder:PATH (see alexnet_book.data.DATASET_NAMES)")
    data.add_argument("--root", default="data", help="where datasets live (default data)")
    data.add_argument("--download", action="store_true",
                      help="download the dataset into --root if it is missing")
    data.add_argument("--image-size", type=_positive_int, default=None,
                      help="square input size (default: the dataset's)")
    data.add_argument("--pca-lighting", action="store_true",
                      help="the paper's PCA colour augmentation (RGB data sets)")
    data.add_argument("--workers", type=_whole, default=None,
                      help="DataLoader worker processes (default: chosen for this machine)")
    net = train.add_argument_group("network")
    net.add_argument("--variant", choices=sorted(VARIANTS), default="paper")
    net.add_argument("--init", choices=["paper", "kaiming", "pytorch"], default=None,
                     help="weight initialisation (default: the variant's; kaiming trains "
                          "narrow networks that the paper's N(0, 0.01) leaves at chance)")
    net.add_argument("--width", type=_positive_float, default=1.0,
                     help="multiplies every layer's kernel count (e.g. 0.125 for a CPU)")
    recipe = train.add_argument_group("recipe (defaults: the paper's)")
    recipe.add_argument("--epochs", type=_positive_int, default=90)
    recipe.add_argument("--batch-size", type=_positive_int, default=128,
                        help="global batch, split over the processes (default 128)")
    recipe.add_argument("--lr", type=_positive_float, default=0.01)
    recipe.add_argument("--warmup-epochs", type=_whole, default=0,
                        help="linear warm-up epochs (not in the paper; default 0)")
    recipe.add_argument("--seed", type=_whole, default=0)
    speed = train.add_argument_group("speed")
    _add_device_options(speed)
    speed.add_argument("--compile", action="store_true", help="torch.compile the network")
    speed.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    speed.add_argument("--space-to-depth", action="store_true",
                       help="conv1 as a stride-1 convolution over 4×4 blocks of the image: the "
                            "same results, faster on GPUs, slower on CPUs")
    run = train.add_argument_group("checkpoints and output")
    run.add_argument("--checkpoint-dir", type=Path, default=None,
                     help="where last.pt is written each epoch (default runs/<data>-<variant>)")
    run.add_argument("--resume", type=Path, default=None, metavar="PATH",
                     help="continue from a last.pt, up to --epochs in all")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)


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
                             help="only this chapter: its name (e.g. output_size) or its "
                                  "notebook's path; repeatable")
    assignments.add_argument("--tests-url", default=None,
                             help="URL where the students' folders (see --publish) will be "
                                  "served, from which the Colab notebooks fetch their checks "
                                  "(default: the GitHub Pages site of the repository in "
                                  "_config.yml, /assignments)")
    assignments.add_argument("--publish", type=Path, default=None, metavar="DIR",
                             help="also copy what students may see (each chapter's student/ "
                                  "and colab/, never autograder/) to DIR, the folder that "
                                  "--tests-url serves")
    assignments.set_defaults(run=_assignments)

    pdf = commands.add_parser(
        "pdf", help="build the whole book as a PDF (single-page HTML printed by Chromium)",
        description="Build the book with `jupyter-book build BOOK --builder singlehtml -W` and "
                    "print it to A4 with the system's Chromium ($CHROMIUM, else chromium on "
                    "the PATH) through Playwright (the `browser` extra).")
    pdf.add_argument("--book", type=Path, default=Path("."),
                     help="the book's folder, with _config.yml and _toc.yml (default .)")
    pdf.add_argument("--output", type=Path, default=None, metavar="PATH",
                     help="the PDF to write (default BUILD_DIR/_build/pdf/book.pdf)")
    pdf.add_argument("--build-dir", type=Path, default=None, metavar="DIR",
                     help="jupyter-book's --path-output: it builds into DIR/_build (default: "
                          "the book's folder, sharing the HTML build's execution cache)")
    pdf.set_defaults(run=_pdf)

    links = commands.add_parser(
        "check-links", help="check the book's external links (needs the network)")
    links.add_argument("list", nargs="?", type=Path, default=Path("book/external_links.txt"),
                       metavar="LIST", help="one address per line (default "
                                            "book/external_links.txt)")
    links.add_argument("--timeout", type=_positive_float, default=15.0,
                       help="seconds to wait for each address (default 15)")
    links.set_defaults(run=_check_links)
    _add_train_command(commands)
    _add_evaluate_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    # Say what and how to fix, in one line, no traceback. TrainingDiverged is a RuntimeError.
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        message = " ".join(str(error).split())
        print(f"alexnet-book {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
