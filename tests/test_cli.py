"""The `alexnet-book` command."""

import shutil
import subprocess

import pytest

from alexnet_book.cli import main


def test_summary_prints_the_paper_table(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "AlexNet (paper, 2012), input 3×227×227" in out
    assert "60,965,224" in out and "724,406,816" in out  # PAPER_FACTS totals


def test_summary_of_torchvision_variant(capsys):
    assert main(["summary", "--variant", "torchvision"]) == 0
    assert "61,100,840" in capsys.readouterr().out


def test_summary_of_a_small_network(capsys):
    assert main(["summary", "--width", "0.125", "--input-size", "67", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "12×15×15" in out  # conv1: 96/8 kernels, (67 − 11)/4 + 1 = 15


def test_bad_values_exit_2_with_a_message(capsys):
    assert main(["summary", "--input-size", "50"]) == 2
    assert "smallest input that works is 67×67" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["summary", "--input-size", "zero"])
    assert caught.value.code == 2
    assert "expected a whole number, got 'zero'" in capsys.readouterr().err


def test_console_script_is_installed():
    executable = shutil.which("alexnet-book")
    assert executable, "pip install -e . installs the alexnet-book command"
    result = subprocess.run([executable, "summary", "--variant", "torchvision"],
                            capture_output=True, text=True, check=True)
    assert "61,100,840" in result.stdout
