"""The throughput benchmark runs, and measures what it says it measures.

No figure is asserted here (speed is the benchmark's business, not the tests'): these tests
check which rows a run has, in which order, and that the models of the breakdown really lack
what their names say.
"""

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from torch import nn

from alexnet_book import AlexNet

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _names(rows):
    return [(model, setting.name) for model, setting in rows]


def test_first_mode_rows_run_before_the_further_modes(bench):
    rows = bench._settings_to_run(True, ["default", "reduce-overhead"], breakdown=True)
    modes = [setting.compile_mode for _, setting in rows]
    first_further = modes.index("reduce-overhead")
    assert "reduce-overhead" not in modes[:first_further]
    assert set(modes[first_further:]) == {"reduce-overhead"}
    # Only the plan's two fast rows get the further mode; the breakdown runs once.
    further_models = [model for model, _ in rows[first_further:]]
    assert further_models == ["ours, paper", "ours, torchvision variant"]
    assert rows[0] == bench.PLAN[0]  # the baseline, eager fp32, first


def test_the_breakdown_adds_the_candidates_then_each_paper_model_once(bench):
    with_breakdown = bench._settings_to_run(True, ["default"], breakdown=True)
    without = bench._settings_to_run(True, ["default"], breakdown=False)
    added = with_breakdown[len(without):]
    candidates, paper_models = added[:len(bench.CANDIDATES)], added[len(bench.CANDIDATES):]
    assert [model for model, _ in paper_models] == bench.BREAKDOWN_MODELS
    assert len(bench.BREAKDOWN_MODELS) == 3
    assert not any(s.space_to_depth or s.cuda_graph for _, s in [*without, *paper_models])
    # Each candidate is a plan's fast row with the named features added, and nothing else.
    fast = dict((model, setting) for model, setting in without if setting.compile_mode)
    for model, setting in candidates:
        assert setting.space_to_depth == ("space-to-depth" in setting.name)
        assert setting.cuda_graph == ("CUDA graph" in setting.name)
        assert setting.space_to_depth or setting.cuda_graph
        plain = replace(setting, name=fast[model].name, space_to_depth=False, cuda_graph=False)
        if setting.compile_mode is None:  # the one graph row without compiling
            plain = replace(plain, compile_mode="default")
            assert "compile" not in setting.name
        assert plain == fast[model]
    assert {model for model, _ in candidates} == {"ours, paper", "ours, torchvision variant"}


def test_without_cuda_no_row_records_a_cuda_graph(bench):
    with_cuda = bench._settings_to_run(True, ["default"], breakdown=True)
    without = bench._settings_to_run(True, ["default"], breakdown=True, cuda=False)
    assert without == [row for row in with_cuda if not row[1].cuda_graph]
    assert len(without) < len(with_cuda)


def test_without_compiling_no_row_compiles(bench):
    rows = bench._settings_to_run(False, ["default", "max-autotune"], breakdown=True)
    assert all(setting.compile_mode is None for _, setting in rows)
    assert not any("compile" in setting.name for _, setting in rows)
    assert len(rows) == len(bench.PLAN) + len(bench.BREAKDOWN)
    assert sum(setting.space_to_depth for _, setting in rows) == 3  # kept without compiling


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


def _grouped_convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]


def test_breakdown_models_lack_what_their_names_say(bench):
    paper = bench.MODELS["ours, paper"]()
    no_lrn = bench.MODELS["ours, paper, no LRN"]()
    one_group = bench.MODELS["ours, paper, one group"]()
    neither = bench.MODELS["ours, paper, no LRN, one group"]()
    assert _count(paper, nn.LocalResponseNorm) == 2  # after conv1 and conv2 (paper, 3.3)
    assert len(_grouped_convs(paper)) == 3  # conv2, conv4, conv5 (paper, 3.5)
    assert _count(no_lrn, nn.LocalResponseNorm) == 0 and len(_grouped_convs(no_lrn)) == 3
    assert _count(one_group, nn.LocalResponseNorm) == 2 and not _grouped_convs(one_group)
    assert _count(neither, nn.LocalResponseNorm) == 0 and not _grouped_convs(neither)


@pytest.fixture
def tiny_models(bench, monkeypatch):
    """Every row's model at a sixteenth of the width on 67×67 images: the plumbing is the
    same, and the run takes a second instead of ten."""
    monkeypatch.setattr(bench, "IMAGE_SIZE", 67)
    for name in list(bench.MODELS):
        monkeypatch.setitem(bench.MODELS, name, lambda: AlexNet(width=1 / 16, input_size=67))


def test_a_tiny_cpu_run_measures_every_row(bench, tiny_models, tmp_path, capsys):
    out = tmp_path / "throughput.json"
    bench.main(["--device", "cpu", "--batch-size", "1", "--steps", "1", "--repeats", "1",
                "--warmup", "0", "--breakdown", "--json", str(out)])
    report = json.loads(out.read_text())
    measured = [(m["model"], m["setting"]) for m in report["measurements"]]
    assert measured == _names(bench._settings_to_run(False, ["default"], breakdown=True,
                                                     cuda=False))
    assert all(m["images_per_second"] > 0 and m["gflop_per_step"] > 0
               for m in report["measurements"])
    table = capsys.readouterr().out
    assert table.count("\n| ") == len(measured) + 1  # the header and one line per row


def test_a_failing_row_is_reported_and_the_run_goes_on(bench, tiny_models, tmp_path, capsys,
                                                       monkeypatch):
    def broken():
        raise RuntimeError("no such kernel")

    monkeypatch.setitem(bench.MODELS, "ours, paper, no LRN", broken)
    out = tmp_path / "throughput.json"
    bench.main(["--device", "cpu", "--batch-size", "1", "--steps", "1", "--repeats", "1",
                "--warmup", "0", "--breakdown", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "ours, paper, no LRN" in printed and "FAILED: RuntimeError: no such kernel" in printed
    models = [m["model"] for m in json.loads(out.read_text())["measurements"]]
    assert "ours, paper, no LRN" not in models
    assert "ours, paper, one group" in models  # the rows after it still ran


def test_the_table_needs_the_baseline(bench):
    with pytest.raises(RuntimeError, match="baseline"):
        bench.markdown_table([])
