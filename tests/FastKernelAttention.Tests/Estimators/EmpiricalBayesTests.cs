using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference.Estimators;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>MATH §7: the hand values, the Tweedie identity, the reference on every ISA path, Monte-Carlo convergence to
/// the Gaussian-prior shrinkage, validation and zero allocation.</summary>
public class EmpiricalBayesTests
{
    private static (double[] Mean, double[] Variance, double[] LogEvidence, double[] Lfsr) Run<T>(IsaPath path, double[] y, double[] atoms,
        int d, double noiseVariance, double[]? logWeights = null)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        int m = y.Length / d, n = atoms.Length / d;
        T[] yt = Array.ConvertAll(y, T.CreateTruncating), at = Array.ConvertAll(atoms, T.CreateTruncating);
        T[] mean = new T[m * d], variance = new T[m * d], evidence = new T[m], lfsr = new T[d == 1 ? m : 0];
        T[] weights = logWeights is null ? Array.Empty<T>() : Array.ConvertAll(logWeights, T.CreateTruncating);
        EmpiricalBayes.PosteriorCore(path, new ReadOnlySpan2D<T>(yt, m, d), new ReadOnlySpan2D<T>(at, n, d), noiseVariance,
            new Span2D<T>(mean, m, d), new Span2D<T>(variance, m, d), evidence, lfsr, weights, default, workspaceGiven: false);
        return (Array.ConvertAll(mean, double.CreateTruncating), Array.ConvertAll(variance, double.CreateTruncating),
            Array.ConvertAll(evidence, double.CreateTruncating), Array.ConvertAll(lfsr, double.CreateTruncating));
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void HandValues(IsaPath path, bool isDouble)
    {
        double tolerance = isDouble ? 1e-6 : 2e-6;
        // (a) atoms {0, 1}, y = 1, σ² = 0.2: w = (0.075858, 0.924142).
        var a = isDouble ? Run<double>(path, new[] { 1.0 }, new[] { 0.0, 1.0 }, 1, 0.2) : Run<float>(path, new[] { 1.0 }, new[] { 0.0, 1.0 }, 1, 0.2);
        Assert.Equal(0.924142, a.Mean[0], tolerance);
        Assert.Equal(0.070104, a.Variance[0], tolerance);
        Assert.Equal(0.075858, a.Lfsr[0], tolerance);
        Assert.Equal(-0.728477, a.LogEvidence[0], tolerance);
        // (b) atoms {−1, +1}, y = 0.5, σ² = 0.5.
        var b = isDouble ? Run<double>(path, new[] { 0.5 }, new[] { -1.0, 1.0 }, 1, 0.5) : Run<float>(path, new[] { 0.5 }, new[] { -1.0, 1.0 }, 1, 0.5);
        Assert.Equal(0.761594, b.Mean[0], tolerance);
        Assert.Equal(0.419974, b.Variance[0], tolerance);
        Assert.Equal(0.119203, b.Lfsr[0], tolerance);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesTheReference(IsaPath path, bool isDouble)
    {
        var random = new Random(8);
        foreach (int d in new[] { 1, 2, 5 })
        {
            int m = 37, n = 150;
            double[] y = new double[m * d], atoms = new double[n * d], logWeights = new double[n];
            for (int i = 0; i < y.Length; i++) y[i] = 3 + 2 * AttentionCase.Normal(random);    // an offset away from 0
            for (int i = 0; i < atoms.Length; i++) atoms[i] = 3 + AttentionCase.Normal(random);
            for (int j = 0; j < n; j++) logWeights[j] = j % 11 == 0 ? double.NegativeInfinity : random.NextDouble() - 0.5;
            var ours = isDouble ? Run<double>(path, y, atoms, d, 0.7, logWeights) : Run<float>(path, y, atoms, d, 0.7, logWeights);
            var (mean, variance, evidence, lfsr) = EmpiricalBayesReference.Posterior(ToMatrix(y, m, d), ToMatrix(atoms, n, d), 0.7, logWeights);
            double tolerance = isDouble ? 1e-10 : 2e-5;
            for (int i = 0; i < m; i++)
            {
                for (int k = 0; k < d; k++)
                {
                    Assert.Equal(mean[i, k], ours.Mean[i * d + k], tolerance * 5);
                    Assert.Equal(variance[i, k], ours.Variance[i * d + k], tolerance * 5);
                }
                Assert.Equal(evidence[i], ours.LogEvidence[i], tolerance * Math.Max(1, Math.Abs(evidence[i])));
                if (d == 1) Assert.Equal(lfsr[i], ours.Lfsr[i], tolerance);
            }
        }
    }

    [Fact]
    public void TweedieIdentityHolds()
    {
        // E[x|y] = y + σ²·∇log p(y), exact for the discrete prior; central differences on log p in double.
        var random = new Random(9);
        int n = 40;
        double[] atoms = new double[n * 2];
        for (int i = 0; i < atoms.Length; i++) atoms[i] = AttentionCase.Normal(random);
        double[] y = { 0.3, -0.4 };
        const double Sigma2 = 0.6, Step = 1e-5;
        var at = Run<double>(IsaPath.Scalar, y, atoms, 2, Sigma2);
        for (int k = 0; k < 2; k++)
        {
            double[] plus = (double[])y.Clone(), minus = (double[])y.Clone();
            plus[k] += Step;
            minus[k] -= Step;
            double gradient = (Run<double>(IsaPath.Scalar, plus, atoms, 2, Sigma2).LogEvidence[0] - Run<double>(IsaPath.Scalar, minus, atoms, 2, Sigma2).LogEvidence[0]) / (2 * Step);
            Assert.Equal(at.Mean[k], y[k] + Sigma2 * gradient, 1e-8);
        }
    }

    [Fact]
    public void ConvergesToTheGaussianShrinkage()
    {
        // MATH §7(c): atoms from N(0, 1), σ² = 0.5, y = 1.2 → μ = 0.8, variance 1/3 as n → ∞. With n = 10^5 the
        // Monte-Carlo standard error of the self-normalised estimate is ≈ 0.0056·√(10^4/10^5) ≈ 0.0018 (mean) and 0.0016
        // (variance), so the ±0.01 bound is more than five standard errors.
        var random = new Random(12345);
        double[] atoms = new double[100_000];
        for (int i = 0; i < atoms.Length; i++) atoms[i] = AttentionCase.Normal(random);
        var result = Run<double>(FastKernelAttention.Dispatch.IsaDispatch.Selected, new[] { 1.2 }, atoms, 1, 0.5);
        Assert.InRange(result.Mean[0], 0.79, 0.81);
        Assert.InRange(result.Variance[0], 1.0 / 3 - 0.01, 1.0 / 3 + 0.01);
    }

    [Fact]
    public void EdgeCasesAndValidation()
    {
        var empty = Run<double>(IsaPath.Scalar, new[] { 0.5, 1.5 }, Array.Empty<double>(), 1, 1.0);
        Assert.Equal(new[] { 0.0, 0.0 }, empty.Mean);
        Assert.Equal(new[] { 0.0, 0.0 }, empty.Variance);
        Assert.All(empty.LogEvidence, x => Assert.Equal(double.NegativeInfinity, x));
        var nan = Run<float>(IsaPath.Scalar, new[] { double.NaN, 1.0 }, new[] { 0.0, 1.0, 2.0 }, 1, 1.0);
        Assert.True(double.IsNaN(nan.Mean[0]) && double.IsNaN(nan.LogEvidence[0]));
        Assert.False(double.IsNaN(nan.Mean[1]) || double.IsNaN(nan.LogEvidence[1]));

        float[] y = new float[4], atoms = new float[6], mean = new float[4];
        var error = Assert.ThrowsAny<ArgumentException>(() => EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 2, 2), new ReadOnlySpan2D<float>(atoms, 2, 3), 1.0, new Span2D<float>(mean, 2, 2)));
        Assert.Equal("atoms", error.ParamName);
        error = Assert.ThrowsAny<ArgumentException>(() => EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 2, 2), new ReadOnlySpan2D<float>(atoms, 3, 2), double.NaN, new Span2D<float>(mean, 2, 2)));
        Assert.Equal("noiseVariance", error.ParamName);
        error = Assert.ThrowsAny<ArgumentException>(() => EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 2, 2), new ReadOnlySpan2D<float>(atoms, 3, 2), 1.0, new Span2D<float>(mean, 2, 2), default, default, new float[2]));
        Assert.Equal("localFalseSignRate", error.ParamName);
        error = Assert.ThrowsAny<ArgumentException>(() => EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 2, 2), new ReadOnlySpan2D<float>(atoms, 3, 2), 1.0, new Span2D<float>(mean, 2, 2), default, default, default, default, new byte[10]));
        Assert.Equal("workspace", error.ParamName);
    }

    [Fact]
    public void SteadyStateCallAllocatesNothing()
    {
        var random = new Random(3);
        float[] y = new float[50], atoms = new float[400], mean = new float[50], variance = new float[50], evidence = new float[50], lfsr = new float[50];
        for (int i = 0; i < y.Length; i++) y[i] = (float)AttentionCase.Normal(random);
        for (int i = 0; i < atoms.Length; i++) atoms[i] = (float)AttentionCase.Normal(random);
        byte[] workspace = new byte[EmpiricalBayes.GetWorkspaceSize<float>(50, 400, 1)];
        void Call()
        {
            EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 50, 1), new ReadOnlySpan2D<float>(atoms, 400, 1), 0.5,
                new Span2D<float>(mean, 50, 1), new Span2D<float>(variance, 50, 1), evidence, lfsr);
            EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(y, 50, 1), new ReadOnlySpan2D<float>(atoms, 400, 1), 0.5,
                new Span2D<float>(mean, 50, 1), new Span2D<float>(variance, 50, 1), evidence, lfsr, default, workspace);
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < 0.2) Call();
        long quietest = long.MaxValue;
        for (int trial = 0; trial < 5 && quietest > 0; trial++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Call();
            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, quietest);
    }

    private static double[,] ToMatrix(double[] data, int rows, int columns)
    {
        var matrix = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                matrix[i, j] = data[i * columns + j];
        return matrix;
    }
}
