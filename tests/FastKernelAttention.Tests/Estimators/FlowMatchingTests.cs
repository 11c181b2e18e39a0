using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference.Estimators;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>MATH §10: the hand values (a), (b), the reference on every ISA path, the velocity against finite differences of
/// the conditional flows, collapse onto the support, validation and zero allocation.</summary>
public class FlowMatchingTests
{
    private const double SigmaMin = 0.1;

    private static double[] Velocity<T>(IsaPath path, double[] x, double[] support, int d, double t, double sigmaMin, double[]? logWeights = null)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        int m = x.Length / d, n = support.Length / d;
        T[] points = Array.ConvertAll(x, T.CreateTruncating), s = Array.ConvertAll(support, T.CreateTruncating), v = new T[m * d];
        T[] weights = logWeights is null ? Array.Empty<T>() : Array.ConvertAll(logWeights, T.CreateTruncating);
        FlowMatching.VelocityCore(path, new ReadOnlySpan2D<T>(points, m, d), new ReadOnlySpan2D<T>(s, n, d), t, sigmaMin,
            new Span2D<T>(v, m, d), weights, default, workspaceGiven: false);
        return Array.ConvertAll(v, double.CreateTruncating);
    }

    private static double[] Sample<T>(IsaPath path, double[] x, double[] support, int d, double sigmaMin, int steps = 100,
        double t0 = 1e-5, double[]? logWeights = null)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        int m = x.Length / d, n = support.Length / d;
        T[] points = Array.ConvertAll(x, T.CreateTruncating), s = Array.ConvertAll(support, T.CreateTruncating);
        T[] weights = logWeights is null ? Array.Empty<T>() : Array.ConvertAll(logWeights, T.CreateTruncating);
        FlowMatching.SampleCore(path, new Span2D<T>(points, m, d), new ReadOnlySpan2D<T>(s, n, d), sigmaMin, steps, t0, weights, default, workspaceGiven: false);
        return Array.ConvertAll(points, double.CreateTruncating);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void HandValues(IsaPath path, bool isDouble)
    {
        double tolerance = isDouble ? 1e-6 : 2e-5;
        // (a) one support point s = 2, x = 1, t = 0.5: v = 1.1/0.55 = 2; Euler is exact along the straight path.
        double[] a = isDouble ? Velocity<double>(path, new[] { 1.0 }, new[] { 2.0 }, 1, 0.5, SigmaMin) : Velocity<float>(path, new[] { 1.0 }, new[] { 2.0 }, 1, 0.5, SigmaMin);
        Assert.Equal(2.0, a[0], tolerance);
        double[] sampleA = isDouble ? Sample<double>(path, new[] { 0.3 }, new[] { 2.0 }, 1, SigmaMin) : Sample<float>(path, new[] { 0.3 }, new[] { 2.0 }, 1, SigmaMin);
        Assert.Equal(2.029998, sampleA[0], tolerance);
        // (b) support {−1, +1}, x = 0.2, t = 0.5: m_t = tanh(x·t/σ_t²) = 0.319041, v = 0.252801.
        double[] b = isDouble ? Velocity<double>(path, new[] { 0.2 }, new[] { -1.0, 1.0 }, 1, 0.5, SigmaMin) : Velocity<float>(path, new[] { 0.2 }, new[] { -1.0, 1.0 }, 1, 0.5, SigmaMin);
        Assert.Equal(0.252801, b[0], tolerance);
        Assert.Equal((Math.Tanh(0.2 * 0.5 / (0.55 * 0.55)) - 0.9 * 0.2) / 0.55, b[0], isDouble ? 1e-12 : 2e-6);
        double[] sampleB = isDouble ? Sample<double>(path, new[] { 0.3, 0.0 }, new[] { -1.0, 1.0 }, 1, SigmaMin) : Sample<float>(path, new[] { 0.3, 0.0 }, new[] { -1.0, 1.0 }, 1, SigmaMin);
        Assert.Equal(0.925239, sampleB[0], isDouble ? 1e-6 : 1e-4);
        Assert.Equal(0.0, sampleB[1]);
    }

    [Fact]
    public void PosteriorWeightsOfExampleB()
    {
        // w_j ∝ exp(−(x − t·s_j)²/(2σ_t²)) = (0.340480, 0.659520) at x = 0.2, t = 0.5: v = Σ w_j (s_j − 0.9x)/σ_t.
        double sigma = 0.55, left = -Math.Pow(0.2 + 0.5, 2) / (2 * sigma * sigma), right = -Math.Pow(0.2 - 0.5, 2) / (2 * sigma * sigma);
        double w0 = 1 / (1 + Math.Exp(right - left));
        Assert.Equal(0.340480, w0, 1e-6);
        double[] v = Velocity<double>(IsaPath.Scalar, new[] { 0.2 }, new[] { -1.0, 1.0 }, 1, 0.5, SigmaMin);
        Assert.Equal(w0 * (-1 - 0.18) / sigma + (1 - w0) * (1 - 0.18) / sigma, v[0], 1e-12);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesTheReference(IsaPath path, bool isDouble)
    {
        var random = new Random(41);
        foreach (var (m, n, d, weighted) in new[] { (30, 7, 2, false), (17, 40, 3, true), (9, 1, 5, false) })
        {
            double[] x = new double[m * d], s = new double[n * d], logWeights = new double[n];
            for (int i = 0; i < x.Length; i++) x[i] = AttentionCase.Normal(random);
            for (int i = 0; i < s.Length; i++) s[i] = 1.5 * AttentionCase.Normal(random);
            for (int j = 0; j < n; j++) logWeights[j] = j == 3 ? double.NegativeInfinity : random.NextDouble() - 0.5;
            double[]? w = weighted ? logWeights : null;
            var sMatrix = ParticleFlowTests.ToMatrix(s, n, d);
            foreach (double t in new[] { 0.0, 0.3, 0.97, 1.0 })
            {
                double[] ours = isDouble ? Velocity<double>(path, x, s, d, t, 0.05, w) : Velocity<float>(path, x, s, d, t, 0.05, w);
                var expected = FlowMatchingReference.Velocity(ParticleFlowTests.ToMatrix(x, m, d), sMatrix, t, 0.05, w);
                double scale = 1 / (1 - 0.95 * t);        // the velocity is divided by σ_t
                for (int i = 0; i < m; i++)
                    for (int c = 0; c < d; c++)
                        Assert.Equal(expected[i, c], ours[i * d + c], (isDouble ? 1e-11 : 3e-5) * scale * 4);
            }
            double[] sampled = isDouble ? Sample<double>(path, x, s, d, 0.05, 20, 1e-3, w) : Sample<float>(path, x, s, d, 0.05, 20, 1e-3, w);
            var reference = FlowMatchingReference.Sample(ParticleFlowTests.ToMatrix(x, m, d), sMatrix, 0.05, 20, 1e-3, w);
            for (int i = 0; i < m; i++)
                for (int c = 0; c < d; c++)
                    Assert.Equal(reference[i, c], sampled[i * d + c], isDouble ? 1e-9 : 2e-3);
        }
    }

    [Fact]
    public void VelocityIsThePosteriorAverageOfConditionalFlowDerivatives()
    {
        // Closed form check: ψ_t(x0 | s) = t·s + σ_t·x0 with x0 = (x − t·s)/σ_t fixed; u_t(x|s) = ∂ψ/∂t by central differences,
        // averaged under w_j ∝ N(x; t·s_j, σ_t²) computed here independently.
        var random = new Random(6);
        int n = 6, d = 2;
        double[] s = new double[n * d];
        for (int i = 0; i < s.Length; i++) s[i] = 2 * AttentionCase.Normal(random);
        const double Eps = 1e-6;
        foreach (double t in new[] { 0.1, 0.5, 0.9 })
        {
            double[] x = { 0.4 * AttentionCase.Normal(random), 0.4 * AttentionCase.Normal(random) };
            double[] v = Velocity<double>(IsaPath.Scalar, x, s, d, t, SigmaMin);
            double sigma = 1 - (1 - SigmaMin) * t;
            double[] logits = new double[n];
            double max = double.NegativeInfinity;
            for (int j = 0; j < n; j++)
            {
                double sq = 0;
                for (int c = 0; c < d; c++) sq += Math.Pow(x[c] - t * s[j * d + c], 2);
                logits[j] = -sq / (2 * sigma * sigma);
                max = Math.Max(max, logits[j]);
            }
            double total = 0;
            foreach (double l in logits) total += Math.Exp(l - max);
            for (int c = 0; c < d; c++)
            {
                double expected = 0;
                for (int j = 0; j < n; j++)
                {
                    double x0 = (x[c] - t * s[j * d + c]) / sigma;
                    double Psi(double time) => time * s[j * d + c] + (1 - (1 - SigmaMin) * time) * x0;
                    expected += Math.Exp(logits[j] - max) / total * (Psi(t + Eps) - Psi(t - Eps)) / (2 * Eps);
                }
                Assert.Equal(expected, v[c], 1e-8);
            }
        }
    }

    [Fact]
    public void OneSupportPointCollectsEverySample()
    {
        var random = new Random(7);
        int m = 200, d = 3;
        double[] x0 = new double[m * d];
        for (int i = 0; i < x0.Length; i++) x0[i] = AttentionCase.Normal(random);
        double[] s = { 1.0, -2.0, 0.5 };
        const double Small = 1e-3;
        double[] samples = Sample<double>(FastKernelAttention.Dispatch.IsaDispatch.Selected, x0, s, d, Small);
        double sigma0 = 1 - (1 - Small) * 1e-5;
        for (int i = 0; i < m; i++)
        {
            for (int c = 0; c < d; c++)
            {
                // Euler is exact along the straight one-point path: x1 = s + σ_min·(x0 − t0·s)/σ_t0.
                Assert.Equal(s[c] + Small * (x0[i * d + c] - 1e-5 * s[c]) / sigma0, samples[i * d + c], 1e-10);
                Assert.Equal(s[c], samples[i * d + c], 0.01);
            }
        }
    }

    [Fact]
    public void SeveralSupportPointsAttractTheSamples()
    {
        var random = new Random(8);
        int m = 300, n = 5, d = 2;
        double[] x0 = new double[m * d], s = new double[n * d];
        for (int i = 0; i < x0.Length; i++) x0[i] = AttentionCase.Normal(random);
        for (int j = 0; j < n; j++)
        {
            s[j * d] = 2 * Math.Cos(2 * Math.PI * j / n);
            s[j * d + 1] = 2 * Math.Sin(2 * Math.PI * j / n);
        }
        const double Small = 0.01;
        double[] samples = Sample<float>(FastKernelAttention.Dispatch.IsaDispatch.Selected, x0, s, d, Small);
        var hits = new int[n];
        for (int i = 0; i < m; i++)
        {
            double nearest = double.PositiveInfinity;
            int which = -1;
            for (int j = 0; j < n; j++)
            {
                double distance = Math.Sqrt(Math.Pow(samples[i * d] - s[j * d], 2) + Math.Pow(samples[i * d + 1] - s[j * d + 1], 2));
                if (distance < nearest) (nearest, which) = (distance, j);
            }
            Assert.True(nearest < 0.1, $"sample {i} ends {nearest:F4} from the support");
            hits[which]++;
        }
        Assert.All(hits, count => Assert.InRange(count, 20, 120));    // every support point receives samples
    }

    [Fact]
    public void ValidationAndZeroAllocation()
    {
        double[] x = new double[4], s = new double[6], v = new double[4];
        Assert.Equal("support", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 2, 3), 0.5, 0.1, new Span2D<double>(v, 2, 2))).ParamName);
        Assert.Equal("support", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 0, 2), 0.5, 0.1, new Span2D<double>(v, 2, 2))).ParamName);
        Assert.Equal("time", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 1.5, 0.1, new Span2D<double>(v, 2, 2))).ParamName);
        Assert.Equal("minimumNoise", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.5, 0.0, new Span2D<double>(v, 2, 2))).ParamName);
        Assert.Equal("velocity", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.5, 0.1, new Span2D<double>(v, 1, 2))).ParamName);
        Assert.Equal("supportLogWeights", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Velocity<double>(new ReadOnlySpan2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.5, 0.1, new Span2D<double>(v, 2, 2), new[] { 0.0, double.NaN, 0.0 })).ParamName);
        Assert.Equal("stepCount", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Sample<double>(new Span2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.1, 0)).ParamName);
        Assert.Equal("startTime", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Sample<double>(new Span2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.1, 10, 1.0)).ParamName);
        Assert.Equal("workspace", Assert.ThrowsAny<ArgumentException>(() => FlowMatching.Sample<double>(new Span2D<double>(x, 2, 2), new ReadOnlySpan2D<double>(s, 3, 2), 0.1, 10, 0.0, default, new byte[4])).ParamName);

        // NaN in one point stays in its row.
        double[] nanVelocity = Velocity<double>(IsaPath.Scalar, new[] { double.NaN, 0.3 }, new[] { -1.0, 1.0 }, 1, 0.5, SigmaMin);
        Assert.True(double.IsNaN(nanVelocity[0]) && !double.IsNaN(nanVelocity[1]));

        var random = new Random(9);
        float[] points = new float[64 * 2], support = new float[20 * 2], velocity = new float[64 * 2];
        for (int i = 0; i < points.Length; i++) points[i] = (float)AttentionCase.Normal(random);
        for (int i = 0; i < support.Length; i++) support[i] = (float)AttentionCase.Normal(random);
        byte[] workspace = new byte[FlowMatching.GetWorkspaceSize<float>(64, 20, 2)];
        void Call()
        {
            FlowMatching.Velocity<float>(new ReadOnlySpan2D<float>(points, 64, 2), new ReadOnlySpan2D<float>(support, 20, 2), 0.4, 0.1, new Span2D<float>(velocity, 64, 2), default, workspace);
            FlowMatching.Velocity<float>(new ReadOnlySpan2D<float>(points, 64, 2), new ReadOnlySpan2D<float>(support, 20, 2), 0.4, 0.1, new Span2D<float>(velocity, 64, 2));
            FlowMatching.Sample<float>(new Span2D<float>(points, 64, 2), new ReadOnlySpan2D<float>(support, 20, 2), 0.1, 5, 1e-5, default, workspace);
        }
        Assert.Equal(0, Allocation.Measure(Call));
    }
}
