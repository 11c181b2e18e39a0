using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
/// below the rounding of the arithmetic. 10 (float) and 15 (double) vector operations per call. AVX-512 float uses a
/// 16-entry table instead (see <c>Exp2Table</c>): fewer multiplies, the same contract.</para>
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

    /// <summary>2^(i/16), i = 0 … 15, rounded to float: one register for <see cref="Exp2Table"/>.</summary>
    private static readonly Vector512<float> Table = Vector512.Create(
        1.0f, 1.0442737340927124f, 1.0905077457427979f, 1.1387885808944702f, 1.1892070770263672f, 1.2418577671051025f,
        1.2968395948410034f, 1.3542555570602417f, 1.4142135381698608f, 1.4768261909484863f, 1.5422108173370361f,
        1.610490322113037f, 1.6817928552627563f, 1.7562521696090698f, 1.8340080976486206f, 1.9152065515518188f);

    /// <summary>
    /// The AVX-512 float 2^x: x = k/16 + r with |r| ≤ 1/32 exactly (the rounding constant now rounds to sixteenths), 2^x =
    /// 2^⌊k/16⌋ · 2^((k mod 16)/16) · 2^r with the middle factor from a 16-entry register table (vpermps reads the low four
    /// bits of t directly) and 2^r by a degree-3 Taylor polynomial (truncation 9.2e-9): T + T·r·q(r), then the power of two
    /// from t's bits (shift by 19 and mask). 1.05 ulp worst case in a float emulation, ≤ 3 ulp tested; 5 operations on the
    /// multiply pipes instead of 7, which is what the softmax competes for with the FMA micro-kernels (≈ +1.5–2% at d = 8
    /// and 16). Underflow, −∞ and NaN as in <see cref="Exp2{T, TVec, TOps}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp2Table(Vector512<float> x)
    {
        Vector512<float> rounding = Vector512.Create(786559f); // 1.5·2^19 + 127: t holds 16·(x rounded to 1/16) + 2032
        Vector512<float> t = x + rounding;
        Vector512<float> r = x - (t - rounding);
        Vector512<float> tableValue = Avx512F.PermuteVar16x32(Table, t.AsInt32()).AsSingle();
        Vector512<float> q = Avx512F.FusedMultiplyAdd(Vector512.Create(0.05550410971045494f), r, Vector512.Create(0.24022650718688965f));
        q = Avx512F.FusedMultiplyAdd(q, r, Vector512.Create(0.6931471824645996f));
        Vector512<float> p = Avx512F.FusedMultiplyAdd(tableValue * r, q, tableValue);
        Vector512<float> scale = (Vector512.ShiftLeft(t.AsInt32(), 19) & Vector512.Create(0x7F800000)).AsSingle();
        Vector512<float> result = p * scale;
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(-126f)), Vector512<float>.Zero, result);
    }

    /// <summary>2^x per lane for x ≤ 0; see the type remarks for accuracy, underflow and NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp2<T, TVec, TOps>(TVec x)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        // No clamp is needed: below the normal range (−∞ included) the final select writes +0 whatever t, r and p are.
        if (typeof(TVec) == typeof(Vector512<float>) && Avx512F.IsSupported)
            return (TVec)(object)Exp2Table((Vector512<float>)(object)x);
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
