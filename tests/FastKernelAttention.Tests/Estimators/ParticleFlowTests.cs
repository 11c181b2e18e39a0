using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference.Estimators;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>MATH §8 (Stage 1) and §11: the looped hand values, the reference on every ISA path, the KDE-score identity of a
/// step, the monitors, validation and zero allocation.</summary>
public class ParticleFlowTests
{
    /// <summary>m ≡ 0, so with Δt = 1 the drift is f(x) = −x (MATH §11's test ODE).</summary>
    private struct ZeroMeanShift : ParticleFlow.IMeanShift<double>
    {
        public readonly void Evaluate(ReadOnlySpan2D<double> particles, Span2D<double> mean, Span<double> logSumExp) => mean.Clear();
    }

    private static unsafe double Looped(int subSteps, double blend)
    {
        double[] x = { 1.0 };
        byte[] workspace = new byte[ParticleFlow.GetWorkspaceSize<double>(1, 1)];
        fixed (byte* buffer = workspace)
        {
            var shift = new ZeroMeanShift();
            ParticleFlow.RunAligned(ref shift, new Span2D<double>(x, 1, 1), 1.0, 1, subSteps, blend, default, default, EstimatorScratch.Align(buffer));
        }
        return x[0];
    }

    [Fact]
    public void LoopedSubStepsAndBlendMatchTheHandValues()
    {
        // f(x) = −x from x = 1 (exact e⁻¹ = 0.367879): K sub-steps give (1 − 1/K)^K.
        Assert.Equal(0, Looped(1, 0), 1e-12);
        Assert.Equal(0.25, Looped(2, 0), 1e-12);
        Assert.Equal(0.316406, Looped(4, 0), 1e-6);
        Assert.Equal(0.343609, Looped(8, 0), 1e-6);
        Assert.Equal(0.158203, Looped(4, 0.5), 1e-6);
    }

    private static (double[] Particles, double[] Msq, double[] Energy) Run<T>(IsaPath path, double[] start, int n, int d, double h,
        double dt, int steps, int subSteps, double blend, int pitch = 0)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        T[] data = new T[n * (d + pitch)];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++)
                data[i * (d + pitch) + c] = T.CreateTruncating(start[i * d + c]);
        double[] msq = new double[steps], energy = new double[steps];
        var particles = new Span2D<T>(data, 0, n, d, pitch);
        ParticleFlow.RunCore(path, particles, h, dt, steps, subSteps, blend, msq, energy, default, workspaceGiven: false);
        double[] result = new double[n * d];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++)
                result[i * d + c] = double.CreateTruncating(particles[i, c]);
        return (result, msq, energy);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesTheReference(IsaPath path, bool isDouble)
    {
        var random = new Random(21);
        foreach (var (n, d, steps, subSteps, blend) in new[] { (40, 3, 5, 1, 0.0), (33, 2, 3, 3, 0.4), (1, 4, 2, 2, 0.0), (70, 1, 4, 1, 1.0) })
        {
            double[] start = new double[n * d];
            for (int i = 0; i < start.Length; i++) start[i] = 2 + AttentionCase.Normal(random);
            var ours = isDouble ? Run<double>(path, start, n, d, 0.8, 0.1, steps, subSteps, blend, pitch: 3)
                                : Run<float>(path, start, n, d, 0.8, 0.1, steps, subSteps, blend, pitch: 3);
            var (particles, msq, energy) = ParticleFlowReference.Run(ToMatrix(start, n, d), 0.8, 0.1, steps, subSteps, blend);
            double tolerance = isDouble ? 1e-11 : 3e-5;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < d; c++)
                    Assert.Equal(particles[i, c], ours.Particles[i * d + c], tolerance * 3);
            for (int s = 0; s < steps; s++)
            {
                Assert.Equal(msq[s], ours.Msq[s], tolerance * Math.Max(1e-3, msq[s]) * 100);
                Assert.Equal(energy[s], ours.Energy[s], tolerance * Math.Max(1, Math.Abs(energy[s])));
            }
        }
    }

    [Fact]
    public void StepIsKernelScoreAscent()
    {
        // m_h(x_i) − x_i = h²·∂/∂x_i log Σ_j exp(−‖x_i − x_j‖²/(2h²)) with the keys held fixed: check one step against
        // central differences of the log KDE in double.
        var random = new Random(5);
        int n = 25, d = 2;
        double h = 0.7, dt = 0.01;
        double[] start = new double[n * d];
        for (int i = 0; i < start.Length; i++) start[i] = AttentionCase.Normal(random);
        var moved = Run<double>(IsaPath.Scalar, start, n, d, h, dt, 1, 1, 0).Particles;
        const double Step = 1e-5;
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < d; c++)
            {
                double[] plus = (double[])start[(i * d)..(i * d + d)].Clone(), minus = (double[])plus.Clone();
                plus[c] += Step;
                minus[c] -= Step;
                double gradient = (LogKde(plus, start, n, d, h) - LogKde(minus, start, n, d, h)) / (2 * Step);
                Assert.Equal(h * h * gradient, (moved[i * d + c] - start[i * d + c]) / dt, 1e-7);
            }
        }
    }

    private static double LogKde(double[] x, double[] keys, int n, int d, double h)
    {
        double max = double.NegativeInfinity;
        double[] logits = new double[n];
        for (int j = 0; j < n; j++)
        {
            double squared = 0;
            for (int c = 0; c < d; c++) squared += (x[c] - keys[j * d + c]) * (x[c] - keys[j * d + c]);
            logits[j] = -squared / (2 * h * h);
            max = Math.Max(max, logits[j]);
        }
        double sum = 0;
        foreach (double s in logits) sum += Math.Exp(s - max);
        return max + Math.Log(sum);
    }

    [Fact]
    public void MonitorsEdgeCasesAndValidation()
    {
        // One particle never moves: step 0, E = LSE − log 1 = 0.
        var single = Run<double>(IsaPath.Scalar, new[] { 3.0, -1.0 }, 1, 2, 1.0, 0.5, 3, 2, 0.5);
        Assert.Equal(new[] { 3.0, -1.0 }, single.Particles);
        Assert.All(single.Msq, v => Assert.Equal(0, v));
        Assert.All(single.Energy, v => Assert.Equal(0, v, 1e-15));

        double[] msq = new double[2], energy = new double[2];
        ParticleFlow.Run(new Span2D<double>(Array.Empty<double>(), 0, 3), 1.0, 0.1, 2, msq, energy);
        Assert.All(msq, v => Assert.True(double.IsNaN(v)));
        Assert.All(energy, v => Assert.True(double.IsNaN(v)));

        double[] x = new double[6];
        Assert.Equal("bandwidth", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 3, 2), 0.0, 0.1)).ParamName);
        Assert.Equal("stepSize", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 3, 2), 1.0, double.NaN)).ParamName);
        Assert.Equal("subSteps", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 3, 2), 1.0, 0.1, 0)).ParamName);
        Assert.Equal("blend", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 3, 2), 1.0, 0.1, 1, 1.5)).ParamName);
        Assert.Equal("stepCount", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Run(new Span2D<double>(x, 3, 2), 1.0, 0.1, -1)).ParamName);
        Assert.Equal("energy", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Run(new Span2D<double>(x, 3, 2), 1.0, 0.1, 3, default, new double[2])).ParamName);
        Assert.Equal("workspace", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 3, 2), 1.0, 0.1, 1, 0, new byte[8])).ParamName);
        Assert.Equal("particles", Assert.ThrowsAny<ArgumentException>(() => ParticleFlow.Step(new Span2D<double>(x, 6, 0), 1.0, 0.1)).ParamName);
    }

    [Fact]
    public void SteadyStateCallAllocatesNothing()
    {
        var random = new Random(3);
        float[] x = new float[64 * 3];
        for (int i = 0; i < x.Length; i++) x[i] = (float)AttentionCase.Normal(random);
        double[] msq = new double[4], energy = new double[4];
        byte[] workspace = new byte[ParticleFlow.GetWorkspaceSize<float>(64, 3)];
        void Call()
        {
            ParticleFlow.Run(new Span2D<float>(x, 64, 3), 0.5, 0.01, 4, msq, energy, 2, 0.5, workspace);
            ParticleFlow.Run(new Span2D<float>(x, 64, 3), 0.5, 0.01, 4, msq, energy, 2, 0.5);
            ParticleFlow.Step(new Span2D<float>(x, 64, 3), 0.5, 0.01);
        }
        Assert.Equal(0, Allocation.Measure(Call));
    }

    internal static double[,] ToMatrix(double[] data, int rows, int columns)
    {
        var matrix = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                matrix[i, j] = data[i * columns + j];
        return matrix;
    }
}
