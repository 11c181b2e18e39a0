using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// The two-stage in-context denoiser of MATH §8 (after EB2): Stage 1 refines a copy of the noisy tokens y by L steps of
/// self-attention particle flow (<see cref="ParticleFlow"/>, bandwidth h, step Δt), giving particles p = X⁽ᴸ⁾; Stage 2 is the
/// empirical-Bayes posterior mean with the ORIGINAL noisy tokens as queries and the refined particles as keys and values,
/// out_i = Σ_j w_ij·p_j, w_ij ∝ exp(−‖y_i − p_j‖²/(2σ²)) (MATH §7 with the particles as atoms).
/// L = 0 gives the one-step posterior mean on the noisy context.
/// </summary>
/// <remarks>
/// <para>Element type T is <see cref="float"/> or <see cref="double"/>; any other type throws <see cref="NotSupportedException"/>.</para>
/// <para>The horizon T = L·Δt should follow the depth–noise rule (<see cref="RuleHorizon"/>). The quantitative forms are
/// MATH.md's reconstruction, not the paper's checked formulas.</para>
/// <para>No managed memory is allocated: scratch comes from the caller's workspace (<see cref="GetWorkspaceSize{T}"/>) or,
/// in the overloads without one, from native memory freed before the call returns. Every call runs on the calling thread.</para>
/// </remarks>
public static class TwoStageDenoiser
{
    /// <summary>
    /// The depth–noise rule's integration horizon T* = σ²/(2h²) + ½·ln(1 + σ²/τ²) (MATH §8): the score time that takes the
    /// mean-field variance of a N(μ0, τ²I) prior convolved with N(0, σ²I) noise from τ² + σ² back down to τ² under the flow
    /// ds²/dT = −2h²s²/(s² + h²). With τ² = +∞ (no prior scale known) it is the leading term σ²/(2h²).
    /// </summary>
    /// <param name="noiseVariance">σ² &gt; 0, finite.</param>
    /// <param name="bandwidth">The Stage-1 bandwidth h &gt; 0, finite.</param>
    /// <param name="priorVariance">τ² &gt; 0 (+∞ allowed): the per-coordinate variance of the clean signal, e.g. estimated as
    /// the tokens' variance minus σ².</param>
    /// <returns>T* in the units of L·Δt.</returns>
    /// <exception cref="ArgumentException">A parameter is NaN or not positive (or σ², h infinite); the exception names it.</exception>
    public static double RuleHorizon(double noiseVariance, double bandwidth, double priorVariance = double.PositiveInfinity)
    {
        ValidateNoise(noiseVariance);
        if (!(double.IsFinite(bandwidth) && bandwidth > 0))
            ThrowHelper.ThrowOutOfRange(nameof(bandwidth), bandwidth, "The bandwidth must be finite and positive.");
        if (!(priorVariance > 0)) ThrowHelper.ThrowOutOfRange(nameof(priorVariance), priorVariance, "The prior variance must be positive (+∞ allowed).");
        return noiseVariance / (2 * bandwidth * bandwidth) + 0.5 * Math.Log(1 + noiseVariance / priorVariance);
    }

    /// <summary>The step count L = round(T*/Δt) of the depth–noise rule, T* from <see cref="RuleHorizon"/>.</summary>
    /// <param name="noiseVariance">σ² &gt; 0, finite.</param>
    /// <param name="bandwidth">h &gt; 0, finite.</param>
    /// <param name="stepSize">Δt &gt; 0, finite.</param>
    /// <param name="priorVariance">τ² &gt; 0 (+∞ allowed).</param>
    /// <returns>L ≥ 0.</returns>
    /// <exception cref="ArgumentException">A parameter is out of range; the exception names it.</exception>
    public static int RuleStepCount(double noiseVariance, double bandwidth, double stepSize, double priorVariance = double.PositiveInfinity)
    {
        double horizon = RuleHorizon(noiseVariance, bandwidth, priorVariance);
        if (!(double.IsFinite(stepSize) && stepSize > 0))
            ThrowHelper.ThrowOutOfRange(nameof(stepSize), stepSize, "The step size must be finite and positive.");
        double steps = Math.Round(horizon / stepSize, MidpointRounding.AwayFromZero);
        return steps >= int.MaxValue ? int.MaxValue : (int)steps;
    }

    /// <summary>
    /// Two-stage denoising: p = L steps of <see cref="ParticleFlow"/> from X⁽⁰⁾ = y (bandwidth h, step Δt, K sub-steps,
    /// blend β), then out_i = Σ_j softmax_j(−‖y_i − p_j‖²/(2σ²))·p_j.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="noisyTokens">y, n × d (d ≥ 1): the context, every token noisy; read only.</param>
    /// <param name="noiseVariance">σ² &gt; 0, finite: the Stage-2 bandwidth is σ.</param>
    /// <param name="bandwidth">The Stage-1 bandwidth h &gt; 0, finite.</param>
    /// <param name="stepSize">Δt &gt; 0, finite.</param>
    /// <param name="stepCount">L ≥ 0 (e.g. <see cref="RuleStepCount"/>); 0 gives the one-step posterior mean.</param>
    /// <param name="output">The denoised tokens, n × d; must not overlap <paramref name="noisyTokens"/>.</param>
    /// <param name="refinedParticles">Empty, or n × d: receives the Stage-1 particles X⁽ᴸ⁾.</param>
    /// <param name="subSteps">K ≥ 1 sub-steps per Stage-1 step (MATH §11).</param>
    /// <param name="blend">β ∈ [0, 1] of MATH §11.</param>
    /// <remarks>n = 0 does nothing. A NaN in one token reaches every output row (all tokens are keys).</remarks>
    /// <exception cref="ArgumentException">A shape does not match, outputs overlap the tokens, or a parameter is out of range;
    /// the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Denoise<T>(ReadOnlySpan2D<T> noisyTokens, double noiseVariance, double bandwidth, double stepSize,
        int stepCount, Span2D<T> output, Span2D<T> refinedParticles = default, int subSteps = 1, double blend = 0)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => DenoiseCore(IsaDispatch.Selected, noisyTokens, noiseVariance, bandwidth, stepSize, stepCount, output, refinedParticles,
            subSteps, blend, default, workspaceGiven: false);

    /// <summary>Two-stage denoising with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Denoise{T}(ReadOnlySpan2D{T}, double, double, double, int, Span2D{T}, Span2D{T}, int, double)"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(n, d) bytes; it must not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Denoise<T>(ReadOnlySpan2D<T> noisyTokens, double noiseVariance, double bandwidth, double stepSize,
        int stepCount, Span2D<T> output, Span2D<T> refinedParticles, int subSteps, double blend, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => DenoiseCore(IsaDispatch.Selected, noisyTokens, noiseVariance, bandwidth, stepSize, stepCount, output, refinedParticles,
            subSteps, blend, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="Denoise{T}(ReadOnlySpan2D{T}, double, double, double, int, Span2D{T}, Span2D{T}, int, double, Span{byte})"/>
    /// needs for n tokens in dimension d: the particles (n·d elements) plus <see cref="ParticleFlow.GetWorkspaceSize{T}"/>
    /// (whose attention workspace Stage 2 reuses).</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="tokenCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetWorkspaceSize<T>(int tokenCount, int dimension)
        where T : unmanaged
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(TwoStageDenoiser));
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        return EstimatorScratch.Checked(WorkspaceBytes(Unsafe.SizeOf<T>(), tokenCount, dimension), nameof(tokenCount));
    }

    private static long WorkspaceBytes(int elementSize, int n, int d) =>
        EstimatorScratch.Region((long)n * d, elementSize) + ParticleFlow.WorkspaceBytes(elementSize, n, d);

    /// <summary>The denoiser on a given ISA path (tests pass each supported path; public calls use <see cref="IsaDispatch.Selected"/>).</summary>
    internal static unsafe void DenoiseCore<T>(IsaPath path, ReadOnlySpan2D<T> noisyTokens, double noiseVariance, double bandwidth,
        double stepSize, int stepCount, Span2D<T> output, Span2D<T> refinedParticles, int subSteps, double blend,
        Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(TwoStageDenoiser));
        int n = noisyTokens.Height, d = noisyTokens.Width;
        if (d < 1) ThrowHelper.ThrowShape(nameof(noisyTokens), "tokenCount × dimension with dimension ≥ 1", n, d);
        ValidateNoise(noiseVariance);
        ParticleFlow.ValidateFlow(bandwidth, stepSize, subSteps, blend);
        if (stepCount < 0) ThrowHelper.ThrowOutOfRange(nameof(stepCount), stepCount, "The step count must be ≥ 0.");
        if (output.Height != n || output.Width != d) ThrowHelper.ThrowShape(nameof(output), $"{n} × {d}", output.Height, output.Width);
        bool keepParticles = refinedParticles.Height != 0 || refinedParticles.Width != 0;
        if (keepParticles && (refinedParticles.Height != n || refinedParticles.Width != d))
            ThrowHelper.ThrowShape(nameof(refinedParticles), $"empty or {n} × {d}", refinedParticles.Height, refinedParticles.Width);
        long required = WorkspaceBytes(sizeof(T), n, d);
        if (workspaceGiven && workspace.Length < required) ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        if (n == 0) return;
        if (keepParticles && Overlaps(refinedParticles, noisyTokens)) ThrowHelper.ThrowOverlap(nameof(refinedParticles), nameof(noisyTokens));
        if (keepParticles && Overlaps(refinedParticles, output)) ThrowHelper.ThrowOverlap(nameof(refinedParticles), nameof(output));

        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(required);
                byte* aligned = EstimatorScratch.Align(buffer);
                var particles = new Span2D<T>(aligned, n, d, 0);
                noisyTokens.CopyTo(particles);
                byte* flowBuffer = aligned + EstimatorScratch.Region((long)n * d, sizeof(T));
                byte* flowAligned = EstimatorScratch.Align(flowBuffer);
                long own = EstimatorScratch.Region(n, sizeof(T)) + 3 * EstimatorScratch.Region((long)n * d, sizeof(T));
                byte* attention = flowAligned + own;
                int attentionBytes = (int)(buffer + required - attention);

                // Stage 1: particle flow from the noisy tokens.
                var shift = new ParticleFlow.AttentionMeanShift<T>(path, bandwidth, attention, attentionBytes);
                if (stepCount > 0)
                    ParticleFlow.RunAligned(ref shift, particles, stepSize, stepCount, subSteps, blend, default, default, flowAligned);

                // Stage 2: the posterior mean at the original tokens with the refined particles as atoms (bandwidth σ).
                var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = Math.Sqrt(noiseVariance) };
                Attention.ForwardCore(path, noisyTokens, particles, particles, output, 1, 1, options, default, default, default,
                    excludeDiagonal: false, new Span<byte>(attention, attentionBytes), workspaceGiven: true);
                if (keepParticles) particles.CopyTo(refinedParticles);
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    private static void ValidateNoise(double noiseVariance)
    {
        if (!(double.IsFinite(noiseVariance) && noiseVariance > 0))
            ThrowHelper.ThrowOutOfRange(nameof(noiseVariance), noiseVariance, "The noise variance must be finite and positive.");
    }

    /// <summary>Whether two views share memory (conservative for pitched views: the byte ranges from first to last element).</summary>
    private static unsafe bool Overlaps<T>(Span2D<T> a, ReadOnlySpan2D<T> b)
        where T : unmanaged
    {
        if (a.IsEmpty || b.IsEmpty) return false;
        ref T aStart = ref a.DangerousGetReference();
        ref T bStart = ref b.DangerousGetReference();
        ref T aEnd = ref Unsafe.Add(ref a.DangerousGetReferenceAt(a.Height - 1, a.Width - 1), 1);
        ref T bEnd = ref Unsafe.Add(ref Unsafe.AsRef(in b.DangerousGetReferenceAt(b.Height - 1, b.Width - 1)), 1);
        return Unsafe.IsAddressLessThan(ref aStart, ref bEnd) && Unsafe.IsAddressLessThan(ref bStart, ref aEnd);
    }
}
