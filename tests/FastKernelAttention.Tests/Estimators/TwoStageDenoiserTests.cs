using System;
using System.Text;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference.Estimators;
using FastKernelAttention.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>MATH §8: the depth–noise rule, the reference on every ISA path, L = 0 as the one-step posterior mean, the
/// two-stage experiment (MSE versus horizon), validation and zero allocation.</summary>
public class TwoStageDenoiserTests
{
    private readonly ITestOutputHelper output;

    public TwoStageDenoiserTests(ITestOutputHelper output) => this.output = output;

    [Fact]
    public void RuleHorizonMatchesMath()
    {
        // τ² = 1, σ² = 0.5, h = 1: T* = 0.25 + ½·ln 1.5 = 0.452733; with Δt = 0.05 that is L = 9.
        Assert.Equal(0.452733, TwoStageDenoiser.RuleHorizon(0.5, 1.0, 1.0), 1e-6);
        Assert.Equal(9, TwoStageDenoiser.RuleStepCount(0.5, 1.0, 0.05, 1.0));
        Assert.Equal(0.25, TwoStageDenoiser.RuleHorizon(0.5, 1.0), 1e-15);
        Assert.Equal(TwoStageDenoiserReference.RuleHorizon(0.3, 0.7, 2.0), TwoStageDenoiser.RuleHorizon(0.3, 0.7, 2.0), 1e-15);
        Assert.Equal("priorVariance", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.RuleHorizon(0.5, 1.0, 0.0)).ParamName);
        Assert.Equal("bandwidth", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.RuleHorizon(0.5, double.NaN, 1.0)).ParamName);
        Assert.Equal("noiseVariance", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.RuleHorizon(-1, 1.0, 1.0)).ParamName);
    }

    private static (double[] Output, double[] Particles) Run<T>(IsaPath path, double[] y, int n, int d, double sigma2, double h,
        double dt, int steps, int subSteps = 1, double blend = 0)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        T[] tokens = Array.ConvertAll(y, T.CreateTruncating), result = new T[n * d], particles = new T[n * d];
        TwoStageDenoiser.DenoiseCore(path, new ReadOnlySpan2D<T>(tokens, n, d), sigma2, h, dt, steps, new Span2D<T>(result, n, d),
            new Span2D<T>(particles, n, d), subSteps, blend, default, workspaceGiven: false);
        return (Array.ConvertAll(result, double.CreateTruncating), Array.ConvertAll(particles, double.CreateTruncating));
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesTheReference(IsaPath path, bool isDouble)
    {
        var random = new Random(31);
        foreach (var (n, d, steps, subSteps, blend) in new[] { (50, 2, 4, 1, 0.0), (29, 3, 2, 2, 0.5), (17, 1, 0, 1, 0.0) })
        {
            double[] y = new double[n * d];
            for (int i = 0; i < y.Length; i++) y[i] = -1 + 1.5 * AttentionCase.Normal(random);
            var ours = isDouble ? Run<double>(path, y, n, d, 0.4, 0.9, 0.1, steps, subSteps, blend) : Run<float>(path, y, n, d, 0.4, 0.9, 0.1, steps, subSteps, blend);
            var (expected, particles) = TwoStageDenoiserReference.Denoise(ParticleFlowTests.ToMatrix(y, n, d), 0.4, 0.9, 0.1, steps, subSteps, blend);
            double tolerance = isDouble ? 3e-11 : 1e-4;
            for (int i = 0; i < n; i++)
            {
                for (int c = 0; c < d; c++)
                {
                    Assert.Equal(expected[i, c], ours.Output[i * d + c], tolerance);
                    Assert.Equal(particles[i, c], ours.Particles[i * d + c], tolerance);
                }
            }
        }
    }

    [Fact]
    public void ZeroStepsIsTheOneStepPosteriorMean()
    {
        var random = new Random(2);
        int n = 60, d = 2;
        double[] y = new double[n * d], mean = new double[n * d];
        for (int i = 0; i < y.Length; i++) y[i] = AttentionCase.Normal(random);
        var ours = Run<double>(IsaPath.Scalar, y, n, d, 0.3, 1.0, 0.05, 0);
        EmpiricalBayes.Posterior<double>(new ReadOnlySpan2D<double>(y, n, d), new ReadOnlySpan2D<double>(y, n, d), 0.3, new Span2D<double>(mean, n, d));
        for (int i = 0; i < y.Length; i++) Assert.Equal(mean[i], ours.Output[i], 1e-13);
        Assert.Equal(y, ours.Particles);
    }

    /// <summary>
    /// MATH §8 experiment: 1-D, clean x ~ N(0, τ² = 1), y = x + N(0, σ² = 0.5), h = 1, Δt = 0.05, n = 300, L = 0..30, 8 seeds;
    /// MSE against the clean x of the two-stage output at each horizon T = L·Δt, averaged over the seeds.
    /// </summary>
    [Fact]
    public void TwoStageBeatsOneStepAndIdentityNearTheRuleHorizon()
    {
        const int N = 300, Seeds = 8, MaxSteps = 30;
        const double Tau2 = 1, Sigma2 = 0.5, H = 1, Dt = 0.05;
        var mse = new double[MaxSteps + 1];
        var cloudVariance = new double[MaxSteps + 1];
        double identity = 0;
        double[] denoised = new double[N], particles = new double[N];
        byte[] workspace = new byte[TwoStageDenoiser.GetWorkspaceSize<double>(N, 1)];
        for (int seed = 0; seed < Seeds; seed++)
        {
            var random = new Random(1000 + seed);
            double[] x = new double[N], y = new double[N];
            for (int i = 0; i < N; i++)
            {
                x[i] = Math.Sqrt(Tau2) * AttentionCase.Normal(random);
                y[i] = x[i] + Math.Sqrt(Sigma2) * AttentionCase.Normal(random);
                identity += (y[i] - x[i]) * (y[i] - x[i]) / (N * Seeds);
            }
            for (int steps = 0; steps <= MaxSteps; steps++)
            {
                TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, N, 1), Sigma2, H, Dt, steps, new Span2D<double>(denoised, N, 1),
                    new Span2D<double>(particles, N, 1), 1, 0, workspace);
                double mean = 0, squares = 0;
                for (int i = 0; i < N; i++)
                {
                    mse[steps] += (denoised[i] - x[i]) * (denoised[i] - x[i]) / (N * Seeds);
                    mean += particles[i] / N;
                }
                for (int i = 0; i < N; i++) squares += (particles[i] - mean) * (particles[i] - mean) / N;
                cloudVariance[steps] += squares / Seeds;
            }
        }

        int rule = TwoStageDenoiser.RuleStepCount(Sigma2, H, Dt, Tau2);
        int best = 0;
        for (int steps = 1; steps <= MaxSteps; steps++) if (mse[steps] < mse[best]) best = steps;
        double crossing = double.NaN;
        for (int steps = 1; steps <= MaxSteps && double.IsNaN(crossing); steps++)
            if (cloudVariance[steps] <= Tau2)
                crossing = Dt * (steps - 1 + (cloudVariance[steps - 1] - Tau2) / (cloudVariance[steps - 1] - cloudVariance[steps]));

        var report = new StringBuilder();
        report.AppendLine($"identity MSE {identity:F4}; rule T* = {TwoStageDenoiser.RuleHorizon(Sigma2, H, Tau2):F6} (L = {rule}); Bayes optimum {Tau2 * Sigma2 / (Tau2 + Sigma2):F6}");
        report.AppendLine("   L      T      MSE   cloud var");
        for (int steps = 0; steps <= MaxSteps; steps++)
            report.AppendLine($"{steps,4} {steps * Dt,6:F2} {mse[steps],8:F4} {cloudVariance[steps],10:F4}{(steps == best ? "  <- argmin" : "")}{(steps == rule ? "  <- rule" : "")}");
        report.AppendLine($"argmin T = {best * Dt:F2}; cloud variance crosses τ² = 1 at T = {crossing:F3}");
        output.WriteLine(report.ToString());

        Assert.True(mse[rule] < mse[0], $"two-stage at the rule horizon {mse[rule]:F4} vs one-step {mse[0]:F4}");
        Assert.True(mse[0] < identity, $"one-step {mse[0]:F4} vs identity {identity:F4}");
        Assert.InRange(best * Dt, 0.25, 0.70);
        Assert.InRange(crossing, 0.35, 0.55);
        Assert.True(mse[MaxSteps] > mse[best] + 0.1, $"MSE(1.5) = {mse[MaxSteps]:F4}, MSE(argmin) = {mse[best]:F4}");
    }

    [Fact]
    public void ValidationAndZeroAllocation()
    {
        double[] y = new double[12], result = new double[12], small = new double[10];
        Assert.Equal("output", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0.5, 1, 0.1, 2, new Span2D<double>(small, 5, 2))).ParamName);
        Assert.Equal("output", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0.5, 1, 0.1, 2, new Span2D<double>(y, 6, 2))).ParamName);
        Assert.Equal("refinedParticles", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0.5, 1, 0.1, 2, new Span2D<double>(result, 6, 2), new Span2D<double>(small, 5, 2))).ParamName);
        Assert.Equal("noiseVariance", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0, 1, 0.1, 2, new Span2D<double>(result, 6, 2))).ParamName);
        Assert.Equal("stepCount", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0.5, 1, 0.1, -2, new Span2D<double>(result, 6, 2))).ParamName);
        Assert.Equal("workspace", Assert.ThrowsAny<ArgumentException>(() => TwoStageDenoiser.Denoise<double>(new ReadOnlySpan2D<double>(y, 6, 2), 0.5, 1, 0.1, 2, new Span2D<double>(result, 6, 2), default, 1, 0, new byte[16])).ParamName);

        var random = new Random(4);
        float[] tokens = new float[80 * 2], denoised = new float[80 * 2], particles = new float[80 * 2];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (float)AttentionCase.Normal(random);
        byte[] workspace = new byte[TwoStageDenoiser.GetWorkspaceSize<float>(80, 2)];
        void Call()
        {
            TwoStageDenoiser.Denoise<float>(new ReadOnlySpan2D<float>(tokens, 80, 2), 0.5, 1, 0.05, 3, new Span2D<float>(denoised, 80, 2),
                new Span2D<float>(particles, 80, 2), 2, 0.5, workspace);
            TwoStageDenoiser.Denoise<float>(new ReadOnlySpan2D<float>(tokens, 80, 2), 0.5, 1, 0.05, 3, new Span2D<float>(denoised, 80, 2));
        }
        Assert.Equal(0, Allocation.Measure(Call));
    }
}
