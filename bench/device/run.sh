#!/usr/bin/env bash
# On the device machine (16 cores, no .NET SDK, PyTorch installed), in the repository root of the working-tree copy with
# bench/device/build/benchmark.tgz carried (bash bench/device/publish.sh makes it): PyTorch's SDPA, then ours and ONNX
# Runtime from the published benchmark, on 1 and N threads, in one command. The table takes PyTorch's rows as its libtorch
# column; the raw results (markdown, summary.json, the PyTorch and console logs, the machine) go to
# bench/results/<cpu>/ and, when $OUT is set, to $OUT/<cpu>/.
#   THREADS=16 WORKLOADS=W1,W3 TORCH_WORKLOADS=W1,W3 bash bench/device/run.sh   # the defaults: $(nproc), W1,W3, W1,W3
set -euo pipefail
cd "$(dirname "$0")/../.."
build=bench/device/build
threads=${THREADS:-$(nproc)}
workloads=${WORKLOADS:-W1,W3}
torch_workloads=${TORCH_WORKLOADS:-W1,W3}
python=${PYTHON:-python3}
if [ ! -x "$build/publish/FastKernelAttention.Benchmarks" ]; then
  mkdir -p "$build/publish"
  tar -C "$build/publish" -xzf "$build/benchmark.tgz"
fi
bench="$build/publish/FastKernelAttention.Benchmarks"
folder=$("$bench" --results-folder)
# This run writes the folder's libtorch-summary.json: do not replace one that the TorchSharp runner wrote.
if [ -f "$folder/libtorch-summary.json" ] && ! grep -q '"variant": "PyTorch' "$folder/libtorch-summary.json" && [ -z "${FORCE:-}" ]; then
  echo "$folder/libtorch-summary.json is the TorchSharp runner's; run in a copy of the tree, or set FORCE=1 to replace it" >&2
  exit 1
fi
{ date -u; lscpu; free -g; "$python" -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"; } \
  > "$folder/device-machine.txt" 2>&1 || true
# A failed PyTorch run (no torch, say) is logged, and ours and ONNX Runtime still run.
"$python" bench/device/torch_sdpa.py --threads "1,$threads" --workloads "$torch_workloads" \
  --out "$folder/libtorch-summary.json" 2>&1 | tee "$folder/pytorch.txt" || echo "PyTorch run failed (see pytorch.txt)"
"$bench" --workloads --threads "$threads" --only "$workloads" --no-reference --save 2>&1 | tee "$folder/workloads-console.txt"
if [ -n "${OUT:-}" ]; then cp -r "$folder" "$OUT/"; fi
