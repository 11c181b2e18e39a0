using System.Numerics;
using System.Runtime.CompilerServices;
using FastKernelAttention.Kernels.Isa;

namespace FastKernelAttention.Numerics;

/// <summary>
/// Inline vectorised e^x for the softmax domain x ≤ 0 (MATH §5), written once over <see cref="ISimdOps{T, TVec}"/>.
/// </summary>
/// <remarks>
/// <para>Cody–Waite reduction x = k·ln2 + r with |r| ≤ ln2/2 (k·ln2_hi exact), then a polynomial in r and 2^k written
/// straight into the exponent bits: the rounding constant 1.5·2^p + bias both rounds x·log₂e to the nearest integer and
/// leaves k + bias in the low mantissa bits, which one integer shift moves into the exponent field.</para>
/// <para>float: Cephes' degree-5 minimax in r·r plus 1 + r (≈ 1 ulp); double: Taylor to degree 13 (truncation 8e-18).</para>
/// <para>Below ln 2^−126 (float) or ln 2^−1022 (double) the result is +0: no denormals, since the runtime has no portable
/// flush-to-zero mode (the mass lost is &lt; 1.2e-38 against a running sum ≥ 1). e^−∞ = 0 and NaN propagates. Arguments above
/// 0 are outside the contract (the softmax never produces them).</para>
/// </remarks>
internal static class VectorExp
{
    private const float FloatUnderflow = -87.33654f;         // the float just above ln 2^-126 = −87.33654475: e^x is normal from here
    private const float FloatClamp = -87.5f;                 // keeps k + 127 >= 1
    private const float FloatRoundBias = 12583039f;          // 1.5·2^23 + 127
    private const double DoubleUnderflow = -708.3964185322641; // ln 2^-1022 rounded to double: e^x is normal from here
    private const double DoubleClamp = -708.5;                 // keeps k + 1023 >= 1
    private const double DoubleRoundBias = 6755399441056767.0; // 1.5·2^52 + 1023

    /// <summary>e^x per lane for x ≤ 0; see the type remarks for accuracy, underflow and NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp<T, TVec, TOps>(TVec x)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        if (typeof(T) == typeof(float))
        {
            // Max(clamp, x) returns x when x is NaN (x86 operand order), so NaN flows through r and the polynomial.
            TVec xc = TOps.Max(TOps.Broadcast(T.CreateTruncating(FloatClamp)), x);
            TVec rounding = TOps.Broadcast(T.CreateTruncating(FloatRoundBias));
            TVec t = TOps.MultiplyAdd(xc, TOps.Broadcast(T.CreateTruncating(1.44269504088896341f)), rounding);
            TVec k = TOps.Subtract(t, rounding);
            TVec r = TOps.NegatedMultiplyAdd(k, TOps.Broadcast(T.CreateTruncating(0.693359375f)), xc);
            r = TOps.NegatedMultiplyAdd(k, TOps.Broadcast(T.CreateTruncating(-2.12194440e-4f)), r);
            TVec r2 = TOps.Multiply(r, r);
            TVec p = TOps.MultiplyAdd(TOps.Broadcast(T.CreateTruncating(1.9875691500e-4f)), r, TOps.Broadcast(T.CreateTruncating(1.3981999507e-3f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(8.3334519073e-3f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(4.1665795894e-2f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.6666665459e-1f)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(5.0000001201e-1f)));
            p = TOps.MultiplyAdd(p, r2, r);
            p = TOps.Add(p, TOps.Broadcast(T.One));
            TVec result = TOps.Multiply(p, TOps.ShiftIntoExponent(t));
            return TOps.SelectLessThan(x, TOps.Broadcast(T.CreateTruncating(FloatUnderflow)), TOps.Zero, result);
        }
        else
        {
            TVec xc = TOps.Max(TOps.Broadcast(T.CreateTruncating(DoubleClamp)), x);
            TVec rounding = TOps.Broadcast(T.CreateTruncating(DoubleRoundBias));
            TVec t = TOps.MultiplyAdd(xc, TOps.Broadcast(T.CreateTruncating(1.4426950408889634)), rounding);
            TVec k = TOps.Subtract(t, rounding);
            TVec r = TOps.NegatedMultiplyAdd(k, TOps.Broadcast(T.CreateTruncating(6.93147180369123816490e-01)), xc);
            r = TOps.NegatedMultiplyAdd(k, TOps.Broadcast(T.CreateTruncating(1.90821492927058770002e-10)), r);
            TVec r2 = TOps.Multiply(r, r);
            // Taylor coefficients 1/13! ... 1/2!.
            TVec p = TOps.MultiplyAdd(TOps.Broadcast(T.CreateTruncating(1.6059043836821613e-10)), r, TOps.Broadcast(T.CreateTruncating(2.08767569878681e-9)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.505210838544172e-8)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.755731922398589e-7)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.7557319223985893e-6)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(2.48015873015873e-5)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.984126984126984e-4)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.388888888888889e-3)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(8.333333333333333e-3)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(4.1666666666666664e-2)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(1.6666666666666666e-1)));
            p = TOps.MultiplyAdd(p, r, TOps.Broadcast(T.CreateTruncating(0.5)));
            p = TOps.MultiplyAdd(p, r2, r);
            p = TOps.Add(p, TOps.Broadcast(T.One));
            TVec result = TOps.Multiply(p, TOps.ShiftIntoExponent(t));
            return TOps.SelectLessThan(x, TOps.Broadcast(T.CreateTruncating(DoubleUnderflow)), TOps.Zero, result);
        }
    }
}
