#!/usr/bin/env bash
# Every check that needs a GPU, in one run, for a machine with PyTorch, torchvision,
# scikit-learn and tqdm installed (the project's CI has no GPU):
#   bash benchmarks/gpu_checks.sh OUT_DIR
# writes devices.log, bench.log, throughput.json, profile.txt, tests.log, train.log and
# torchrun.log to OUT_DIR. Then copy the figures, the device and the date into
# benchmarks/RESULTS.md.
#
# The figures come first (throughput: the training issue's speed targets). Each part has its own
# time limit, so the whole run stays under 9.5 minutes and one slow part cannot starve the
# others; the benchmark writes its JSON and profile after every row, so a part stopped by its
# limit still leaves what it measured. The device tests cover the trainer with compile, so the
# CLI's training run here does without it.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/devices.log"
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)" \
  | tee -a "$out/devices.log"

echo "== throughput: every speed feature, with a whole-step CUDA graph and without"
echo "   space-to-depth, what LRN and the groups cost, CUDA graphs by torch.compile, a profile"
timeout 360 python3 benchmarks/train_throughput.py --json "$out/throughput.json" \
  --breakdown --compile-modes default reduce-overhead \
  --profile "$out/profile.txt" 2>&1 | grep -v pow_by_natural | tee "$out/bench.log"

echo "== device tests (CUDA outputs equal the CPU's, channels-last, bf16, compile, trainer)"
timeout 110 python3 -m pytest -o addopts="" -p no:cacheprovider -q tests/test_devices.py \
  tests/test_two_gpu.py 2>&1 | tee "$out/tests.log"

echo "== a training run with mixed precision, channels-last and space-to-depth, evaluated"
timeout 40 python3 -m alexnet_book.cli train --data digits --width 0.125 --epochs 3 \
  --batch-size 128 --init kaiming --amp --channels-last --space-to-depth --no-progress \
  --checkpoint-dir "$out/run" 2>&1 | tee "$out/train.log"
timeout 20 python3 -m alexnet_book.cli evaluate "$out/run/last.pt" 2>&1 | tee -a "$out/train.log"
rm -rf "$out/run"

echo "== the same under torchrun (NCCL), one process"
timeout 40 python3 -m torch.distributed.run --nproc_per_node=1 -m alexnet_book.cli train \
  --data digits --width 0.125 --epochs 2 --batch-size 128 --init kaiming --amp --no-progress \
  --checkpoint-dir "$out/ddp" 2>&1 | tee "$out/torchrun.log"
rm -rf "$out/ddp"
