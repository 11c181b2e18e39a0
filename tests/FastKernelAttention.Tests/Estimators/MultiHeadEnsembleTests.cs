using System;
using System.Text;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference;
using FastKernelAttention.Reference.Estimators;
using FastKernelAttention.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>MATH §9: the BVC hand example and identity, the HDI examples, the reference on every ISA path, the
/// HDI-versus-MSE Monte-Carlo experiment, validation and zero allocation.</summary>
public class MultiHeadEnsembleTests
{
    private readonly ITestOutputHelper output;

    public MultiHeadEnsembleTests(ITestOutputHelper output) => this.output = output;

    [Fact]
    public void BiasVarianceCovarianceHandExample()
    {
        // H = 2, g = 0, f1 = (1,2,3), f2 = (3,2,1): MSE = 4, bias̄ = 2, var̄ = 2/3, cov̄ = −2/3; 4 + 1/3 − 1/3 = 4.
        double[] f = { 1, 2, 3, 3, 2, 1 };
        var terms = MultiHeadEnsemble.Decompose<double>(new ReadOnlySpan2D<double>(f, 2, 3), new[] { 0.0 });
        Assert.Equal(4, terms.BiasSquared, 1e-15);
        Assert.Equal(2.0 / 3, terms.Variance, 1e-15);
        Assert.Equal(-2.0 / 3, terms.Covariance, 1e-15);
        Assert.Equal(4, terms.MeanSquaredError, 1e-15);
        Assert.Equal(4, terms.Sum, 1e-14);
        Assert.Equal(2, terms.HeadCount);
    }

    [Fact]
    public void BiasVarianceCovarianceIdentityIsExact()
    {
        var random = new Random(11);
        foreach (var (heads, count) in new[] { (1, 10), (2, 50), (5, 200), (300, 7) })
        {
            double[] f = new double[heads * count], y = new double[count];
            for (int k = 0; k < count; k++) y[k] = 3 + AttentionCase.Normal(random);
            for (int h = 0; h < heads; h++)
                for (int k = 0; k < count; k++)
                    f[h * count + k] = y[k] + 0.5 + 0.3 * h / heads + AttentionCase.Normal(random);
            var terms = MultiHeadEnsemble.Decompose<double>(new ReadOnlySpan2D<double>(f, heads, count), y);
            Assert.Equal(terms.MeanSquaredError, terms.Sum, 1e-12);
            var jagged = new double[heads][];
            for (int h = 0; h < heads; h++) jagged[h] = f[(h * count)..((h + 1) * count)];
            var expected = MultiHeadEnsembleReference.Decompose(jagged, y);
            Assert.Equal(expected.BiasSquared, terms.BiasSquared, 1e-12);
            Assert.Equal(expected.Variance, terms.Variance, 1e-12);
            if (heads > 1) Assert.Equal(expected.Covariance, terms.Covariance, 1e-12);
            Assert.Equal(expected.MeanSquaredError, terms.MeanSquaredError, 1e-12);
            var single = MultiHeadEnsemble.Decompose<float>(new ReadOnlySpan2D<float>(Array.ConvertAll(f, v => (float)v), heads, count), Array.ConvertAll(y, v => (float)v));
            Assert.Equal(single.MeanSquaredError, single.Sum, 1e-12);
        }
        Assert.Equal("targets", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Decompose<double>(new ReadOnlySpan2D<double>(new double[6], 2, 3), new double[2])).ParamName);
        Assert.Equal("predictions", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Decompose<double>(new ReadOnlySpan2D<double>(new double[6], 0, 3), new double[3])).ParamName);
    }

    /// <summary>Stacks per-head d × d_k matrices given as column lists into the (H·d) × d_k layout.</summary>
    private static double[] Stack(params double[][][] headColumns)
    {
        int d = headColumns[0][0].Length, dk = headColumns[0].Length;
        double[] stacked = new double[headColumns.Length * d * dk];
        for (int h = 0; h < headColumns.Length; h++)
            for (int c = 0; c < dk; c++)
                for (int r = 0; r < d; r++)
                    stacked[(h * d + r) * dk + c] = headColumns[h][c][r];
        return stacked;
    }

    private static double Hdi(double[] stacked, int heads, int dk) =>
        MultiHeadEnsemble.HeadDiversityIndex<double>(new ReadOnlySpan2D<double>(stacked, stacked.Length / dk, dk), heads);

    [Fact]
    public void HeadDiversityIndexExamples()
    {
        double[][] first = { new double[] { 1, 0, 0 }, new double[] { 0, 1, 0 } };
        Assert.Equal(0.25, Hdi(Stack(first, new[] { new double[] { 2, 0, 0 }, new double[] { 0, 1, 1 } }), 2, 2), 1e-12);
        Assert.Equal(0.5, Hdi(Stack(first, new[] { new double[] { 0, 0, 1 }, new double[] { 0, 1, 0 } }), 2, 2), 1e-12);
        Assert.Equal(0, Hdi(Stack(first, first), 2, 2), 1e-12);
        Assert.Equal(1, Hdi(Stack(new[] { new double[] { 1, 0, 0, 0 }, new double[] { 0, 1, 0, 0 } },
                                  new[] { new double[] { 0, 0, 1, 0 }, new double[] { 0, 0, 0, 1 } }), 2, 2), 1e-12);
        // Float input, same answer.
        float[] single = Array.ConvertAll(Stack(first, new[] { new double[] { 2, 0, 0 }, new double[] { 0, 1, 1 } }), v => (float)v);
        Assert.Equal(0.25, MultiHeadEnsemble.HeadDiversityIndex<float>(new ReadOnlySpan2D<float>(single, 6, 2), 2), 1e-7);
        // H = 1 → NaN; rank-deficient head (two parallel columns) divides by min rank: span(e1) inside span(e1, e2) → overlap 1/1.
        Assert.True(double.IsNaN(Hdi(Stack(first), 1, 2)));
        Assert.Equal(0, Hdi(Stack(first, new[] { new double[] { 1, 0, 0 }, new double[] { 3, 0, 0 } }), 2, 2), 1e-12);
        Assert.Equal(1, Hdi(Stack(first, new[] { new double[] { 0, 0, 1 }, new double[] { 0, 0, -2 } }), 2, 2), 1e-12);
        Assert.True(double.IsNaN(Hdi(Stack(first, new[] { new double[3], new double[3] }), 2, 2)));
        Assert.Equal("keyProjections", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.HeadDiversityIndex<double>(new ReadOnlySpan2D<double>(new double[10], 5, 2), 2)).ParamName);
    }

    [Fact]
    public void HeadDiversityIndexMatchesTheProjectorReference()
    {
        var random = new Random(12);
        foreach (var (heads, d, dk) in new[] { (2, 5, 2), (4, 16, 3), (6, 8, 8), (3, 3, 1) })
        {
            double[] stacked = new double[heads * d * dk];
            for (int i = 0; i < stacked.Length; i++) stacked[i] = AttentionCase.Normal(random);
            var matrices = new double[heads][,];
            for (int h = 0; h < heads; h++)
            {
                matrices[h] = new double[d, dk];
                for (int r = 0; r < d; r++)
                    for (int c = 0; c < dk; c++)
                        matrices[h][r, c] = stacked[(h * d + r) * dk + c];
            }
            double expected = MultiHeadEnsembleReference.HeadDiversityIndex(matrices);
            Assert.Equal(expected, Hdi(stacked, heads, dk), 1e-10);
            byte[] workspace = new byte[MultiHeadEnsemble.GetHeadDiversityWorkspaceSize(heads, d, dk)];
            Assert.Equal(expected, MultiHeadEnsemble.HeadDiversityIndex<double>(new ReadOnlySpan2D<double>(stacked, heads * d, dk), heads, workspace), 1e-10);
        }
    }

    private static (double[] Output, double[] Heads, double[] Lse) Predict<T>(IsaPath path, double[] x, double[] samples, double[] y,
        double[] wq, double[] wk, double[]? wv, int m, int n, int d, int p, int heads, int dk, int dv, AttentionOptions options, EnsembleCombination combination)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        T[] result = new T[m * dv], perHead = new T[m * heads * dv], lse = new T[heads * m];
        T[] vp = wv is null ? Array.Empty<T>() : Array.ConvertAll(wv, T.CreateTruncating);
        MultiHeadEnsemble.PredictCore(path, new ReadOnlySpan2D<T>(Array.ConvertAll(x, T.CreateTruncating), m, d),
            new ReadOnlySpan2D<T>(Array.ConvertAll(samples, T.CreateTruncating), n, d), new ReadOnlySpan2D<T>(Array.ConvertAll(y, T.CreateTruncating), n, p),
            new ReadOnlySpan2D<T>(Array.ConvertAll(wq, T.CreateTruncating), heads * d, dk), new ReadOnlySpan2D<T>(Array.ConvertAll(wk, T.CreateTruncating), heads * d, dk),
            wv is null ? default : new ReadOnlySpan2D<T>(vp, heads * p, dv), heads, options, combination, new Span2D<T>(result, m, dv),
            new Span2D<T>(perHead, m, heads * dv), lse, default, workspaceGiven: false);
        return (Array.ConvertAll(result, double.CreateTruncating), Array.ConvertAll(perHead, double.CreateTruncating), Array.ConvertAll(lse, double.CreateTruncating));
    }

    private static double[][,] Split(double[] stacked, int heads, int rows, int columns)
    {
        var matrices = new double[heads][,];
        for (int h = 0; h < heads; h++) matrices[h] = ParticleFlowTests.ToMatrix(stacked[(h * rows * columns)..((h + 1) * rows * columns)], rows, columns);
        return matrices;
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesTheReference(IsaPath path, bool isDouble)
    {
        var random = new Random(13);
        foreach (var (m, n, d, p, heads, dk, dv, gaussian, project, weighted) in new[]
        {
            (23, 45, 4, 2, 3, 2, 0, true, false, false),
            (17, 64, 6, 3, 4, 3, 5, false, true, true),
            (9, 1, 2, 1, 2, 1, 0, true, false, true),
            (33, 70, 3, 1, 1, 3, 2, false, true, false),
        })
        {
            int valueWidth = project ? dv : p;
            double[] Fill(int count, double scale)
            {
                double[] data = new double[count];
                for (int i = 0; i < count; i++) data[i] = scale * AttentionCase.Normal(random);
                return data;
            }
            double[] x = Fill(m * d, 1), samples = Fill(n * d, 1), y = Fill(n * p, 1), wq = Fill(heads * d * dk, 0.7), wk = Fill(heads * d * dk, 0.7);
            double[]? wv = project ? Fill(heads * p * dv, 1) : null;
            var options = gaussian ? new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.3 } : new AttentionOptions { Scale = 0.8 };
            var combination = weighted ? EnsembleCombination.LogSumExpWeighted : EnsembleCombination.Mean;
            var ours = isDouble ? Predict<double>(path, x, samples, y, wq, wk, wv, m, n, d, p, heads, dk, valueWidth, options, combination)
                                : Predict<float>(path, x, samples, y, wq, wk, wv, m, n, d, p, heads, dk, valueWidth, options, combination);
            var referenceOptions = new ReferenceOptions { Kernel = gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot, Scale = gaussian ? null : 0.8, Bandwidth = 1.3 };
            var (expected, expectedHeads, expectedLse) = MultiHeadEnsembleReference.Predict(ParticleFlowTests.ToMatrix(x, m, d), ParticleFlowTests.ToMatrix(samples, n, d),
                ParticleFlowTests.ToMatrix(y, n, p), Split(wq, heads, d, dk), Split(wk, heads, d, dk), wv is null ? null : Split(wv, heads, p, dv), referenceOptions, weighted);
            double tolerance = isDouble ? 1e-11 : 5e-5;
            for (int i = 0; i < m; i++)
            {
                for (int c = 0; c < valueWidth; c++)
                {
                    Assert.Equal(expected[i, c], ours.Output[i * valueWidth + c], tolerance * 10);
                    for (int h = 0; h < heads; h++) Assert.Equal(expectedHeads[h][i, c], ours.Heads[i * heads * valueWidth + h * valueWidth + c], tolerance * 10);
                }
                for (int h = 0; h < heads; h++) Assert.Equal(expectedLse[h][i], ours.Lse[h * m + i], tolerance * Math.Max(1, Math.Abs(expectedLse[h][i])));
            }
        }
    }

    /// <summary>
    /// Fixed total dimension: D = 4 inputs, H = 4 heads with d_k = 1 (H·d_k = D), each head a 1-D Gaussian NW smoother along one
    /// coordinate axis (W_q = W_k = e_axis); target g(x) = Σ_k sin(2x_k), x ~ N(0, I₄), noise sd 0.5, n = 400 samples, the
    /// mean combination, 4000 fixed test points (the test-set noise of the MSE differences is then ≈ 0.01) and 10 replications (common random numbers across configurations). The axis
    /// assignments {0000, 0001, 0011, 0012, 0123} give HDI = 0, 1/2, 2/3, 5/6, 1; with c_k heads on axis k the additive
    /// approximation error is Var·Σ_k (c_k/H − 1)² = 1.5, 1.31, 1.25, 1.19, 1.125 (Var sin 2x ≈ 0.5), so the MSE must fall.
    /// </summary>
    [Fact]
    public void EnsembleErrorFallsAsHeadDiversityRises()
    {
        const int D = 4, H = 4, N = 400, M = 4000, Replications = 10;
        int[][] configurations = { new[] { 0, 0, 0, 0 }, new[] { 0, 0, 0, 1 }, new[] { 0, 0, 1, 1 }, new[] { 0, 0, 1, 2 }, new[] { 0, 1, 2, 3 } };
        var random = new Random(2024);
        double[] test = new double[M * D], truth = new double[M];
        for (int i = 0; i < test.Length; i++) test[i] = AttentionCase.Normal(random);
        for (int i = 0; i < M; i++) for (int k = 0; k < D; k++) truth[i] += Math.Sin(2 * test[i * D + k]);
        var replications = new (double[] X, double[] Y)[Replications];
        for (int r = 0; r < Replications; r++)
        {
            double[] samples = new double[N * D], y = new double[N];
            for (int i = 0; i < samples.Length; i++) samples[i] = AttentionCase.Normal(random);
            for (int i = 0; i < N; i++)
            {
                for (int k = 0; k < D; k++) y[i] += Math.Sin(2 * samples[i * D + k]);
                y[i] += 0.5 * AttentionCase.Normal(random);
            }
            replications[r] = (samples, y);
        }

        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 0.25 };
        var report = new StringBuilder("config   HDI     MSE    bias²   var̄     cov̄   (BVC over replications, averaged over test points)\n");
        double previous = double.PositiveInfinity, first = 0, last = 0;
        bool falls = true;
        double[] combined = new double[M], perHead = new double[M * H], predictions = new double[H * Replications];
        double[] allHeads = new double[Replications * M * H], allCombined = new double[Replications * M];
        byte[] workspace = new byte[MultiHeadEnsemble.GetWorkspaceSize<double>(M, N, D, 1, H, 1, 0, options)];
        foreach (int[] axes in configurations)
        {
            double[] projection = new double[H * D];
            for (int h = 0; h < H; h++) projection[h * D + axes[h]] = 1;
            double hdi = MultiHeadEnsemble.HeadDiversityIndex<double>(new ReadOnlySpan2D<double>(projection, H * D, 1), H);
            for (int r = 0; r < Replications; r++)
            {
                MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(test, M, D), new ReadOnlySpan2D<double>(replications[r].X, N, D),
                    new ReadOnlySpan2D<double>(replications[r].Y, N, 1), new ReadOnlySpan2D<double>(projection, H * D, 1),
                    new ReadOnlySpan2D<double>(projection, H * D, 1), default, H, options, EnsembleCombination.Mean,
                    new Span2D<double>(combined, M, 1), new Span2D<double>(perHead, M, H), default, workspace);
                Array.Copy(perHead, 0, allHeads, r * M * H, M * H);
                Array.Copy(combined, 0, allCombined, r * M, M);
            }
            double mse = 0, bias2 = 0, variance = 0, covariance = 0;
            for (int i = 0; i < M; i++)
            {
                for (int r = 0; r < Replications; r++)
                {
                    for (int h = 0; h < H; h++) predictions[h * Replications + r] = allHeads[(r * M + i) * H + h];
                    mse += Math.Pow(allCombined[r * M + i] - truth[i], 2) / (M * Replications);
                }
                var terms = MultiHeadEnsemble.Decompose<double>(new ReadOnlySpan2D<double>(predictions, H, Replications), new[] { truth[i] });
                Assert.Equal(terms.MeanSquaredError, terms.Sum, 1e-12);
                bias2 += terms.BiasSquared / M;
                variance += terms.Variance / M;
                covariance += terms.Covariance / M;
            }
            report.AppendLine($"{string.Concat(axes)}   {hdi,5:F3}  {mse,6:F4}  {bias2,6:F4}  {variance,6:F4}  {covariance,6:F4}");
            falls &= mse < previous;
            if (previous == double.PositiveInfinity) first = mse;
            previous = last = mse;
        }
        output.WriteLine(report.ToString());
        Assert.True(falls, report.ToString());
        Assert.True(last < 0.85 * first, $"MSE {first:F4} → {last:F4}");
    }

    [Fact]
    public void ValidationEdgeCasesAndZeroAllocation()
    {
        double[] x = new double[6], s = new double[8], y = new double[4], w = new double[2 * 2 * 1], o = new double[3];
        var gaussian = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 };
        Assert.Equal("keyProjections", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 2, 2), default, 2, gaussian, EnsembleCombination.Mean, new Span2D<double>(o, 3, 1))).ParamName);
        Assert.Equal("queryProjections", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 3, gaussian, EnsembleCombination.Mean, new Span2D<double>(o, 3, 1))).ParamName);
        Assert.Equal("output", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 2, gaussian, EnsembleCombination.Mean, new Span2D<double>(o, 1, 3))).ParamName);
        Assert.Equal("options", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 2, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = -1 }, EnsembleCombination.Mean, new Span2D<double>(o, 3, 1))).ParamName);
        Assert.Equal("headCount", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 0, gaussian, EnsembleCombination.Mean, new Span2D<double>(o, 3, 1))).ParamName);
        Assert.Equal("workspace", Assert.ThrowsAny<ArgumentException>(() => MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 4, 2), new ReadOnlySpan2D<double>(y, 4, 1),
            new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 2, gaussian, EnsembleCombination.Mean, new Span2D<double>(o, 3, 1), default, default, new byte[8])).ParamName);

        // No samples: every head is empty → 0 with either combination, LSE −∞.
        double[] lse = new double[2 * 3];
        foreach (var combination in new[] { EnsembleCombination.Mean, EnsembleCombination.LogSumExpWeighted })
        {
            o.AsSpan().Fill(7);
            MultiHeadEnsemble.Predict<double>(new ReadOnlySpan2D<double>(x, 3, 2), new ReadOnlySpan2D<double>(s, 0, 2), new ReadOnlySpan2D<double>(y, 0, 1),
                new ReadOnlySpan2D<double>(w, 4, 1), new ReadOnlySpan2D<double>(w, 4, 1), default, 2, gaussian, combination, new Span2D<double>(o, 3, 1), default, lse);
            Assert.All(o, v => Assert.Equal(0, v));
            Assert.All(lse, v => Assert.Equal(double.NegativeInfinity, v));
        }

        var random = new Random(14);
        float[] queries = new float[40 * 4], samples = new float[50 * 4], responses = new float[50 * 2], wq = new float[3 * 4 * 2], wk = new float[3 * 4 * 2], result = new float[40 * 2], keys = new float[3 * 4 * 2];
        foreach (float[] array in new[] { queries, samples, responses, wq, wk, keys })
            for (int i = 0; i < array.Length; i++) array[i] = (float)AttentionCase.Normal(random);
        byte[] workspace = new byte[MultiHeadEnsemble.GetWorkspaceSize<float>(40, 50, 4, 2, 3, 2, 0, gaussian)];
        byte[] hdiWorkspace = new byte[MultiHeadEnsemble.GetHeadDiversityWorkspaceSize(3, 4, 2)];
        float[] f = new float[3 * 10], targets = new float[10];
        void Call()
        {
            MultiHeadEnsemble.Predict<float>(new ReadOnlySpan2D<float>(queries, 40, 4), new ReadOnlySpan2D<float>(samples, 50, 4), new ReadOnlySpan2D<float>(responses, 50, 2),
                new ReadOnlySpan2D<float>(wq, 12, 2), new ReadOnlySpan2D<float>(wk, 12, 2), default, 3, gaussian, EnsembleCombination.LogSumExpWeighted,
                new Span2D<float>(result, 40, 2), default, default, workspace);
            MultiHeadEnsemble.Predict<float>(new ReadOnlySpan2D<float>(queries, 40, 4), new ReadOnlySpan2D<float>(samples, 50, 4), new ReadOnlySpan2D<float>(responses, 50, 2),
                new ReadOnlySpan2D<float>(wq, 12, 2), new ReadOnlySpan2D<float>(wk, 12, 2), default, 3, gaussian, EnsembleCombination.Mean, new Span2D<float>(result, 40, 2));
            MultiHeadEnsemble.HeadDiversityIndex<float>(new ReadOnlySpan2D<float>(keys, 12, 2), 3, hdiWorkspace);
            MultiHeadEnsemble.HeadDiversityIndex<float>(new ReadOnlySpan2D<float>(keys, 12, 2), 3);
            MultiHeadEnsemble.Decompose<float>(new ReadOnlySpan2D<float>(f, 3, 10), targets);
        }
        Assert.Equal(0, Allocation.Measure(Call));
    }
}
