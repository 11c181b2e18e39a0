using System;
using System.Collections.Generic;
using FastKernelAttention;
using FastKernelAttention.Reference;

namespace FastKernelAttention.Benchmarks.Workloads;

/// <summary>One workload of issue 5 (float32, forward, batch 1, token-major Q [Lq × H·d], K and V [Lk × Hkv·d]).</summary>
/// <param name="Id">W1 … W7, with a suffix where one id has several shapes (W5-d8).</param>
/// <param name="Heads">H, the query heads.</param>
/// <param name="KeyValueHeads">Hkv, dividing H.</param>
/// <param name="QueryLength">Lq.</param>
/// <param name="KeyLength">Lk.</param>
/// <param name="HeadDim">d = dv.</param>
/// <param name="Causal">Bottom-right causal mask (the lower triangle when Lq = Lk).</param>
/// <param name="Gaussian">The Gaussian kernel with bandwidth h = √d instead of the scaled dot product.</param>
/// <param name="KeyValueType">How K and V are stored: "float32", or "bf16" / "f16" (fka's 16-bit overloads; Q and O stay float32).</param>
public sealed record Workload(string Id, int Heads, int KeyValueHeads, int QueryLength, int KeyLength, int HeadDim, bool Causal, bool Gaussian,
    string KeyValueType = "float32")
{
    /// <summary>K and V in a 16-bit format (bf16 or f16).</summary>
    public bool HalfPrecision => KeyValueType != "float32";

    /// <summary>Decode (Lq = 1): bandwidth-bound, reported as GB/s of K and V read.</summary>
    public bool Decode => QueryLength == 1;

    /// <summary>Flops 4·Lq·Lk·d·H, counting visible pairs only when causal (<see cref="FlopCount.Forward"/>).</summary>
    public double Flops => FlopCount.Forward(QueryLength, KeyLength, HeadDim, HeadDim, Causal, Heads);

    /// <summary>Bytes of K and V one call must read: 2·Lk·Hkv·d·4 (·2 for 16-bit K and V).</summary>
    public double KeyValueBytes => 2.0 * KeyLength * KeyValueHeads * HeadDim * (HalfPrecision ? 2 : sizeof(float));

    /// <summary>The Gaussian bandwidth h = √d (squared distances of N(0, I) rows are ≈ 2d, so logits are O(1)).</summary>
    public double Bandwidth => Math.Sqrt(HeadDim);

    /// <summary>Our call's options on <paramref name="threads"/> threads (kernel, bandwidth, causal mask).</summary>
    public AttentionOptions Options(int threads) => new()
    {
        Kernel = Gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot,
        Bandwidth = Gaussian ? Bandwidth : 0,
        Causal = Causal,
        MaxDegreeOfParallelism = threads,
    };

    /// <summary>A short shape description for the table.</summary>
    public string Shape => (Heads == KeyValueHeads ? $"H={Heads}" : $"H={Heads} Hkv={KeyValueHeads}")
        + (QueryLength == KeyLength ? $" L={QueryLength}" : $" Lq={QueryLength} Lk={KeyLength}")
        + $" d={HeadDim}" + (Causal ? " causal" : "") + (Gaussian ? " Gaussian" : "") + (HalfPrecision ? $" K/V {KeyValueType}" : "");

    /// <summary>Issue 5's workloads W1–W7; W7 is measured dense and causal (ONNX Runtime's GroupQueryAttention CPU kernel
    /// is causal only).</summary>
    public static IReadOnlyList<Workload> All { get; } =
    [
        new("W1", 8, 8, 1024, 1024, 64, Causal: false, Gaussian: false),
        new("W2", 8, 8, 1024, 1024, 64, Causal: true, Gaussian: false),
        new("W3", 1, 1, 4096, 4096, 64, Causal: false, Gaussian: false),
        new("W4", 32, 32, 1, 8192, 128, Causal: false, Gaussian: false),
        new("W4-bf16", 32, 32, 1, 8192, 128, Causal: false, Gaussian: false, KeyValueType: "bf16"),
        new("W4-f16", 32, 32, 1, 8192, 128, Causal: false, Gaussian: false, KeyValueType: "f16"),
        new("W5-d8", 1, 1, 4096, 4096, 8, Causal: false, Gaussian: false),
        new("W5-d16", 1, 1, 4096, 4096, 16, Causal: false, Gaussian: false),
        new("W6-d16", 1, 1, 4096, 4096, 16, Causal: false, Gaussian: true),
        new("W6-d64", 1, 1, 4096, 4096, 64, Causal: false, Gaussian: true),
        new("W7", 32, 8, 1024, 1024, 128, Causal: false, Gaussian: false),
        new("W7-causal", 32, 8, 1024, 1024, 128, Causal: true, Gaussian: false),
        new("X1", 32, 32, 16, 4096, 128, Causal: false, Gaussian: false),
        new("X2", 32, 8, 64, 4096, 128, Causal: false, Gaussian: false),
        new("X3", 32, 32, 4, 4096, 128, Causal: false, Gaussian: false),
        new("X4", 32, 32, 8, 4096, 128, Causal: false, Gaussian: false),
    ];
}
