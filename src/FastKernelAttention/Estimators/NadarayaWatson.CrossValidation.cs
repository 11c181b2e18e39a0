using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

public static partial class NadarayaWatson
{
    /// <summary>
    /// Leave-one-out least-squares cross-validation score (MATH §6): CV(h) = (1/n)·Σ_i ‖Y_i − ĝ₋ᵢ(X_i)‖², where ĝ₋ᵢ is the
    /// Nadaraya–Watson estimate from every sample but i, i.e. Gaussian self-attention with the diagonal masked, in one fused
    /// pass (no n × n matrix). The squared residuals are summed over the p response columns and accumulated in double.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="samples">X, n × d (n ≥ 1, d ≥ 1).</param>
    /// <param name="responses">Y, n × p (p ≥ 1).</param>
    /// <param name="bandwidths">Length 1 or d; each finite and &gt; 0.</param>
    /// <returns>CV(h) ≥ 0; NaN when n = 1 (no leave-one-out estimate exists) or when the data contain NaN. As h → 0 it
    /// tends to the nearest-neighbour score without underflow (the kernel subtracts the row maximum).</returns>
    /// <remarks>Scratch comes from native memory (no managed allocation); the overload with a workspace avoids even that.
    /// statsmodels' <c>KernelReg(reg_type='lc').cv_loo</c> is the same function for p = 1.</remarks>
    /// <exception cref="ArgumentException">n = 0, a shape does not match, or a bandwidth is invalid; the exception names the
    /// argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static double CrossValidationScore<T>(ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses, ReadOnlySpan<T> bandwidths)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => CrossValidationCore(IsaDispatch.Selected, samples, responses, bandwidths, default, workspaceGiven: false);

    /// <summary>Leave-one-out cross-validation score with a caller-owned workspace of at least
    /// <see cref="GetCrossValidationWorkspaceSize{T}"/> bytes: no allocation of any kind.</summary>
    /// <inheritdoc cref="CrossValidationScore{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan{T})"/>
    /// <param name="workspace">Scratch memory, at least GetCrossValidationWorkspaceSize&lt;T&gt;(n, d, p, bandwidths.Length) bytes.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static double CrossValidationScore<T>(ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses, ReadOnlySpan<T> bandwidths,
        Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => CrossValidationCore(IsaDispatch.Selected, samples, responses, bandwidths, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="CrossValidationScore{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan{T}, Span{byte})"/>
    /// needs: the leave-one-out estimates (n·p elements), the scaled samples X/h_k for per-dimension bandwidths (n·d) and the
    /// attention kernel's workspace.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="sampleCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="responseCount">p ≥ 1.</param>
    /// <param name="bandwidthCount">1 or d.</param>
    /// <returns>The size in bytes (alignment slack included).</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetCrossValidationWorkspaceSize<T>(int sampleCount, int dimension, int responseCount, int bandwidthCount)
        where T : unmanaged
    {
        RequireFloatOrDouble<T>();
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(responseCount, 1);
        if (bandwidthCount != 1 && bandwidthCount != dimension)
            ThrowHelper.ThrowOutOfRange(nameof(bandwidthCount), bandwidthCount, "Must be 1 or the dimension d.");
        return Checked(new CrossValidationLayout(Unsafe.SizeOf<T>(), sampleCount, dimension, responseCount, bandwidthCount > 1).TotalBytes,
            nameof(sampleCount));
    }

    internal static unsafe double CrossValidationCore<T>(IsaPath path, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan<T> bandwidths, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireFloatOrDouble<T>();
        ValidateSamples(samples, responses, minimumCount: 1);
        int n = samples.Height, d = samples.Width, p = responses.Width;
        ValidateBandwidths(bandwidths, d);
        var layout = new CrossValidationLayout(sizeof(T), n, d, p, bandwidths.Length > 1);
        if (workspaceGiven && workspace.Length < layout.TotalBytes)
            ThrowHelper.ThrowWorkspace(nameof(workspace), layout.TotalBytes, workspace.Length);
        if (n < 2) return double.NaN;

        if (workspaceGiven)
        {
            fixed (byte* buffer = workspace)
                return CrossValidationRun(path, samples, responses, bandwidths, in layout, buffer);
        }
        byte* owned = (byte*)NativeMemory.Alloc((nuint)layout.TotalBytes);
        try
        {
            return CrossValidationRun(path, samples, responses, bandwidths, in layout, owned);
        }
        finally
        {
            NativeMemory.Free(owned);
        }
    }

    private static unsafe double CrossValidationRun<T>(IsaPath path, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan<T> bandwidths, in CrossValidationLayout layout, byte* buffer)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = samples.Height, d = samples.Width, p = responses.Width;
        byte* aligned = (byte*)(((nuint)buffer + 63) & ~(nuint)63);
        ReadOnlySpan2D<T> key = samples;
        double bandwidth = double.CreateTruncating(bandwidths[0]);
        if (layout.PerDimension)
        {
            var scaled = new Span2D<T>(aligned + layout.SampleCopy, n, d, 0);
            ScaleRows(samples, bandwidths, scaled);
            key = scaled;
            bandwidth = 1.0;
        }
        var estimates = new Span2D<T>(aligned + layout.Estimates, n, p, 0);
        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth };
        Attention.ForwardCore(path, key, key, responses, estimates, 1, 1, in options, default, default, default,
            excludeDiagonal: true, new Span<byte>(aligned + layout.Kernel, layout.KernelBytes), workspaceGiven: true);
        return MeanSquaredResidual<T>(responses, estimates, 0);
    }

    /// <summary>(1/n)·Σ_i Σ_c (Y_ic − Ĝ_i,offset+c)² in double, sequential in i then c.</summary>
    private static double MeanSquaredResidual<T>(ReadOnlySpan2D<T> responses, ReadOnlySpan2D<T> estimates, int offset)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = responses.Height, p = responses.Width;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<T> y = responses.GetRowSpan(i);
            ReadOnlySpan<T> g = estimates.GetRowSpan(i).Slice(offset, p);
            for (int c = 0; c < p; c++)
            {
                double residual = double.CreateTruncating(y[c]) - double.CreateTruncating(g[c]);
                sum += residual * residual;
            }
        }
        return sum / n;
    }

    private static void ValidateSamples<T>(ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses, int minimumCount)
    {
        int n = samples.Height, d = samples.Width;
        if (n < minimumCount || d < 1)
            ThrowHelper.ThrowShape(nameof(samples), $"sampleCount × d with sampleCount ≥ {minimumCount} and d ≥ 1", n, d);
        if (responses.Height != n || responses.Width < 1)
            ThrowHelper.ThrowShape(nameof(responses), $"{n} × p with p ≥ 1 (one row per sample)", responses.Height, responses.Width);
    }

    private readonly struct CrossValidationLayout
    {
        public readonly bool PerDimension;
        public readonly long SampleCopy, Estimates, Kernel;
        public readonly int KernelBytes;
        public readonly long TotalBytes;

        public CrossValidationLayout(int elementSize, int n, int d, int p, bool perDimension)
        {
            PerDimension = perDimension;
            long cursor = 0;
            SampleCopy = cursor; cursor += perDimension ? Align((long)n * d * elementSize) : 0;
            Estimates = cursor; cursor += Align((long)n * p * elementSize);
            Kernel = cursor;
            long kernelBytes = Kernels.AttentionDriver.WorkspaceBytes(elementSize, d, p, n, 1, 1, gaussian: true, 1);
            KernelBytes = (int)Math.Min(kernelBytes, int.MaxValue);
            TotalBytes = cursor + kernelBytes + 63;
        }
    }
}
