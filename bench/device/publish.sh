#!/usr/bin/env bash
# Publishes the workloads benchmark self-contained and trimmed for linux-x64 (the device machine has no .NET SDK) and packs
# it into bench/device/build/benchmark.tgz, about 29 MiB (what a device run carries must stay under 64 MiB).
#   bash bench/device/publish.sh [--smoke]   # --smoke: also runs the published binary here on one small workload
set -euo pipefail
cd "$(dirname "$0")/../.."
build=bench/device/build
rm -rf "$build/publish"
mkdir -p "$build"
# Trim analysis warnings come from BenchmarkDotNet and its dependencies (the --bdn suites, which the device run does not use).
# Invariant globalization: the machine may lack libicu, and the benchmark formats with the invariant culture anyway.
dotnet publish bench/FastKernelAttention.Benchmarks -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true \
  -p:TreatWarningsAsErrors=false -p:SuppressTrimAnalysisWarnings=true -p:InvariantGlobalization=true -p:DebugType=none \
  -o "$build/publish"
# Not needed to run the workloads on Linux: ONNX Runtime's Windows library (not in the deps file), BenchmarkDotNet's
# disassembler and the debugger's libraries.
rm -f "$build/publish/onnxruntime.dll" "$build/publish/libcapstone.so" "$build/publish/libmscordaccore.so" \
  "$build/publish/libmscordbi.so" "$build/publish/createdump"
# The commit it was built from, for the results' header (the device's copy of the tree has no git history).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+changes"; fi
echo "$commit" > "$build/publish/COMMIT"
tar -C "$build/publish" -czf "$build/benchmark.tgz" .
size=$(stat -c %s "$build/benchmark.tgz")
echo "$build/benchmark.tgz: $((size / 1048576)) MiB"
if [ "$size" -ge $((60 * 1048576)) ]; then
  echo "too large to carry to the device machine (64 MiB with the working tree)" >&2
  exit 1
fi
if [ "${1:-}" = "--smoke" ]; then
  # The trimmed binary end to end on one small workload: ours, ONNX Runtime and TensorPrimitives on one thread.
  "$build/publish/FastKernelAttention.Benchmarks" --results-folder
  "$build/publish/FastKernelAttention.Benchmarks" --workloads --only W5-d16 --threads 1 --no-reference
fi
