using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// Self-attention particle flow (MATH §8, Stage 1): synchronous Euler steps x_i ← x_i + Δt·(m_h(x_i) − x_i) with the mean
/// shift m_h(x_i) = Σ_j softmax_j(−‖x_i − x_j‖²/(2h²))·x_j, where every particle (x_i itself included) is a key and a value.
/// Since m_h(x) − x = h²·∇log p̂_h(x) (the score of the Gaussian KDE of the particles), each step is an Euler score-ascent
/// step. Optional looped refinement (MATH §11): K damped sub-steps of Δt/K, each re-evaluating m_h, and the blend
/// β·(x + Δt·(m_h(x) − x)) + (1 − β)·x_K of the single full step with the K-sub-step result.
/// </summary>
/// <remarks>
/// <para>Element type T is <see cref="float"/> or <see cref="double"/>; any other type throws <see cref="NotSupportedException"/>.</para>
/// <para>Each sub-step is one fused Gaussian attention pass (queries, keys and values all the particles) into a workspace
/// buffer, followed by the in-place update: the particles are double-buffered through the workspace, so every particle of a
/// sub-step moves under the same configuration. No managed memory is allocated: scratch comes from the caller's workspace
/// (<see cref="GetWorkspaceSize{T}"/>) or, in the overloads without one, from native memory freed before the call returns.
/// Every call runs on the calling thread.</para>
/// <para>A NaN coordinate in one particle reaches every particle at the first step (all particles are keys). With no
/// particle (n = 0) a call does nothing and the monitors it fills are NaN.</para>
/// </remarks>
public static class ParticleFlow
{
    /// <summary>One Euler step x_i ← x_i + Δt·(m_h(x_i) − x_i) of all particles, in place (MATH §8), optionally as
    /// K sub-steps of Δt/K and blended with the full step (MATH §11).</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="particles">X, n × d (d ≥ 1), updated in place; may be pitched.</param>
    /// <param name="bandwidth">h &gt; 0, finite.</param>
    /// <param name="stepSize">Δt &gt; 0, finite.</param>
    /// <param name="subSteps">K ≥ 1: the step is taken as K sub-steps x ← x + (Δt/K)·(m_h(x) − x), each with a fresh m_h.</param>
    /// <param name="blend">β ∈ [0, 1]: the result is β·(x + Δt·(m_h(x) − x)) + (1 − β)·x_K; 0 (default) gives x_K.</param>
    /// <exception cref="ArgumentException">d = 0, a parameter is out of range (not finite, not positive, K &lt; 1, β ∉ [0, 1]);
    /// the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Step<T>(Span2D<T> particles, double bandwidth, double stepSize, int subSteps = 1, double blend = 0)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => RunCore(IsaDispatch.Selected, particles, bandwidth, stepSize, 1, subSteps, blend, default, default, default, workspaceGiven: false);

    /// <summary>One Euler step with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Step{T}(Span2D{T}, double, double, int, double)"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(n, d) bytes; it must not overlap the particles.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Step<T>(Span2D<T> particles, double bandwidth, double stepSize, int subSteps, double blend, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => RunCore(IsaDispatch.Selected, particles, bandwidth, stepSize, 1, subSteps, blend, default, default, workspace, workspaceGiven: true);

    /// <summary>
    /// L Euler steps of the particle flow (horizon T = L·Δt), in place, recording per step ℓ = 0..L−1 the monitors of
    /// MATH §8: the mean squared step (1/n)·Σ_i ‖x_i⁽ℓ⁺¹⁾ − x_i⁽ℓ⁾‖² and the energy
    /// E⁽ℓ⁾ = (1/n)·Σ_i LSE_i − log n, LSE_i = log Σ_j exp(−‖x_i⁽ℓ⁾ − x_j⁽ℓ⁾‖²/(2h²)) (the mean log KDE of the particles at
    /// the start of step ℓ up to the constant −(d/2)·log(2πh²); free from the step's first attention pass).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="particles">X⁽⁰⁾ on entry, X⁽ᴸ⁾ on return; n × d (d ≥ 1), may be pitched.</param>
    /// <param name="bandwidth">h &gt; 0, finite.</param>
    /// <param name="stepSize">Δt &gt; 0, finite.</param>
    /// <param name="stepCount">L ≥ 0.</param>
    /// <param name="meanSquaredStep">Empty, or ≥ L elements: the mean squared step of each step (after the blend).</param>
    /// <param name="energy">Empty, or ≥ L elements: E⁽ℓ⁾ before each step. Diagnostics only; neither monitor is claimed monotone.</param>
    /// <param name="subSteps">K ≥ 1 sub-steps of Δt/K per step (MATH §11).</param>
    /// <param name="blend">β ∈ [0, 1] of MATH §11 per step; 0 gives the plain K-sub-step result.</param>
    /// <exception cref="ArgumentException">d = 0, a parameter is out of range, or a monitor is non-empty and shorter than L;
    /// the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Run<T>(Span2D<T> particles, double bandwidth, double stepSize, int stepCount,
        Span<double> meanSquaredStep = default, Span<double> energy = default, int subSteps = 1, double blend = 0)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => RunCore(IsaDispatch.Selected, particles, bandwidth, stepSize, stepCount, subSteps, blend, meanSquaredStep, energy,
            default, workspaceGiven: false);

    /// <summary>L Euler steps with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Run{T}(Span2D{T}, double, double, int, Span{double}, Span{double}, int, double)"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(n, d) bytes; it must not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Run<T>(Span2D<T> particles, double bandwidth, double stepSize, int stepCount,
        Span<double> meanSquaredStep, Span<double> energy, int subSteps, double blend, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => RunCore(IsaDispatch.Selected, particles, bandwidth, stepSize, stepCount, subSteps, blend, meanSquaredStep, energy,
            workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="Step{T}(Span2D{T}, double, double, int, double, Span{byte})"/> and
    /// <see cref="Run{T}(Span2D{T}, double, double, int, Span{double}, Span{double}, int, double, Span{byte})"/> need for n
    /// particles in dimension d: the mean shift, the step's start and full-step copies (3·n·d elements), the LSE (n) and
    /// the Gaussian attention workspace, with alignment slack.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="particleCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetWorkspaceSize<T>(int particleCount, int dimension)
        where T : unmanaged
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(ParticleFlow));
        ArgumentOutOfRangeException.ThrowIfNegative(particleCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        return EstimatorScratch.Checked(WorkspaceBytes(Unsafe.SizeOf<T>(), particleCount, dimension), nameof(particleCount));
    }

    /// <summary>Workspace bytes: four own regions and the attention workspace, plus 63 bytes of alignment slack.</summary>
    internal static long WorkspaceBytes(int elementSize, int n, int d) =>
        63 + OwnBytes(elementSize, n, d) + AttentionBytes(elementSize, n, d);

    private static long OwnBytes(int elementSize, int n, int d) =>
        EstimatorScratch.Region(n, elementSize) + 3 * EstimatorScratch.Region((long)n * d, elementSize);

    /// <summary>The Gaussian self-attention workspace for n keys of dimension d with d value columns, single-threaded.</summary>
    internal static long AttentionBytes(int elementSize, int n, int d) =>
        Kernels.AttentionDriver.WorkspaceBytes(elementSize, d, d, n, 1, 1, gaussian: true, degree: 1);

    /// <summary>The flow on a given ISA path (tests pass each supported path; public calls use <see cref="IsaDispatch.Selected"/>).</summary>
    internal static unsafe void RunCore<T>(IsaPath path, Span2D<T> particles, double bandwidth, double stepSize, int stepCount,
        int subSteps, double blend, Span<double> meanSquaredStep, Span<double> energy, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(ParticleFlow));
        int n = particles.Height, d = particles.Width;
        if (d < 1) ThrowHelper.ThrowShape(nameof(particles), "particleCount × dimension with dimension ≥ 1", n, d);
        ValidateFlow(bandwidth, stepSize, subSteps, blend);
        if (stepCount < 0) ThrowHelper.ThrowOutOfRange(nameof(stepCount), stepCount, "The step count must be ≥ 0.");
        if (!meanSquaredStep.IsEmpty && meanSquaredStep.Length < stepCount)
            ThrowHelper.ThrowLength(nameof(meanSquaredStep), $"empty or at least {stepCount}", meanSquaredStep.Length);
        if (!energy.IsEmpty && energy.Length < stepCount)
            ThrowHelper.ThrowLength(nameof(energy), $"empty or at least {stepCount}", energy.Length);
        long required = WorkspaceBytes(sizeof(T), n, d);
        if (workspaceGiven && workspace.Length < required) ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        if (n == 0)
        {
            if (!meanSquaredStep.IsEmpty) meanSquaredStep[..stepCount].Fill(double.NaN);
            if (!energy.IsEmpty) energy[..stepCount].Fill(double.NaN);
            return;
        }
        if (stepCount == 0) return;

        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(required);
                byte* aligned = EstimatorScratch.Align(buffer);
                long own = OwnBytes(sizeof(T), n, d);
                var shift = new AttentionMeanShift<T>(path, bandwidth, aligned + own, (int)(buffer + required - (aligned + own)));
                RunAligned(ref shift, particles, stepSize, stepCount, subSteps, blend, meanSquaredStep, energy, aligned);
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    internal static void ValidateFlow(double bandwidth, double stepSize, int subSteps, double blend)
    {
        if (!(double.IsFinite(bandwidth) && bandwidth > 0))
            ThrowHelper.ThrowOutOfRange(nameof(bandwidth), bandwidth, "The bandwidth must be finite and positive.");
        if (!(double.IsFinite(stepSize) && stepSize > 0))
            ThrowHelper.ThrowOutOfRange(nameof(stepSize), stepSize, "The step size must be finite and positive.");
        if (subSteps < 1) ThrowHelper.ThrowOutOfRange(nameof(subSteps), subSteps, "At least one sub-step.");
        if (!(blend >= 0 && blend <= 1)) ThrowHelper.ThrowOutOfRange(nameof(blend), blend, "The blend β must lie in [0, 1].");
    }

    /// <summary>The mean-shift evaluation of one sub-step: writes m(x_i) for every particle and, where it has one, LSE_i.
    /// The flow is generic over it so that the looped update (MATH §11) can be checked with a closed-form drift.</summary>
    internal interface IMeanShift<T>
        where T : unmanaged
    {
        void Evaluate(ReadOnlySpan2D<T> particles, Span2D<T> mean, Span<T> logSumExp);
    }

    /// <summary>m_h by one Gaussian self-attention pass (keys = values = queries = the particles) into workspace memory.</summary>
    internal readonly unsafe struct AttentionMeanShift<T> : IMeanShift<T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        private readonly IsaPath path;
        private readonly double bandwidth;
        private readonly byte* workspace;
        private readonly int workspaceBytes;

        public AttentionMeanShift(IsaPath path, double bandwidth, byte* workspace, int workspaceBytes)
        {
            this.path = path;
            this.bandwidth = bandwidth;
            this.workspace = workspace;
            this.workspaceBytes = workspaceBytes;
        }

        public void Evaluate(ReadOnlySpan2D<T> particles, Span2D<T> mean, Span<T> logSumExp)
        {
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth };
            Attention.ForwardCore(path, particles, particles, particles, mean, 1, 1, options, logSumExp, default, default,
                excludeDiagonal: false, new Span<byte>(workspace, workspaceBytes), workspaceGiven: true);
        }
    }

    /// <summary>L steps on a 64-byte aligned own region: LSE (n), mean shift (n×d), step start (n×d), full step (n×d).</summary>
    internal static unsafe void RunAligned<T, TShift>(ref TShift shift, Span2D<T> particles, double stepSize, int stepCount,
        int subSteps, double blend, Span<double> meanSquaredStep, Span<double> energy, byte* aligned)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TShift : struct, IMeanShift<T>
    {
        int n = particles.Height, d = particles.Width;
        long matrix = EstimatorScratch.Region((long)n * d, sizeof(T));
        var logSumExp = new Span<T>(aligned, n);
        byte* cursor = aligned + EstimatorScratch.Region(n, sizeof(T));
        var mean = new Span2D<T>(cursor, n, d, 0);
        var start = new Span2D<T>(cursor + matrix, n, d, 0);
        var full = new Span2D<T>(cursor + 2 * matrix, n, d, 0);
        double subStep = stepSize / subSteps, logN = Math.Log(n);
        bool keepStart = !meanSquaredStep.IsEmpty;

        for (int step = 0; step < stepCount; step++)
        {
            if (keepStart) particles.CopyTo(start);
            for (int k = 0; k < subSteps; k++)
            {
                shift.Evaluate(particles, mean, k == 0 && !energy.IsEmpty ? logSumExp : default);
                if (k == 0 && !energy.IsEmpty)
                {
                    double sum = 0;
                    foreach (T value in logSumExp) sum += double.CreateTruncating(value);
                    energy[step] = sum / n - logN;
                }
                if (k == 0 && blend > 0)
                {
                    for (int i = 0; i < n; i++)
                    {
                        Span<T> x = particles.GetRowSpan(i), m = mean.GetRowSpan(i), f = full.GetRowSpan(i);
                        for (int c = 0; c < d; c++) f[c] = Euler(x[c], m[c], stepSize);
                    }
                }
                for (int i = 0; i < n; i++)
                {
                    Span<T> x = particles.GetRowSpan(i), m = mean.GetRowSpan(i);
                    for (int c = 0; c < d; c++) x[c] = Euler(x[c], m[c], subStep);
                }
            }
            if (blend > 0)
            {
                T beta = T.CreateTruncating(blend), rest = T.CreateTruncating(1 - blend);
                for (int i = 0; i < n; i++)
                {
                    Span<T> x = particles.GetRowSpan(i), f = full.GetRowSpan(i);
                    for (int c = 0; c < d; c++) x[c] = beta * f[c] + rest * x[c];
                }
            }
            if (keepStart)
            {
                double sum = 0;
                for (int i = 0; i < n; i++)
                {
                    Span<T> x = particles.GetRowSpan(i), s = start.GetRowSpan(i);
                    for (int c = 0; c < d; c++)
                    {
                        double delta = double.CreateTruncating(x[c]) - double.CreateTruncating(s[c]);
                        sum += delta * delta;
                    }
                }
                meanSquaredStep[step] = sum / n;
            }
        }
    }

    /// <summary>x + Δ·(m − x), evaluated in double and rounded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Euler<T>(T x, T m, double delta)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double position = double.CreateTruncating(x);
        return T.CreateTruncating(position + delta * (double.CreateTruncating(m) - position));
    }
}
