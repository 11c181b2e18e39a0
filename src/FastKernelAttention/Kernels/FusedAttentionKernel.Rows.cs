using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

internal static unsafe partial class FusedAttentionKernel<T, TVec, TOps>
{
    /// <summary>
    /// Row kernel for few queries (decode, m ≤ <see cref="RowKernelMaxQueries"/>): one query row against the keys with the
    /// vectors along d (logits by per-key dot products and a fixed-order horizontal sum) and along dv (values), so each K and
    /// V row is read once, sequentially — the bandwidth-bound shape of KV-cache decoding, where the lane layout would leave
    /// most lanes empty. Same numerics as <see cref="RunBlock"/>: tiles of 64 keys, chunks merged in double.
    /// </summary>
    public static void RunRow(in AttentionProblem<T> p, int head, int row, byte* scratch)
    {
        int d = p.HeadDim;
        int dv = p.ValueDim;
        int m = p.QueryCount;
        int n = p.KeyCount;
        int kvHead = head / p.GroupSize;
        bool gaussian = p.Gaussian;
        bool direct = gaussian && p.DirectDifferences;
        int offset = n - m;

        // Scratch (T elements): packed query d, scores KeyTile, accumulator dv, then doubles: row state a (dv), m, l, term.
        T* query = (T*)scratch;
        T* scores = query + d;
        T* accumulator = scores + KeyTile;
        double* rowA = (double*)(scratch + KernelConstants.Align((long)(d + KeyTile + dv) * sizeof(T)));
        double* rowM = rowA + dv;
        double* rowL = rowM + 1;
        double* rowTerm = rowL + 1;

        T* keyBase = gaussian ? p.CentredKeys + (nint)kvHead * n * d : p.Key + (nint)kvHead * d;
        nint keyStride = gaussian ? d : p.KeyStride;
        T* keyBias = p.KeyBias != null ? p.KeyBias + (nint)kvHead * n : null;
        T* valueBase = p.Value + (nint)kvHead * dv;
        double half = p.HalfInverseBandwidthSquared;
        double sink = p.SinkLogits != null ? p.SinkLogits[head] : double.NegativeInfinity;

        double normSquared = PackQuery(p.Query + (nint)row * p.QueryStride + (nint)head * d,
            gaussian ? p.Centers + (nint)kvHead * d : null, d, direct ? 1.0 : p.Scale, query, 1);
        double term = gaussian && !direct ? -normSquared * half : 0.0;
        T bound = T.CreateTruncating(-term);
        bool clamp = gaussian && !direct && !p.HasKeyLogWeights;
        bool hasSink = !double.IsNegativeInfinity(sink);
        *rowM = hasSink ? sink - term : double.NegativeInfinity;
        *rowL = hasSink ? 1.0 : 0.0;
        *rowTerm = term;
        new Span<double>(rowA, dv).Clear();
        new Span<T>(accumulator, dv).Clear();
        T runningMax = T.NegativeInfinity;
        T runningSum = T.Zero;

        // Keys past the row's last visible key are never read.
        int keyEnd = p.Causal ? (int)System.Math.Clamp((long)row + offset + 1, 0, n) : n;
        int diagonal = p.ExcludeDiagonal ? row + offset : -1;
        T negativeHalf = T.CreateTruncating(-half);
        int tileIndex = 0;
        for (int tileStart = 0; tileStart < keyEnd; tileStart += KeyTile, tileIndex++)
        {
            int tileKeys = System.Math.Min(KeyTile, keyEnd - tileStart);
            T* keyTile = keyBase + (nint)tileStart * keyStride;
            RowScores(keyTile, keyStride, tileKeys, query, d, direct, scores);

            T tileMax = T.NegativeInfinity;
            for (int j = 0; j < tileKeys; j++)
            {
                T s = scores[j];
                if (direct) s *= negativeHalf;
                if (keyBias != null) s += keyBias[tileStart + j];
                if (clamp && !(s <= bound)) s = T.IsNaN(s) ? s : bound; // D ≥ 0 (MATH §2); NaN stays
                if (tileStart + j == diagonal) s = T.NegativeInfinity;
                scores[j] = s;
                // NaN-propagating max: a NaN logit makes the row NaN, as in the lane kernel.
                tileMax = T.IsNaN(s) || s > tileMax ? s : tileMax;
            }

            T newMax = T.IsNaN(tileMax) || tileMax > runningMax ? tileMax : runningMax;
            T shift = T.IsNegativeInfinity(newMax) ? T.Zero : newMax;
            T alpha = T.Exp(runningMax - shift);
            runningSum = alpha * runningSum + ExpInPlace(scores, tileKeys, shift);
            runningMax = newMax;
            RowValues(valueBase + (nint)tileStart * p.ValueStride, p.ValueStride, tileKeys, dv, scores, accumulator, alpha);

            bool lastTile = tileStart + KeyTile >= keyEnd;
            if (lastTile || tileIndex % KernelConstants.TilesPerChunk == KernelConstants.TilesPerChunk - 1)
            {
                MergeChunk(1, 1, dv, &runningMax, &runningSum, accumulator, rowM, rowL, rowA);
            }
        }

        Finalise(in p, head, row, 1, rowM, rowL, rowA, rowTerm);
    }

    /// <summary>Queries at or below which a head runs the row kernel instead of the lane-block kernel.</summary>
    public static int RowKernelMaxQueries => BlockLanes / 8;

    /// <summary>Bytes of scratch <see cref="RunRow"/> needs (within <see cref="KernelConstants.ScratchBytes"/>).</summary>
    public static long RowScratchBytes(int headDim, int valueDim) =>
        KernelConstants.Align((long)(headDim + KeyTile + valueDim) * sizeof(T)) + KernelConstants.Align(((long)valueDim + 3) * sizeof(double));

    /// <summary>s_j = q̂·k_j (or Σ(q̂ − k_j)² when <paramref name="direct"/>) for the tile's keys, one key row at a time
    /// read front to back (a sequential stream the hardware prefetcher follows; interleaving four rows halved the bandwidth),
    /// with four partial sums along d for instruction-level parallelism, combined in a fixed order.</summary>
    private static void RowScores(T* keys, nint keyStride, int tileKeys, T* query, int d, bool direct, T* scores)
    {
        int w = TOps.Count;
        for (int j = 0; j < tileKeys; j++)
        {
            T* key = keys + (nint)j * keyStride;
            TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            int k = 0;
            // In bounds: k + 4w <= d (then k + w <= d) on the key row and on the packed query.
            for (; k + 4 * w <= d; k += 4 * w)
            {
                a0 = Term(query + k, key + k, direct, a0);
                a1 = Term(query + k + w, key + k + w, direct, a1);
                a2 = Term(query + k + 2 * w, key + k + 2 * w, direct, a2);
                a3 = Term(query + k + 3 * w, key + k + 3 * w, direct, a3);
            }
            for (; k + w <= d; k += w)
                a0 = Term(query + k, key + k, direct, a0);
            T t = TOps.HorizontalSum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
            for (; k < d; k++)
            {
                T e = direct ? query[k] - key[k] : key[k];
                t = T.FusedMultiplyAdd(e, direct ? e : query[k], t);
            }
            scores[j] = t;
        }
    }

    /// <summary>sum + q·k, or sum + (q − k)² for direct differences.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Term(T* query, T* key, bool direct, TVec sum)
    {
        TVec q = TOps.Load(query);
        if (direct)
        {
            TVec e = TOps.Subtract(q, TOps.Load(key));
            return TOps.MultiplyAdd(e, e, sum);
        }
        return TOps.MultiplyAdd(TOps.Load(key), q, sum);
    }

    /// <summary>p_j = e^{s_j − shift} in place (vectorised over keys); returns Σ_j p_j.</summary>
    private static T ExpInPlace(T* scores, int count, T shift)
    {
        int w = TOps.Count;
        TVec shiftVector = TOps.Broadcast(shift);
        TVec sum = TOps.Zero;
        int j = 0;
        for (; j + w <= count; j += w)
        {
            TVec e = VectorExp.Exp<T, TVec, TOps>(TOps.Subtract(TOps.Load(scores + j), shiftVector));
            TOps.Store(e, scores + j);
            sum = TOps.Add(sum, e);
        }
        T total = TOps.HorizontalSum(sum);
        for (; j < count; j++)
        {
            T e = VectorExp.Exp<T, T, Isa.ScalarOps<T>>(scores[j] - shift);
            scores[j] = e;
            total += e;
        }
        return total;
    }

    /// <summary>acc ← α·acc + Σ_j p_j·V[j] with the vectors along dv (four registers per pass over the tile's rows).</summary>
    private static void RowValues(T* values, nint valueStride, int tileKeys, int dv, T* probabilities, T* accumulator, T alpha)
    {
        int w = TOps.Count;
        TVec alphaVector = TOps.Broadcast(alpha);
        int c = 0;
        for (; c + 8 * w <= dv; c += 8 * w)
        {
            T* acc = accumulator + c;
            TVec a0 = TOps.Multiply(TOps.Load(acc), alphaVector), a1 = TOps.Multiply(TOps.Load(acc + w), alphaVector);
            TVec a2 = TOps.Multiply(TOps.Load(acc + 2 * w), alphaVector), a3 = TOps.Multiply(TOps.Load(acc + 3 * w), alphaVector);
            TVec a4 = TOps.Multiply(TOps.Load(acc + 4 * w), alphaVector), a5 = TOps.Multiply(TOps.Load(acc + 5 * w), alphaVector);
            TVec a6 = TOps.Multiply(TOps.Load(acc + 6 * w), alphaVector), a7 = TOps.Multiply(TOps.Load(acc + 7 * w), alphaVector);
            T* v = values + c;
            for (int j = 0; j < tileKeys; j++, v += valueStride)
            {
                TVec b = TOps.BroadcastFrom(probabilities + j);
                a0 = TOps.MultiplyAdd(b, TOps.Load(v), a0);
                a1 = TOps.MultiplyAdd(b, TOps.Load(v + w), a1);
                a2 = TOps.MultiplyAdd(b, TOps.Load(v + 2 * w), a2);
                a3 = TOps.MultiplyAdd(b, TOps.Load(v + 3 * w), a3);
                a4 = TOps.MultiplyAdd(b, TOps.Load(v + 4 * w), a4);
                a5 = TOps.MultiplyAdd(b, TOps.Load(v + 5 * w), a5);
                a6 = TOps.MultiplyAdd(b, TOps.Load(v + 6 * w), a6);
                a7 = TOps.MultiplyAdd(b, TOps.Load(v + 7 * w), a7);
            }
            TOps.Store(a0, acc);
            TOps.Store(a1, acc + w);
            TOps.Store(a2, acc + 2 * w);
            TOps.Store(a3, acc + 3 * w);
            TOps.Store(a4, acc + 4 * w);
            TOps.Store(a5, acc + 5 * w);
            TOps.Store(a6, acc + 6 * w);
            TOps.Store(a7, acc + 7 * w);
        }
        for (; c + 4 * w <= dv; c += 4 * w)
        {
            T* acc = accumulator + c;
            TVec a0 = TOps.Multiply(TOps.Load(acc), alphaVector), a1 = TOps.Multiply(TOps.Load(acc + w), alphaVector);
            TVec a2 = TOps.Multiply(TOps.Load(acc + 2 * w), alphaVector), a3 = TOps.Multiply(TOps.Load(acc + 3 * w), alphaVector);
            T* v = values + c;
            for (int j = 0; j < tileKeys; j++, v += valueStride)
            {
                TVec b = TOps.BroadcastFrom(probabilities + j);
                a0 = TOps.MultiplyAdd(b, TOps.Load(v), a0);
                a1 = TOps.MultiplyAdd(b, TOps.Load(v + w), a1);
                a2 = TOps.MultiplyAdd(b, TOps.Load(v + 2 * w), a2);
                a3 = TOps.MultiplyAdd(b, TOps.Load(v + 3 * w), a3);
            }
            TOps.Store(a0, acc);
            TOps.Store(a1, acc + w);
            TOps.Store(a2, acc + 2 * w);
            TOps.Store(a3, acc + 3 * w);
        }
        for (; c + w <= dv; c += w)
        {
            TVec a = TOps.Multiply(TOps.Load(accumulator + c), alphaVector);
            T* v = values + c;
            for (int j = 0; j < tileKeys; j++, v += valueStride)
                a = TOps.MultiplyAdd(TOps.BroadcastFrom(probabilities + j), TOps.Load(v), a);
            TOps.Store(a, accumulator + c);
        }
        for (; c < dv; c++)
        {
            T a = accumulator[c] * alpha;
            T* v = values + c;
            for (int j = 0; j < tileKeys; j++, v += valueStride)
                a = T.FusedMultiplyAdd(probabilities[j], *v, a);
            accumulator[c] = a;
        }
    }
}
