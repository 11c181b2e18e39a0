using System;
using System.Numerics;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;

namespace FastKernelAttention.Native;

/// <summary>The empirical-Bayes export of fka.h (MATH §7): posterior mean, per-coordinate variance, log evidence and the
/// local false sign rate from one fused pass. Every argument is validated before a span is built; every exception is caught.</summary>
internal static unsafe class ExportsEmpiricalBayes
{
    private static readonly string[] Names =
        ["observations", "atoms", "prior_log_weights", "posterior_mean", "posterior_variance", "log_evidence", "local_false_sign_rate"];

    private const int FirstOutput = 3;

    [UnmanagedCallersOnly(EntryPoint = "fka_eb_posterior_f32")]
    public static int PosteriorF32(long observationCount, long atomCount, long dimension, float* observations, long observationsPitch,
        float* atoms, long atomsPitch, double noiseVariance, float* priorLogWeights, float* posteriorMean, long posteriorMeanPitch,
        float* posteriorVariance, long posteriorVariancePitch, float* logEvidence, float* localFalseSignRate)
        => Posterior<float>("fka_eb_posterior_f32", observationCount, atomCount, dimension, observations, observationsPitch, atoms, atomsPitch,
            noiseVariance, priorLogWeights, posteriorMean, posteriorMeanPitch, posteriorVariance, posteriorVariancePitch, logEvidence, localFalseSignRate);

    [UnmanagedCallersOnly(EntryPoint = "fka_eb_posterior_f64")]
    public static int PosteriorF64(long observationCount, long atomCount, long dimension, double* observations, long observationsPitch,
        double* atoms, long atomsPitch, double noiseVariance, double* priorLogWeights, double* posteriorMean, long posteriorMeanPitch,
        double* posteriorVariance, long posteriorVariancePitch, double* logEvidence, double* localFalseSignRate)
        => Posterior<double>("fka_eb_posterior_f64", observationCount, atomCount, dimension, observations, observationsPitch, atoms, atomsPitch,
            noiseVariance, priorLogWeights, posteriorMean, posteriorMeanPitch, posteriorVariance, posteriorVariancePitch, logEvidence, localFalseSignRate);

    private static int Posterior<T>(string function, long observationCount, long atomCount, long dimension, void* observations,
        long observationsPitch, void* atoms, long atomsPitch, double noiseVariance, void* priorLogWeights, void* posteriorMean,
        long posteriorMeanPitch, void* posteriorVariance, long posteriorVariancePitch, void* logEvidence, void* localFalseSignRate)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            int size = sizeof(T);
            int status;
            if ((status = NativeArguments.Size(function, "observation_count", observationCount, 0, out int m)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "atom_count", atomCount, 0, out int n)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "dimension", dimension, 1, out int d)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "observations", observations, m, d, observationsPitch, size, out int observationsStride)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "atoms", atoms, n, d, atomsPitch, size, out int atomsStride)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "posterior_mean", posteriorMean, m, d, posteriorMeanPitch, size, out int meanStride)) != FkaStatus.Ok) return status;
            int varianceStride = d;
            if (posteriorVariance != null
                && (status = NativeArguments.Matrix(function, "posterior_variance", posteriorVariance, m, d, posteriorVariancePitch, size, out varianceStride)) != FkaStatus.Ok)
                return status;
            if (!(double.IsFinite(noiseVariance) && noiseVariance > 0))
                return LastError.Set(FkaStatus.Argument, $"{function}: noise_variance must be finite and positive, got {noiseVariance}.");
            if (localFalseSignRate != null && d != 1)
                return LastError.Set(FkaStatus.Argument, $"{function}: local_false_sign_rate needs dimension = 1, got {d}.");
            Span<Extent> extents =
            [
                new Extent(observations, m, d, observationsStride, size),
                new Extent(atoms, n, d, atomsStride, size),
                Extent.Vector(priorLogWeights, n, size),
                new Extent(posteriorMean, m, d, meanStride, size),
                new Extent(posteriorVariance, m, d, varianceStride, size),
                Extent.Vector(logEvidence, m, size),
                Extent.Vector(localFalseSignRate, m, size),
            ];
            if ((status = NativeArguments.NoOverlap(function, extents, Names, FirstOutput)) != FkaStatus.Ok) return status;

            // CommunityToolkit's pitch argument is the gap between rows (stride − width). The managed call checks the
            // log-weights (NaN, +∞: FKA_ERR_ARGUMENT) before it writes.
            EmpiricalBayes.Posterior(
                new ReadOnlySpan2D<T>(observations, m, d, observationsStride - d),
                new ReadOnlySpan2D<T>(atoms, n, d, atomsStride - d),
                noiseVariance,
                new Span2D<T>(posteriorMean, m, d, meanStride - d),
                posteriorVariance == null ? default : new Span2D<T>(posteriorVariance, m, d, varianceStride - d),
                logEvidence == null ? default : new Span<T>(logEvidence, m),
                localFalseSignRate == null ? default : new Span<T>(localFalseSignRate, m),
                priorLogWeights == null ? default : new ReadOnlySpan<T>(priorLogWeights, n));
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }
}
