using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

/// <summary>
/// The AVX-512 float block's first value step fused with the softmax's exponentiation. The separate exponentiation pass
/// runs on the add, shuffle and integer pipes while the FMA pipes idle (≈ 20% of the time at d = 16, 5% at d = 64); here
/// p = 2^(s − m′) of each key is computed inside the FMA-bound loop that multiplies it into the first four value columns,
/// so the two kinds of work overlap. Same operations in the same order as <see cref="VectorExp.Exp2OffsetPair"/> followed
/// by the plain value step: bitwise the same results.
/// </summary>
internal static unsafe class FusedExpValues
{
    /// <summary>Queries per block on this path (4 vectors of 16 floats).</summary>
    private const int Lanes = 64;

    /// <summary>
    /// For a full (unmasked) tile of <paramref name="tileKeys"/> keys whose softmax step deferred its exponentiation
    /// (<paramref name="offsets"/>: c − m′ per lane, then m′ − 126 per lane, from <see cref="VectorExp.TryOffset{TVec}"/>):
    /// overwrites the logits S (keys × 64) by p, sets l ← α·l + Σ_j p_j in <paramref name="runningSum"/>, and computes
    /// acc[c] ← α·acc[c] + Σ_j V[j,c]·p_j for value columns c = 0…3. The caller runs the other columns as usual.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ExponentiateAndAccumulate4(float* values, nint valueStride, int tileKeys, float* scores,
        float* accumulator, float* alpha, float* offsets, float* runningSum)
    {
        Vector512<float> al0 = Vector512.Load(alpha), al1 = Vector512.Load(alpha + 16);
        Vector512<float> al2 = Vector512.Load(alpha + 32), al3 = Vector512.Load(alpha + 48);
        Vector512<float> a00 = Vector512.Load(accumulator) * al0, a01 = Vector512.Load(accumulator + 16) * al1;
        Vector512<float> a02 = Vector512.Load(accumulator + 32) * al2, a03 = Vector512.Load(accumulator + 48) * al3;
        Vector512<float> a10 = Vector512.Load(accumulator + Lanes) * al0, a11 = Vector512.Load(accumulator + Lanes + 16) * al1;
        Vector512<float> a12 = Vector512.Load(accumulator + Lanes + 32) * al2, a13 = Vector512.Load(accumulator + Lanes + 48) * al3;
        Vector512<float> a20 = Vector512.Load(accumulator + 2 * Lanes) * al0, a21 = Vector512.Load(accumulator + 2 * Lanes + 16) * al1;
        Vector512<float> a22 = Vector512.Load(accumulator + 2 * Lanes + 32) * al2, a23 = Vector512.Load(accumulator + 2 * Lanes + 48) * al3;
        Vector512<float> a30 = Vector512.Load(accumulator + 3 * Lanes) * al0, a31 = Vector512.Load(accumulator + 3 * Lanes + 16) * al1;
        Vector512<float> a32 = Vector512.Load(accumulator + 3 * Lanes + 32) * al2, a33 = Vector512.Load(accumulator + 3 * Lanes + 48) * al3;
        Vector512<float> sum0 = Vector512<float>.Zero, sum1 = Vector512<float>.Zero;
        Vector512<float> sum2 = Vector512<float>.Zero, sum3 = Vector512<float>.Zero;
        VectorExp.OffsetConstants constants = VectorExp.OffsetConstants.Create();
        float* lows = offsets + Lanes;
        float* v = values;
        float* y = scores;
        // In bounds: tileKeys rows of the value tile (dv ≥ 4 columns) and of the 64-lane score tile.
        for (int j = 0; j < tileKeys; j++, v += valueStride, y += Lanes)
        {
            Vector512<float> p0 = VectorExp.Exp2Offset(Vector512.Load(y), Vector512.Load(offsets), Vector512.Load(lows), in constants);
            Vector512<float> p1 = VectorExp.Exp2Offset(Vector512.Load(y + 16), Vector512.Load(offsets + 16), Vector512.Load(lows + 16), in constants);
            Vector512<float> p2 = VectorExp.Exp2Offset(Vector512.Load(y + 32), Vector512.Load(offsets + 32), Vector512.Load(lows + 32), in constants);
            Vector512<float> p3 = VectorExp.Exp2Offset(Vector512.Load(y + 48), Vector512.Load(offsets + 48), Vector512.Load(lows + 48), in constants);
            p0.Store(y);
            p1.Store(y + 16);
            p2.Store(y + 32);
            p3.Store(y + 48);
            sum0 += p0;
            sum1 += p1;
            sum2 += p2;
            sum3 += p3;
            Vector512<float> b = Vector512.Create(v[0]);
            a00 = Avx512F.FusedMultiplyAdd(b, p0, a00);
            a01 = Avx512F.FusedMultiplyAdd(b, p1, a01);
            a02 = Avx512F.FusedMultiplyAdd(b, p2, a02);
            a03 = Avx512F.FusedMultiplyAdd(b, p3, a03);
            b = Vector512.Create(v[1]);
            a10 = Avx512F.FusedMultiplyAdd(b, p0, a10);
            a11 = Avx512F.FusedMultiplyAdd(b, p1, a11);
            a12 = Avx512F.FusedMultiplyAdd(b, p2, a12);
            a13 = Avx512F.FusedMultiplyAdd(b, p3, a13);
            b = Vector512.Create(v[2]);
            a20 = Avx512F.FusedMultiplyAdd(b, p0, a20);
            a21 = Avx512F.FusedMultiplyAdd(b, p1, a21);
            a22 = Avx512F.FusedMultiplyAdd(b, p2, a22);
            a23 = Avx512F.FusedMultiplyAdd(b, p3, a23);
            b = Vector512.Create(v[3]);
            a30 = Avx512F.FusedMultiplyAdd(b, p0, a30);
            a31 = Avx512F.FusedMultiplyAdd(b, p1, a31);
            a32 = Avx512F.FusedMultiplyAdd(b, p2, a32);
            a33 = Avx512F.FusedMultiplyAdd(b, p3, a33);
        }
        a00.Store(accumulator); a01.Store(accumulator + 16); a02.Store(accumulator + 32); a03.Store(accumulator + 48);
        a10.Store(accumulator + Lanes); a11.Store(accumulator + Lanes + 16); a12.Store(accumulator + Lanes + 32); a13.Store(accumulator + Lanes + 48);
        a20.Store(accumulator + 2 * Lanes); a21.Store(accumulator + 2 * Lanes + 16); a22.Store(accumulator + 2 * Lanes + 32); a23.Store(accumulator + 2 * Lanes + 48);
        a30.Store(accumulator + 3 * Lanes); a31.Store(accumulator + 3 * Lanes + 16); a32.Store(accumulator + 3 * Lanes + 32); a33.Store(accumulator + 3 * Lanes + 48);
        Avx512F.FusedMultiplyAdd(al0, Vector512.Load(runningSum), sum0).Store(runningSum);
        Avx512F.FusedMultiplyAdd(al1, Vector512.Load(runningSum + 16), sum1).Store(runningSum + 16);
        Avx512F.FusedMultiplyAdd(al2, Vector512.Load(runningSum + 32), sum2).Store(runningSum + 32);
        Avx512F.FusedMultiplyAdd(al3, Vector512.Load(runningSum + 48), sum3).Store(runningSum + 48);
    }
}
