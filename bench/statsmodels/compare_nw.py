#!/usr/bin/python3
"""Nadaraya-Watson bandwidth selection: statsmodels KernelReg(reg_type='lc', bw='cv_ls') against
FastKernelAttention's NadarayaWatson.SelectBandwidth on the same data (n = 400, d = 3, fixed seed).

Run with Debian's python (/usr/bin/python3) after `apt-get install -y python3-statsmodels python3-numpy`;
this script installs nothing. See README.md beside it.
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np
import statsmodels
from statsmodels.nonparametric.kernel_regression import KernelReg

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def make_data(n, d, seed):
    """X ~ U(0,1)^d; y = sin(2π x1) + 2 (x2 − 1/2)² + x3/2 + 0.3 ε (only the first three columns enter y)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, d))
    y = np.sin(2 * np.pi * x[:, 0]) + 0.3 * rng.standard_normal(n)
    if d > 1:
        y += 2.0 * (x[:, 1] - 0.5) ** 2
    if d > 2:
        y += 0.5 * x[:, 2]
    return x, y


def loo_cv(x, y, bw):
    """MATH §6: CV(h) = (1/n) Σ_i (y_i − ĝ₋ᵢ(x_i))², Gaussian product kernel, computed in double with the diagonal removed
    and the row maximum subtracted before exponentiating."""
    h = np.abs(np.asarray(bw, dtype=float))
    z = x / h
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    s = -0.5 * d2
    np.fill_diagonal(s, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    w = np.exp(s)
    g = (w @ y) / w.sum(axis=1)
    return float(np.mean((y - g) ** 2))


def cpu_info(field):
    """The value of the first /proc/cpuinfo line whose key is `field`, or None (as the benchmark's QuickTable.CpuInfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, colon, value = line.partition(":")
                if colon and key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_name():
    return cpu_info("model name") or platform.processor() or "unknown-cpu"


def slug(name):
    """The results folder of this CPU, named as the benchmark's QuickTable.ResultsFolder names it: a generic model name
    (no digits, as virtual machines report) gets the CPU family and model appended; every other character than a-z0-9
    becomes '-'."""
    family, model = cpu_info("cpu family"), cpu_info("model")
    if not re.search(r"[0-9]", name) and family and model:
        name += f" family {family} model {model}"
    return re.sub(r"[^a-z0-9]", "-", name.lower()).strip("-")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20250611)
    parser.add_argument("--repeats", type=int, default=3, help="statsmodels timing runs (median reported)")
    parser.add_argument("--dotnet", default="dotnet")
    parser.add_argument("--emit-csharp", action="store_true",
                        help="print the data, statsmodels' bandwidths and its CV as C# constants (for the unit test) and stop")
    args = parser.parse_args()

    if args.emit_csharp:
        x, y = make_data(args.n, args.d, args.seed)
        model = KernelReg(endog=y, exog=x, var_type="c" * args.d, reg_type="lc", bw="cv_ls")
        bw = np.abs(np.asarray(model.bw, dtype=float))
        r = lambda v: repr(float(v))
        print(f"// compare_nw.py --emit-csharp --n {args.n} --d {args.d} --seed {args.seed} (statsmodels {statsmodels.__version__})")
        print("private static readonly double[,] StatsmodelsX =\n{")
        for row in x:
            print("    { " + ", ".join(r(v) for v in row) + " },")
        print("};")
        print("private static readonly double[] StatsmodelsY =\n{\n    " + ", ".join(r(v) for v in y) + ",\n};")
        print("private static readonly double[] StatsmodelsBandwidths = { " + ", ".join(r(b) for b in bw) + " };")
        print(f"private const double StatsmodelsCv = {r(loo_cv(x, y, bw))};")
        return 0

    x, y = make_data(args.n, args.d, args.seed)
    csv_path = os.path.join(HERE, f"nw_data_n{args.n}_d{args.d}_seed{args.seed}.csv")
    np.savetxt(csv_path, np.column_stack([x, y]), delimiter=",", fmt="%.17g",
               header=",".join([f"x{k + 1}" for k in range(args.d)] + ["y"]), comments="")

    times = []  # statsmodels, one fit per entry
    bw = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        model = KernelReg(endog=y, exog=x, var_type="c" * args.d, reg_type="lc", bw="cv_ls")
        times.append(time.perf_counter() - start)
        bw = np.abs(np.asarray(model.bw, dtype=float))
    sm_ms = 1000.0 * float(np.median(times))
    sm_min_ms = 1000.0 * float(np.min(times))
    sm_cv = loo_cv(x, y, bw)
    h0 = 1.06 * x.std(axis=0) * args.n ** (-1.0 / (4 + args.d))
    print(f"statsmodels {statsmodels.__version__}: bandwidths {' '.join(f'{b:.17g}' for b in bw)}")
    print(f"statsmodels: CV {sm_cv:.17g}  time {sm_ms:.1f} ms (median of {args.repeats})")
    print(f"normal reference h0 {' '.join(f'{b:.17g}' for b in h0)}  CV(h0) {loo_cv(x, y, h0):.17g}")

    project = os.path.join(ROOT, "bench", "FastKernelAttention.NwCompare")
    cmd = [args.dotnet, "run", "-c", "Release", "--project", project, "--", csv_path]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    print(out, end="")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    ours_bw = np.array([float(v) for v in fields["bandwidths"].split()])
    ours_cv_reported = float(fields["cv"])
    ours_ms = float(fields["ms"])
    ours_min_ms = float(fields["ms_min"])
    ours_cv = loo_cv(x, y, ours_bw)
    isa = fields.get("isa", "?").strip()
    print(f"ours: CV (recomputed in numpy) {ours_cv:.17g}  reported {ours_cv_reported:.17g}  time {ours_ms:.3f} ms")
    ratio = sm_ms / ours_ms
    rel = (ours_cv - sm_cv) / sm_cv
    print(f"speed ratio statsmodels/ours (medians): {ratio:.0f}x (fastest runs {sm_min_ms / ours_min_ms:.0f}x)   CV relative difference (ours − sm)/sm: {rel:.3e}")

    cpu = cpu_name()
    out_dir = os.path.join(ROOT, "bench", "results", slug(cpu))
    os.makedirs(out_dir, exist_ok=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = os.path.join(out_dir, "nw-vs-statsmodels.md")
    with open(report, "w") as f:
        f.write("# Nadaraya–Watson bandwidth selection: FastKernelAttention vs statsmodels\n\n")
        f.write(f"Produced by `bench/statsmodels/compare_nw.py` on {time.strftime('%Y-%m-%d')} (commit {commit or '?'}, with local changes).\n\n")
        f.write(f"- CPU: {cpu}; our ISA path: {isa}; both single-threaded.\n")
        f.write(f"- Data: n = {args.n}, d = {args.d}, seed {args.seed}: X ~ U(0,1)^d, "
                "y = sin(2πx₁) + 2(x₂ − ½)² + x₃/2 + 0.3ε.\n")
        f.write(f"- statsmodels {statsmodels.__version__}, numpy {np.__version__}, Python {platform.python_version()}: "
                "`KernelReg(y, X, var_type='ccc', reg_type='lc', bw='cv_ls')` (Nelder–Mead from the normal-reference rule), "
                f"median of {args.repeats} runs.\n")
        f.write("- Ours: `NadarayaWatson.SelectBandwidth` (double, per-dimension, 3 bandwidths), median of several runs after "
                "a time-based warm-up.\n- Both CVs below are recomputed by the script in numpy (MATH §6 definition).\n\n")
        f.write("| | bandwidths | LOO CV | median time (ms) | fastest run (ms) |\n|---|---|---|---|---|\n")
        f.write(f"| statsmodels | {', '.join(f'{b:.6g}' for b in bw)} | {sm_cv:.12g} | {sm_ms:.1f} | {sm_min_ms:.1f} |\n")
        f.write(f"| FastKernelAttention | {', '.join(f'{b:.6g}' for b in ours_bw)} | {ours_cv:.12g} | {ours_ms:.2f} | {ours_min_ms:.2f} |\n\n")
        f.write(f"Load average at the end of the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} logical CPUs.\n\n")
        f.write(f"Speed ratio of the medians (statsmodels / ours): **{ratio:.0f}×** (fastest runs: {sm_min_ms / ours_min_ms:.0f}×). CV relative difference (ours − statsmodels)/statsmodels: "
                f"**{rel:.3e}** (negative: ours is lower).\n")
    print(f"wrote {os.path.relpath(report, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
