#!/usr/bin/env bash
# Every check that needs a GPU, in one run, for a machine with PyTorch, torchvision,
# scikit-learn and tqdm installed (the project's CI has no GPU):
#   bash benchmarks/gpu_checks.sh OUT_DIR
# writes devices.log, train.log, torchrun.log, throughput.json, bench.log and profile.txt to
# OUT_DIR. Then copy the figures, the device and the date into benchmarks/RESULTS.md.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/devices.log"
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)" \
  | tee -a "$out/devices.log"

echo "== device tests (CUDA outputs equal the CPU's, channels-last, bf16, compile, trainer)"
python3 -m pytest -o addopts="" -p no:cacheprovider -q tests/test_devices.py \
  tests/test_two_gpu.py 2>&1 | tee -a "$out/devices.log"

echo "== a training run with every speed feature"
python3 -m alexnet_book.cli train --data digits --width 0.125 --epochs 3 --batch-size 128 \
  --init kaiming --amp --channels-last --compile --no-progress \
  --checkpoint-dir "$out/run" 2>&1 | tee "$out/train.log"
rm -rf "$out/run"

echo "== the same under torchrun (NCCL), one process"
python3 -m torch.distributed.run --nproc_per_node=1 -m alexnet_book.cli train --data digits \
  --width 0.125 --epochs 2 --batch-size 128 --init kaiming --amp --no-progress \
  --checkpoint-dir "$out/ddp" 2>&1 | tee "$out/torchrun.log"
rm -rf "$out/ddp"

echo "== throughput"
python3 benchmarks/train_throughput.py --json "$out/throughput.json" \
  --compile-modes default max-autotune-no-cudagraphs --profile "$out/profile.txt" 2>&1 \
  | grep -v pow_by_natural | tee "$out/bench.log"
