"""The throughput benchmark runs, and measures what it says it measures.

No figure is asserted here (speed is the benchmark's business, not the tests'): these tests
check which rows a run has, in which order, and that the models of the breakdown really lack
what their names say.
"""

import importlib.util
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.speed import Setting

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


def test_the_fast_rows_have_every_speed_feature_of_the_trainer(bench):
    from alexnet_book.train import TrainConfig

    fast = [setting for _, setting in bench.PLAN if setting.compile_mode]
    assert len(fast) == 2 and all(s == bench.FAST for s in fast)
    trainer_switches = {"amp", "channels_last", "compile", "space_to_depth"}
    assert trainer_switches <= {f.name for f in fields(TrainConfig)}
    assert bench.FAST.amp and bench.FAST.channels_last and bench.FAST.compile_mode == "default"
    assert bench.FAST.space_to_depth and bench.FAST.fused_sgd and not bench.FAST.cuda_graph


def test_the_breakdown_adds_the_variations_then_each_paper_model_once(bench):
    with_breakdown = bench._settings_to_run(True, ["default"], breakdown=True)
    without = bench._settings_to_run(True, ["default"], breakdown=False)
    added = with_breakdown[len(without):]
    variations = added[:len(bench.FAST_VARIATIONS)]
    paper_models = added[len(bench.FAST_VARIATIONS):]
    assert [model for model, _ in paper_models] == bench.BREAKDOWN_MODELS
    assert len(bench.BREAKDOWN_MODELS) == 3
    # Each variation is a fast row with one switch changed, and its name says which.
    fast = dict((model, setting) for model, setting in without if setting.compile_mode)
    changed = {}
    for model, setting in variations:
        differences = {f.name for f in fields(Setting)
                       if getattr(setting, f.name) != getattr(fast[model], f.name)}
        assert differences - {"name"} in ({"cuda_graph"}, {"space_to_depth"})
        switch = (differences - {"name"}).pop()
        assert ("CUDA graph" in setting.name) == setting.cuda_graph
        assert ("space-to-depth" in setting.name) == setting.space_to_depth
        changed.setdefault(switch, set()).add(model)
    assert changed == {switch: {"ours, paper", "ours, torchvision variant"}
                       for switch in ("cuda_graph", "space_to_depth")}


def test_without_cuda_no_row_records_a_cuda_graph(bench):
    with_cuda = bench._settings_to_run(True, ["default"], breakdown=True)
    without = bench._settings_to_run(True, ["default"], breakdown=True, cuda=False)
    assert without == [row for row in with_cuda if not row[1].cuda_graph]
    assert len(without) < len(with_cuda)


def test_only_keeps_the_baseline_and_the_matching_rows(bench):
    rows = bench._settings_to_run(True, ["default"], breakdown=True)
    kept = bench._only(rows, ["CUDA graph", r"^ours, paper, no LRN: "])
    assert kept[0] == rows[0]
    assert _names(kept[1:]) == [
        ("ours, torchvision variant", f"{bench.FAST_GRAPH.name} (default)"),
        ("ours, paper", f"{bench.FAST_GRAPH.name} (default)"),
        ("ours, paper, no LRN", f"{bench.FAST.name} (default)")]


def test_without_compiling_no_row_compiles(bench):
    rows = bench._settings_to_run(False, ["default", "max-autotune"], breakdown=True)
    assert all(setting.compile_mode is None for _, setting in rows)
    assert not any("compile" in setting.name for _, setting in rows)
    assert len(rows) == len(bench.PLAN) + len(bench.BREAKDOWN)
    # The other switches stay as they were without compiling: only "+ compile" leaves the name.
    assert [replace(s, name="", compile_mode=None) for _, s in rows] == \
        [replace(s, name="", compile_mode=None) for _, s in bench.PLAN + bench.BREAKDOWN]


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
