#!/usr/bin/env bash
# Copies the newest saved quick table (bench/results/<cpu>/<date>-quick.md, written by the benchmark's --save) into
# README.md between the quick-table markers, so the README's numbers are never typed by hand.
# Usage: dotnet run -c Release --project bench/FastKernelAttention.Benchmarks -- --save && bash bench/update-readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."
latest=$(ls -t bench/results/*/*-quick.md | head -n 1)
python3 - "$latest" <<'PY'
import sys, re
table = open(sys.argv[1]).read().replace("# FastKernelAttention quick table\n\n", "")
readme = open("README.md").read()
block = "<!-- quick-table:start -->\n" + f"From `{sys.argv[1]}`:\n\n" + table.strip() + "\n<!-- quick-table:end -->"
readme = re.sub(r"<!-- quick-table:start -->.*?<!-- quick-table:end -->", lambda _: block, readme, flags=re.S)
open("README.md", "w").write(readme)
PY
echo "README.md updated from $latest"
