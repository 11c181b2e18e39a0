using System;
using System.Numerics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Extreme and special inputs on every ISA path, float and double, against the double reference: huge logits, a
/// dominant key, equal keys, tiny and huge bandwidths, a large common offset, empty and fully masked rows, single rows,
/// LSE-only calls, sizes around the vector widths, and NaN/∞ confined to the rows (and columns) that see them.</summary>
public class ExtremeInputTests
{
    private static void Both(bool isDouble, Action<IsaPath> asFloat, Action<IsaPath> asDouble, IsaPath path)
    {
        if (isDouble) asDouble(path);
        else asFloat(path);
    }

    // ---------------------------------------------------------------- huge logits, dominant key, equal keys

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void LogitsOfTenThousand(IsaPath path, bool isDouble) => Both(isDouble, HugeLogits<float>, HugeLogits<double>, path);

    private static void HugeLogits<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Scale 1e3 on uniform[−1, 1] data with d = 30 (‖q‖² ≈ 10); key n−2 is +q₀ and key n−1 is −q₀, so row 0 has logits
        // of about ±1e4. The weights are then a hard max. The reference computes the logits exactly from the same rounded
        // inputs, while T carries |δs| ≤ γ_{d+2}·scale·Σ|q_k k_k| (MATH §14; ≈ 2e-2 in float at 1e4, ≈ 4e-11 in double),
        // which moves the weights of near-tied top keys: the comparison adds that derived bound (DenseCase.Check).
        const int M = 37, N = 91, D = 30, Dv = 5;
        var random = new Random(1);
        T[] q = DenseCase.Uniform<T>(random, M * D), k = DenseCase.Uniform<T>(random, N * D), v = DenseCase.Uniform<T>(random, N * Dv);
        for (int c = 0; c < D; c++)
        {
            k[(N - 2) * D + c] = q[c];
            k[(N - 1) * D + c] = -q[c];
        }
        double logitError = DenseCase.DotLogitError(q, k, M, N, D, 1e3);
        foreach (var options in new[]
        {
            new AttentionOptions { Scale = 1e3 },
            new AttentionOptions { Scale = 1e3, Causal = true },
            new AttentionOptions { Scale = 1e3, SinkLogit = 5000 },
            new AttentionOptions { Scale = 1e3, MaxDegreeOfParallelism = 2 },
        })
        {
            var (o, lse) = DenseCase.Check(path, q, k, v, M, N, D, Dv, options, logitError: logitError);
            Assert.All(lse, x => Assert.True(T.IsFinite(x)));
            if (!options.Causal) // causal row 0 sees keys 0..n−m only
            {
                Assert.True(double.CreateTruncating(lse[0]) > 5000, $"row 0 should see a logit of about 1e4, LSE {lse[0]}");
                // Row 0's top key (+q₀) wins by thousands of nats: O₀ is v_{n−2}.
                for (int c = 0; c < Dv; c++) Assert.Equal(double.CreateTruncating(v[(N - 2) * Dv + c]), double.CreateTruncating(o[c]), 12);
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void LogitsBeyondTheOffsetExpRange(IsaPath path, bool isDouble) => Both(isDouble, BeyondOffsetRange<float>, BeyondOffsetRange<double>, path);

    private static void BeyondOffsetRange<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // The AVX-512 float lane kernel folds the running max into its exp (VectorExp.TryOffset) while every lane of a pair of
        // query vectors has |max| < 2^17 in base 2 (≈ 9.1e4 nats) and then exponentiates inside the first value step; a pair
        // beyond it exponentiates s − m as before. Rows 0–15 (block 0's first pair) and 104–111 (block 1's second pair) have
        // logits of about ±2e5, the others ordinary ones: in blocks 0 and 1 one pair falls back while the other defers and
        // then finishes on its own, block 2 defers in full, and dv = 7 runs the fused columns 0–3 beside the remainder.
        const int M = 150, N = 200, D = 16, Dv = 7;
        var random = new Random(7);
        T[] q = DenseCase.Uniform<T>(random, M * D), k = DenseCase.Uniform<T>(random, N * D), v = DenseCase.Uniform<T>(random, N * Dv);
        for (int i = 0; i < M; i++)
        {
            if (i < 16 || (i >= 104 && i < 112))
                for (int c = 0; c < D; c++) q[i * D + c] *= T.CreateTruncating(3e5);
        }
        double logitError = DenseCase.DotLogitError(q, k, M, N, D, 1 / Math.Sqrt(D));
        foreach (var options in new[]
        {
            default,
            new AttentionOptions { Causal = true },
            new AttentionOptions { MaxDegreeOfParallelism = 2 },
        })
        {
            var (_, lse) = DenseCase.Check(path, q, k, v, M, N, D, Dv, options, logitError: logitError);
            Assert.True(double.CreateTruncating(lse[0]) > 1e5, $"row 0 should see logits of about 2e5, LSE {lse[0]}");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SingleDominantKey(IsaPath path, bool isDouble) => Both(isDouble, DominantKey<float>, DominantKey<double>, path);

    private static void DominantKey<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Every query has positive coordinates; key 17 is 40·(1, …, 1), the others tiny: key 17's logit exceeds the rest by
        // hundreds, so O_i = v₁₇ for every row (m = 3: the row kernel; m = 100: the lane kernel).
        foreach (int m in new[] { 3, 100 })
        {
            const int N = 70, D = 8, Dv = 3;
            var random = new Random(2 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D, 0.5, 1), k = DenseCase.Uniform<T>(random, N * D, 0, 0.01), v = DenseCase.Uniform<T>(random, N * Dv);
            for (int c = 0; c < D; c++) k[17 * D + c] = T.CreateTruncating(40);
            // Logits up to 40·8/√8 ≈ 113: LSE of that size carries the dot rounding γ_{d+2}·scale·Σ|q_k k_k| (derived, not tuned).
            double logitError = DenseCase.DotLogitError(q, k, m, N, D, 1 / Math.Sqrt(D));
            var (o, _) = DenseCase.Check(path, q, k, v, m, N, D, Dv, default, logitError: logitError);
            double tolerance = Tolerance.Output(typeof(T) == typeof(double));
            for (int i = 0; i < m; i++)
                for (int c = 0; c < Dv; c++)
                    Assert.True(Math.Abs(double.CreateTruncating(o[i * Dv + c] - v[17 * Dv + c])) <= tolerance, $"{path} O[{i},{c}] = {o[i * Dv + c]}, v₁₇ = {v[17 * Dv + c]}");
            DenseCase.Check(path, q, k, v, m, N, D, Dv, new AttentionOptions { Causal = true }, logitError: logitError);
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void AllEqualKeysGiveTheMeanOfV(IsaPath path, bool isDouble) => Both(isDouble, EqualKeys<float>, EqualKeys<double>, path);

    private static void EqualKeys<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int N = 70, D = 8, Dv = 3;
        foreach (int m in new[] { 1, 9, 100 })
        {
            var random = new Random(3 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D), v = DenseCase.Uniform<T>(random, N * Dv);
            T[] k = new T[N * D];
            Array.Fill(k, T.CreateTruncating(0.25));
            foreach (var options in new[] { default, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 0.7 } })
            {
                // Equal keys give equal logits, so w = 1/n and O_i = mean of V, LSE_i = s_i + log n.
                var (o, _) = DenseCase.Check(path, q, k, v, m, N, D, Dv, options);
                double tolerance = Tolerance.Output(typeof(T) == typeof(double));
                for (int c = 0; c < Dv; c++)
                {
                    double mean = 0;
                    for (int j = 0; j < N; j++) mean += double.CreateTruncating(v[j * Dv + c]);
                    mean /= N;
                    for (int i = 0; i < m; i++)
                        Assert.True(Math.Abs(double.CreateTruncating(o[i * Dv + c]) - mean) <= tolerance, $"{path} {options.Kernel} O[{i},{c}] = {o[i * Dv + c]}, mean {mean}");
                }
            }
        }
    }

    // ---------------------------------------------------------------- Gaussian extremes and the large offset

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void GaussianBandwidthExtremes(IsaPath path, bool isDouble) => Both(isDouble, Bandwidths<float>, Bandwidths<double>, path);

    private static void Bandwidths<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (var (m, d) in new[] { (5, 3), (21, 3), (100, 17) })
        {
            const int N = 33, Dv = 2;
            var random = new Random(4 + m);
            T[] q = DenseCase.Uniform<T>(random, m * d), k = DenseCase.Uniform<T>(random, N * d), v = DenseCase.Uniform<T>(random, N * Dv);
            // h = 1e-3: nearest-neighbour weights (direct differences keep ‖q − k‖² accurate); h = 1e3: nearly uniform.
            foreach (double h in new[] { 1e-3, 1e3 })
            {
                DenseCase.Check(path, q, k, v, m, N, d, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = h });
                DenseCase.Check(path, q, k, v, m, N, d, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = h, Causal = true, SinkLogit = -3 });
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void GaussianAtALargeOffset(IsaPath path, bool isDouble) => Both(isDouble, LargeOffset<float>, LargeOffset<double>, path);

    private static void LargeOffset<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Every coordinate + 1000 (the stored values are what the reference sees): the per-call centring keeps the
        // expansion exact, so the contract holds unchanged (uncentred float would be off by ~1e-1 in the logits).
        foreach (int m in new[] { 4, 21, 100 })
        {
            const int N = 33, D = 3, Dv = 2;
            var random = new Random(5 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D, 999, 1001), k = DenseCase.Uniform<T>(random, N * D, 999, 1001), v = DenseCase.Uniform<T>(random, N * Dv);
            foreach (double h in new[] { 0.5, 1, 20 })
            {
                DenseCase.Check(path, q, k, v, m, N, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = h });
                DenseCase.Check(path, q, k, v, m, N, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = h, Causal = true });
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MathSection2LargeOffsetExample(IsaPath path, bool isDouble) => Both(isDouble, Section2<float>, Section2<double>, path);

    private static void Section2<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // d = 1, h = 1, q = 10000.25, keys {10000, 10001}, V = I₂: D = (0.0625, 0.5625), so w₀ = sigmoid(0.25) = 0.562177
        // and w₁ = 0.437823 exactly, float included (all inputs are exact in float and centring at 10000.5 is exact);
        // uncentred float would give (0.000335, 0.999665). LSE = log(e^−1/32 + e^−9/32). Every row is the same query
        // (m = 1: the row kernel; m = 100: the lane kernel).
        double w0 = 1 / (1 + Math.Exp(-0.25)), lseExact = Math.Log(Math.Exp(-0.03125) + Math.Exp(-0.28125));
        bool isDouble = typeof(T) == typeof(double);
        foreach (int m in new[] { 1, 100 })
        {
            var q = new T[m];
            Array.Fill(q, T.CreateTruncating(10000.25));
            T[] k = { T.CreateTruncating(10000), T.CreateTruncating(10001) }, v = { T.One, T.Zero, T.Zero, T.One };
            var (o, lse) = DenseCase.Check(path, q, k, v, m, 2, 1, 2, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 });
            for (int i = 0; i < m; i++)
            {
                Assert.True(Math.Abs(double.CreateTruncating(o[2 * i]) - w0) <= Tolerance.Output(isDouble), $"{path} w₀ = {o[2 * i]}, exact {w0}");
                Assert.True(Math.Abs(double.CreateTruncating(o[2 * i + 1]) - (1 - w0)) <= Tolerance.Output(isDouble), $"{path} w₁ = {o[2 * i + 1]}, exact {1 - w0}");
                Assert.True(Math.Abs(double.CreateTruncating(lse[i]) - lseExact) <= Tolerance.LogSumExp(isDouble), $"{path} LSE = {lse[i]}, exact {lseExact}");
            }
        }
    }

    // ---------------------------------------------------------------- empty, fully masked, single rows, dv = 0

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void EmptyRows(IsaPath path, bool isDouble) => Both(isDouble, Empty<float>, Empty<double>, path);

    private static void Empty<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int D = 4, Dv = 3;
        foreach (int m in new[] { 1, 5, 100 })
        {
            var random = new Random(6 + m);
            T[] q = DenseCase.Uniform<T>(random, m * 2 * D);
            foreach (var kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
            {
                // n = 0: every row empty, O = 0 and LSE = −∞; with a sink O = 0 and LSE = s₀ (MATH §3).
                var options = new AttentionOptions { Kernel = kernel, Bandwidth = kernel == AttentionKernel.Gaussian ? 1 : 0 };
                var (o, lse) = DenseCase.Check(path, q, Array.Empty<T>(), Array.Empty<T>(), m, 0, 2 * D, Dv, options);
                AssertEmpty(o, lse, T.NegativeInfinity);
                (o, lse) = DenseCase.Check(path, q, Array.Empty<T>(), Array.Empty<T>(), m, 0, 2 * D, Dv, options with { SinkLogit = 0.75 });
                // LSE = s₀ within the contract (checked by DenseCase.Check); exactness is EmptyRowsWithASinkGiveExactlyTheSink.
                Assert.All(o, x => Assert.True(x == T.Zero));
                // Multi-head with per-head sinks (−∞ = none for that head).
                T[] sinks = { T.CreateTruncating(-2.5), T.NegativeInfinity };
                (o, lse) = DenseCase.Check(path, q, Array.Empty<T>(), Array.Empty<T>(), m, 0, D, Dv, options, heads: 2, kvHeads: 1, sinks: sinks);
                Assert.All(o, x => Assert.True(x == T.Zero));
                for (int i = 0; i < m; i++)
                {
                    Assert.Equal(sinks[0], lse[i]);
                    Assert.Equal(T.NegativeInfinity, lse[m + i]);
                }
            }
        }
        // Causal with m > n: rows i < m − n see no key (MATH §3: m = 4, n = 2); the others match the reference.
        foreach (int m in new[] { 4, 40, 100 })
        {
            int n = m / 2;
            var random = new Random(7 + m);
            T[] q = DenseCase.Uniform<T>(random, m * 5), k = DenseCase.Uniform<T>(random, n * 5), v = DenseCase.Uniform<T>(random, n * Dv);
            foreach (var options in new[]
            {
                new AttentionOptions { Causal = true },
                new AttentionOptions { Causal = true, Kernel = AttentionKernel.Gaussian, Bandwidth = 0.8 },
                new AttentionOptions { Causal = true, SinkLogit = -1 },
            })
            {
                var (o, lse) = DenseCase.Check(path, q, k, v, m, n, 5, Dv, options);
                T emptyLse = options.SinkLogit is double s ? T.CreateTruncating(s) : T.NegativeInfinity;
                AssertEmpty(o.AsSpan(0, (m - n) * Dv).ToArray(), lse.AsSpan(0, m - n).ToArray(), emptyLse);
                for (int i = m - n; i < m; i++) Assert.True(T.IsFinite(lse[i]));
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void EmptyRowsWithASinkGiveExactlyTheSink(IsaPath path, bool isDouble) => Both(isDouble, EmptyWithSink<float>, EmptyWithSink<double>, path);

    private static void EmptyWithSink<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // MATH §3: a row with no visible key and a sink s₀ has O = 0 and LSE = s₀ — the sink is the only term of the sum,
        // so nothing needs rounding (n = 0; and causal m > n, whose first m − n rows are empty).
        foreach (var kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
        {
            foreach (int m in new[] { 1, 5, 100 })
            {
                var random = new Random(15 + m);
                T[] q = DenseCase.Uniform<T>(random, m * 4);
                var options = new AttentionOptions { Kernel = kernel, Bandwidth = kernel == AttentionKernel.Gaussian ? 1 : 0, SinkLogit = 0.75 };
                var (o, lse) = DenseCase.Run(path, q, Array.Empty<T>(), Array.Empty<T>(), m, 0, 4, 3, options);
                for (int i = 0; i < m; i++)
                    Assert.True(lse[i] == T.CreateTruncating(0.75), $"{path} {typeof(T).Name} {kernel} n = 0, m = {m}: LSE[{i}] = {lse[i]:R}, expected s₀ = 0.75 exactly");
                Assert.All(o, x => Assert.True(x == T.Zero));
                T[] k = DenseCase.Uniform<T>(random, 2 * 4), v = DenseCase.Uniform<T>(random, 2 * 3);
                (o, lse) = DenseCase.Run(path, q, k, v, m, 2, 4, 3, options with { Causal = true });
                for (int i = 0; i < m - 2; i++)
                    Assert.True(lse[i] == T.CreateTruncating(0.75), $"{path} {typeof(T).Name} {kernel} causal m = {m} > n = 2: LSE[{i}] = {lse[i]:R}, expected s₀ = 0.75 exactly");
            }
        }
    }

    private static void AssertEmpty<T>(T[] o, T[] lse, T expectedLse)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Assert.All(o, x => Assert.True(x == T.Zero, $"an empty row's output must be 0, got {x}"));
        Assert.All(lse, x => Assert.Equal(expectedLse, x));
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void FullyMaskedRows(IsaPath path, bool isDouble) => Both(isDouble, FullyMasked<float>, FullyMasked<double>, path);

    private static void FullyMasked<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Every key dropped by a log-weight of −∞ (π_j = 0, the estimators' hook), and the leave-one-out mask with n = 1:
        // every row sees no key, so O = 0 and LSE = −∞ (s₀ with a sink).
        const int N = 20, D = 6, Dv = 3;
        foreach (int m in new[] { 1, 100 })
        {
            var random = new Random(8 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, N * D), v = DenseCase.Uniform<T>(random, N * Dv);
            var dropAll = new T[N];
            Array.Fill(dropAll, T.NegativeInfinity);
            foreach (var options in new[] { default, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1, Causal = true }, new AttentionOptions { SinkLogit = 2 } })
            {
                var o = new T[m * Dv];
                var lse = new T[m];
                Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, m, D), new ReadOnlySpan2D<T>(k, N, D), new ReadOnlySpan2D<T>(v, N, Dv),
                    new Span2D<T>(o, m, Dv), 1, 1, options, lse, default, dropAll, false, default, false);
                AssertEmpty(o, lse, options.SinkLogit is double s ? T.CreateTruncating(s) : T.NegativeInfinity);
            }
            // n = m = 1 with the diagonal excluded.
            var o1 = new T[Dv];
            var lse1 = new T[1];
            Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, 1, D), new ReadOnlySpan2D<T>(k, 1, D), new ReadOnlySpan2D<T>(v, 1, Dv),
                new Span2D<T>(o1, 1, Dv), 1, 1, default, lse1, default, default, true, default, false);
            AssertEmpty(o1, lse1, T.NegativeInfinity);
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SingleQueryRows(IsaPath path, bool isDouble)
    {
        int seed = 100;
        foreach (int n in new[] { 1, 2, 17, 64, 65, 200, 1100 })
        {
            foreach (var (heads, kvHeads) in new[] { (1, 1), (4, 2), (3, 1) })
            {
                foreach (var kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
                {
                    seed++;
                    var c = new AttentionCase(1, n, 1 + seed % 37, seed % 7, heads, kvHeads, seed % 3, kernel, seed % 2 == 0 ? null : 0.3,
                        3, seed % 4 == 0, seed % 5 == 0 ? -0.5 : null, heads > 1 && seed % 3 == 0, 1, seed);
                    if (isDouble) c.Check<double>(path); else c.Check<float>(path);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void LogSumExpOnlyCalls(IsaPath path, bool isDouble)
    {
        // dv = 0: no output columns, only the LSE.
        int seed = 200;
        foreach (int m in new[] { 1, 7, 100 })
        {
            foreach (var (heads, kvHeads) in new[] { (1, 1), (4, 2) })
            {
                foreach (var kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
                {
                    seed++;
                    var c = new AttentionCase(m, 90, 13, 0, heads, kvHeads, seed % 2, kernel, null, 2, seed % 4 < 2, seed % 3 == 0 ? 0.25 : null, false, 1, seed);
                    if (isDouble) c.Check<double>(path); else c.Check<float>(path);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SizesAroundTheVectorWidths(IsaPath path, bool isDouble)
    {
        int[] sizes = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129 };
        int seed = 300;
        foreach (int size in sizes)
        {
            // headDim, keyCount and queryCount each swept around the widths, the others fixed and odd.
            foreach (var (m, n, d) in new[] { (5, 9, size), (7, size, 5), (size, 11, 3), (size, size, size) })
            {
                seed++;
                var kernel = seed % 3 == 0 ? AttentionKernel.Gaussian : AttentionKernel.Dot;
                var c = new AttentionCase(m, n, d, size % 5 + 1, 1, 1, seed % 2, kernel, null, Math.Sqrt(d), seed % 2 == 1, seed % 4 == 0 ? 0.5 : null, false, 1, seed);
                if (isDouble) c.Check<double>(path); else c.Check<float>(path);
            }
        }
    }

    // ---------------------------------------------------------------- NaN and ∞

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void NaNInAQueryRowStaysInThatRow(IsaPath path, bool isDouble) => Both(isDouble, NaNQuery<float>, NaNQuery<double>, path);

    private static void NaNQuery<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int D = 6, Dv = 4;
        foreach (int m in new[] { 1, 3, 100 })
        {
            int n = 50, row = m / 2;
            var random = new Random(9 + m);
            T[] q = DenseCase.Uniform<T>(random, m * 2 * D), k = DenseCase.Uniform<T>(random, n * D), v = DenseCase.Uniform<T>(random, n * Dv);
            q[row * 2 * D + D + 2] = T.NaN; // query row `row`, head 1
            foreach (var options in new[]
            {
                default,
                new AttentionOptions { Causal = true, SinkLogit = 0.5 },
                new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 0.7 },
                new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e-3 }, // needs direct differences
            })
            {
                // Single head (d = 2·D): row `row` is NaN, nothing else.
                var (o, lse) = DenseCase.Check(path, q, Widen(k, n, D), v, m, n, 2 * D, Dv, options, label: "single head");
                for (int i = 0; i < m; i++)
                {
                    Assert.Equal(i == row, T.IsNaN(lse[i]));
                    for (int c = 0; c < Dv; c++) Assert.Equal(i == row, T.IsNaN(o[i * Dv + c]));
                }
                // Two heads sharing one kv head: only head 1 of that row.
                (o, lse) = DenseCase.Check(path, q, k, v, m, n, D, Dv, options, heads: 2, kvHeads: 1, label: "two heads");
                for (int i = 0; i < m; i++)
                {
                    for (int h = 0; h < 2; h++)
                    {
                        bool affected = i == row && h == 1;
                        Assert.Equal(affected, T.IsNaN(lse[h * m + i]));
                        for (int c = 0; c < Dv; c++) Assert.Equal(affected, T.IsNaN(o[i * 2 * Dv + h * Dv + c]));
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void NaNInAQueryRowLeavesTheOtherRowsAccurate(IsaPath path, bool isDouble) => Both(isDouble, NaNQueryClusters<float>, NaNQueryClusters<double>, path);

    private static void NaNQueryClusters<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Keys in two clusters at ±60 along the first axis, h = 1, queries near the clusters: the data sit far from their
        // mean (R ≈ 120), so in float the expansion's logit error u·R²/(2h²) ≈ 4e-4 exceeds the 1e-4 limit and the kernel
        // must use direct differences (MATH §2). A NaN in one query row must leave that choice — and every other row —
        // unchanged: the other rows still meet the contract.
        const int N = 40, D = 4, Dv = 3;
        foreach (int m in new[] { 3, 100 })
        {
            var random = new Random(14 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, N * D), v = DenseCase.Uniform<T>(random, N * Dv);
            for (int j = 0; j < N; j++) k[j * D] += T.CreateTruncating(j % 2 == 0 ? 60 : -60);
            for (int i = 0; i < m; i++) q[i * D] += T.CreateTruncating(i % 2 == 0 ? 60 : -60);
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 };
            DenseCase.Check(path, q, k, v, m, N, D, Dv, options, label: "clusters");
            q[1 * D + 3] = T.NaN;
            var (_, lse) = DenseCase.Check(path, q, k, v, m, N, D, Dv, options, label: "clusters, NaN in query row 1");
            Assert.True(T.IsNaN(lse[1]));
        }
    }

    private static T[] Widen<T>(T[] k, int n, int d)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var wide = new T[n * 2 * d];
        for (int j = 0; j < n; j++)
            for (int c = 0; c < 2 * d; c++)
                wide[j * 2 * d + c] = k[j * d + c % d] * T.CreateTruncating(c < d ? 1 : -0.5);
        return wide;
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void NaNInAMaskedValueDoesNotSpread(IsaPath path, bool isDouble) =>
        Both(isDouble, p => NaNMasked<float>(p, inKey: false), p => NaNMasked<double>(p, inKey: false), path);

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void NaNInAMaskedKeyDoesNotSpread(IsaPath path, bool isDouble) =>
        Both(isDouble, p => NaNMasked<float>(p, inKey: true), p => NaNMasked<double>(p, inKey: true), path);

    private static void NaNMasked<T>(IsaPath path, bool inKey)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Causal, m = n: key j is masked for rows i < j, which never read it (MATH §3). NaN in key row j (or value row j):
        // rows i < j stay finite; rows i ≥ j are NaN (a NaN logit poisons the whole row, MATH §4) — or, for a NaN value
        // element only, that output column — exactly as the reference.
        const int D = 6, Dv = 4;
        foreach (int m in new[] { 2, 100 })
        {
            foreach (int j in new[] { m - 1, m / 2 })
            {
                foreach (var options in new[]
                {
                    new AttentionOptions { Causal = true },
                    new AttentionOptions { Causal = true, SinkLogit = 0 },
                    new AttentionOptions { Causal = true, Kernel = AttentionKernel.Gaussian, Bandwidth = 0.9 },
                })
                {
                    var random = new Random(10 + m + j);
                    T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, m * D), v = DenseCase.Uniform<T>(random, m * Dv);
                    if (inKey) k[j * D + 1] = T.NaN;
                    else v[j * Dv + 2] = T.NaN;
                    var (o, lse) = DenseCase.Check(path, q, k, v, m, m, D, Dv, options, label: $"NaN in {(inKey ? "key" : "value")} row {j}");
                    for (int i = 0; i < m; i++)
                    {
                        Assert.Equal(inKey && i >= j, T.IsNaN(lse[i]));
                        for (int c = 0; c < Dv; c++) Assert.Equal(i >= j && (inKey || c == 2), T.IsNaN(o[i * Dv + c]));
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void NaNInAVisibleValueRowReachesOnlyTheRowsThatSeeIt(IsaPath path, bool isDouble) => Both(isDouble, NaNValue<float>, NaNValue<double>, path);

    private static void NaNValue<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // NaN in v_j[2] only (key j finite): the reference gives NaN in O_i[2] for every row that sees key j, all other
        // columns and the LSE finite (Σ_j w_ij v_j taken literally). Causal and unmasked, both kernels.
        const int D = 6, Dv = 4;
        foreach (int m in new[] { 2, 100 })
        {
            int j = m / 2;
            foreach (var options in new[]
            {
                default,
                new AttentionOptions { Causal = true },
                new AttentionOptions { Causal = true, Kernel = AttentionKernel.Gaussian, Bandwidth = 0.9 },
            })
            {
                var random = new Random(11 + m);
                T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, m * D), v = DenseCase.Uniform<T>(random, m * Dv);
                v[j * Dv + 2] = T.NaN;
                var (o, lse) = DenseCase.Check(path, q, k, v, m, m, D, Dv, options, label: $"NaN value row {j}");
                for (int i = 0; i < m; i++)
                {
                    bool sees = !options.Causal || i >= j;
                    Assert.True(T.IsFinite(lse[i]));
                    Assert.Equal(sees, T.IsNaN(o[i * Dv + 2]));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void InfinityInAQueryRow(IsaPath path, bool isDouble) => Both(isDouble, InfiniteQuery<float>, InfiniteQuery<double>, path);

    private static void InfiniteQuery<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Dot: q_row = (+∞, …) gives logits ±∞ (or NaN where k = 0), and a +∞ or NaN visible logit makes the row NaN
        // (MATH §4; the reference agrees). Gaussian: ‖q − k‖² = +∞ for every key, so every logit is −∞ and the reference
        // treats the row as empty (O = 0, LSE = −∞). Every other row must match the reference unchanged.
        const int D = 6, Dv = 4;
        foreach (int m in new[] { 1, 3, 100 })
        {
            int n = 40, row = m - 1;
            var random = new Random(12 + m);
            T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, n * D), v = DenseCase.Uniform<T>(random, n * Dv);
            q[row * D] = T.PositiveInfinity;
            var (o, lse) = DenseCase.Check(path, q, k, v, m, n, D, Dv, default, label: "+∞ query, dot");
            Assert.True(T.IsNaN(lse[row]));
            for (int c = 0; c < Dv; c++) Assert.True(T.IsNaN(o[row * Dv + c]));
            DenseCase.Check(path, q, k, v, m, n, D, Dv, new AttentionOptions { Causal = true, SinkLogit = 1 }, label: "+∞ query, dot, causal, sink");
            DenseCase.Check(path, q, k, v, m, n, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 }, label: "+∞ query, Gaussian");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void InfinityInAValueColumn(IsaPath path, bool isDouble) => Both(isDouble, InfiniteValue<float>, InfiniteValue<double>, path);

    private static void InfiniteValue<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // O = a / l with a = ±∞ in one column: ±∞ exactly in the rows that see the key (every weight is > 0 here), NaN
        // where both infinities meet, finite elsewhere. dv = 32 and m ≥ 16 reach the 16-row output squares of the
        // AVX-512 float block, m = 70 also its 4-row groups and single rows.
        const int D = 8, Dv = 32, n = 40, j = 7, j2 = 20;
        foreach (int m in new[] { 16, 70 })
        {
            foreach (bool causal in new[] { false, true })
            {
                var random = new Random(31 + m);
                T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, n * D), v = DenseCase.Uniform<T>(random, n * Dv);
                v[j * Dv + 5] = T.PositiveInfinity;
                v[j * Dv + 17] = T.NegativeInfinity;
                v[j2 * Dv + 17] = T.PositiveInfinity;
                var options = new AttentionOptions { Causal = causal };
                var (o, _) = DenseCase.Check(path, q, k, v, m, n, D, Dv, options, label: $"±∞ value, m = {m}, causal = {causal}");
                for (int i = 0; i < m; i++)
                {
                    int visible = causal ? i + (n - m) : n - 1;   // the last key row i sees
                    for (int c = 0; c < Dv; c++)
                    {
                        T x = o[i * Dv + c];
                        if (c == 5) Assert.True(visible >= j ? x == T.PositiveInfinity : T.IsFinite(x), $"row {i}, column 5: {x}");
                        else if (c == 17) Assert.True(visible >= j2 ? T.IsNaN(x) : visible >= j ? x == T.NegativeInfinity : T.IsFinite(x), $"row {i}, column 17: {x}");
                        else Assert.True(T.IsFinite(x), $"row {i}, column {c}: {x}");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void CausalBlocksWithoutVisibleKeys(IsaPath path, bool isDouble) => Both(isDouble, BlocksWithoutKeys<float>, BlocksWithoutKeys<double>, path);

    private static void BlocksWithoutKeys<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Causal with m = n + 130: rows i < 130 see no key, so whole query blocks run no tile at all (their row state is
        // never merged) while the last block runs the ordinary merge and output; dv = 16 and 13 for both output paths.
        const int D = 8, n = 20, m = n + 130;
        foreach (int dv in new[] { 16, 13 })
        {
            var random = new Random(41 + dv);
            T[] q = DenseCase.Uniform<T>(random, m * D), k = DenseCase.Uniform<T>(random, n * D), v = DenseCase.Uniform<T>(random, n * dv);
            foreach (var options in new[] { new AttentionOptions { Causal = true }, new AttentionOptions { Causal = true, SinkLogit = 0.5 } })
            {
                var (o, lse) = DenseCase.Check(path, q, k, v, m, n, D, dv, options, label: $"causal m = n + 130, dv = {dv}");
                for (int i = 0; i < m - n; i++)
                {
                    Assert.Equal(options.SinkLogit is double s ? T.CreateTruncating(s) : T.NegativeInfinity, lse[i]);
                    for (int c = 0; c < dv; c++) Assert.Equal(T.Zero, o[i * dv + c]);
                }
            }
        }
    }
}
