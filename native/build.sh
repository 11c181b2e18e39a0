#!/usr/bin/env bash
# Builds and tests the C ABI and the NuGet package, end to end:
#   1. publishes the NativeAOT shared library (native/build/lib/libfastkernelattention.so; on an AVX-512 machine also an
#      x86-64-v4 build in native/build/lib-avx512 so that the Avx512 path is tested through the ABI too),
#   2. configures, builds and runs the CTest suite in native/tests against it,
#   3. runs the Python ctypes test (native/python/test_fka.py),
#   4. packs the NuGet package into artifacts/packages and runs the package-consumer test (tests/PackageConsumer/run.sh).
# Installs cmake and a C compiler with apt-get only when they are missing. Usage: bash native/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

rid=${FKA_RID:-linux-x64}
build=native/build
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
  missing+=(clang)
fi
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s zlib1g-dev >/dev/null 2>&1; then missing+=(zlib1g-dev); fi # NativeAOT links -lz
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

echo "== publish the shared library ($rid)"
dotnet publish native/FastKernelAttention.Native -c Release -r "$rid" -o "$build/lib"
extra=()
if [ "$rid" = linux-x64 ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  echo "== publish an x86-64-v4 build too (this CPU has AVX-512: tests the Avx512 path through the ABI)"
  dotnet publish native/FastKernelAttention.Native -c Release -r "$rid" -o "$build/lib-avx512" \
    -p:IlcInstructionSet=x86-64-v4
  extra=(-DFKA_EXTRA_LIB_DIR="$PWD/$build/lib-avx512" -DFKA_EXTRA_EXPECT_ISA=3)
fi

echo "== C tests (CMake + CTest)"
cmake -S native/tests -B "$build/tests" -DCMAKE_BUILD_TYPE=Release -DFKA_LIB_DIR="$PWD/$build/lib" "${extra[@]}"
cmake --build "$build/tests" -j "$(nproc 2>/dev/null || echo 2)"
set +e
(cd "$build/tests" && ctest --output-on-failure -V) > "$build/ctest.log" 2>&1
test_status=$?
set -e
# Each test's summary line (checks, fuzz counts), then CTest's closing line with the test count.
grep -E "^[0-9]+: (fka |f(32|64) |forward:|errors:|threads:|fuzz:|estimators:|particles:)|Test +#|tests passed" "$build/ctest.log" || true
[ "$test_status" = 0 ] || { echo "CTest failed ($test_status): see $build/ctest.log"; tail -n 50 "$build/ctest.log"; exit 1; }

echo "== Python ctypes test"
python=/usr/bin/python3
[ -x "$python" ] || python=python3
FKA_LIB_DIR="$PWD/$build/lib" "$python" native/python/test_fka.py

echo "== NuGet package and package-consumer test"
rm -rf artifacts/packages
dotnet pack src/FastKernelAttention -c Release -o artifacts/packages
bash tests/PackageConsumer/run.sh artifacts/packages
