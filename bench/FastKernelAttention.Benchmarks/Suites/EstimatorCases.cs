using System;
using System.Collections.Generic;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;
using FastKernelAttention.Reference;
using FastKernelAttention.Reference.Estimators;

namespace FastKernelAttention.Benchmarks.Suites;

/// <summary>
/// The estimator cases of issue 4, shared by <see cref="EstimatorBenchmarks"/> and the quick table: N(0, 1) inputs at one
/// shape (m queries, n samples), our float call with a caller-owned workspace (no allocation of any kind, single-threaded)
/// and the literal double reference of each estimator on the same data. The in-place estimators (particle flow, flow
/// matching sampler) copy their start into a working buffer first, as the references clone theirs.
/// </summary>
/// <remarks>Fixed parameters: NW d = 3, p = 1, h = 0.3 (bandwidth selection on its own n = 400, d = 3 set, the statsmodels
/// comparison's size); empirical Bayes d = 1, σ² = 1, with variance, log evidence and lfsr; particle flow d = 4, h = 0.5,
/// Δt = 0.5, L = 4 steps with both monitors; two-stage denoiser the same Stage 1 from tokens of noise σ² = 0.25;
/// multi-head ensemble d = 16, p = 1, H = 4 heads of d_k = 4, dot kernel, mean combination; the head diversity index
/// H = 8, d = 64, d_k = 8; flow matching d = 2, σ_min = 0.01, the velocity at t = 0.5 and a 20-step Euler sampler.</remarks>
internal sealed class EstimatorCases
{
    /// <summary>One estimator call of ours against its reference; <paramref name="Reference"/> is null where the library
    /// has no literal reference (bandwidth selection), <paramref name="Flops"/> 0 where no attention flop count is given.</summary>
    internal sealed record Case(string Name, Action Ours, Action? Reference, double Flops);

    internal const int NwDimension = 3, SelectionSamples = 400, EbDimension = 1, FlowDimension = 4, FlowSteps = 4;
    internal const int EnsembleDimension = 16, EnsembleHeads = 4, EnsembleKeyDimension = 4;
    internal const int DiversityHeads = 8, DiversityDimension = 64, DiversityKeyDimension = 8;
    internal const int FlowMatchingDimension = 2, SamplerSteps = 20;
    private const double NwBandwidth = 0.3, EbNoiseVariance = 1, FlowBandwidth = 0.5, FlowStepSize = 0.5, DenoiserNoiseVariance = 0.25;
    private const double VelocityTime = 0.5, MinimumNoise = 0.01;

    private readonly int m, n;

    // Nadaraya–Watson: x [m×3], X [n×3], Y [n×1]; the selection set [400×3], [400×1].
    private readonly float[] nwQueries, nwSamples, nwResponses, nwEstimate, nwBandwidths = [(float)NwBandwidth], selectionSamples,
        selectionResponses, selected = new float[NwDimension];
    private readonly double[,] nwQueriesD, nwSamplesD, nwResponsesD;
    private readonly byte[] nwPredictWorkspace, nwCvWorkspace;

    // Empirical Bayes: y [m×1], atoms [n×1].
    private readonly float[] ebObservations, ebAtoms, ebMean, ebVariance, ebLogEvidence, ebLfsr;
    private readonly double[,] ebObservationsD, ebAtomsD;
    private readonly byte[] ebWorkspace;

    // Particle flow and the denoiser: particles / noisy tokens [n×4].
    private readonly float[] flowStart, flowParticles, noisyTokens, denoised, refined;
    private readonly double[] meanSquaredStep = new double[FlowSteps], energy = new double[FlowSteps];
    private readonly double[,] flowStartD, noisyTokensD;
    private readonly byte[] flowWorkspace, denoiserWorkspace;

    // Multi-head ensemble: x [m×16], X [n×16], Y [n×1], W_q, W_k stacked (H·16)×4; the HDI's W_k stacked (8·64)×8.
    private readonly float[] ensembleQueries, ensembleSamples, ensembleResponses, queryProjections, keyProjections, ensembleOutput,
        diversityProjections;
    private readonly double[,] ensembleQueriesD, ensembleSamplesD, ensembleResponsesD;
    private readonly double[][,] queryProjectionsD, keyProjectionsD, diversityProjectionsD;
    private readonly byte[] ensembleWorkspace, diversityWorkspace;

    // Flow matching: points [m×2], support [n×2].
    private readonly float[] fmStart, fmPoints, fmSupport, fmVelocity;
    private readonly double[,] fmStartD, fmSupportD;
    private readonly byte[] fmWorkspace;

    /// <param name="queryCount">m: NW queries, EB observations, ensemble queries, flow-matching points.</param>
    /// <param name="sampleCount">n: NW samples, EB atoms, particles, denoiser tokens, ensemble samples, flow-matching support.</param>
    public EstimatorCases(int queryCount, int sampleCount)
    {
        m = queryCount;
        n = sampleCount;
        var random = new Random(11);
        float[] Normal(int count, double scale = 1)
        {
            float[] data = QuickTable.Normal(random, count);
            for (int i = 0; i < data.Length; i++) data[i] = (float)(data[i] * scale);
            return data;
        }

        nwQueries = Normal(m * NwDimension);
        nwSamples = Normal(n * NwDimension);
        nwResponses = Normal(n);
        nwEstimate = new float[m];
        nwQueriesD = QuickTable.ToMatrix(nwQueries, m, NwDimension);
        nwSamplesD = QuickTable.ToMatrix(nwSamples, n, NwDimension);
        nwResponsesD = QuickTable.ToMatrix(nwResponses, n, 1);
        nwPredictWorkspace = new byte[NadarayaWatson.GetPredictWorkspaceSize<float>(m, n, NwDimension, 1, 1)];
        nwCvWorkspace = new byte[NadarayaWatson.GetCrossValidationWorkspaceSize<float>(n, NwDimension, 1, 1)];
        selectionSamples = Normal(SelectionSamples * NwDimension);
        selectionResponses = Normal(SelectionSamples);

        ebObservations = Normal(m * EbDimension, Math.Sqrt(2)); // prior N(0, 1) atoms plus N(0, σ² = 1) noise
        ebAtoms = Normal(n * EbDimension);
        ebMean = new float[m * EbDimension];
        ebVariance = new float[m * EbDimension];
        ebLogEvidence = new float[m];
        ebLfsr = new float[m];
        ebObservationsD = QuickTable.ToMatrix(ebObservations, m, EbDimension);
        ebAtomsD = QuickTable.ToMatrix(ebAtoms, n, EbDimension);
        ebWorkspace = new byte[EmpiricalBayes.GetWorkspaceSize<float>(m, n, EbDimension)];

        flowStart = Normal(n * FlowDimension);
        flowParticles = new float[flowStart.Length];
        flowStartD = QuickTable.ToMatrix(flowStart, n, FlowDimension);
        flowWorkspace = new byte[ParticleFlow.GetWorkspaceSize<float>(n, FlowDimension)];
        noisyTokens = Normal(n * FlowDimension);
        float[] noise = Normal(n * FlowDimension, Math.Sqrt(DenoiserNoiseVariance));
        for (int i = 0; i < noisyTokens.Length; i++) noisyTokens[i] += noise[i];
        denoised = new float[noisyTokens.Length];
        refined = new float[noisyTokens.Length];
        noisyTokensD = QuickTable.ToMatrix(noisyTokens, n, FlowDimension);
        denoiserWorkspace = new byte[TwoStageDenoiser.GetWorkspaceSize<float>(n, FlowDimension)];

        ensembleQueries = Normal(m * EnsembleDimension);
        ensembleSamples = Normal(n * EnsembleDimension);
        ensembleResponses = Normal(n);
        double projectionScale = 1 / Math.Sqrt(EnsembleDimension);
        queryProjections = Normal(EnsembleHeads * EnsembleDimension * EnsembleKeyDimension, projectionScale);
        keyProjections = Normal(EnsembleHeads * EnsembleDimension * EnsembleKeyDimension, projectionScale);
        ensembleOutput = new float[m];
        ensembleQueriesD = QuickTable.ToMatrix(ensembleQueries, m, EnsembleDimension);
        ensembleSamplesD = QuickTable.ToMatrix(ensembleSamples, n, EnsembleDimension);
        ensembleResponsesD = QuickTable.ToMatrix(ensembleResponses, n, 1);
        queryProjectionsD = Split(queryProjections, EnsembleHeads, EnsembleDimension, EnsembleKeyDimension);
        keyProjectionsD = Split(keyProjections, EnsembleHeads, EnsembleDimension, EnsembleKeyDimension);
        ensembleWorkspace = new byte[MultiHeadEnsemble.GetWorkspaceSize<float>(m, n, EnsembleDimension, 1, EnsembleHeads,
            EnsembleKeyDimension, 0, new AttentionOptions())];
        diversityProjections = Normal(DiversityHeads * DiversityDimension * DiversityKeyDimension);
        diversityProjectionsD = Split(diversityProjections, DiversityHeads, DiversityDimension, DiversityKeyDimension);
        diversityWorkspace = new byte[MultiHeadEnsemble.GetHeadDiversityWorkspaceSize(DiversityHeads, DiversityDimension, DiversityKeyDimension)];

        fmStart = Normal(m * FlowMatchingDimension);
        fmPoints = new float[fmStart.Length];
        fmSupport = Normal(n * FlowMatchingDimension);
        fmVelocity = new float[fmStart.Length];
        fmStartD = QuickTable.ToMatrix(fmStart, m, FlowMatchingDimension);
        fmSupportD = QuickTable.ToMatrix(fmSupport, n, FlowMatchingDimension);
        fmWorkspace = new byte[FlowMatching.GetWorkspaceSize<float>(m, n, FlowMatchingDimension)];
    }

    /// <summary>Every case with its quick-table name (the shape included); flops are the attention passes' 2·m·n·(d + p)
    /// where one pass is the whole computation (NW prediction and CV).</summary>
    public IReadOnlyList<Case> All() =>
    [
        new($"NW predict d={NwDimension}", () => NwPredict(), () => NwPredictReference(), FlopCount.Forward(m, n, NwDimension, 1, causal: false)),
        new($"NW CV score n={n} d={NwDimension}", () => NwCrossValidation(), () => NwCrossValidationReference(),
            FlopCount.Forward(n, n, NwDimension, 1, causal: false)),
        new($"NW select bandwidth n={SelectionSamples} d={NwDimension}", () => NwSelectBandwidth(), null, 0),
        new($"EB posterior m={m} n={n} d={EbDimension}", () => EbPosterior(), () => EbPosteriorReference(), 0),
        new($"particle flow n={n} d={FlowDimension} L={FlowSteps}", () => ParticleFlowRun(), () => ParticleFlowRunReference(), 0),
        new($"two-stage denoiser n={n} d={FlowDimension} L={FlowSteps}", () => Denoise(), () => DenoiseReference(), 0),
        new($"ensemble predict H={EnsembleHeads} m={m} n={n} d={EnsembleDimension}", () => EnsemblePredict(), () => EnsemblePredictReference(), 0),
        new($"ensemble HDI H={DiversityHeads} d={DiversityDimension} dk={DiversityKeyDimension}", () => HeadDiversityIndex(),
            () => HeadDiversityIndexReference(), 0),
        new($"flow matching velocity m={m} n={n} d={FlowMatchingDimension}", () => FlowMatchingVelocity(), () => FlowMatchingVelocityReference(), 0),
        new($"flow matching sample m={m} n={n} d={FlowMatchingDimension} N={SamplerSteps}", () => FlowMatchingSample(),
            () => FlowMatchingSampleReference(), 0),
    ];

    public void NwPredict() => NadarayaWatson.Predict<float>(new ReadOnlySpan2D<float>(nwQueries, m, NwDimension),
        new ReadOnlySpan2D<float>(nwSamples, n, NwDimension), new ReadOnlySpan2D<float>(nwResponses, n, 1), nwBandwidths,
        new Span2D<float>(nwEstimate, m, 1), default, default, default, default, default, nwPredictWorkspace);

    public double[,] NwPredictReference() => NadarayaWatsonReference.Predict(nwQueriesD, nwSamplesD, nwResponsesD, [NwBandwidth]).Estimate;

    public double NwCrossValidation() => NadarayaWatson.CrossValidationScore<float>(new ReadOnlySpan2D<float>(nwSamples, n, NwDimension),
        new ReadOnlySpan2D<float>(nwResponses, n, 1), nwBandwidths, nwCvWorkspace);

    public double NwCrossValidationReference() => NadarayaWatsonReference.CrossValidationScore(nwSamplesD, nwResponsesD, [NwBandwidth]);

    /// <summary>Bandwidth selection allocates nothing managed (its scratch is native); it has no workspace overload.</summary>
    public double NwSelectBandwidth() => NadarayaWatson.SelectBandwidth<float>(new ReadOnlySpan2D<float>(selectionSamples, SelectionSamples, NwDimension),
        new ReadOnlySpan2D<float>(selectionResponses, SelectionSamples, 1), selected);

    public void EbPosterior() => EmpiricalBayes.Posterior<float>(new ReadOnlySpan2D<float>(ebObservations, m, EbDimension),
        new ReadOnlySpan2D<float>(ebAtoms, n, EbDimension), EbNoiseVariance, new Span2D<float>(ebMean, m, EbDimension),
        new Span2D<float>(ebVariance, m, EbDimension), ebLogEvidence, ebLfsr, default, ebWorkspace);

    public double[,] EbPosteriorReference() => EmpiricalBayesReference.Posterior(ebObservationsD, ebAtomsD, EbNoiseVariance).Mean;

    public void ParticleFlowRun()
    {
        flowStart.AsSpan().CopyTo(flowParticles);
        ParticleFlow.Run<float>(new Span2D<float>(flowParticles, n, FlowDimension), FlowBandwidth, FlowStepSize, FlowSteps,
            meanSquaredStep, energy, 1, 0, flowWorkspace);
    }

    public double[,] ParticleFlowRunReference() => ParticleFlowReference.Run(flowStartD, FlowBandwidth, FlowStepSize, FlowSteps).Particles;

    public void Denoise() => TwoStageDenoiser.Denoise<float>(new ReadOnlySpan2D<float>(noisyTokens, n, FlowDimension), DenoiserNoiseVariance,
        FlowBandwidth, FlowStepSize, FlowSteps, new Span2D<float>(denoised, n, FlowDimension), new Span2D<float>(refined, n, FlowDimension),
        1, 0, denoiserWorkspace);

    public double[,] DenoiseReference() => TwoStageDenoiserReference.Denoise(noisyTokensD, DenoiserNoiseVariance, FlowBandwidth,
        FlowStepSize, FlowSteps).Output;

    public void EnsemblePredict() => MultiHeadEnsemble.Predict<float>(new ReadOnlySpan2D<float>(ensembleQueries, m, EnsembleDimension),
        new ReadOnlySpan2D<float>(ensembleSamples, n, EnsembleDimension), new ReadOnlySpan2D<float>(ensembleResponses, n, 1),
        new ReadOnlySpan2D<float>(queryProjections, EnsembleHeads * EnsembleDimension, EnsembleKeyDimension),
        new ReadOnlySpan2D<float>(keyProjections, EnsembleHeads * EnsembleDimension, EnsembleKeyDimension), default, EnsembleHeads,
        new AttentionOptions(), EnsembleCombination.Mean, new Span2D<float>(ensembleOutput, m, 1), default, default, ensembleWorkspace);

    public double[,] EnsemblePredictReference() => MultiHeadEnsembleReference.Predict(ensembleQueriesD, ensembleSamplesD, ensembleResponsesD,
        queryProjectionsD, keyProjectionsD, null, new ReferenceOptions(), logSumExpWeights: false).Output;

    public double HeadDiversityIndex() => MultiHeadEnsemble.HeadDiversityIndex<float>(
        new ReadOnlySpan2D<float>(diversityProjections, DiversityHeads * DiversityDimension, DiversityKeyDimension), DiversityHeads, diversityWorkspace);

    public double HeadDiversityIndexReference() => MultiHeadEnsembleReference.HeadDiversityIndex(diversityProjectionsD);

    public void FlowMatchingVelocity() => FlowMatching.Velocity<float>(new ReadOnlySpan2D<float>(fmStart, m, FlowMatchingDimension),
        new ReadOnlySpan2D<float>(fmSupport, n, FlowMatchingDimension), VelocityTime, MinimumNoise,
        new Span2D<float>(fmVelocity, m, FlowMatchingDimension), default, fmWorkspace);

    public double[,] FlowMatchingVelocityReference() => FlowMatchingReference.Velocity(fmStartD, fmSupportD, VelocityTime, MinimumNoise);

    public void FlowMatchingSample()
    {
        fmStart.AsSpan().CopyTo(fmPoints);
        FlowMatching.Sample<float>(new Span2D<float>(fmPoints, m, FlowMatchingDimension), new ReadOnlySpan2D<float>(fmSupport, n, FlowMatchingDimension),
            MinimumNoise, SamplerSteps, FlowMatching.DefaultStartTime, default, fmWorkspace);
    }

    public double[,] FlowMatchingSampleReference() => FlowMatchingReference.Sample(fmStartD, fmSupportD, MinimumNoise, SamplerSteps,
        FlowMatching.DefaultStartTime);

    /// <summary>Per-head d × d_k matrices from the stacked (H·d) × d_k layout.</summary>
    private static double[][,] Split(float[] stacked, int heads, int rows, int columns)
    {
        var matrices = new double[heads][,];
        for (int h = 0; h < heads; h++) matrices[h] = QuickTable.ToMatrix(stacked[(h * rows * columns)..((h + 1) * rows * columns)], rows, columns);
        return matrices;
    }
}
