using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

/// <summary>
/// The AVX-512 float block's first value step fused with the softmax's exponentiation. The separate exponentiation pass
/// runs on the add, shuffle and integer pipes while the FMA pipes idle (≈ 20% of the time at d = 16, 5% at d = 64); here
/// p = 2^(s − m′) of each key is computed inside the FMA-bound loop that multiplies it into the first (up to) four value
/// columns, so the two kinds of work overlap (and with dv &lt; 4 the scores are not stored and reloaded between them).
/// Same operations in the same order as <see cref="VectorExp.Exp2OffsetPair"/> followed by the plain value step: bitwise
/// the same results.
/// </summary>
internal static unsafe class FusedExpValues
{
    /// <summary>Queries per block on this path (4 vectors of 16 floats).</summary>
    private const int Lanes = 64;

    /// <summary>
    /// For a full (unmasked) tile of <paramref name="tileKeys"/> keys whose softmax step deferred its exponentiation
    /// (<paramref name="offsets"/>: c − m′ per lane, then m′ − 126 per lane, from <see cref="VectorExp.TryOffset{TVec}"/>):
    /// overwrites the logits S (keys × 64) by p, sets l ← α·l + Σ_j p_j in <paramref name="runningSum"/>, and computes
    /// acc[c] ← α·acc[c] + Σ_j V[j,c]·p_j for value columns c = 0 … min(dv, 4) − 1. The caller runs the other columns as usual.
    /// </summary>
    /// <param name="columns">min(dv, 4), at least 1.</param>
    public static void ExponentiateAndAccumulate(float* values, nint valueStride, int tileKeys, float* scores,
        float* accumulator, float* alpha, float* offsets, float* runningSum, int columns)
    {
        switch (columns)
        {
            case 1: Run<VectorCount1>(values, valueStride, tileKeys, scores, accumulator, alpha, offsets, runningSum); break;
            case 2: Run<VectorCount2>(values, valueStride, tileKeys, scores, accumulator, alpha, offsets, runningSum); break;
            case 3: Run<VectorCount3>(values, valueStride, tileKeys, scores, accumulator, alpha, offsets, runningSum); break;
            default: Run<VectorCount4>(values, valueStride, tileKeys, scores, accumulator, alpha, offsets, runningSum); break;
        }
    }

    /// <summary><see cref="ExponentiateAndAccumulate"/> for <typeparamref name="TColumns"/> value columns (the JIT folds the
    /// guards on it; with fewer than four, the small-dv calls of the estimators, the exponentiation is most of the tile).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<TColumns>(float* values, nint valueStride, int tileKeys, float* scores,
        float* accumulator, float* alpha, float* offsets, float* runningSum)
        where TColumns : struct, IVectorCount
    {
        Vector512<float> al0 = Vector512.Load(alpha), al1 = Vector512.Load(alpha + 16);
        Vector512<float> al2 = Vector512.Load(alpha + 32), al3 = Vector512.Load(alpha + 48);
        // Column c's accumulator is acc[c·64 …], 4 registers; only the first TColumns columns are read and written.
        Vector512<float> a00, a01, a02, a03, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        LoadScaled(accumulator, al0, al1, al2, al3, out a00, out a01, out a02, out a03);
        if (TColumns.Value > 1) LoadScaled(accumulator + Lanes, al0, al1, al2, al3, out a10, out a11, out a12, out a13);
        if (TColumns.Value > 2) LoadScaled(accumulator + 2 * Lanes, al0, al1, al2, al3, out a20, out a21, out a22, out a23);
        if (TColumns.Value > 3) LoadScaled(accumulator + 3 * Lanes, al0, al1, al2, al3, out a30, out a31, out a32, out a33);
        Vector512<float> sum0 = Vector512<float>.Zero, sum1 = Vector512<float>.Zero;
        Vector512<float> sum2 = Vector512<float>.Zero, sum3 = Vector512<float>.Zero;
        VectorExp.OffsetConstants constants = VectorExp.OffsetConstants.Create();
        float* lows = offsets + Lanes;
        float* v = values;
        float* y = scores;
        // In bounds: tileKeys rows of the value tile (dv ≥ TColumns columns) and of the 64-lane score tile.
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
            MultiplyAdd(v[0], p0, p1, p2, p3, ref a00, ref a01, ref a02, ref a03);
            if (TColumns.Value > 1) MultiplyAdd(v[1], p0, p1, p2, p3, ref a10, ref a11, ref a12, ref a13);
            if (TColumns.Value > 2) MultiplyAdd(v[2], p0, p1, p2, p3, ref a20, ref a21, ref a22, ref a23);
            if (TColumns.Value > 3) MultiplyAdd(v[3], p0, p1, p2, p3, ref a30, ref a31, ref a32, ref a33);
        }
        Store(accumulator, a00, a01, a02, a03);
        if (TColumns.Value > 1) Store(accumulator + Lanes, a10, a11, a12, a13);
        if (TColumns.Value > 2) Store(accumulator + 2 * Lanes, a20, a21, a22, a23);
        if (TColumns.Value > 3) Store(accumulator + 3 * Lanes, a30, a31, a32, a33);
        Avx512F.FusedMultiplyAdd(al0, Vector512.Load(runningSum), sum0).Store(runningSum);
        Avx512F.FusedMultiplyAdd(al1, Vector512.Load(runningSum + 16), sum1).Store(runningSum + 16);
        Avx512F.FusedMultiplyAdd(al2, Vector512.Load(runningSum + 32), sum2).Store(runningSum + 32);
        Avx512F.FusedMultiplyAdd(al3, Vector512.Load(runningSum + 48), sum3).Store(runningSum + 48);
    }

    /// <summary>One column's 64 accumulator lanes, each times its α.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadScaled(float* column, Vector512<float> al0, Vector512<float> al1, Vector512<float> al2, Vector512<float> al3,
        out Vector512<float> a0, out Vector512<float> a1, out Vector512<float> a2, out Vector512<float> a3)
    {
        a0 = Vector512.Load(column) * al0;
        a1 = Vector512.Load(column + 16) * al1;
        a2 = Vector512.Load(column + 32) * al2;
        a3 = Vector512.Load(column + 48) * al3;
    }

    /// <summary>a ← v·p + a for one key's value v of one column, across the 64 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd(float value, Vector512<float> p0, Vector512<float> p1, Vector512<float> p2, Vector512<float> p3,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<float> b = Vector512.Create(value);
        a0 = Avx512F.FusedMultiplyAdd(b, p0, a0);
        a1 = Avx512F.FusedMultiplyAdd(b, p1, a1);
        a2 = Avx512F.FusedMultiplyAdd(b, p2, a2);
        a3 = Avx512F.FusedMultiplyAdd(b, p3, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* column, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        a0.Store(column);
        a1.Store(column + 16);
        a2.Store(column + 32);
        a3.Store(column + 48);
    }
}

/// <summary>The AVX-512 float block's 16 × 16 transposes: the query packing (rows in, lanes out) and the output (lanes in,
/// rows out). The transpose is the usual four stages of in-lane unpacks (32- then 64-bit) and 128-bit lane shuffles; it
/// moves bits only.</summary>
internal static unsafe class FloatSquares
{
    /// <summary>
    /// 16 query rows × 16 columns (rows <paramref name="queryStride"/> apart) scaled as <see cref="FusedAttentionKernel{T, TVec, TOps}"/>'s
    /// packing does (widened to double, multiplied, rounded once to float) and written transposed: column c of the square
    /// to <paramref name="destination"/> + c·<paramref name="lanes"/>, 16 lanes: the scalar packing's result.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PackScaledSquare(float* rows, nint queryStride, double scale, float* destination, int lanes)
    {
        Vector512<double> s = Vector512.Create(scale);
        Vector512<float> R(int i)
        {
            Vector512<float> x = Vector512.Load(rows + i * queryStride);
            Vector256<float> low = Avx512F.ConvertToVector256Single(Avx512F.ConvertToVector512Double(x.GetLower()) * s);
            Vector256<float> high = Avx512F.ConvertToVector256Single(Avx512F.ConvertToVector512Double(x.GetUpper()) * s);
            return Vector512.Create(low, high);
        }

        Transpose(R(0), R(1), R(2), R(3), R(4), R(5), R(6), R(7), R(8), R(9), R(10), R(11), R(12), R(13), R(14), R(15), destination, lanes);
    }

    /// <summary>16 × 16 floats transposed: element j of the 16 floats at <paramref name="source"/> + i·<paramref name="sourceStride"/>
    /// goes to element i of the 16 at <paramref name="destination"/> + j·<paramref name="destinationStride"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TransposeSquare(float* source, nint sourceStride, float* destination, nint destinationStride)
    {
        Vector512<float> R(int i) => Vector512.Load(source + i * sourceStride);
        Transpose(R(0), R(1), R(2), R(3), R(4), R(5), R(6), R(7), R(8), R(9), R(10), R(11), R(12), R(13), R(14), R(15), destination, destinationStride);
    }

    /// <summary>Writes element j of r_i to destination + j·stride + i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        Vector512<float> r4, Vector512<float> r5, Vector512<float> r6, Vector512<float> r7,
        Vector512<float> r8, Vector512<float> r9, Vector512<float> r10, Vector512<float> r11,
        Vector512<float> r12, Vector512<float> r13, Vector512<float> r14, Vector512<float> r15, float* destination, nint stride)
    {
        // Stage 1 and 2 per group of four rows g: u[4g + c] holds, in 128-bit lane L, rows 4g … 4g + 3 of column 4L + c.
        Quad(r0, r1, r2, r3, out Vector512<float> u0, out Vector512<float> u1, out Vector512<float> u2, out Vector512<float> u3);
        Quad(r4, r5, r6, r7, out Vector512<float> u4, out Vector512<float> u5, out Vector512<float> u6, out Vector512<float> u7);
        Quad(r8, r9, r10, r11, out Vector512<float> u8, out Vector512<float> u9, out Vector512<float> u10, out Vector512<float> u11);
        Quad(r12, r13, r14, r15, out Vector512<float> u12, out Vector512<float> u13, out Vector512<float> u14, out Vector512<float> u15);

        // Stages 3 and 4: column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
        Columns(u0, u4, u8, u12, destination, stride);
        Columns(u1, u5, u9, u13, destination + stride, stride);
        Columns(u2, u6, u10, u14, destination + 2 * stride, stride);
        Columns(u3, u7, u11, u15, destination + 3 * stride, stride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3)
    {
        Vector512<double> t0 = Avx512F.UnpackLow(r0, r1).AsDouble(), t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        Vector512<double> t2 = Avx512F.UnpackLow(r2, r3).AsDouble(), t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        c0 = Avx512F.UnpackLow(t0, t2).AsSingle();
        c1 = Avx512F.UnpackHigh(t0, t2).AsSingle();
        c2 = Avx512F.UnpackLow(t1, t3).AsSingle();
        c3 = Avx512F.UnpackHigh(t1, t3).AsSingle();
    }

    /// <summary>Writes columns c, 4 + c, 8 + c, 12 + c (destination points at column c; columns <paramref name="stride"/> apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* destination, nint stride)
    {
        const byte even = 0b10_00_10_00, odd = 0b11_01_11_01;
        Vector512<float> v = Avx512F.Shuffle4x128(a, b, even), w = Avx512F.Shuffle4x128(a, b, odd);
        Vector512<float> v2 = Avx512F.Shuffle4x128(c, d, even), w2 = Avx512F.Shuffle4x128(c, d, odd);
        Avx512F.Shuffle4x128(v, v2, even).Store(destination);
        Avx512F.Shuffle4x128(w, w2, even).Store(destination + 4 * stride);
        Avx512F.Shuffle4x128(v, v2, odd).Store(destination + 8 * stride);
        Avx512F.Shuffle4x128(w, w2, odd).Store(destination + 12 * stride);
    }
}

/// <summary>The AVX-512 float block's output: O = a / l from the dv × 64 double row state, rounded once to float and
/// written row by row through 16 × 16 transposes (the 4 × 4 double transposes and the divisions were ≈ 2–3% of a W1 or
/// W7 call: a 256-bit double division issues once per 8 cycles). The quotients come from the block's last chunk merge
/// (<see cref="ChunkMerge.MergeColumns64"/>).</summary>
internal static unsafe class BlockOutput
{
    /// <summary>Queries per block on this path (4 vectors of 16 floats).</summary>
    private const int Lanes = 64;

    /// <summary>
    /// a / l, from y = 1/l: q = a·y corrected once, q + (a − q·l)·y (the residual exact by FMA), which is the correctly
    /// rounded a / l when y is 1/l rounded to nearest (Markstein's theorem): the division's result, bit for bit. A
    /// non-finite q (a = ±∞ or NaN, l = 0 or NaN) is kept as it is, which is then a / l too, except for l = 0, whose
    /// lanes are never read back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Quotient(Vector512<double> a, Vector512<double> l, Vector512<double> y)
    {
        Vector512<double> q = a * y;
        Vector512<double> residual = Avx512F.FusedMultiplyAddNegated(q, l, a);   // a − q·l, exact
        Vector512<double> corrected = Avx512F.FusedMultiplyAdd(residual, y, q);
        return Vector512.ConditionalSelect(Vector512.Equals(residual, residual), corrected, q);
    }

    /// <summary>Output rows [0, <paramref name="groupRows"/>) (a multiple of 16) of columns [0, <paramref name="dv"/>) (a
    /// multiple of 16) from the float quotients the last merge left in <paramref name="staging"/> (dv × 64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void StoreSquares(float* staging, int dv, float* output, nint outputStride, int groupRows)
    {
        // In bounds: rows lane … lane + 15 < groupRows of the output, columns c … c + 15 < dv of each; staging rows c … c + 15.
        for (int lane = 0; lane < groupRows; lane += 16)
        {
            for (int c = 0; c < dv; c += 16)
                FloatSquares.TransposeSquare(staging + (nint)c * Lanes + lane, Lanes, output + lane * outputStride + c, outputStride);
        }
    }
}

/// <summary>The AVX-512 float block's chunk merge (64 lanes): the row state's columns updated with the merge factors held in
/// registers (e^(m_row − M), e^(m_chunk − M) and the keep mask), instead of reloading them per column, and the float
/// accumulator emptied in the same pass; the block's first merge starts from a = 0 without reading it (the row state is
/// not cleared), and its last one also leaves O = a / l.</summary>
internal static unsafe class ChunkMerge
{
    /// <summary>
    /// For every column c &lt; <paramref name="dv"/> and lane: a ← keep ? a : old·a + new·acc (a separate multiply and add,
    /// as the scalar merge), with a = +0 instead of the stored value when <paramref name="fresh"/> (the same operations
    /// on the value the cleared state held). Then acc ← 0, or, when <paramref name="rowL"/> is not null (the block's last
    /// merge, l final), a ← a / l in place and acc ← (float)(a / l) (<see cref="BlockOutput.Quotient"/>) for
    /// <see cref="BlockOutput.StoreSquares"/>. <paramref name="rowA"/> and <paramref name="accumulator"/> are dv × 64, the
    /// factors and l 64 each. 32 lanes at a time: their factors, l and 1/l fill 20 registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MergeColumns64(double* rowA, float* accumulator, int dv, double* oldFactors, double* newFactors, long* keep,
        bool fresh, double* rowL)
    {
        for (int half = 0; half < 64; half += 32)
        {
            Vector512<double> o0 = Vector512.Load(oldFactors + half), o1 = Vector512.Load(oldFactors + half + 8);
            Vector512<double> o2 = Vector512.Load(oldFactors + half + 16), o3 = Vector512.Load(oldFactors + half + 24);
            Vector512<double> n0 = Vector512.Load(newFactors + half), n1 = Vector512.Load(newFactors + half + 8);
            Vector512<double> n2 = Vector512.Load(newFactors + half + 16), n3 = Vector512.Load(newFactors + half + 24);
            Vector512<double> k0 = Vector512.Load(keep + half).AsDouble(), k1 = Vector512.Load(keep + half + 8).AsDouble();
            Vector512<double> k2 = Vector512.Load(keep + half + 16).AsDouble(), k3 = Vector512.Load(keep + half + 24).AsDouble();
            double* a = rowA + half;
            float* acc = accumulator + half;
            if (rowL == null)
            {
                for (int c = 0; c < dv; c++, a += 64, acc += 64)
                {
                    Merge(a, acc, o0, n0, k0, fresh).Store(a);
                    Merge(a + 8, acc + 8, o1, n1, k1, fresh).Store(a + 8);
                    Merge(a + 16, acc + 16, o2, n2, k2, fresh).Store(a + 16);
                    Merge(a + 24, acc + 24, o3, n3, k3, fresh).Store(a + 24);
                    Vector512<float>.Zero.Store(acc);
                    Vector512<float>.Zero.Store(acc + 16);
                }
            }
            else
            {
                Vector512<double> l0 = Vector512.Load(rowL + half), l1 = Vector512.Load(rowL + half + 8);
                Vector512<double> l2 = Vector512.Load(rowL + half + 16), l3 = Vector512.Load(rowL + half + 24);
                Vector512<double> one = Vector512<double>.One;
                Vector512<double> y0 = one / l0, y1 = one / l1, y2 = one / l2, y3 = one / l3;
                for (int c = 0; c < dv; c++, a += 64, acc += 64)
                {
                    Final(a, acc, Merge(a, acc, o0, n0, k0, fresh), l0, y0);
                    Final(a + 8, acc + 8, Merge(a + 8, acc + 8, o1, n1, k1, fresh), l1, y1);
                    Final(a + 16, acc + 16, Merge(a + 16, acc + 16, o2, n2, k2, fresh), l2, y2);
                    Final(a + 24, acc + 24, Merge(a + 24, acc + 24, o3, n3, k3, fresh), l3, y3);
                }
            }
        }
    }

    /// <summary>The merged a of 8 lanes: keep ? a : old·a + new·acc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> Merge(double* a, float* accumulator, Vector512<double> oldFactor, Vector512<double> newFactor,
        Vector512<double> keep, bool fresh)
    {
        Vector512<double> old = fresh ? Vector512<double>.Zero : Vector512.Load(a);
        Vector512<double> x = Avx512F.ConvertToVector512Double(Vector256.Load(accumulator));
        return Vector512.ConditionalSelect(keep, old, oldFactor * old + newFactor * x);
    }

    /// <summary>a / l of 8 lanes into the row state, and rounded to float into the accumulator.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Final(double* a, float* accumulator, Vector512<double> merged, Vector512<double> l, Vector512<double> y)
    {
        Vector512<double> q = BlockOutput.Quotient(merged, l, y);
        q.Store(a);
        Avx512F.ConvertToVector256Single(q).Store(accumulator);
    }
}

/// <summary>Horizontal sums of AVX-512 float registers several at a time.</summary>
internal static class HorizontalSums
{
    /// <summary>The four horizontal sums of <see cref="Isa.Avx512Ops{T}.HorizontalSum"/> at once, in its order per register
    /// (lane i + lane i + 8, then i + i + 4, then (e₀ + e₂) + (e₁ + e₃)), so each result is bitwise the same: the registers'
    /// halves are paired across registers by 128-bit shuffles, and the last steps run on four sums at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Four(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3)
    {
        // 512 → 256: [x0 lower half, x1 lower half] + [x0 upper half, x1 upper half], the same for x2, x3.
        Vector512<float> h01 = Avx512F.Shuffle4x128(x0, x1, 0x44) + Avx512F.Shuffle4x128(x0, x1, 0xEE);
        Vector512<float> h23 = Avx512F.Shuffle4x128(x2, x3, 0x44) + Avx512F.Shuffle4x128(x2, x3, 0xEE);
        // 256 → 128: 128-bit lane r of q holds register r's four partial sums e₀…e₃.
        Vector512<float> q = Avx512F.Shuffle4x128(h01, h23, 0x88) + Avx512F.Shuffle4x128(h01, h23, 0xDD);
        // (e₀ + e₂) and (e₁ + e₃) in elements 0 and 1 of each lane, then their sum in element 0.
        Vector512<float> p = q + Avx512F.Permute4x32(q, 0x4E);
        p += Avx512F.Permute4x32(p, 0xB1);
        return Avx512F.PermuteVar16x32(p, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
    }
}
