"""The network on an accelerator (CUDA or Apple MPS): same answers as on the CPU.

Skipped where there is none, as on CI; run them on a GPU machine with
``pytest -o addopts="" tests/test_devices.py``.
"""

import pytest
import torch
from torch import nn

from alexnet_book import AlexNet
from alexnet_book.train import pick_device


DEVICE = pick_device() if pick_device().type != "cpu" else None
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no CUDA or MPS device")


@pytest.fixture(autouse=True)
def exact_fp32():
    if DEVICE is not None and DEVICE.type == "cuda":
        previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
    else:
        yield


@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_same_outputs_as_on_the_cpu(variant):
    torch.manual_seed(0)
    model = AlexNet(variant).eval()
    x = torch.randn(4, *model.expected_input_shape)
    with torch.no_grad():
        expected = model(x)
        on_device = model.to(DEVICE)(x.to(DEVICE)).cpu()
    torch.testing.assert_close(on_device, expected, rtol=1e-3, atol=1e-4)


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    model = AlexNet("paper").eval().to(DEVICE)
    x = torch.randn(4, 3, 227, 227, device=DEVICE)
    with torch.no_grad():
        expected = model(x)
        got = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)


def test_bf16_autocast_step_agrees_with_fp32():
    torch.manual_seed(0)
    model = AlexNet("paper", width=1 / 4, input_size=131, num_classes=10, dropout=0).to(DEVICE)
    x = torch.randn(32, 3, 131, 131, device=DEVICE)
    y = torch.randint(0, 10, (32,), device=DEVICE)
    fp32_loss = nn.functional.cross_entropy(model(x), y)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        bf16_loss = nn.functional.cross_entropy(model(x), y)
    torch.testing.assert_close(bf16_loss.float(), fp32_loss, rtol=2e-2, atol=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    bf16_loss.backward()
    optimizer.step()
    for old, new in zip(before, model.parameters()):
        assert torch.isfinite(new).all() and not torch.equal(old, new)


@pytest.mark.skipif(DEVICE is None or DEVICE.type != "cuda", reason="torch.compile checked on CUDA")
def test_compiled_model_matches_eager():
    torch.manual_seed(0)
    model = AlexNet("paper", width=1 / 4, input_size=131, num_classes=10).eval().to(DEVICE)
    x = torch.randn(8, 3, 131, 131, device=DEVICE)
    with torch.no_grad():
        expected = model(x)
        got = torch.compile(model)(x)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)


def test_trainer_runs_with_every_speed_feature(tmp_path):
    from alexnet_book import TrainConfig, load_data, train
    from alexnet_book.train import load_checkpoint

    data = load_data("digits")
    torch.manual_seed(0)
    model = AlexNet("paper", num_classes=10, in_channels=1, input_size=data.image_size,
                    width=1 / 8, init="kaiming")
    config = TrainConfig(epochs=2, batch_size=64, device=DEVICE.type, amp="auto",
                         channels_last=True, compile=DEVICE.type == "cuda", space_to_depth=True,
                         progress=False, checkpoint_dir=tmp_path)
    history = train(model, data.train, data.val, config)
    assert len(history) == 2 and all(row.train_loss == row.train_loss for row in history)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


def test_throughput_is_measured_with_every_speed_feature():
    from alexnet_book.speed import Setting, measure_throughput

    compile_mode = "default" if DEVICE.type == "cuda" else None
    setting = Setting("every speed feature", amp=True, channels_last=True,
                      compile_mode=compile_mode, fused_sgd=True)
    measured = measure_throughput(lambda: AlexNet("paper", width=1 / 4, input_size=131),
                                  setting, DEVICE, batch_size=16, steps=2, repeats=2)
    assert measured.images_per_second > 0 and measured.gflop_per_step > 0
    if DEVICE.type == "cuda":
        assert measured.peak_memory_gib > 0  # read from the CUDA allocator


@pytest.mark.skipif(DEVICE is None or DEVICE.type != "cuda", reason="CUDA graphs need CUDA")
@pytest.mark.parametrize("compile_mode", [None, "default"])
def test_a_step_replayed_as_a_cuda_graph_trains_as_plain_steps_do(compile_mode):
    from alexnet_book.speed import CUDA_GRAPH_WARMUP_STEPS, Setting, prepare_step

    def weights_after(calls, cuda_graph):
        torch.manual_seed(0)
        model = AlexNet("paper", width=1 / 4, input_size=131, num_classes=10, dropout=0)
        setting = Setting("every speed feature", amp=True, channels_last=True, fused_sgd=True,
                          compile_mode=compile_mode, cuda_graph=cuda_graph)
        step, _ = prepare_step(model, setting, DEVICE, 16, 131, 10)
        for _ in range(calls):
            step()
        torch.cuda.synchronize(DEVICE)
        return torch.cat([p.detach().float().flatten() for p in model.parameters()])

    torch.manual_seed(0)
    initial = torch.cat([p.detach().flatten() for p in AlexNet(
        "paper", width=1 / 4, input_size=131, num_classes=10, dropout=0).parameters()])
    replayed = weights_after(3, cuda_graph=True) - initial.to(DEVICE)  # 2 warm-up + 3 replays
    plain = weights_after(CUDA_GRAPH_WARMUP_STEPS + 3, cuda_graph=False) - initial.to(DEVICE)
    # The same five updates, up to bf16 rounding; two or four updates would be far off.
    assert torch.linalg.vector_norm(replayed - plain) < 0.02 * torch.linalg.vector_norm(plain)
