#!/usr/bin/env bash
# In-process A/B of the working tree's library against its build at another commit: copies src/FastKernelAttention at
# BASE (git archive) to a temporary folder, renames that build's assembly (FastKernelAttentionBase), builds this harness
# against both and times the shapes one thread, calls of the two builds in turns (bench/README.md, "A/B of two commits").
#   bash bench/ab/run.sh BASE SPEC[,SPEC…] [pairs]      e.g.  bash bench/ab/run.sh HEAD~1 W1,W2,W7 21
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base_rev=${1:?usage: run.sh BASE SPEC[,SPEC…] [pairs]}
specs=${2:?usage: run.sh BASE SPEC[,SPEC…] [pairs]}
pairs=${3:-15}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$base_rev" src/FastKernelAttention Directory.Build.props Directory.Packages.props NuGet.config | tar -x -C "$work"
# One target framework, and another assembly (and package) name, so that both builds load side by side.
python3 - "$work/src/FastKernelAttention/FastKernelAttention.csproj" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"<TargetFrameworks>[^<]*</TargetFrameworks>", "<TargetFramework>net10.0</TargetFramework>", text)
text = re.sub(r"<PackageId>[^<]*</PackageId>", "<PackageId>FastKernelAttentionBase</PackageId>", text)
text = text.replace("<TargetFramework>net10.0</TargetFramework>", "<TargetFramework>net10.0</TargetFramework><AssemblyName>FastKernelAttentionBase</AssemblyName>", 1)
open(path, "w").write(text)
PY
dotnet build -c Release "$here/FastKernelAttention.AB.csproj" -p:AbBase="$work" -o "$work/out" -v quiet -nologo
echo "base: $(git -C "$root" rev-parse --short "$base_rev"), current: working tree at $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet -- src || echo ' (modified)')"
dotnet "$work/out/FastKernelAttention.AB.dll" "$specs" "$pairs"
