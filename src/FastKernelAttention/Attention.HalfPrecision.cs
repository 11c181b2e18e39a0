using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels;

namespace FastKernelAttention;

public static partial class Attention
{
    /// <summary>
    /// Multi-head / GQA / MQA attention (MATH §1) with float queries and outputs and K and V stored as bfloat16: a KV cache
    /// of half the bytes, widened to float in registers (exactly) and accumulated in float, with the float call's online
    /// softmax and double-precision chunk merge.
    /// </summary>
    /// <param name="query">Q, m × (H·d), float.</param>
    /// <param name="key">K, n × (Hkv·d), bfloat16, token-major.</param>
    /// <param name="value">V, n × (Hkv·dv), bfloat16, token-major.</param>
    /// <param name="output">O, m × (H·dv), float; must not overlap any input.</param>
    /// <param name="headCount">H ≥ 1, a multiple of <paramref name="keyValueHeadCount"/>.</param>
    /// <param name="keyValueHeadCount">Hkv ≥ 1 (Hkv = H: multi-head; Hkv = 1: multi-query).</param>
    /// <param name="options">Dot kernel only (scale, causal mask, sink logit, degree of parallelism); the Gaussian kernel raises
    /// an <see cref="ArgumentException"/>.</param>
    /// <param name="logSumExp">Empty, or at least H·m elements laid out [H × m]: head h, query i at h·m + i.</param>
    /// <param name="sinkLogits">Empty, or one sink logit per head (−∞: none for that head); excludes <see cref="AttentionOptions.SinkLogit"/>.</param>
    /// <remarks>
    /// <para>Accuracy: the caller rounds K and V to bfloat16; the call is exact arithmetic's answer on the stored values
    /// within the float contract (MATH §14: max|O − O_ref| ≤ 1e-5·max|V|, |ΔLSE| ≤ 1e-5·max(1, |LSE|), with O_ref and LSE_ref
    /// the double reference on the widened K and V). The rounding of K and V itself (relative 2⁻⁹) is the caller's.</para>
    /// <para>Up to 16 query rows (20 when H = Hkv; decoding, speculative decoding) the streaming decode kernel widens K and V
    /// in registers, reading each K and V row once per block of 8 query rows. Above, one kv head at a time is widened into a
    /// contiguous float copy (native memory, at most 64 MiB: n·(d + dv)·4 bytes; larger heads stay on the decode kernel)
    /// and the float block kernel runs its query heads on it, so the result is the float overload's, bit for bit, on the
    /// widened K and V. Masks, sinks, empty rows, NaN handling and bitwise determinism across
    /// <see cref="AttentionOptions.MaxDegreeOfParallelism"/> are those of the float call. No managed memory is allocated.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">A shape does not match, H is not a multiple of Hkv, an option is invalid or the
    /// Gaussian kernel, or an output overlaps an input.</exception>
    public static void ForwardMultiHead(ReadOnlySpan2D<float> query, ReadOnlySpan2D<BFloat16> key, ReadOnlySpan2D<BFloat16> value,
        Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp = default, ReadOnlySpan<float> sinkLogits = default)
        => AttentionDriver.RunHalfPrecision(IsaDispatch.Selected, KeyValueStorage.BFloat16, query, key, value, output, headCount,
            keyValueHeadCount, in options, logSumExp, sinkLogits);

    /// <summary>
    /// Multi-head / GQA / MQA attention (MATH §1) with float queries and outputs and K and V stored as IEEE half precision
    /// (<see cref="Half"/>), widened to float in registers (exactly; subnormals, ±∞ and NaN included) and accumulated in float.
    /// </summary>
    /// <inheritdoc cref="ForwardMultiHead(ReadOnlySpan2D{float}, ReadOnlySpan2D{BFloat16}, ReadOnlySpan2D{BFloat16}, Span2D{float}, int, int, in AttentionOptions, Span{float}, ReadOnlySpan{float})"/>
    /// <param name="key">K, n × (Hkv·d), half precision, token-major.</param>
    /// <param name="value">V, n × (Hkv·dv), half precision, token-major.</param>
    /// <remarks>
    /// <para>Accuracy: as for bfloat16 — exact on the stored half values within the float contract of MATH §14; the rounding
    /// of K and V to half precision (relative 2⁻¹¹, range ±65504) is the caller's.</para>
    /// <para>.NET exposes no F16C conversion, so the widening is done with integer operations, one multiply and a select per
    /// register: seven vector operations where bfloat16 needs a widening load and a shift. A half cache halves the bytes read,
    /// but on the machines measured its decode ran at 0.8–1.2× the speed of the float32 call, against 1.6–1.7× for bfloat16
    /// (the W4-f16 and W4-bf16 rows of bench/results): prefer <see cref="BFloat16"/> where decode speed matters. Otherwise
    /// as the bfloat16 overload: any m, above 16 (20) rows the float call's bits on the widened values, no managed allocation.</para>
    /// </remarks>
    public static void ForwardMultiHead(ReadOnlySpan2D<float> query, ReadOnlySpan2D<Half> key, ReadOnlySpan2D<Half> value,
        Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp = default, ReadOnlySpan<float> sinkLogits = default)
        => AttentionDriver.RunHalfPrecision(IsaDispatch.Selected, KeyValueStorage.Half, query, key, value, output, headCount,
            keyValueHeadCount, in options, logSumExp, sinkLogits);

    /// <summary>Test and benchmark hook: a 16-bit K/V call on a given ISA path (which must be supported).</summary>
    internal static void ForwardHalfPrecisionOnPath<TKv>(IsaPath path, ReadOnlySpan2D<float> query, ReadOnlySpan2D<TKv> key,
        ReadOnlySpan2D<TKv> value, Span2D<float> output, int headCount, int keyValueHeadCount, in AttentionOptions options,
        Span<float> logSumExp = default, ReadOnlySpan<float> sinkLogits = default)
        where TKv : unmanaged
    {
        if (!IsaDispatch.IsSupported(path)) throw new PlatformNotSupportedException($"{path} is not supported on this machine.");
        KeyValueStorage storage = typeof(TKv) == typeof(BFloat16) ? KeyValueStorage.BFloat16
            : typeof(TKv) == typeof(Half) ? KeyValueStorage.Half
            : throw new NotSupportedException("16-bit K/V are BFloat16 or Half.");
        AttentionDriver.RunHalfPrecision(path, storage, query, key, value, output, headCount, keyValueHeadCount, in options, logSumExp, sinkLogits);
    }
}
