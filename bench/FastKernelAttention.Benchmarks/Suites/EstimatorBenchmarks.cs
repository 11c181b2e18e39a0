using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;

namespace FastKernelAttention.Benchmarks.Suites;

/// <summary>BenchmarkDotNet suite of issue 4: per estimator (one category each) the literal double reference as the
/// baseline and ours (float, caller-owned workspace, single-threaded) on the same data (<see cref="EstimatorCases"/>,
/// m = n = 512), with allocations (MemoryDiagnoser). A short job: one launch, 3 warm-up and 5 measured iterations.
/// Ratios are printed as trends ("35.1x faster"), since ours are 1–3% of the reference's time. Bandwidth selection has no
/// reference, so its category has no ratio. Compare ratios within one run only.</summary>
[MemoryDiagnoser]
[Config(typeof(TrendConfig))]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 5)]
public class EstimatorBenchmarks
{
    private const int QueryCount = 512, SampleCount = 512;

    /// <summary>The default configuration with ratios as "N× faster" instead of 0.02.</summary>
    public sealed class TrendConfig : ManualConfig
    {
        /// <summary>Sets the ratio style.</summary>
        public TrendConfig() => SummaryStyle = SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend);
    }

    private EstimatorCases cases = null!;

    [GlobalSetup]
    public void Setup() => cases = new EstimatorCases(QueryCount, SampleCount);

    [Benchmark(Baseline = true), BenchmarkCategory("NW Predict")]
    public double[,] NwPredictReference() => cases.NwPredictReference();

    [Benchmark, BenchmarkCategory("NW Predict")]
    public void NwPredict() => cases.NwPredict();

    [Benchmark(Baseline = true), BenchmarkCategory("NW CV score")]
    public double NwCrossValidationReference() => cases.NwCrossValidationReference();

    [Benchmark, BenchmarkCategory("NW CV score")]
    public double NwCrossValidation() => cases.NwCrossValidation();

    /// <summary>n = 400, d = 3, one bandwidth per dimension; no reference exists.</summary>
    [Benchmark, BenchmarkCategory("NW SelectBandwidth")]
    public double NwSelectBandwidth() => cases.NwSelectBandwidth();

    [Benchmark(Baseline = true), BenchmarkCategory("EB Posterior")]
    public double[,] EbPosteriorReference() => cases.EbPosteriorReference();

    [Benchmark, BenchmarkCategory("EB Posterior")]
    public void EbPosterior() => cases.EbPosterior();

    [Benchmark(Baseline = true), BenchmarkCategory("ParticleFlow Run")]
    public double[,] ParticleFlowRunReference() => cases.ParticleFlowRunReference();

    [Benchmark, BenchmarkCategory("ParticleFlow Run")]
    public void ParticleFlowRun() => cases.ParticleFlowRun();

    [Benchmark(Baseline = true), BenchmarkCategory("TwoStageDenoiser Denoise")]
    public double[,] DenoiseReference() => cases.DenoiseReference();

    [Benchmark, BenchmarkCategory("TwoStageDenoiser Denoise")]
    public void Denoise() => cases.Denoise();

    [Benchmark(Baseline = true), BenchmarkCategory("MultiHeadEnsemble Predict")]
    public double[,] EnsemblePredictReference() => cases.EnsemblePredictReference();

    [Benchmark, BenchmarkCategory("MultiHeadEnsemble Predict")]
    public void EnsemblePredict() => cases.EnsemblePredict();

    [Benchmark(Baseline = true), BenchmarkCategory("MultiHeadEnsemble HDI")]
    public double HeadDiversityIndexReference() => cases.HeadDiversityIndexReference();

    [Benchmark, BenchmarkCategory("MultiHeadEnsemble HDI")]
    public double HeadDiversityIndex() => cases.HeadDiversityIndex();

    [Benchmark(Baseline = true), BenchmarkCategory("FlowMatching Velocity")]
    public double[,] FlowMatchingVelocityReference() => cases.FlowMatchingVelocityReference();

    [Benchmark, BenchmarkCategory("FlowMatching Velocity")]
    public void FlowMatchingVelocity() => cases.FlowMatchingVelocity();

    [Benchmark(Baseline = true), BenchmarkCategory("FlowMatching Sample")]
    public double[,] FlowMatchingSampleReference() => cases.FlowMatchingSampleReference();

    [Benchmark, BenchmarkCategory("FlowMatching Sample")]
    public void FlowMatchingSample() => cases.FlowMatchingSample();
}
