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
/// 16-entry table instead (see <c>Exp2Table</c>): fewer multiplies, the same contract. Its softmax uses the offset form
/// (<see cref="TryOffset{TVec}"/>, <see cref="Exp2Offset"/>), which also takes the shift out of the argument.</para>
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

    /// <summary>c = 1.5·2^19 + 127, the rounding constant of the offset form (<see cref="Exp2Offset"/>).</summary>
    private const float OffsetRounding = 786559f;

    /// <summary>The offset form takes shifts |m| &lt; 2^17, so that c − m and every t = s + (c − m) it forms for
    /// s − m ∈ [−126, 1/16] lie in c's binade [2^19, 2^20), where floats are the multiples of 1/16.</summary>
    private const float OffsetShiftLimit = 131072f;

    /// <summary>The mantissa bits of 2^(i/16), i = 0 … 15 (exponent field 0): the offset form ORs the power of two into them.</summary>
    private static readonly Vector512<int> TableMantissas = Table.AsInt32() & Vector512.Create(0x007FFFFF);

    /// <summary>
    /// Prepares the offset form of 2^(s − m) for a pair of lane vectors on the AVX-512 float path: true when every lane's
    /// shift is finite with |m| &lt; 2^17 (false on other paths, or for NaN or huge logits: then use
    /// <see cref="Exp2{T, TVec, TOps}"/> of s − m). On success each offset is c − m rounded to a multiple of 1/16; the shift
    /// the form then applies is m′ = c − offset (<see cref="OffsetShift{TVec}"/>, exact, within 1/32 of m), which the
    /// caller keeps as its running maximum, so p = 2^(s − m′) ≤ 2^(1/32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryOffset<TVec>(TVec shift0, TVec shift1, out TVec offset0, out TVec offset1)
        where TVec : unmanaged
    {
        offset0 = default;
        offset1 = default;
        if (typeof(TVec) != typeof(Vector512<float>) || !Avx512F.IsSupported) return false;
        Vector512<float> m0 = (Vector512<float>)(object)shift0, m1 = (Vector512<float>)(object)shift1;
        Vector512<float> limit = Vector512.Create(OffsetShiftLimit);
        if (!Vector512.LessThanAll(Vector512.Abs(m0), limit) || !Vector512.LessThanAll(Vector512.Abs(m1), limit)) return false;
        Vector512<float> c = Vector512.Create(OffsetRounding);
        offset0 = (TVec)(object)(c - m0);
        offset1 = (TVec)(object)(c - m1);
        return true;
    }

    /// <summary>The shift m′ = c − offset that the offset form applies (see <see cref="TryOffset{TVec}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec OffsetShift<TVec>(TVec offset)
        where TVec : unmanaged
        => (TVec)(object)(Vector512.Create(OffsetRounding) - (Vector512<float>)(object)offset);

    /// <summary>
    /// 2^(s − m′) from the raw logit s, with <paramref name="offset"/> = c − m′ and <paramref name="low"/> = m′ − 126 from
    /// <see cref="TryOffset{TVec}"/>: the subtraction s − m′ folds into the rounding add t = s + (c − m′), which rounds s − m′
    /// to sixteenths exactly as <see cref="Exp2Table"/> rounds x (c − m′ is a multiple of 1/16 in c's binade), and
    /// r = s − (t − (c − m′)) is the exact remainder (|r| ≤ 1/32, Sterbenz). The table entry and the power of two are
    /// joined by one bitwise OR of the mantissa bits with t's exponent bits (vpternlogd) instead of a multiply: 4 multiply-pipe
    /// operations and 11 in all, against 14 for s − m and <see cref="Exp2Table"/>. Same polynomial, so the same accuracy
    /// (r is exact even where s − m′ is not representable); +0 below 2^−126, NaN propagates.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2Offset(Vector512<float> s, Vector512<float> offset, Vector512<float> low, in OffsetConstants constants)
    {
        Vector512<float> t = s + offset;
        Vector512<float> r = s - (t - offset);
        Vector512<int> mantissa = Avx512F.PermuteVar16x32(constants.Mantissas, t.AsInt32());
        // (t << 19) & 0x7F800000 | mantissa: 2^⌊x⌋·2^((k mod 16)/16) as a float.
        Vector512<float> tableValue = Avx512F.TernaryLogic(Vector512.ShiftLeft(t.AsInt32(), 19), constants.ExponentMask, mantissa, 0xEA).AsSingle();
        Vector512<float> q = Avx512F.FusedMultiplyAdd(constants.C3, r, constants.C2);
        q = Avx512F.FusedMultiplyAdd(q, r, constants.C1);
        Vector512<float> p = Avx512F.FusedMultiplyAdd(tableValue * r, q, tableValue);
        // Keep p where s ≥ low or s is NaN (not s < low).
        return Vector512.ConditionalSelect(~Vector512.LessThan(s, low), p, Vector512<float>.Zero);
    }

    /// <summary>The registers <see cref="Exp2Offset"/> reads: load them once, outside the loop.</summary>
    public readonly struct OffsetConstants
    {
        public readonly Vector512<int> Mantissas;
        public readonly Vector512<int> ExponentMask;
        public readonly Vector512<float> C1;
        public readonly Vector512<float> C2;
        public readonly Vector512<float> C3;

        private OffsetConstants(Vector512<int> mantissas)
        {
            Mantissas = mantissas;
            ExponentMask = Vector512.Create(0x7F800000);
            C1 = Vector512.Create(0.6931471824645996f);
            C2 = Vector512.Create(0.24022650718688965f);
            C3 = Vector512.Create(0.05550410971045494f);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static OffsetConstants Create() => new(TableMantissas);
    }

    /// <summary>m′ − 126 per lane from the offset c − m′: below it 2^(s − m′) underflows to +0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> OffsetLow(Vector512<float> offset) => Vector512.Create(OffsetRounding) - offset - Vector512.Create(126f);

    /// <summary>
    /// The softmax's exponentiation of one tile for a pair of lane vectors on the AVX-512 float path: for each of
    /// <paramref name="count"/> rows of <paramref name="scores"/> (<paramref name="stride"/> floats apart), overwrites the
    /// two vectors s by p = 2^(s − m′) (<see cref="Exp2Offset"/>, offsets from <see cref="TryOffset{TVec}"/>) and sums p
    /// per lane in key order. Its own method so that the JIT keeps the sums and constants in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Exp2OffsetPair(float* scores, nint stride, int count, Vector512<float> offset0, Vector512<float> offset1,
        out Vector512<float> sum0, out Vector512<float> sum1)
    {
        Vector512<float> o0 = offset0, o1 = offset1; // locals: the JIT keeps (implicit by-reference) parameters in memory
        Vector512<float> low0 = OffsetLow(o0), low1 = OffsetLow(o1);
        OffsetConstants constants = OffsetConstants.Create();
        Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero;
        for (int j = 0; j < count; j++, scores += stride)
        {
            Vector512<float> p0 = Exp2Offset(Vector512.Load(scores), o0, low0, in constants);
            Vector512<float> p1 = Exp2Offset(Vector512.Load(scores + 16), o1, low1, in constants);
            p0.Store(scores);
            p1.Store(scores + 16);
            a0 += p0;
            a1 += p1;
        }
        sum0 = a0;
        sum1 = a1;
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
