"""Ablations switch exactly one idea, reuse cached runs, and name the ideas they know."""

import pytest
import torch

from alexnet_book import ablation
from alexnet_book.ablation import IDEAS, AblationSettings, run_ablation

TINY = AblationSettings(epochs=1, seeds=(0,), train_size=128, width=1 / 16)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path))
    return tmp_path


def test_unknown_idea_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown idea 'batchnorm'.*'augmentation', 'dropout', "
                                         "'lrn', 'overlapping_pooling', 'relu', 'two_gpus'"):
        run_ablation("batchnorm")


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="at least one seed"):
        AblationSettings(seeds=())
    with pytest.raises(ValueError, match="switches"):
        run_ablation("lrn", AblationSettings(base={"norm": "batchnorm"}))
    with pytest.raises(TypeError, match="AblationSettings"):
        run_ablation("lrn", {"epochs": 1})


@pytest.mark.parametrize("idea", sorted(IDEAS))
def test_each_arm_builds_the_network_it_names(idea, monkeypatch):
    built = []
    original = ablation.AlexNet

    def spy(*args, **kwargs):
        built.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(ablation, "AlexNet", spy)
    monkeypatch.setattr(ablation, "train", lambda model, *a, **k: ablation.History())
    loaded = []
    real_load = ablation.load_data
    monkeypatch.setattr(ablation, "load_data",
                        lambda *a, **k: loaded.append(k["augment"]) or real_load(*a, **k))
    run_ablation(idea, TINY, cache=False)
    on, off = IDEAS[idea].on, IDEAS[idea].off
    for options, arm, augment in zip(built, (on, off), loaded):
        for key, value in arm.items():
            if key == "augment":
                assert augment is value
            else:
                assert options[key] == value
    # Everything else is the same in both arms.
    assert {k: v for k, v in built[0].items() if k not in on} == \
        {k: v for k, v in built[1].items() if k not in off}


def test_runs_are_cached_and_reproducible(cache):
    first = run_ablation("dropout", TINY)
    assert first.cached == 0 and first.seconds > 0
    assert len(list((cache / "ablations").glob("run-*.json"))) == 2
    again = run_ablation("dropout", TINY)
    assert again.cached == 2 and again.seconds == 0
    fresh = run_ablation("dropout", TINY, cache=False)
    for label in first.labels:
        assert again.final("val_top1", label) == first.final("val_top1", label)
        # Trained again from the same seed: the same network, so the same validation loss.
        assert fresh.final("val_loss", label) == pytest.approx(first.final("val_loss", label))


def test_result_summaries_by_hand():
    rows = [dict(epoch=e, lr=0.01, train_loss=1.0, train_top1=top1, val_loss=1.0, val_top1=top1,
                 val_top5=None, seconds=1.0, images_per_second=1.0)
            for e, top1 in enumerate([0.5, 0.7, 0.8])]
    history = ablation.History.from_dict({"rows": rows})
    result = ablation.AblationResult(IDEAS["relu"], TINY, {"ReLU": [history], "tanh": [history]},
                                     seconds=0.0, cached=2)
    # Errors 0.5, 0.3, 0.2: first below 0.25 at epoch 3, below 0.1 never.
    assert result.first_epoch_below("train_error", "ReLU", 0.25) == [3]
    assert result.first_epoch_below("val_error", "tanh", 0.1) == [None]
    assert result.final("val_top1", "ReLU") == [0.8]
    assert result.mean_curve("val_top1", "tanh") == pytest.approx([0.5, 0.7, 0.8])
    assert result.mean_curve("val_error", "tanh") == pytest.approx([0.5, 0.3, 0.2])
    assert result.final("train_error", "ReLU") == pytest.approx([0.2])
    assert result.curves("val_error", "ReLU") == [pytest.approx([0.5, 0.3, 0.2])]
    assert ablation.epochs_text([3, None, 4]) == "3, never, 4"
    with pytest.raises(ValueError, match="arms are \\['ReLU', 'tanh'\\]"):
        result.final("val_top1", "sigmoid")


def test_seed_spread_by_hand():
    def ending_at(top1):
        row = dict(epoch=0, lr=0.01, train_loss=1.0, train_top1=top1, val_loss=1.0,
                   val_top1=top1, val_top5=None, seconds=1.0, images_per_second=1.0)
        return ablation.History.from_dict({"rows": [row]})

    two_seeds = AblationSettings(seeds=(0, 1))
    result = ablation.AblationResult(IDEAS["relu"], two_seeds,
                                     {"ReLU": [ending_at(0.8), ending_at(0.6)],
                                      "tanh": [ending_at(0.5), ending_at(0.5)]},
                                     seconds=0.0, cached=4)
    # Errors 0.2 and 0.4: sample standard deviation 0.1 · √2; 0.5 and 0.5: none. Mean of both.
    assert result.seed_spread("val_error") == pytest.approx(0.1 * 2**0.5 / 2)
    one_seed = ablation.AblationResult(IDEAS["relu"], TINY, {"ReLU": [ending_at(0.8)]},
                                       seconds=0.0, cached=1)
    assert one_seed.seed_spread("val_error") != one_seed.seed_spread("val_error")  # nan


def test_the_cache_key_holds_the_thread_count(monkeypatch):
    # Sums split by thread round differently, so runs with another thread count are other runs.
    key = ablation._run_key({"dropout": 0.5}, TINY, 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert ablation._run_key({"dropout": 0.5}, TINY, 0) != key


def test_two_ideas_asking_for_the_same_network_share_its_runs(cache):
    run_ablation("lrn", TINY)  # with LRN: the paper's network; without: norm="none"
    shared = run_ablation("two_gpus", TINY)  # two columns: the paper's network again
    assert shared.cached == 1 and shared.runs["two columns"] == \
        run_ablation("lrn", TINY).runs["with LRN"]
    assert len(list((cache / "ablations").glob("run-*.json"))) == 3
    # Another setting of the same switch is another network, and another run.
    assert ablation._run_key({"groups": 2}, TINY, 0) == ablation._run_key({"norm": "lrn"}, TINY, 0)
    assert ablation._run_key({"groups": 1}, TINY, 0) != ablation._run_key({"groups": 2}, TINY, 0)


def test_pca_lighting_reaches_the_augmented_arm_only(monkeypatch):
    seen = []
    real_load = ablation.load_data

    def load(*args, **kwargs):
        seen.append((kwargs["augment"], kwargs["pca_lighting"]))
        return real_load(*args, **{**kwargs, "pca_lighting": False})  # the digits are grey

    monkeypatch.setattr(ablation, "load_data", load)
    monkeypatch.setattr(ablation, "train", lambda model, *a, **k: ablation.History())
    run_ablation("augmentation", AblationSettings(pca_lighting=True, seeds=(0,)), cache=False)
    assert seen == [(True, True), (False, False)]


def test_an_extra_arm_is_trained_cached_and_labelled(cache):
    result = run_ablation("lrn", TINY, extra_arms={"with batch norm": {"norm": "batchnorm"}})
    assert list(result.runs) == ["with LRN", "without LRN", "with batch norm"]
    assert len(list((cache / "ablations").glob("run-*.json"))) == 3
    again = run_ablation("lrn", TINY, extra_arms={"with batch norm": {"norm": "batchnorm"}})
    assert again.cached == 3
    with pytest.raises(ValueError, match="must have a new label"):
        run_ablation("lrn", TINY, extra_arms={"with LRN": {"norm": "batchnorm"}})
