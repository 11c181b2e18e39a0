using System.Numerics;
using System.Runtime.CompilerServices;
using FastKernelAttention.Kernels.Isa;

namespace FastKernelAttention.Numerics;

/// <summary>
/// Inline vectorised 2^x for the softmax domain x ≤ 0 (MATH §5 in base 2), written once over <see cref="ISimdOps{T, TVec}"/>.
/// The kernels keep their logits in base 2 (log₂e folded into the query scale and the key bias), so e^s = 2^(s·log₂e)
/// needs no multiply and no Cody–Waite split: the reduction r = x − round(x) is exact.
/// </summary>
/// <remarks>
/// <para>The rounding constant 1.5·2^p + bias (p = 23 or 52) both rounds x to the nearest integer k (t = x + c, k = t − c)
/// and leaves k + bias in the low mantissa bits of t, which one integer shift moves into the exponent field: 2^x =
/// 2^r·2^k with r = x − k ∈ [−½, ½] exactly. 2^r is a minimax polynomial with p(0) = 1 exactly, relative error 3.9e-9
/// (float, degree 6) and 1.8e-17 (double, degree 11), evaluated by FMA Horner: ≤ 1 ulp in T, so the fitted error is
/// below the rounding of the arithmetic. 10 (float) and 15 (double) vector operations per call.</para>
/// <para>Below 2^−126 (float) or 2^−1022 (double), i.e. x &lt; −126 or x &lt; −1022, the result is +0: no denormals,
/// since the runtime has no portable flush-to-zero mode (the mass lost is &lt; 1.2e-38 against a running sum ≥ 1). 2^−∞ = 0
/// and NaN propagates (compare-and-select, never max). Arguments above 0 are outside the contract (the softmax never
/// produces them).</para>
/// </remarks>
internal static class VectorExp
{
    /// <summary>log₂e: logits s enter the kernels as s·log₂e.</summary>
    public const double Log2E = 1.4426950408889634;

    /// <summary>ln 2: base-2 logits and maxima return to natural units as x·ln 2.</summary>
    public const double Ln2 = 0.6931471805599453;

    private const float FloatLowest = -126f;                   // 2^x is normal from here
    private const float FloatRoundBias = 12583039f;            // 1.5·2^23 + 127
    private const double DoubleLowest = -1022.0;
    private const double DoubleRoundBias = 6755399441056767.0; // 1.5·2^52 + 1023

    /// <summary>2^x per lane for x ≤ 0; see the type remarks for accuracy, underflow and NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp2<T, TVec, TOps>(TVec x)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        // No clamp is needed: below the normal range (−∞ included) the final select writes +0 whatever t, r and p are.
        if (typeof(T) == typeof(float))
        {
            TVec rounding = TOps.Broadcast(T.CreateTruncating(FloatRoundBias));
            TVec t = TOps.Add(x, rounding);
            TVec r = TOps.Subtract(x, TOps.Subtract(t, rounding));
            TVec p = TOps.MultiplyAdd(TOps.Broadcast(T.CreateTruncating(1.5469732170458883e-4f)), r, TOps.Broadcast(T.CreateTruncating(1.3410000829026103e-3f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(9.618030861020088e-3f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(5.550297349691391e-2f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.4022650718688965e-1f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(6.931472420692444e-1f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.One));
            TVec result = TOps.Multiply(p, TOps.ShiftIntoExponent(t));
            return TOps.SelectLessThan(x, TOps.Broadcast(T.CreateTruncating(FloatLowest)), TOps.Zero, result);
        }
        else
        {
            TVec rounding = TOps.Broadcast(T.CreateTruncating(DoubleRoundBias));
            TVec t = TOps.Add(x, rounding);
            TVec r = TOps.Subtract(x, TOps.Subtract(t, rounding));
            TVec p = TOps.MultiplyAdd(TOps.Broadcast(T.CreateTruncating(4.078062699466225e-10)), r, TOps.Broadcast(T.CreateTruncating(7.072570442467681e-09)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.0180647722118852e-07)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.3215442675182759e-06)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.5252727385038238e-05)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.540353044157236e-04)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.3333558153440133e-03)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(9.618129107607003e-03)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(5.550410866479039e-02)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.4022650695910097e-01)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(6.931471805599457e-01)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.One));
            TVec result = TOps.Multiply(p, TOps.ShiftIntoExponent(t));
            return TOps.SelectLessThan(x, TOps.Broadcast(T.CreateTruncating(DoubleLowest)), TOps.Zero, result);
        }
    }
}
