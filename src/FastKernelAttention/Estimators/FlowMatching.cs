using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// Support-conditioned flow matching as kernel smoothing (MATH §10, after SCFM): under the Gaussian OT path
/// x_t = t·x1 + σ_t·x0, σ_t = 1 − (1 − σ_min)·t, with x1 drawn from the finite support {s_j} (masses π_j), the exact
/// marginal velocity is v(x, t) = (m_t(x) − (1 − σ_min)·x)/σ_t with m_t(x) = Σ_j w_j·s_j,
/// w_j ∝ π_j·exp(−‖x − t·s_j‖²/(2σ_t²)): one Gaussian attention call with bandwidth σ_t, keys t·s_j and values s_j.
/// </summary>
/// <remarks>
/// <para>Element type T is <see cref="float"/> or <see cref="double"/>; any other type throws <see cref="NotSupportedException"/>.</para>
/// <para>No managed memory is allocated: scratch comes from the caller's workspace (<see cref="GetWorkspaceSize{T}"/>) or, in
/// the overloads without one, from native memory freed before the call returns. Every call runs on the calling thread.</para>
/// <para>A NaN in one point makes only that point's velocity (and sample) NaN; a NaN in a support point reaches every row.</para>
/// </remarks>
public static class FlowMatching
{
    /// <summary>The default number of Euler steps N of <see cref="Sample{T}(Span2D{T}, ReadOnlySpan2D{T}, double, int, double, ReadOnlySpan{T})"/>.</summary>
    public const int DefaultStepCount = 100;

    /// <summary>The default start time t0 of the sampler.</summary>
    public const double DefaultStartTime = 1e-5;

    /// <summary>The marginal velocity v(x_i, t) = (m_t(x_i) − (1 − σ_min)·x_i)/σ_t of the support-conditioned OT path.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="points">x, m × d (d ≥ 1).</param>
    /// <param name="support">s, n × d with n ≥ 1: the data support.</param>
    /// <param name="time">t ∈ [0, 1].</param>
    /// <param name="minimumNoise">σ_min ∈ (0, 1].</param>
    /// <param name="velocity">v, m × d; must not overlap an input.</param>
    /// <param name="supportLogWeights">Empty (uniform), or n values log π_j; −∞ drops a support point; NaN and +∞ are rejected.</param>
    /// <exception cref="ArgumentException">A shape does not match, the support is empty, t or σ_min is out of range, or a
    /// log-weight is NaN or +∞; the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Velocity<T>(ReadOnlySpan2D<T> points, ReadOnlySpan2D<T> support, double time, double minimumNoise,
        Span2D<T> velocity, ReadOnlySpan<T> supportLogWeights = default)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => VelocityCore(IsaDispatch.Selected, points, support, time, minimumNoise, velocity, supportLogWeights, default, workspaceGiven: false);

    /// <summary>The marginal velocity with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Velocity{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, double, double, Span2D{T}, ReadOnlySpan{T})"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(m, n, d) bytes; it must not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Velocity<T>(ReadOnlySpan2D<T> points, ReadOnlySpan2D<T> support, double time, double minimumNoise,
        Span2D<T> velocity, ReadOnlySpan<T> supportLogWeights, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => VelocityCore(IsaDispatch.Selected, points, support, time, minimumNoise, velocity, supportLogWeights, workspace, workspaceGiven: true);

    /// <summary>
    /// Euler sampler of the flow: Δ = (1 − t0)/N, t_k = t0 + k·Δ, x ← x + Δ·v(x, t_k) for k = 0..N−1, in place. Start from
    /// x ~ N(0, I) for samples of the smoothed support; the result at t = 1 lies near the support (within about σ_min).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="points">The starting points (m × d, d ≥ 1) on entry, the samples on return.</param>
    /// <param name="support">s, n × d with n ≥ 1.</param>
    /// <param name="minimumNoise">σ_min ∈ (0, 1].</param>
    /// <param name="stepCount">N ≥ 1 Euler steps (default 100).</param>
    /// <param name="startTime">t0 ∈ [0, 1) (default 1e-5).</param>
    /// <param name="supportLogWeights">Empty (uniform), or n values log π_j.</param>
    /// <exception cref="ArgumentException">A shape does not match, the support is empty, or a parameter is out of range;
    /// the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Sample<T>(Span2D<T> points, ReadOnlySpan2D<T> support, double minimumNoise, int stepCount = DefaultStepCount,
        double startTime = DefaultStartTime, ReadOnlySpan<T> supportLogWeights = default)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => SampleCore(IsaDispatch.Selected, points, support, minimumNoise, stepCount, startTime, supportLogWeights, default, workspaceGiven: false);

    /// <summary>The Euler sampler with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Sample{T}(Span2D{T}, ReadOnlySpan2D{T}, double, int, double, ReadOnlySpan{T})"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(m, n, d) bytes; it must not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Sample<T>(Span2D<T> points, ReadOnlySpan2D<T> support, double minimumNoise, int stepCount,
        double startTime, ReadOnlySpan<T> supportLogWeights, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => SampleCore(IsaDispatch.Selected, points, support, minimumNoise, stepCount, startTime, supportLogWeights, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace the velocity and the sampler need for m points and n support points in dimension d: the
    /// scaled keys t·s (n·d elements), the smoothed mean m_t (m·d) and the Gaussian attention workspace.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="pointCount">m ≥ 0.</param>
    /// <param name="supportCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetWorkspaceSize<T>(int pointCount, int supportCount, int dimension)
        where T : unmanaged
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(FlowMatching));
        ArgumentOutOfRangeException.ThrowIfNegative(pointCount);
        ArgumentOutOfRangeException.ThrowIfNegative(supportCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        return EstimatorScratch.Checked(WorkspaceBytes(Unsafe.SizeOf<T>(), pointCount, supportCount, dimension), nameof(supportCount));
    }

    private static long WorkspaceBytes(int elementSize, int m, int n, int d) =>
        63 + EstimatorScratch.Region((long)n * d, elementSize) + EstimatorScratch.Region((long)m * d, elementSize)
        + Kernels.AttentionDriver.WorkspaceBytes(elementSize, d, d, n, 1, 1, gaussian: true, degree: 1);

    /// <summary>The velocity on a given ISA path.</summary>
    internal static unsafe void VelocityCore<T>(IsaPath path, ReadOnlySpan2D<T> points, ReadOnlySpan2D<T> support, double time,
        double minimumNoise, Span2D<T> velocity, ReadOnlySpan<T> supportLogWeights, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = points.Height, d = points.Width;
        long required = Validate(points, support, minimumNoise, supportLogWeights, workspace, workspaceGiven);
        if (!(time >= 0 && time <= 1)) ThrowHelper.ThrowOutOfRange(nameof(time), time, "The time must lie in [0, 1].");
        if (velocity.Height != m || velocity.Width != d) ThrowHelper.ThrowShape(nameof(velocity), $"{m} × {d}", velocity.Height, velocity.Width);
        if (m == 0) return;
        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(required);
                var layout = new Layout<T>(buffer, required, m, support.Height, d);
                SmoothedMean(path, points, support, time, minimumNoise, supportLogWeights, in layout, velocity);
                double keep = 1 - minimumNoise, sigma = NoiseScale(time, minimumNoise);
                for (int i = 0; i < m; i++)
                {
                    ReadOnlySpan<T> x = points.GetRowSpan(i);
                    Span<T> v = velocity.GetRowSpan(i);
                    for (int c = 0; c < d; c++)
                        v[c] = T.CreateTruncating((double.CreateTruncating(v[c]) - keep * double.CreateTruncating(x[c])) / sigma);
                }
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    /// <summary>The sampler on a given ISA path.</summary>
    internal static unsafe void SampleCore<T>(IsaPath path, Span2D<T> points, ReadOnlySpan2D<T> support, double minimumNoise,
        int stepCount, double startTime, ReadOnlySpan<T> supportLogWeights, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = points.Height, d = points.Width;
        long required = Validate(points, support, minimumNoise, supportLogWeights, workspace, workspaceGiven);
        if (stepCount < 1) ThrowHelper.ThrowOutOfRange(nameof(stepCount), stepCount, "At least one step.");
        if (!(startTime >= 0 && startTime < 1)) ThrowHelper.ThrowOutOfRange(nameof(startTime), startTime, "The start time must lie in [0, 1).");
        if (m == 0) return;
        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(required);
                var layout = new Layout<T>(buffer, required, m, support.Height, d);
                var mean = new Span2D<T>(layout.Mean, m, d, 0);
                double delta = (1 - startTime) / stepCount, keep = 1 - minimumNoise;
                for (int k = 0; k < stepCount; k++)
                {
                    double time = startTime + k * delta;
                    SmoothedMean(path, points, support, time, minimumNoise, supportLogWeights, in layout, mean);
                    double factor = delta / NoiseScale(time, minimumNoise);
                    for (int i = 0; i < m; i++)
                    {
                        Span<T> x = points.GetRowSpan(i), mt = mean.GetRowSpan(i);
                        for (int c = 0; c < d; c++)
                        {
                            double position = double.CreateTruncating(x[c]);
                            x[c] = T.CreateTruncating(position + factor * (double.CreateTruncating(mt[c]) - keep * position));
                        }
                    }
                }
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    /// <summary>σ_t = 1 − (1 − σ_min)·t.</summary>
    private static double NoiseScale(double time, double minimumNoise) => 1 - (1 - minimumNoise) * time;

    private static long Validate<T>(ReadOnlySpan2D<T> points, ReadOnlySpan2D<T> support, double minimumNoise,
        ReadOnlySpan<T> supportLogWeights, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(FlowMatching));
        int m = points.Height, d = points.Width, n = support.Height;
        if (d < 1) ThrowHelper.ThrowShape(nameof(points), "pointCount × dimension with dimension ≥ 1", m, d);
        if (support.Width != d) ThrowHelper.ThrowShape(nameof(support), $"supportCount × {d}", n, support.Width);
        if (n == 0) ThrowHelper.ThrowArgument(nameof(support), "The support must hold at least one point.");
        if (!(minimumNoise > 0 && minimumNoise <= 1))
            ThrowHelper.ThrowOutOfRange(nameof(minimumNoise), minimumNoise, "σ_min must lie in (0, 1].");
        if (!supportLogWeights.IsEmpty)
        {
            if (supportLogWeights.Length != n) ThrowHelper.ThrowLength(nameof(supportLogWeights), $"empty or {n}", supportLogWeights.Length);
            foreach (T w in supportLogWeights)
                if (T.IsNaN(w) || T.IsPositiveInfinity(w)) ThrowHelper.ThrowArgument(nameof(supportLogWeights), "A log-weight is NaN or +∞.");
        }
        long required = WorkspaceBytes(Unsafe.SizeOf<T>(), m, n, d);
        if (workspaceGiven && workspace.Length < required) ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        return required;
    }

    /// <summary>m_t(x) = Σ_j softmax_j(log π_j − ‖x − t·s_j‖²/(2σ_t²))·s_j into <paramref name="mean"/> (one attention call).</summary>
    private static unsafe void SmoothedMean<T>(IsaPath path, ReadOnlySpan2D<T> points, ReadOnlySpan2D<T> support, double time,
        double minimumNoise, ReadOnlySpan<T> supportLogWeights, in Layout<T> layout, Span2D<T> mean)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = support.Height, d = support.Width;
        var keys = new Span2D<T>(layout.Keys, n, d, 0);
        for (int j = 0; j < n; j++)
        {
            ReadOnlySpan<T> s = support.GetRowSpan(j);
            Span<T> key = keys.GetRowSpan(j);
            for (int c = 0; c < d; c++) key[c] = T.CreateTruncating(time * double.CreateTruncating(s[c]));
        }
        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = NoiseScale(time, minimumNoise) };
        Attention.ForwardCore(path, points, keys, support, mean, 1, 1, options, default, default, supportLogWeights,
            excludeDiagonal: false, new Span<byte>(layout.Attention, layout.AttentionBytes), workspaceGiven: true);
    }

    /// <summary>Workspace regions: scaled keys (n×d), smoothed mean (m×d), then the attention workspace.</summary>
    private readonly unsafe struct Layout<T>
        where T : unmanaged
    {
        public readonly byte* Keys;
        public readonly byte* Mean;
        public readonly byte* Attention;
        public readonly int AttentionBytes;

        public Layout(byte* buffer, long bytes, int m, int n, int d)
        {
            Keys = EstimatorScratch.Align(buffer);
            Mean = Keys + EstimatorScratch.Region((long)n * d, sizeof(T));
            Attention = Mean + EstimatorScratch.Region((long)m * d, sizeof(T));
            AttentionBytes = (int)(buffer + bytes - Attention);
        }
    }
}
