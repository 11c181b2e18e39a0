using System;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels;

namespace FastKernelAttention;

public static partial class Attention
{
    /// <summary>
    /// Single-head attention O_i = Σ_j softmax_j(s_ij)·v_j with s_ij from <see cref="AttentionOptions.Kernel"/>.
    /// </summary>
    /// <param name="query">Q, m × d (queryCount × headDim, headDim ≥ 1).</param>
    /// <param name="key">K, n × d.</param>
    /// <param name="value">V, n × dv (dv = 0 makes an LSE-only call).</param>
    /// <param name="output">O, m × dv; must not overlap any input.</param>
    /// <param name="options">Kernel, scale or bandwidth, causal mask, sink logit and degree of parallelism.</param>
    /// <param name="logSumExp">Empty (not computed), or at least m elements: LSE_i = log(e^{s₀} + Σ_{visible j} e^{s_ij}), the
    /// true value for the Gaussian kernel (including −‖q_i‖²/(2h²)). −∞ for a row with no visible key and no sink.</param>
    /// <remarks>Scratch memory comes from the stack, or from native memory for large head dimensions; no managed memory is
    /// allocated. Use the overload with a workspace to supply it yourself.</remarks>
    /// <exception cref="ArgumentException">A shape does not match, d = 0, an option is invalid, or an output overlaps an input.</exception>
    public static void Forward(ReadOnlySpan2D<float> query, ReadOnlySpan2D<float> key, ReadOnlySpan2D<float> value,
        Span2D<float> output, in AttentionOptions options, Span<float> logSumExp = default)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, 1, 1, in options, logSumExp, default, default, workspaceGiven: false);

    /// <inheritdoc cref="Forward(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, in AttentionOptions, Span{float})"/>
    public static void Forward(ReadOnlySpan2D<double> query, ReadOnlySpan2D<double> key, ReadOnlySpan2D<double> value,
        Span2D<double> output, in AttentionOptions options, Span<double> logSumExp = default)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, 1, 1, in options, logSumExp, default, default, workspaceGiven: false);

    /// <summary>Single-head attention with a caller-owned workspace of at least
    /// <see cref="GetWorkspaceSize{T}(int, int, int, in AttentionOptions, int, int)"/> bytes (any alignment).</summary>
    /// <inheritdoc cref="Forward(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, in AttentionOptions, Span{float})"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;float&gt;(d, dv, n, options) bytes.</param>
    public static void Forward(ReadOnlySpan2D<float> query, ReadOnlySpan2D<float> key, ReadOnlySpan2D<float> value,
        Span2D<float> output, in AttentionOptions options, Span<float> logSumExp, Span<byte> workspace)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, 1, 1, in options, logSumExp, default, workspace, workspaceGiven: true);

    /// <inheritdoc cref="Forward(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, in AttentionOptions, Span{float}, Span{byte})"/>
    public static void Forward(ReadOnlySpan2D<double> query, ReadOnlySpan2D<double> key, ReadOnlySpan2D<double> value,
        Span2D<double> output, in AttentionOptions options, Span<double> logSumExp, Span<byte> workspace)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, 1, 1, in options, logSumExp, default, workspace, workspaceGiven: true);

    /// <summary>
    /// Multi-head, grouped-query and multi-query attention over token-major tensors (MATH §1): query head h of token i is
    /// columns [h·d, (h+1)·d) of row i, and reads key/value head h / (H / Hkv).
    /// </summary>
    /// <param name="query">Q, m × (H·d).</param>
    /// <param name="key">K, n × (Hkv·d).</param>
    /// <param name="value">V, n × (Hkv·dv).</param>
    /// <param name="output">O, m × (H·dv); must not overlap any input.</param>
    /// <param name="headCount">H ≥ 1, a multiple of <paramref name="keyValueHeadCount"/>.</param>
    /// <param name="keyValueHeadCount">Hkv ≥ 1 (Hkv = H: multi-head; Hkv = 1: multi-query).</param>
    /// <param name="options">Kernel, scale or bandwidth, causal mask, one sink logit for every head, degree of parallelism.</param>
    /// <param name="logSumExp">Empty, or at least H·m elements laid out [H × m]: head h, query i at h·m + i.</param>
    /// <param name="sinkLogits">Empty, or one sink logit per head (−∞: none for that head); excludes <see cref="AttentionOptions.SinkLogit"/>.</param>
    /// <exception cref="ArgumentException">A shape does not match, H is not a multiple of Hkv, an option is invalid, or an output overlaps an input.</exception>
    public static void ForwardMultiHead(ReadOnlySpan2D<float> query, ReadOnlySpan2D<float> key, ReadOnlySpan2D<float> value,
        Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp = default, ReadOnlySpan<float> sinkLogits = default)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, default, workspaceGiven: false);

    /// <inheritdoc cref="ForwardMultiHead(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, int, int, in AttentionOptions, Span{float}, ReadOnlySpan{float})"/>
    public static void ForwardMultiHead(ReadOnlySpan2D<double> query, ReadOnlySpan2D<double> key, ReadOnlySpan2D<double> value,
        Span2D<double> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<double> logSumExp = default, ReadOnlySpan<double> sinkLogits = default)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, default, workspaceGiven: false);

    /// <summary>Multi-head attention with a caller-owned workspace of at least
    /// <see cref="GetWorkspaceSize{T}(int, int, int, in AttentionOptions, int, int)"/> bytes.</summary>
    /// <inheritdoc cref="ForwardMultiHead(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, int, int, in AttentionOptions, Span{float}, ReadOnlySpan{float})"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;float&gt;(d, dv, n, options, H, Hkv) bytes.</param>
    public static void ForwardMultiHead(ReadOnlySpan2D<float> query, ReadOnlySpan2D<float> key, ReadOnlySpan2D<float> value,
        Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp, ReadOnlySpan<float> sinkLogits, Span<byte> workspace)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, workspace, workspaceGiven: true);

    /// <inheritdoc cref="ForwardMultiHead(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, int, int, in AttentionOptions, Span{float}, ReadOnlySpan{float}, Span{byte})"/>
    public static void ForwardMultiHead(ReadOnlySpan2D<double> query, ReadOnlySpan2D<double> key, ReadOnlySpan2D<double> value,
        Span2D<double> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<double> logSumExp, ReadOnlySpan<double> sinkLogits, Span<byte> workspace)
        => AttentionDriver.Run(IsaDispatch.Selected, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, workspace, workspaceGiven: true);

    /// <summary>
    /// Bytes of workspace a call with these dimensions and options needs (63 bytes of alignment slack included): one
    /// scratch slice per thread (independent of m and n; for more than 8 heads it also holds a decode work item of up to
    /// 256 (row, head) pairs), the decode kernel's key-split states (H·16·(dv + 3) doubles when n exceeds one 512-key chunk),
    /// plus, for the Gaussian kernel, the centred copy of K made once per call (Hkv·n·(d + 1) elements).
    /// </summary>
    /// <remarks>This is the minimum for every m. A dot-kernel call whose K or V rows are strided (token-major multi-head
    /// layouts, padded pitches) with more than 8 queries whose K/V rows are each read at least 24 times on average by
    /// (query head, 64-query block) pairs (G·⌈m/64⌉ dense, about half that causal) runs faster from a per-head contiguous
    /// copy of K and V; it makes that copy when the workspace holds at least
    /// Hkv·n·(d + dv)·sizeof(T) + 128 bytes more than this size (the overloads without a workspace do so while the copy
    /// takes at most 64 MiB). The results
    /// are bitwise the same either way.</remarks>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="headDim">d ≥ 1.</param>
    /// <param name="valueDim">dv ≥ 0.</param>
    /// <param name="keyCount">n ≥ 0 (matters for the Gaussian kernel only).</param>
    /// <param name="options">The options of the call (kernel and degree of parallelism matter).</param>
    /// <param name="headCount">H ≥ 1.</param>
    /// <param name="keyValueHeadCount">Hkv ≥ 1 dividing H.</param>
    /// <exception cref="NotSupportedException">T is not float or double.</exception>
    public static int GetWorkspaceSize<T>(int headDim, int valueDim, int keyCount, in AttentionOptions options, int headCount = 1, int keyValueHeadCount = 1)
        where T : unmanaged
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException("Attention supports float and double.");
        ArgumentOutOfRangeException.ThrowIfLessThan(headDim, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(valueDim);
        ArgumentOutOfRangeException.ThrowIfNegative(keyCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(headCount, 1);
        if (keyValueHeadCount < 1 || headCount % keyValueHeadCount != 0)
            throw new ArgumentOutOfRangeException(nameof(keyValueHeadCount), keyValueHeadCount, "Must be at least 1 and divide headCount.");
        AttentionDriver.ValidateOptions(in options, ReadOnlySpan<T>.Empty);
        long bytes = AttentionDriver.WorkspaceBytes(Unsafe.SizeOf<T>(), headDim, valueDim, keyCount, headCount, keyValueHeadCount,
            options.Kernel == AttentionKernel.Gaussian, Internals.BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism));
        if (bytes > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(headDim), "The workspace would exceed 2 GiB.");
        return (int)bytes;
    }

    /// <summary>The estimators' entry: a call on a given ISA path with per-key log-weights (empty, or n values log π_j added
    /// to every logit; −∞ drops a key) and an optional leave-one-out mask (key j hidden from query i when j = i + (n − m)).</summary>
    internal static void ForwardCore<T>(IsaPath path, ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp,
        ReadOnlySpan<T> sinkLogits, ReadOnlySpan<T> keyLogWeights, bool excludeDiagonal, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        if (!IsaDispatch.IsSupported(path)) throw new PlatformNotSupportedException($"{path} is not supported on this machine.");
        AttentionDriver.Run(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits,
            keyLogWeights, excludeDiagonal, workspace, workspaceGiven);
    }

    /// <summary>Test and benchmark hook: the same call on a given ISA path (which must be supported).</summary>
    internal static void ForwardOnPath<T>(IsaPath path, ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp = default,
        ReadOnlySpan<T> sinkLogits = default)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        if (!IsaDispatch.IsSupported(path)) throw new PlatformNotSupportedException($"{path} is not supported on this machine.");
        AttentionDriver.Run(path, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits, default, workspaceGiven: false);
    }
}
