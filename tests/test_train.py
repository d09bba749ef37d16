"""The training recipe (Section 5): learning, the schedule, checkpoints, resume, NaN, DDP, CLI.

Everything runs on the CPU with a same-shaped AlexNet an eighth of the width on 67×67 grey
images, on small in-memory datasets whose classes are noisy copies of ten fixed patterns.
"""

import os
import re
import socket
import subprocess
import sys
import textwrap
from dataclasses import fields, replace

import pytest
import torch
from PIL import Image
from scipy.special import softmax
from sklearn.metrics import log_loss, top_k_accuracy_score
from torch.utils.data import Dataset, TensorDataset

from alexnet_book import AlexNet
from alexnet_book.cli import main
from alexnet_book.train import (
    CHECKPOINT_NAME,
    EpochStats,
    History,
    TrainConfig,
    TrainingDiverged,
    evaluate,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    pick_device,
    resolve_amp,
    train,
)

SIZE, CLASSES = 67, 10


def separable(n: int, seed: int) -> TensorDataset:
    """n grey images: one of ten fixed random patterns plus noise; the label says which."""
    patterns = torch.randn(CLASSES, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(n) % CLASSES
    noise = torch.randn(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(patterns[labels] + 0.5 * noise, labels)


def small_net(seed: int = 0, **options) -> AlexNet:
    """At this size the paper's N(0, 0.01) initialisation stalls (biases of 1 drown the signal),
    so the trainer's tests use PyTorch's initialisation and, where they must learn, batch norm."""
    torch.manual_seed(seed)
    options = dict(dict(init="pytorch", norm="batchnorm"), **options)
    return AlexNet("paper", width=1 / 8, input_size=SIZE, num_classes=CLASSES, in_channels=1,
                   **options)


def quick(**changes) -> TrainConfig:
    return TrainConfig(**dict(dict(epochs=3, batch_size=16, lr=0.02, progress=False,
                                   num_workers=0, device="cpu"), **changes))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def without_timing(history: History) -> list[dict]:
    return [{k: v for k, v in history.to_dict()["rows"][i].items()
             if k not in ("seconds", "images_per_second")} for i in range(len(history))]


# --- learning ----------------------------------------------------------------------------------


def test_a_few_epochs_lower_the_loss_and_raise_the_accuracy():
    history = train(small_net(), separable(320, 1), separable(80, 2), quick(epochs=4))
    assert [row.epoch for row in history] == [1, 2, 3, 4]
    first, last = history[0], history[-1]
    assert last.train_loss < first.train_loss - 0.3
    assert last.train_top1 > first.train_top1 + 0.2
    assert last.val_top1 > 0.3  # chance is 0.1
    for row in history:
        for name in ("lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                     "seconds", "images_per_second"):
            value = getattr(row, name)
            assert isinstance(value, float) and value == value, (row.epoch, name)
        assert 0 <= row.train_top1 <= 1 and 0 <= row.val_top1 <= row.val_top5 <= 1
        assert row.images_per_second > 0
    assert history.best.val_top1 == max(history.column("val_top1"))


def test_top5_is_none_with_fewer_than_five_classes():
    three = TensorDataset(torch.randn(48, 1, SIZE, SIZE), torch.arange(48) % 3)
    torch.manual_seed(0)
    net = AlexNet("paper", width=1 / 8, input_size=SIZE, num_classes=3, in_channels=1)
    history = train(net, three, three, quick(epochs=1))
    assert history[0].val_top5 is None and 0 <= history[0].val_top1 <= 1


# --- the paper's numbers and schedule -------------------------------------------------------


def test_defaults_are_the_papers_recipe():
    config = TrainConfig()
    # PAPER_FACTS "Training (Section 5)": batch 128, momentum 0.9, weight decay 0.0005, lr 0.01
    # divided by 10 three times, about 90 passes.
    assert (config.batch_size, config.momentum, config.weight_decay, config.lr) == \
        (128, 0.9, 0.0005, 0.01)
    assert (config.lr_factor, config.max_lr_drops, config.epochs) == (0.1, 3, 90)
    assert config.warmup_epochs == 0 and config.label_smoothing == 0  # not in the paper
    optimizer = make_optimizer(torch.nn.Linear(2, 2), config)
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 0.0005)
    assert group["dampening"] == 0 and not group["nesterov"]  # plain momentum, as in the paper


def test_the_schedule_divides_by_ten_on_a_plateau_and_at_most_three_times():
    config = TrainConfig(plateau_patience=2)
    optimizer = make_optimizer(torch.nn.Linear(2, 2), config)
    scheduler = make_scheduler(optimizer, config)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    lrs = []
    for error in [0.9, 0.8, 0.7] + [0.6] * 30:  # improving, then a plateau that never ends
        scheduler.step(error)
        lrs.append(optimizer.param_groups[0]["lr"])
    drops = [(i, lrs[i - 1] / lrs[i]) for i in range(1, len(lrs)) if lrs[i] != lrs[i - 1]]
    assert len(drops) == 3
    assert all(ratio == pytest.approx(10) for _, ratio in drops)
    # The best error (0.6) is at index 3; two epochs of patience, the third bad one drops.
    assert drops[0][0] == 3 + 2 + 1
    assert lrs[-1] == pytest.approx(1e-5)


def test_a_small_learning_rate_still_drops_three_times():
    # PyTorch's default eps (1e-8) would swallow the drops of a small lr.
    config = TrainConfig(lr=1e-6, plateau_patience=0)
    optimizer = make_optimizer(torch.nn.Linear(2, 2), config)
    scheduler = make_scheduler(optimizer, config)
    for _ in range(10):
        scheduler.step(0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-9)


def test_warm_up_ramps_the_learning_rate_then_hands_over():
    history = train(small_net(), separable(64, 1), separable(32, 2),
                    quick(epochs=2, warmup_epochs=1, lr=0.02))
    steps = 64 // 16
    assert history[0].lr == pytest.approx(0.02 / steps)  # the first warm-up step
    assert history[1].lr == pytest.approx(0.02)


@pytest.mark.parametrize("changes, words", [
    (dict(batch_size=0), "batch_size must be at least 1, got 0"),
    (dict(lr=-0.1), "lr must be a number in (0"),
    (dict(lr_factor=1.0), "the paper divides by 10"),
    (dict(amp="fp8"), "amp must be one of"),
])
def test_bad_settings_say_what_is_wrong(changes, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        TrainConfig(**changes)


def test_a_fractional_count_is_a_type_error():
    with pytest.raises(TypeError, match=re.escape("epochs must be a whole number, got 2.5")):
        TrainConfig(epochs=2.5)


# --- devices and precision ----------------------------------------------------------------


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"),
                                                 (False, False, "cpu")])
def test_pick_device_prefers_cuda_then_mps(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device().type == expected


def test_amp_on_this_machine():
    assert resolve_amp("auto", "cpu") == "off"
    assert resolve_amp("off", "cpu") == "off"
    assert resolve_amp("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match=r"amp='fp16' needs a CUDA device.*'bf16' or amp='off'"):
        resolve_amp("fp16", "cpu")
    with pytest.raises(ValueError, match="fp16 on the CPU|needs a CUDA device"):
        train(small_net(), separable(32, 1), separable(16, 2),
              quick(epochs=1, device="cpu", amp="fp16"))


def test_bf16_and_channels_last_train_like_fp32_on_the_cpu():
    data = separable(64, 1), separable(32, 2)
    base = train(small_net(dropout=0), *data, quick(epochs=1, device="cpu"))
    nhwc_net = small_net(dropout=0)
    nhwc = train(nhwc_net, *data, quick(epochs=1, device="cpu", channels_last=True))
    assert nhwc_net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc[0].train_loss == pytest.approx(base[0].train_loss, rel=1e-4)
    bf16 = train(small_net(dropout=0), *data, quick(epochs=1, device="cpu", amp="bf16"))
    assert bf16[0].train_loss == pytest.approx(base[0].train_loss, rel=5e-2)


def test_space_to_depth_trains_like_pytorchs_conv1():
    from alexnet_book.space_to_depth import SpaceToDepthConv2d

    data = separable(64, 1), separable(32, 2)
    plain_net, stem_net = small_net(dropout=0), small_net(dropout=0)
    plain = train(plain_net, *data, quick(epochs=2, device="cpu"))
    stem = train(stem_net, *data, quick(epochs=2, device="cpu", space_to_depth=True))
    assert isinstance(stem_net.conv1, SpaceToDepthConv2d)
    assert not isinstance(plain_net.conv1, SpaceToDepthConv2d)
    assert stem_net.state_dict().keys() == plain_net.state_dict().keys()
    # The same function: the same training, up to float32 rounding.
    assert [row.train_loss for row in stem] == pytest.approx([row.train_loss for row in plain],
                                                             rel=1e-4)
    for name, weight in stem_net.state_dict().items():
        torch.testing.assert_close(weight, plain_net.state_dict()[name], rtol=1e-3, atol=1e-5)


# --- history --------------------------------------------------------------------------------


def test_history_round_trips_through_plain_data():
    rows = [EpochStats(epoch=e, lr=0.01, train_loss=2.0 / e, train_top1=0.1 * e, val_loss=1.0,
                       val_top1=v, val_top5=0.9, seconds=1.5, images_per_second=100.0)
            for e, v in [(1, 0.2), (2, 0.5), (3, 0.4)]]
    history = History(rows)
    again = History.from_dict(history.to_dict())
    assert again.rows == rows and again.best.epoch == 2 and again.best.val_error == 0.5
    assert "val top-5" in str(history) and "50.00%" in str(history)
    assert History().best is None
    assert {f.name for f in fields(EpochStats)} >= {"epoch", "lr", "train_loss", "train_top1",
                                                    "val_loss", "val_top1", "val_top5",
                                                    "seconds", "images_per_second"}


# --- checkpoints and resume ----------------------------------------------------------------


class Killable(Dataset):
    """A dataset that dies (like a killed process) after handing out ``kill_after`` images."""

    def __init__(self, dataset, kill_after=None):
        self.dataset, self.kill_after, self.served = dataset, kill_after, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        if self.kill_after is not None and self.served >= self.kill_after:
            raise KeyboardInterrupt("killed")
        self.served += 1
        return self.dataset[index]


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    train_set, val_set = separable(96, 1), separable(32, 2)
    config = quick(epochs=4, checkpoint_dir=tmp_path / "full")
    full_net = small_net(dropout=0.5)  # dropout draws random masks: the RNG state must resume
    full = train(full_net, train_set, val_set, config)

    killed_dir = tmp_path / "killed"
    killed_config = replace(config, checkpoint_dir=killed_dir)
    killable = Killable(train_set, kill_after=2 * 96 + 40)  # dies in the middle of epoch 3
    with pytest.raises(KeyboardInterrupt):
        train(small_net(dropout=0.5), killable, val_set, killed_config)
    assert os.listdir(killed_dir) == [CHECKPOINT_NAME]  # no temporary file left behind
    checkpoint = torch.load(killed_dir / CHECKPOINT_NAME, weights_only=True)
    assert checkpoint["epoch"] == 2 and len(checkpoint["history"]["rows"]) == 2

    resumed_net = small_net(seed=99, dropout=0.5)  # other weights: the checkpoint must set them
    assert not same_weights(resumed_net, full_net)
    resumed = train(resumed_net, train_set, val_set, killed_config,
                    resume=killed_dir / CHECKPOINT_NAME)
    for (name, a), (_, b) in zip(full_net.state_dict().items(), resumed_net.state_dict().items()):
        assert torch.equal(a, b), name
    assert without_timing(resumed) == without_timing(full)
    final = load_checkpoint(killed_dir / CHECKPOINT_NAME)
    assert final["epoch"] == 4 and final["config"]["checkpoint_dir"] == str(killed_dir)
    assert set(final) >= {"model", "optimizer", "scheduler", "scaler", "epoch", "history",
                          "config", "rng"}


def test_resuming_without_the_random_state_would_differ(tmp_path):
    """The check above can fail: with dropout, a resumed run drawing other masks ends elsewhere."""
    train_set, val_set = separable(64, 1), separable(32, 2)
    config = quick(epochs=2)
    full_net = small_net(dropout=0.5)
    train(full_net, train_set, val_set, config)
    train(small_net(dropout=0.5), train_set, val_set,
          replace(config, epochs=1, checkpoint_dir=tmp_path))
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    checkpoint["rng"][0]["torch"] = torch.Generator().manual_seed(7).get_state()
    torch.save(checkpoint, tmp_path / "reseeded.pt")
    other = small_net(dropout=0.5)
    train(other, train_set, val_set, config, resume=tmp_path / "reseeded.pt")
    assert not same_weights(other, full_net)


def test_resuming_with_another_memory_layout(tmp_path):
    data = separable(32, 1), separable(16, 2)
    train(small_net(), *data, quick(epochs=1, checkpoint_dir=tmp_path, channels_last=True))
    net = small_net()
    train(net, *data, quick(epochs=2, checkpoint_dir=tmp_path),
          resume=tmp_path / CHECKPOINT_NAME)
    assert net.conv2.weight.is_contiguous()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 2


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train_set, val_set = separable(64, 1), separable(32, 2)
    train(small_net(), train_set, val_set, quick(epochs=1, checkpoint_dir=tmp_path))
    good = (tmp_path / CHECKPOINT_NAME).read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)  # the bytes reach the temporary file ...
        raise OSError("No space left on device")  # ... and then the disk fills up

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        train(small_net(), train_set, val_set, quick(epochs=2, checkpoint_dir=tmp_path),
              resume=tmp_path / CHECKPOINT_NAME)
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == good
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1


def test_a_diverging_loss_stops_at_once_and_keeps_the_good_checkpoint(tmp_path):
    train_set, val_set = separable(96, 1), separable(32, 2)
    config = quick(epochs=3, checkpoint_dir=tmp_path / "run")
    net = small_net()
    train(net, train_set, val_set, replace(config, epochs=1))  # one good epoch
    last = tmp_path / "run" / CHECKPOINT_NAME
    good = last.read_bytes()
    boosted = load_checkpoint(last)
    for group in boosted["optimizer"]["param_groups"]:
        group["lr"] = 1e4  # from here on, a learning rate no network survives
    torch.save(boosted, tmp_path / "boosted.pt")
    with pytest.raises(TrainingDiverged) as caught:
        train(net, train_set, val_set, config, resume=tmp_path / "boosted.pt")
    message = str(caught.value)
    assert re.search(r"loss became (nan|inf) at epoch 2, step \d+ of 6", message), message
    assert caught.value.epoch == 2 and 1 <= caught.value.step <= 6
    assert "keeps the last good epoch" in message and "Lower the learning rate" in message
    assert isinstance(caught.value, RuntimeError)
    assert last.read_bytes() == good and os.listdir(last.parent) == [CHECKPOINT_NAME]
    assert load_checkpoint(last)["epoch"] == 1


def test_weights_broken_by_an_epochs_last_step_are_not_saved(tmp_path):
    # One step per epoch: its loss is finite, so the step-by-step check cannot see that the
    # update itself overflowed the weights; the epoch's end must, before writing a checkpoint.
    config = quick(epochs=2, batch_size=16, lr=1e38, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"epoch 1's last updates broke the network.* "
                                               r"no epoch has finished"):
        train(small_net(), separable(16, 1), separable(16, 2), config)
    assert os.listdir(tmp_path) == []


def test_seeds_and_ranks_get_unrelated_random_streams():
    from alexnet_book.train import _mixed_seed

    seeds = [_mixed_seed(seed, rank) for seed in range(4) for rank in range(4)]
    assert len(set(seeds)) == len(seeds)  # seed + rank would give 7 values for 16 pairs


def test_a_run_that_diverges_before_any_checkpoint_says_there_is_none(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step \d+ of 4 .*no epoch has "
                                               r"finished, so there is no .*last\.pt"):
        train(small_net(), separable(64, 1), separable(16, 2),
              quick(epochs=1, lr=1e6, checkpoint_dir=tmp_path))
    assert os.listdir(tmp_path) == []


def test_resuming_with_another_recipe_warns_what_changed(tmp_path):
    data = separable(32, 1), separable(16, 2)
    train(small_net(), *data, quick(epochs=1, checkpoint_dir=tmp_path))
    with pytest.warns(UserWarning, match=r"lr 0\.02 → 0\.05.*continue as saved"):
        train(small_net(), *data, quick(epochs=2, lr=0.05), resume=tmp_path / CHECKPOINT_NAME)


def test_resuming_from_a_missing_or_foreign_file_says_so(tmp_path):
    data = separable(32, 1), separable(16, 2)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        train(small_net(), *data, quick(epochs=1), resume=tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a checkpoint that train"):
        train(small_net(), *data, quick(epochs=1), resume=tmp_path / "junk.pt")
    train(small_net(), *data, quick(epochs=1, checkpoint_dir=tmp_path))
    wider = AlexNet("paper", width=1 / 4, input_size=SIZE, num_classes=CLASSES, in_channels=1)
    with pytest.raises(ValueError, match="weights of a different network"):
        train(wider, *data, quick(epochs=2), resume=tmp_path / CHECKPOINT_NAME)


# --- DistributedDataParallel under torchrun ---------------------------------------------------

DDP_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from torch.utils.data import TensorDataset
    from alexnet_book import AlexNet
    from alexnet_book.train import TrainConfig, train

    def build(checkpoint_dir):
        patterns = torch.randn(10, 1, 67, 67, generator=torch.Generator().manual_seed(123))
        def data(n, seed):
            labels = torch.arange(n) % 10
            noise = torch.randn(n, 1, 67, 67, generator=torch.Generator().manual_seed(seed))
            return TensorDataset(patterns[labels] + 0.5 * noise, labels)
        torch.manual_seed(0)  # the same initial weights in every process
        # LRN, not batch norm: batch norm's statistics would be per process under DDP.
        net = AlexNet("paper", width=1 / 8, input_size=67, num_classes=10, in_channels=1,
                      init="pytorch", dropout=0)
        config = TrainConfig(epochs=2, batch_size=16, lr=0.02, progress=False, num_workers=0,
                             device="cpu", checkpoint_dir=checkpoint_dir)
        return net, data(64, 1), data(32, 2), config

    if __name__ == "__main__":
        train(*build(sys.argv[1]))
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    """torchrun, 2 CPU processes of batch 8 each = one process of batch 16, same weights."""
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master-port={_free_port()}", str(script), str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "ddp") == [CHECKPOINT_NAME]  # only rank 0 wrote
    ddp = load_checkpoint(tmp_path / "ddp" / CHECKPOINT_NAME)
    assert len(ddp["rng"]) == 2  # both processes' random states

    namespace = {}
    exec(compile(DDP_SCRIPT, str(script), "exec"), namespace)
    net, train_set, val_set, config = namespace["build"](str(tmp_path / "one"))
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same CPU kernels as torchrun's processes (OMP_NUM_THREADS=1)
    try:
        history = train(net, train_set, val_set, config)
    finally:
        torch.set_num_threads(threads)

    for name, weight in net.state_dict().items():
        assert not torch.equal(weight, initial[name]) or "bias" in name, f"{name} did not train"
        torch.testing.assert_close(ddp["model"][name], weight, rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{name}: {m}")
    ddp_history = History.from_dict(ddp["history"])
    for one, two in zip(history, ddp_history):
        assert one.train_loss == pytest.approx(two.train_loss, rel=1e-5)
        assert one.val_loss == pytest.approx(two.val_loss, rel=1e-5)
        assert (one.val_top1, one.lr) == (two.val_top1, two.lr)


# --- evaluation ------------------------------------------------------------------------------


def _scores_as_images(scores: torch.Tensor) -> torch.Tensor:
    """Scores (..., classes) as 1×1 'images' with a channel per class, for nn.Flatten."""
    return scores.reshape(*scores.shape, 1, 1)


@pytest.mark.parametrize("crops", [1, 10])
def test_evaluate_agrees_with_scikit_learn(crops):
    generator = torch.Generator().manual_seed(0)
    scores = 3 * torch.randn(23, crops, 7, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 7, (23,), generator=generator)
    images = _scores_as_images(scores if crops > 1 else scores[:, 0])
    result = evaluate(torch.nn.Flatten(), TensorDataset(images, labels), batch_size=5,
                      device="cpu", num_workers=0)
    # The paper's prediction: the softmax averaged over the crops.
    probabilities = softmax(scores.numpy(), axis=-1).mean(axis=1)
    assert (result.images, result.crops) == (23, crops)
    for k, error in [(1, result.top1_error), (5, result.top5_error)]:
        expected = 1 - top_k_accuracy_score(labels, probabilities, k=k, labels=range(7))
        assert error == pytest.approx(expected)
    assert result.loss == pytest.approx(log_loss(labels, probabilities, labels=range(7)))


def test_evaluate_has_no_top5_below_five_classes_and_refuses_an_empty_set():
    data = TensorDataset(_scores_as_images(torch.randn(4, 3)), torch.tensor([0, 1, 2, 0]))
    assert evaluate(torch.nn.Flatten(), data, device="cpu").top5_error is None
    with pytest.raises(ValueError, match="dataset is empty"):
        evaluate(torch.nn.Flatten(), TensorDataset(torch.zeros(0, 3, 1, 1),
                                                   torch.zeros(0, dtype=torch.long)))


# --- the command line ------------------------------------------------------------------------


def test_cli_trains_the_default_dataset_and_writes_a_checkpoint(tmp_path, capsys):
    code = main(["train", "--data", "digits", "--width", "0.125", "--epochs", "1",
                 "--batch-size", "64", "--checkpoint-dir", str(tmp_path), "--no-progress",
                 "--workers", "0", "--device", "cpu", "--space-to-depth"])
    out, err = capsys.readouterr()
    assert code == 0, err
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert checkpoint["epoch"] == 1 and checkpoint["config"]["batch_size"] == 64
    assert checkpoint["config"]["space_to_depth"] is True
    assert "val top-1" in out and str(tmp_path / CHECKPOINT_NAME) in out

    # evaluate rebuilds the network from the file alone (with PyTorch's conv1: the
    # space-to-depth one keeps its parameters' names) and agrees with the run's validation.
    assert main(["evaluate", str(tmp_path / CHECKPOINT_NAME), "--device", "cpu",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    last = checkpoint["history"]["rows"][-1]
    assert f"top-1 error {100 * (1 - last['val_top1']):.2f}%" in out
    assert f"top-5 error {100 * (1 - last['val_top5']):.2f}%" in out
    assert "on 360 images (one view each)" in out  # a fifth of the 1,797 digits


def _two_class_folder(root):
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (70, 70), (80 * i, 9, 9)).save(root / name / f"{i}.png")
    return root


def test_cli_evaluates_photographs_with_the_papers_ten_crops(tmp_path, capsys):
    torch.manual_seed(0)
    model = AlexNet(width=1 / 8, input_size=67, num_classes=2)
    torch.save({"model": model.state_dict(), "model_args": model.build_args, "epoch": 3},
               tmp_path / CHECKPOINT_NAME)
    folder = _two_class_folder(tmp_path / "photos")
    assert main(["evaluate", str(tmp_path / CHECKPOINT_NAME), "--data", f"imagefolder:{folder}",
                 "--ten-crop", "--device", "cpu", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "3 epochs" in out and "imagefolder:" in out
    assert "on 2 images (10 crops each, softmax averaged)" in out  # the 80/20 split's fifth


@pytest.mark.parametrize("case, words", [
    ("ten crops of digits", "ten crops need photographs"),
    ("another dataset", "pass the --data it was trained on"),
    ("no model_args", "does not say how to build its network"),
    ("no file", "no checkpoint at"),
])
def test_cli_evaluate_bad_input_exits_2_with_one_line(tmp_path, capsys, case, words):
    torch.manual_seed(0)
    model = AlexNet(width=1 / 8, input_size=67, in_channels=1, num_classes=10)
    checkpoint = {"model": model.state_dict(), "model_args": model.build_args, "epoch": 0}
    if case == "no model_args":
        del checkpoint["model_args"]
    path = tmp_path / CHECKPOINT_NAME
    torch.save(checkpoint, path)
    extra = {"ten crops of digits": ["--ten-crop"],
             "another dataset": ["--data", f"imagefolder:{_two_class_folder(tmp_path / 'f')}"],
             }.get(case, [])
    if case == "no file":
        path = tmp_path / "missing.pt"
    code = main(["evaluate", str(path), "--device", "cpu", "--workers", "0", *extra])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("alexnet-book evaluate: error: "), err
    assert words in lines[0]


def test_cli_resumes_from_its_checkpoint(tmp_path, capsys):
    common = ["train", "--width", "0.125", "--batch-size", "64", "--checkpoint-dir",
              str(tmp_path), "--no-progress", "--workers", "0", "--device", "cpu"]
    assert main(common + ["--epochs", "1"]) == 0
    assert main(common + ["--epochs", "2", "--resume", str(tmp_path / CHECKPOINT_NAME)]) == 0
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 2
    capsys.readouterr()


@pytest.mark.parametrize("extra, words", [
    (["--data", "imagefolder:{tmp}/no-such-folder"], "no-such-folder"),
    (["--batch-size", "100000"], "100000"),
    (["--lr", "1e6"], "loss became"),
    (["--resume", "{tmp}/missing.pt"], "no checkpoint at"),
    (["--amp", "fp16"], "needs a CUDA device"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, words):
    extra = [part.format(tmp=tmp_path) for part in extra]
    code = main(["train", "--width", "0.125", "--epochs", "1", "--batch-size", "64",
                 "--checkpoint-dir", str(tmp_path / "run"), "--no-progress", "--workers", "0",
                 "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("alexnet-book train: error: "), err
    assert words in lines[0]
