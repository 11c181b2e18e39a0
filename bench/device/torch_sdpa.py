#!/usr/bin/env python3
"""PyTorch's CPU attention on the dense workloads of issue 5, for the side-by-side run on the 16-core device machine.

Times torch.nn.functional.scaled_dot_product_attention (PyTorch >= 2.0; older versions fall back to
softmax(q kᵀ / √d) v written out, and say so in the variant) on float32 [1, H, L, d] tensors, head-major and
contiguous (the layout PyTorch prefers), for each thread count given, and prints one line per measurement.
With --out it writes them as a summary file the .NET workloads table reads as its libtorch column
(bench/results/<cpu>/libtorch-summary.json: the fields of summary.json, impl "libtorch").

  python3 bench/device/torch_sdpa.py --threads 1,16 [--workloads W1,W3] [--out bench/results/<cpu>/libtorch-summary.json]

Each measurement: at least 0.3 s of warm-up, then the median of 15 samples, a sample being the mean over a batch of
calls that takes at least 20 ms. GFLOP/s counts 4·Lq·Lk·d·H, as the .NET table does. Each workload's largest
|difference| from the same attention computed in float64 by PyTorch is printed; the summary's max_abs_diff (which the
.NET table reads as "against fka") is left null.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# id: (H, Lq, Lk, d, causal); the dense workloads of bench/FastKernelAttention.Benchmarks/Workloads/Workload.cs.
WORKLOADS = {
    "W1": (8, 1024, 1024, 64, False),
    "W2": (8, 1024, 1024, 64, True),
    "W3": (1, 4096, 4096, 64, False),
    "W5-d8": (1, 4096, 4096, 8, False),
    "W5-d16": (1, 4096, 4096, 16, False),
}

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def attention(q, k, v, causal):
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if causal:  # Lq == Lk in every causal workload here: the top-left and bottom-right masks agree
        mask = torch.ones(scores.shape[-2], scores.shape[-1], dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def flops(h, lq, lk, d, causal):
    pairs = lq * (lq + 1) // 2 if causal else lq * lk  # visible pairs (Lq == Lk when causal)
    return 4.0 * pairs * d * h


def median_ms(call):
    start = time.perf_counter()
    while time.perf_counter() - start < 0.3:
        call()
    start = time.perf_counter()
    call()
    batch = max(1, int(0.02 / max(time.perf_counter() - start, 1e-6)))
    samples = []
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter() - start) / batch * 1e3)
    return statistics.median(samples), len(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="comma-separated thread counts")
    parser.add_argument("--workloads", default="W1,W3", help=f"comma-separated ids of {', '.join(WORKLOADS)}")
    parser.add_argument("--out", help="write the measurements as a summary JSON file here")
    args = parser.parse_args()

    ids = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in ids if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    threads = [int(t) for t in args.threads.split(",")]
    variant = f"PyTorch {torch.__version__} " + (
        "F.scaled_dot_product_attention" if HAS_SDPA else "softmax(q kT/sqrt(d)) v (no SDPA before 2.0)"
    ) + ", [1, H, L, d] contiguous, python"
    cpu = getattr(torch.backends, "cpu", None)
    capability = cpu.get_cpu_capability() if hasattr(cpu, "get_cpu_capability") else "unknown"
    print(f"# {variant}; CPU capability: {capability}")

    entries = []
    generator = torch.Generator().manual_seed(5)
    for wid in ids:
        h, lq, lk, d, causal = WORKLOADS[wid]
        q, k, v = (torch.randn(1, h, length, d, generator=generator) for length in (lq, lk, lk))
        with torch.no_grad():
            exact = attention(q.double(), k.double(), v.double(), causal)
            diff = (attention(q, k, v, causal).double() - exact).abs().max().item()
            for t in threads:
                torch.set_num_threads(t)
                ms, runs = median_ms(lambda: attention(q, k, v, causal))
                gflops = flops(h, lq, lk, d, causal) / ms / 1e6
                print(f"{wid} threads {t}: {ms:.3f} ms, {gflops:.1f} GFLOP/s (max abs diff from float64 {diff:.1e})", flush=True)
                entries.append({"workload": wid, "impl": "libtorch", "threads": t, "ms": round(ms, 4),
                                "gflops": round(gflops, 2), "gbps": None, "variant": variant,
                                "max_abs_diff": None, "runs": runs})
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
