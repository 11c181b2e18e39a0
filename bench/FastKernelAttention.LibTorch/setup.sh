#!/usr/bin/env bash
# Makes the libtorch baseline's build output load on this system. TorchSharp 0.107.0's libLibTorchSharp.so lists
# GLIBCXX_3.4.32 (GCC 13's libstdc++) among its needed versions; Debian 12's libstdc++ defines up to 3.4.30, so the
# loader refuses it. relax_glibcxx.py checks which symbols are bound to each missing version and, only if no relocation
# refers to any of them (they are never resolved), marks that version need weak. Only the build output's copy is
# patched (the NuGet cache stays as downloaded); bench/README.md explains why this is safe.
# usage: bash bench/FastKernelAttention.LibTorch/setup.sh [output folder]   (default: bin/Release/net10.0/linux-x64)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/bin/Release/net10.0/linux-x64}"
lib="$out/libLibTorchSharp.so"
if [ ! -f "$lib" ]; then
  echo "error: $lib not found; build first: dotnet build -c Release $here" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "error: python3 is needed (Debian: apt-get install -y python3)" >&2; exit 1; }

# The libstdc++.so.6 the dynamic loader binds for this library (ldd prints the mapping even when a version is missing).
stdcxx="$(ldd "$lib" 2>/dev/null | awk '$1 == "libstdc++.so.6" { print $3 }')"
if [ -z "$stdcxx" ] || [ ! -f "$stdcxx" ]; then
  echo "error: no libstdc++.so.6 found for $lib (Debian: apt-get install -y libstdc++6)" >&2
  exit 1
fi
python3 "$here/relax_glibcxx.py" "$lib" --against "$stdcxx"

# A failed load makes TorchSharp copy the unpatched natives from the NuGet cache into cpu/ and try those: drop that copy.
rm -rf "$out/cpu"

# Everything libLibTorchSharp.so needs must now resolve (a weak version that is absent is only reported).
if ldd "$lib" 2>&1 | grep "not found" | grep -v "weak version"; then
  echo "error: $lib still has unresolved needs (above)" >&2
  exit 1
fi
echo "libLibTorchSharp.so loads against $stdcxx"
