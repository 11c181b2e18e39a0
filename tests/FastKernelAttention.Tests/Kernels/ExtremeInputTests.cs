using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Extreme and special inputs on every ISA path: huge logits, dominant keys, equal keys, tiny and huge
/// bandwidths, a large common offset, empty and fully masked rows, and NaN confined to the rows that see it.</summary>
public class ExtremeInputTests
{
    private static (float[] O, float[] Lse) Run(IsaPath path, float[] q, float[] k, float[] v, int m, int n, int d, int dv, AttentionOptions options)
    {
        var o = new float[Math.Max(1, m * dv)];
        var lse = new float[Math.Max(1, m)];
        Attention.ForwardOnPath(path, new ReadOnlySpan2D<float>(q, m, d), new ReadOnlySpan2D<float>(k, n, d),
            new ReadOnlySpan2D<float>(v, n, dv), new Span2D<float>(o, m, dv), 1, 1, options, lse.AsSpan(0, m));
        return (o, lse);
    }

    private static void AssertMatchesReference(IsaPath path, float[] q, float[] k, float[] v, int m, int n, int d, int dv,
        AttentionOptions options, double outputTolerance, double lseTolerance)
    {
        var (o, lse) = Run(path, q, k, v, m, n, d, dv, options);
        var (expected, expectedLse) = NaiveAttention.Forward(ToMatrix(q, m, d), ToMatrix(k, n, d), ToMatrix(v, n, dv), new ReferenceOptions
        {
            Kernel = options.Kernel == AttentionKernel.Gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
            Scale = options.Scale,
            Bandwidth = options.Kernel == AttentionKernel.Gaussian ? options.Bandwidth : 1,
            Causal = options.Causal,
            SinkLogit = options.SinkLogit,
        });
        for (int i = 0; i < m; i++)
        {
            for (int c = 0; c < dv; c++)
                Assert.True(Tolerance.Close(o[i * dv + c], expected[i, c], outputTolerance), $"{path} O[{i},{c}] = {o[i * dv + c]:R}, reference {expected[i, c]:R}");
            Assert.True(Tolerance.Close(lse[i], expectedLse[i], lseTolerance * Math.Max(1, Math.Abs(expectedLse[i]))), $"{path} LSE[{i}] = {lse[i]:R}, reference {expectedLse[i]:R}");
        }
    }

    private static double[,] ToMatrix(float[] data, int rows, int columns)
    {
        var matrix = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                matrix[i, j] = data[i * columns + j];
        return matrix;
    }

    private static float[] Uniform(Random random, int count, double low = -1, double high = 1)
    {
        var data = new float[count];
        for (int i = 0; i < count; i++) data[i] = (float)(low + (high - low) * random.NextDouble());
        return data;
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void HugeLogitsStayFinite(IsaPath path)
    {
        // scale 1e3 on unit data: logits up to ±1e4 (d = 16). The weights are a hard max: the output is the value of the
        // arg-max key, and LSE ≈ max logit. A float logit of 1e4 carries an absolute rounding error of ~1e4·2^-24·√d ≈ 2e-3,
        // so the LSE is compared to 1e-6 relative (≈ 1e-2 absolute) and the output to the value scale where the two top
        // logits are that close (they are not, for this seed).
        const int M = 37, N = 91, D = 16, Dv = 5;
        var random = new Random(1);
        float[] q = Uniform(random, M * D), k = Uniform(random, N * D), v = Uniform(random, N * Dv);
        AssertMatchesReference(path, q, k, v, M, N, D, Dv, new AttentionOptions { Scale = 1e3 }, 1e-5, 1e-6);
        AssertMatchesReference(path, q, k, v, M, N, D, Dv, new AttentionOptions { Scale = 1e3, Causal = true }, 1e-5, 1e-6);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void DominantKeyAndEqualKeys(IsaPath path)
    {
        const int M = 9, N = 70, D = 8, Dv = 3;
        var random = new Random(2);
        float[] q = Uniform(random, M * D), v = Uniform(random, N * Dv);
        // All keys equal: uniform weights, O = mean of V, LSE = s + log n.
        var k = new float[N * D];
        for (int j = 0; j < N; j++) for (int c = 0; c < D; c++) k[j * D + c] = 0.25f;
        var (o, lse) = Run(path, q, k, v, M, N, D, Dv, default);
        for (int c = 0; c < Dv; c++)
        {
            double mean = 0;
            for (int j = 0; j < N; j++) mean += v[j * Dv + c];
            mean /= N;
            for (int i = 0; i < M; i++) Assert.Equal(mean, o[i * Dv + c], 5);
        }
        // One key far along every query direction dominates.
        for (int j = 0; j < N; j++) for (int c = 0; c < D; c++) k[j * D + c] = (float)(random.NextDouble() * 0.01);
        for (int c = 0; c < D; c++) { k[17 * D + c] = 300; q[c] = 1; }
        (o, _) = Run(path, q, k, v, 1, N, D, Dv, default);
        for (int c = 0; c < Dv; c++) Assert.Equal(v[17 * Dv + c], o[c], 6);
        _ = lse;
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void GaussianBandwidthExtremesAndLargeOffset(IsaPath path)
    {
        const int M = 21, N = 33, D = 3, Dv = 2;
        var random = new Random(3);
        float[] q = Uniform(random, M * D), k = Uniform(random, N * D), v = Uniform(random, N * Dv);
        // h = 1e-3: nearest-neighbour weights (direct differences keep the gaps exact); h = 1e3: nearly uniform weights.
        AssertMatchesReference(path, q, k, v, M, N, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e-3 }, 1e-5, 1e-5);
        AssertMatchesReference(path, q, k, v, M, N, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e3 }, 1e-5, 1e-5);
        // Every coordinate + 1000: centring keeps the expansion exact (uncentred float would be off by ~1e-1 in the logits).
        float[] qo = Array.ConvertAll(q, x => x + 1000f), ko = Array.ConvertAll(k, x => x + 1000f);
        AssertMatchesReference(path, qo, ko, v, M, N, D, Dv, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 0.5 }, 1e-5, 1e-5);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void MathSection2LargeOffsetExample(IsaPath path)
    {
        // d = 1, h = 1, q = 10000.25, keys {10000, 10001}: w = (0.562177, 0.437823) (uncentred float gives (0.000335, 0.999665)).
        var (o, _) = Run(path, new[] { 10000.25f }, new[] { 10000f, 10001f }, new[] { 1f, 0f, 0f, 1f }, 1, 2, 1, 2,
            new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 });
        Assert.Equal(0.562177, o[0], 5);
        Assert.Equal(0.437823, o[1], 5);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void EmptyAndFullyMaskedRows(IsaPath path)
    {
        var random = new Random(4);
        // n = 0: every row empty.
        var (o, lse) = Run(path, Uniform(random, 3 * 4), Array.Empty<float>(), Array.Empty<float>(), 3, 0, 4, 2, default);
        Assert.All(o, x => Assert.Equal(0f, x));
        Assert.All(lse[..3], x => Assert.Equal(float.NegativeInfinity, x));
        // With a sink: O = 0, LSE = s0.
        (o, lse) = Run(path, Uniform(random, 3 * 4), Array.Empty<float>(), Array.Empty<float>(), 3, 0, 4, 2, new AttentionOptions { SinkLogit = 0.75 });
        Assert.All(o, x => Assert.Equal(0f, x));
        Assert.All(lse[..3], x => Assert.Equal(0.75f, x));
        // Causal m > n: rows i < m − n see nothing; the others match the reference (MATH §3: m = 4, n = 2).
        foreach (int m in new[] { 4, 40, 100 })
        {
            int n = m / 2;
            float[] q = Uniform(random, m * 5), k = Uniform(random, n * 5), v = Uniform(random, n * 3);
            (o, lse) = Run(path, q, k, v, m, n, 5, 3, new AttentionOptions { Causal = true });
            for (int i = 0; i < m - n; i++)
            {
                Assert.Equal(float.NegativeInfinity, lse[i]);
                for (int c = 0; c < 3; c++) Assert.Equal(0f, o[i * 3 + c]);
            }
            AssertMatchesReference(path, q, k, v, m, n, 5, 3, new AttentionOptions { Causal = true, SinkLogit = -1 }, 1e-5, 1e-5);
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void NaNStaysInTheRowsThatSeeIt(IsaPath path)
    {
        foreach (int m in new[] { 2, 100 }) // the row kernel and the lane kernel
        {
            int n = m, d = 6, dv = 4;
            var random = new Random(5 + m);
            float[] q = Uniform(random, m * d), k = Uniform(random, n * d), v = Uniform(random, n * dv);
            // NaN in query row 1: only row 1 (output and LSE) is NaN.
            q[1 * d + 2] = float.NaN;
            var (o, lse) = Run(path, q, k, v, m, n, d, dv, default);
            for (int i = 0; i < m; i++)
            {
                Assert.Equal(i == 1, float.IsNaN(lse[i]));
                for (int c = 0; c < dv; c++) Assert.Equal(i == 1, float.IsNaN(o[i * dv + c]));
            }
            q[1 * d + 2] = 0.5f;
            // +∞ in a query row makes that row NaN (a +∞ logit counts as NaN).
            q[0] = float.PositiveInfinity;
            (o, lse) = Run(path, q, k, v, m, n, d, dv, default);
            Assert.True(float.IsNaN(o[0]) && float.IsNaN(lse[0]));
            for (int i = 1; i < m; i++) Assert.False(float.IsNaN(lse[i]));
            q[0] = 0.1f;
            // NaN in the value and key rows of the last key, causal: masked for every row but the last, which is NaN.
            v[(n - 1) * dv + 1] = float.NaN;
            k[(n - 1) * d] = float.NaN;
            (o, lse) = Run(path, q, k, v, m, n, d, dv, new AttentionOptions { Causal = true });
            for (int i = 0; i < m - 1; i++)
            {
                Assert.False(float.IsNaN(lse[i]), $"{path} m={m}: masked NaN reached LSE[{i}]");
                for (int c = 0; c < dv; c++) Assert.False(float.IsNaN(o[i * dv + c]), $"{path} m={m}: masked NaN reached O[{i},{c}]");
            }
            Assert.True(float.IsNaN(lse[m - 1]));
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void SizesAroundTheVectorWidths(IsaPath path)
    {
        int[] sizes = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129 };
        var random = new Random(6);
        foreach (int size in sizes)
        {
            // headDim, keyCount and queryCount each swept around the widths, the others fixed and odd.
            foreach (var (m, n, d) in new[] { (5, 9, size), (7, size, 5), (size, 11, 3) })
            {
                int dv = (size % 5) + 1;
                float[] q = Uniform(random, m * d), k = Uniform(random, n * d), v = Uniform(random, n * dv);
                var options = new AttentionOptions { Causal = size % 2 == 1, Kernel = size % 3 == 0 ? AttentionKernel.Gaussian : AttentionKernel.Dot, Bandwidth = 1 };
                AssertMatchesReference(path, q, k, v, m, n, d, dv, options, 1e-5, 1e-5);
            }
        }
    }
}
