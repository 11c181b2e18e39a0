#!/usr/bin/env bash
# The libtorch baseline in one command: restore and build Release (NuGet: TorchSharp-cpu, about 1.3 GB the first time),
# patch the build output's libLibTorchSharp.so (setup.sh), run issue 5's workloads on libtorch and on ours at each thread
# count, and write bench/results/<cpu>/libtorch-summary.json and <date>-libtorch.md.
# usage: bash bench/FastKernelAttention.LibTorch/run.sh [--threads 1,2] [--only W1,W4] [--no-save]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
out="$here/bin/Release/net10.0/linux-x64"

dotnet build -c Release "$here/FastKernelAttention.LibTorch.csproj"
bash "$here/setup.sh" "$out"
dotnet "$out/FastKernelAttention.LibTorch.dll" "$@"
