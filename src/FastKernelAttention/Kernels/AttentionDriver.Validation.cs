using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Kernels;

internal static unsafe partial class AttentionDriver
{
    /// <summary>Every check of a call, at the entry: the kernels trust their arguments.</summary>
    private static void Validate<T>(ReadOnlySpan2D<T> query, ReadOnlySpan2D<T> key, ReadOnlySpan2D<T> value,
        Span2D<T> output, int headCount, int keyValueHeadCount, in AttentionOptions options, Span<T> logSumExp,
        ReadOnlySpan<T> sinkLogits, out int headDim, out int valueDim)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        ValidateShapes(query.Height, query.Width, key.Height, key.Width, value.Height, value.Width, output.Height, output.Width,
            headCount, keyValueHeadCount, logSumExp.Length, out headDim, out valueDim);
        ValidateOptions(in options, sinkLogits);
        ValidateSinks(sinkLogits, headCount);
    }

    /// <summary>The shape checks of a call (Q m × H·d, K n × Hkv·d, V n × Hkv·dv, O m × H·dv, LSE empty or ≥ H·m).</summary>
    private static void ValidateShapes(int m, int queryWidth, int n, int keyWidth, int valueHeight, int valueWidth,
        int outputHeight, int outputWidth, int headCount, int keyValueHeadCount, int logSumExpLength, out int headDim, out int valueDim)
    {
        if (headCount < 1) ThrowHelper.ThrowOutOfRange(nameof(headCount), headCount, "The head count must be at least 1.");
        if (keyValueHeadCount < 1 || headCount % keyValueHeadCount != 0)
            ThrowHelper.ThrowOutOfRange(nameof(keyValueHeadCount), keyValueHeadCount,
                $"The key/value head count must be at least 1 and divide the head count ({headCount}).");

        bool multi = headCount > 1 || keyValueHeadCount > 1;
        if (queryWidth == 0 || queryWidth % headCount != 0)
            ThrowHelper.ThrowShape("query", multi ? $"queryCount × (headCount·headDim) with headDim ≥ 1, headCount = {headCount}" : "queryCount × headDim with headDim ≥ 1", m, queryWidth);
        headDim = queryWidth / headCount;
        if (keyWidth != keyValueHeadCount * headDim)
            ThrowHelper.ThrowShape("key", multi ? $"keyCount × {keyValueHeadCount * headDim} (keyValueHeadCount·headDim)" : $"keyCount × {headDim} (headDim)", n, keyWidth);
        if (valueHeight != n || valueWidth % keyValueHeadCount != 0)
            ThrowHelper.ThrowShape("value", multi ? $"{n} × (keyValueHeadCount·valueDim) with keyValueHeadCount = {keyValueHeadCount}" : $"{n} × valueDim (one row per key)", valueHeight, valueWidth);
        valueDim = valueWidth / keyValueHeadCount;
        if (outputHeight != m || outputWidth != headCount * valueDim)
            ThrowHelper.ThrowShape("output", $"{m} × {headCount * valueDim}" + (multi ? " (queryCount × headCount·valueDim)" : " (queryCount × valueDim)"), outputHeight, outputWidth);
        if (logSumExpLength != 0 && logSumExpLength < (long)headCount * m)
            ThrowHelper.ThrowLength("logSumExp", $"empty, or at least {(long)headCount * m} (headCount·queryCount) elements", logSumExpLength);
    }

    /// <summary>Per-head sink logits: empty, or one per head, none NaN or +∞.</summary>
    private static void ValidateSinks<T>(ReadOnlySpan<T> sinkLogits, int headCount)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (sinkLogits.IsEmpty) return;
        if (sinkLogits.Length != headCount)
            ThrowHelper.ThrowLength(nameof(sinkLogits), $"empty, or one logit per head ({headCount})", sinkLogits.Length);
        foreach (T s in sinkLogits)
        {
            if (T.IsNaN(s) || T.IsPositiveInfinity(s))
                ThrowHelper.ThrowArgument(nameof(sinkLogits), "Sink logits must not be NaN or +∞ (−∞ means no sink for that head).");
        }
    }

    /// <summary>Checks the options (their parameter name is <c>options</c>).</summary>
    internal static void ValidateOptions<T>(in AttentionOptions options, ReadOnlySpan<T> sinkLogits)
    {
        switch (options.Kernel)
        {
            case AttentionKernel.Dot:
                if (options.Scale is double scale && !(double.IsFinite(scale) && scale > 0))
                    ThrowHelper.ThrowArgument(nameof(options), $"Scale must be finite and positive (or null for 1/√d), got {scale}.");
                break;
            case AttentionKernel.Gaussian:
                if (!(double.IsFinite(options.Bandwidth) && options.Bandwidth > 0))
                    ThrowHelper.ThrowArgument(nameof(options), $"The Gaussian kernel needs a finite, positive Bandwidth, got {options.Bandwidth}.");
                if (options.Scale.HasValue)
                    ThrowHelper.ThrowArgument(nameof(options), "Scale applies to the dot kernel only; the Gaussian kernel's scale is 1/h² from Bandwidth.");
                break;
            default:
                ThrowHelper.ThrowOutOfRange(nameof(options), options.Kernel, "Unknown attention kernel.");
                break;
        }
        if (options.SinkLogit is double sink && (double.IsNaN(sink) || double.IsPositiveInfinity(sink)))
            ThrowHelper.ThrowArgument(nameof(options), "SinkLogit must not be NaN or +∞ (null or −∞ means no sink).");
        if (options.SinkLogit.HasValue && !sinkLogits.IsEmpty)
            ThrowHelper.ThrowArgument(nameof(options), "Give either SinkLogit (one for every head) or per-head sinkLogits, not both.");
        if (options.MaxDegreeOfParallelism < -1)
            ThrowHelper.ThrowOutOfRange(nameof(options), options.MaxDegreeOfParallelism, "MaxDegreeOfParallelism must be −1 (all processors), 0, 1 or a positive thread count.");
    }

    /// <summary>Throws when an output shares memory with an input or with the other output (called with everything pinned).</summary>
    private static void CheckOverlaps<T>(in AttentionProblem<T> p, int queryWidth, int keyWidth, int valueWidth, int outputWidth, long logSumExpLength)
        where T : unmanaged
        => CheckOverlaps(in p, queryWidth, RangeOf(p.Key, p.KeyCount, keyWidth, p.KeyStride),
            RangeOf(p.Value, p.KeyCount, valueWidth, p.ValueStride), outputWidth, logSumExpLength);

    /// <summary>As above, with the byte ranges of K and V given (16-bit K and V are not in the problem's T pointers).</summary>
    private static void CheckOverlaps<T>(in AttentionProblem<T> p, int queryWidth, Range k, Range v, int outputWidth, long logSumExpLength)
        where T : unmanaged
    {
        Range q = RangeOf(p.Query, p.QueryCount, queryWidth, p.QueryStride);
        Range o = RangeOf(p.Output, p.QueryCount, outputWidth, p.OutputStride);
        Range l = RangeOf(p.LogSumExp, p.LogSumExp == null ? 0 : 1, (int)logSumExpLength, 0);
        if (o.Overlaps(q)) ThrowHelper.ThrowOverlap("output", "query");
        if (o.Overlaps(k)) ThrowHelper.ThrowOverlap("output", "key");
        if (o.Overlaps(v)) ThrowHelper.ThrowOverlap("output", "value");
        if (l.Overlaps(q)) ThrowHelper.ThrowOverlap("logSumExp", "query");
        if (l.Overlaps(k)) ThrowHelper.ThrowOverlap("logSumExp", "key");
        if (l.Overlaps(v)) ThrowHelper.ThrowOverlap("logSumExp", "value");
        if (l.Overlaps(o)) ThrowHelper.ThrowOverlap("logSumExp", "output");
    }

    /// <summary>The byte range [Start, End) a pinned 2D view touches (conservative for pitched views).</summary>
    private readonly struct Range(nuint start, nuint end)
    {
        public readonly nuint Start = start;
        public readonly nuint End = end;

        public bool Overlaps(Range other) => Start < End && other.Start < other.End && Start < other.End && other.Start < End;
    }

    private static Range RangeOf<T>(T* start, int height, int width, nint stride)
        where T : unmanaged
    {
        if (start == null || height == 0 || width == 0) return default;
        T* end = start + (nint)(height - 1) * stride + width;
        return new Range((nuint)start, (nuint)end);
    }
}
