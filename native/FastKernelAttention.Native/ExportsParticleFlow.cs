using System;
using System.Numerics;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Estimators;

namespace FastKernelAttention.Native;

/// <summary>The particle-dynamics exports of fka.h (MATH §8, §11): L Euler steps of self-attention particle flow in place,
/// the two-stage denoiser and the depth–noise rule. Every argument is validated before a span is built; every exception
/// is caught and becomes a status.</summary>
internal static unsafe class ExportsParticleFlow
{
    private static readonly string[] FlowNames = ["particles", "mean_squared_step", "energy"];
    private static readonly string[] DenoiseNames = ["noisy", "output", "refined_particles"];

    [UnmanagedCallersOnly(EntryPoint = "fka_particle_flow_run_f32")]
    public static int RunF32(long particleCount, long dimension, float* particles, long particlesPitch, double bandwidth,
        double stepSize, long stepCount, long subSteps, double blend, double* meanSquaredStep, double* energy)
        => Run<float>("fka_particle_flow_run_f32", particleCount, dimension, particles, particlesPitch, bandwidth, stepSize,
            stepCount, subSteps, blend, meanSquaredStep, energy);

    [UnmanagedCallersOnly(EntryPoint = "fka_particle_flow_run_f64")]
    public static int RunF64(long particleCount, long dimension, double* particles, long particlesPitch, double bandwidth,
        double stepSize, long stepCount, long subSteps, double blend, double* meanSquaredStep, double* energy)
        => Run<double>("fka_particle_flow_run_f64", particleCount, dimension, particles, particlesPitch, bandwidth, stepSize,
            stepCount, subSteps, blend, meanSquaredStep, energy);

    [UnmanagedCallersOnly(EntryPoint = "fka_two_stage_denoise_f32")]
    public static int DenoiseF32(long tokenCount, long dimension, float* noisy, long noisyPitch, double noiseVariance,
        double bandwidth, double stepSize, long stepCount, long subSteps, double blend, float* output, long outputPitch,
        float* refinedParticles, long refinedParticlesPitch)
        => Denoise<float>("fka_two_stage_denoise_f32", tokenCount, dimension, noisy, noisyPitch, noiseVariance, bandwidth,
            stepSize, stepCount, subSteps, blend, output, outputPitch, refinedParticles, refinedParticlesPitch);

    [UnmanagedCallersOnly(EntryPoint = "fka_two_stage_denoise_f64")]
    public static int DenoiseF64(long tokenCount, long dimension, double* noisy, long noisyPitch, double noiseVariance,
        double bandwidth, double stepSize, long stepCount, long subSteps, double blend, double* output, long outputPitch,
        double* refinedParticles, long refinedParticlesPitch)
        => Denoise<double>("fka_two_stage_denoise_f64", tokenCount, dimension, noisy, noisyPitch, noiseVariance, bandwidth,
            stepSize, stepCount, subSteps, blend, output, outputPitch, refinedParticles, refinedParticlesPitch);

    [UnmanagedCallersOnly(EntryPoint = "fka_two_stage_rule_horizon")]
    public static int RuleHorizon(double noiseVariance, double bandwidth, double priorVariance, double* horizon)
    {
        const string Function = "fka_two_stage_rule_horizon";
        try
        {
            LastError.Clear();
            if (horizon == null) return LastError.Set(FkaStatus.NullPointer, $"{Function}: horizon is NULL.");
            *horizon = TwoStageDenoiser.RuleHorizon(noiseVariance, bandwidth, priorVariance);
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(Function, e);
        }
    }

    /// <summary>The flow's scalar parameters, checked here so that the message names the C arguments.</summary>
    private static int FlowParameters(string function, double bandwidth, double stepSize, double blend)
    {
        if (!(double.IsFinite(bandwidth) && bandwidth > 0))
            return LastError.Set(FkaStatus.Argument, $"{function}: bandwidth must be finite and positive, got {bandwidth}.");
        if (!(double.IsFinite(stepSize) && stepSize > 0))
            return LastError.Set(FkaStatus.Argument, $"{function}: step_size must be finite and positive, got {stepSize}.");
        if (!(blend >= 0 && blend <= 1))
            return LastError.Set(FkaStatus.Argument, $"{function}: blend must lie in [0, 1], got {blend}.");
        return FkaStatus.Ok;
    }

    private static int Run<T>(string function, long particleCount, long dimension, void* particles, long particlesPitch,
        double bandwidth, double stepSize, long stepCount, long subSteps, double blend, double* meanSquaredStep, double* energy)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            int size = sizeof(T);
            int status;
            if ((status = NativeArguments.Size(function, "particle_count", particleCount, 0, out int n)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "dimension", dimension, 1, out int d)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "step_count", stepCount, 0, out int steps)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "sub_steps", subSteps, 1, out int k)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "particles", particles, n, d, particlesPitch, size, out int stride)) != FkaStatus.Ok) return status;
            Span<Extent> extents =
            [
                new Extent(particles, n, d, stride, size),
                Extent.Vector(meanSquaredStep, steps, sizeof(double)),
                Extent.Vector(energy, steps, sizeof(double)),
            ];
            if ((status = NativeArguments.NoOverlap(function, extents, FlowNames, 1)) != FkaStatus.Ok) return status;

            if ((status = FlowParameters(function, bandwidth, stepSize, blend)) != FkaStatus.Ok) return status;
            ParticleFlow.Run(new Span2D<T>(particles, n, d, stride - d), bandwidth, stepSize, steps,
                meanSquaredStep == null ? default : new Span<double>(meanSquaredStep, steps),
                energy == null ? default : new Span<double>(energy, steps), k, blend);
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }

    private static int Denoise<T>(string function, long tokenCount, long dimension, void* noisy, long noisyPitch,
        double noiseVariance, double bandwidth, double stepSize, long stepCount, long subSteps, double blend, void* output,
        long outputPitch, void* refinedParticles, long refinedParticlesPitch)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            LastError.Clear();
            int size = sizeof(T);
            int status;
            if ((status = NativeArguments.Size(function, "token_count", tokenCount, 0, out int n)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "dimension", dimension, 1, out int d)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "step_count", stepCount, 0, out int steps)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Size(function, "sub_steps", subSteps, 1, out int k)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "noisy", noisy, n, d, noisyPitch, size, out int noisyStride)) != FkaStatus.Ok) return status;
            if ((status = NativeArguments.Matrix(function, "output", output, n, d, outputPitch, size, out int outputStride)) != FkaStatus.Ok) return status;
            int refinedStride = d;
            if (refinedParticles != null
                && (status = NativeArguments.Matrix(function, "refined_particles", refinedParticles, n, d, refinedParticlesPitch, size, out refinedStride)) != FkaStatus.Ok)
                return status;
            Span<Extent> extents =
            [
                new Extent(noisy, n, d, noisyStride, size),
                new Extent(output, n, d, outputStride, size),
                new Extent(refinedParticles, n, d, refinedStride, size),
            ];
            if ((status = NativeArguments.NoOverlap(function, extents, DenoiseNames, 1)) != FkaStatus.Ok) return status;

            if (!(double.IsFinite(noiseVariance) && noiseVariance > 0))
                return LastError.Set(FkaStatus.Argument, $"{function}: noise_variance must be finite and positive, got {noiseVariance}.");
            if ((status = FlowParameters(function, bandwidth, stepSize, blend)) != FkaStatus.Ok) return status;
            TwoStageDenoiser.Denoise(new ReadOnlySpan2D<T>(noisy, n, d, noisyStride - d), noiseVariance, bandwidth, stepSize, steps,
                new Span2D<T>(output, n, d, outputStride - d),
                refinedParticles == null ? default : new Span2D<T>(refinedParticles, n, d, refinedStride - d), k, blend);
            return FkaStatus.Ok;
        }
        catch (Exception e)
        {
            return NativeArguments.FromException(function, e);
        }
    }
}
