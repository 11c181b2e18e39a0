using CsCheck;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Random shapes, pitches and options on every ISA path, float and double, against the double reference.</summary>
public class AttentionPropertyTests
{
    private static readonly Gen<AttentionCase> SingleHead =
        Gen.Select(Gen.Int[1, 300], Gen.Int[1, 300], Gen.Int[1, 160], Gen.Int[0, 160], Gen.Int[0, 3], Gen.Bool, Gen.Bool, Gen.Int[0, 3])
            .Select(Gen.Int[0, 4], Gen.Int[0, int.MaxValue], Gen.Double[0.4, 2.5], (t, sinkKind, seed, spread) =>
            {
                var (m, n, d, dv, pitch, gaussian, causal, scaleKind) = t;
                double? scale = scaleKind == 0 ? 0.3 : null;
                double? sink = sinkKind == 0 ? 0.7 : sinkKind == 1 ? -2.0 : null;
                return new AttentionCase(m, n, d, dv == 0 ? d : dv, 1, 1, pitch,
                    gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot, scale, spread * System.Math.Sqrt(d),
                    causal, sink, false, seed % 3 == 0 ? 3 : 1, seed);
            });

    private static readonly Gen<AttentionCase> MultiHead =
        Gen.Select(Gen.Int[1, 80], Gen.Int[1, 80], Gen.Int[1, 40], Gen.Int[1, 40], Gen.Int[0, 2], Gen.Bool, Gen.Bool, Gen.Int[0, 3])
            .Select(Gen.Int[0, int.MaxValue], (t, seed) =>
            {
                var (m, n, d, dv, pitch, gaussian, causal, layout) = t;
                (int heads, int kv) = layout switch { 0 => (4, 4), 1 => (4, 2), 2 => (6, 1), _ => (3, 3) };
                return new AttentionCase(m, n, d, dv, heads, kv, pitch,
                    gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot, null, 1.5 * System.Math.Sqrt(d),
                    causal, seed % 2 == 0 ? 0.25 : null, seed % 4 == 1, seed % 3 == 0 ? 4 : 1, seed);
            });

    /// <summary>Few queries: the decode row kernel (m ≤ lanes/8), with causal m &gt; n and m &lt; n, sinks, GQA and pitches.</summary>
    private static readonly Gen<AttentionCase> FewQueries =
        Gen.Select(Gen.Int[1, 9], Gen.Int[0, 300], Gen.Int[1, 140], Gen.Int[0, 140], Gen.Int[0, 3], Gen.Bool, Gen.Bool, Gen.Int[0, 3])
            .Select(Gen.Int[0, int.MaxValue], (t, seed) =>
            {
                var (m, n, d, dv, pitch, gaussian, causal, layout) = t;
                (int heads, int kv) = layout switch { 0 => (1, 1), 1 => (4, 2), 2 => (3, 1), _ => (2, 2) };
                return new AttentionCase(m, n, d, dv == 0 ? d : dv, heads, kv, pitch,
                    gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot, seed % 5 == 0 ? 0.5 : null, 1.2 * System.Math.Sqrt(d),
                    causal, seed % 3 == 0 ? -0.5 : null, seed % 4 == 1 && heads > 1, seed % 2 == 0 ? 3 : 1, seed);
            });

    /// <summary>Long rows and many queries: several 512-key chunks per row, K/V packed where rows are re-read (many query
    /// blocks per kv head), GQA and MQA, Gaussian keys far from the origin (the centring), causal m ≠ n, sinks and pitches.
    /// The work is capped (m·n·H·(d + dv) ≤ 2.5·10⁸) to keep the reference fast.</summary>
    private static readonly Gen<AttentionCase> Large =
        Gen.Select(Gen.Int[1, 1700], Gen.Int[0, 2600], Gen.Int[1, 136], Gen.Int[0, 136], Gen.Int[0, 3], Gen.Bool, Gen.Bool, Gen.Int[0, 5])
            .Select(Gen.Int[0, int.MaxValue], Gen.Int[0, 4], (t, seed, sinkKind) =>
            {
                var (m, n, d, dv, pitch, gaussian, causal, layout) = t;
                (int heads, int kv) = layout switch { 0 => (1, 1), 1 => (4, 2), 2 => (8, 1), 3 => (2, 2), 4 => (12, 4), _ => (3, 1) };
                dv = dv == 0 ? d : dv;
                while (m > 1 && (long)m * n * heads * (d + dv) > 250_000_000L) m /= 2;
                double? sink = sinkKind == 0 ? 0.7 : sinkKind == 1 ? -2.0 : null;
                return new AttentionCase(m, n, d, dv, heads, kv, pitch,
                    gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot, seed % 5 == 0 ? 0.5 : null,
                    (0.4 + seed % 7 * 0.3) * System.Math.Sqrt(d), causal, sink, seed % 4 == 1 && heads > 1, seed % 3 == 0 ? 2 : 1, seed,
                    gaussian && seed % 6 == 0 ? 40.0 : 0.0);
            });

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void LargeShapesMatchReference(IsaPath path, bool isDouble)
    {
        if (isDouble) Large.Sample(c => c.Check<double>(path), iter: 10, threads: 1);
        else Large.Sample(c => c.Check<float>(path), iter: 10, threads: 1);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void FewQueriesMatchReference(IsaPath path, bool isDouble)
    {
        if (isDouble) FewQueries.Sample(c => c.Check<double>(path), iter: 60, threads: 1);
        else FewQueries.Sample(c => c.Check<float>(path), iter: 60, threads: 1);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SingleHeadMatchesReference(IsaPath path, bool isDouble)
    {
        if (isDouble) SingleHead.Sample(c => c.Check<double>(path), iter: 60, threads: 1);
        else SingleHead.Sample(c => c.Check<float>(path), iter: 60, threads: 1);
    }

    /// <summary>Few query rows against strided K/V streamed from memory: partial blocks on one to three query vectors, the
    /// next tiles prefetched, and at V pitches of 4 KiB (float) and 8 KiB (double) with Hkv·dv = 1024 each V tile copied
    /// before the value step on one or two vectors; dense and causal (m ≠ n: the bottom-right band), GQA and sinks.</summary>
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void StreamedFewQueryBlocksMatchReference(IsaPath path, bool isDouble)
    {
        int seed = 31;
        foreach (var (m, n, d, dv, heads, kvHeads, causal) in new[]
        {
            (9, 700, 24, 128, 8, 8, false), (16, 600, 32, 128, 16, 8, true), (23, 300, 16, 64, 16, 16, false),
            (33, 500, 40, 128, 8, 8, true), (48, 260, 8, 256, 4, 4, false), (12, 1100, 64, 64, 16, 16, true),
        })
        {
            var c = new AttentionCase(m, n, d, dv, heads, kvHeads, 0, AttentionKernel.Dot, null, 0, causal,
                seed % 2 == 0 ? 0.5 : null, heads > kvHeads, seed % 3 == 0 ? 2 : 1, seed++);
            if (isDouble) c.Check<double>(path);
            else c.Check<float>(path);
        }
    }

    /// <summary>The estimators' shapes: d and dv from 1 to 5 (the AVX-512 float block fuses the exponentiation with the
    /// first min(dv, 4) value columns), full and partial tiles, both kernels, with and without the causal mask and sinks.</summary>
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SmallValueDimensionsMatchReference(IsaPath path, bool isDouble)
    {
        int seed = 17;
        foreach (int dv in new[] { 1, 2, 3, 4, 5 })
        {
            foreach (int d in new[] { 1, 2, 5 })
            {
                foreach (bool gaussian in new[] { false, true })
                {
                    bool causal = (dv + d) % 2 == 0;
                    var c = new AttentionCase(200 + 7 * dv, 300 + 11 * d, d, dv, 1, 1, dv % 2,
                        gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot, null, 0.8 * System.Math.Sqrt(d),
                        causal, dv == 3 ? 0.5 : null, false, 1, seed++);
                    if (isDouble) c.Check<double>(path);
                    else c.Check<float>(path);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MultiHeadAndGroupedQueryMatchReference(IsaPath path, bool isDouble)
    {
        if (isDouble) MultiHead.Sample(c => c.Check<double>(path), iter: 60, threads: 1);
        else MultiHead.Sample(c => c.Check<float>(path), iter: 60, threads: 1);
    }
}
