using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

/// <summary>Where the decode kernel reads K and V: element (kv head g, key j) of K is at
/// <c>Key + g·KeyHeadStride + j·KeyStride</c>, of V at <c>Value + g·dv + j·ValueStride</c> (elements of TKv).</summary>
internal unsafe struct DecodeLayout<TKv>
    where TKv : unmanaged
{
    public TKv* Key;

    /// <summary>d for token-major K [n × Hkv·d]; n·d for the Gaussian kernel's centred copy [Hkv][n][d].</summary>
    public nint KeyHeadStride;

    public nint KeyStride;
    public TKv* Value;
    public nint ValueStride;
}

/// <summary>Partition constants of the decode kernel (never derived from the thread count, MATH §4).</summary>
internal static class DecodeConstants
{
    /// <summary>Query rows per work item (any m: a half-precision call with m above the float threshold runs in row blocks).</summary>
    public const int RowsPerItem = 8;

    /// <summary>
    /// Whether the decode kernel's software prefetch asks for L1 (T0) instead of L2 (T1): on AMD family 1Ah (Zen 5) only.
    /// There, in alternating processes (8 each, medians), T0 took 0.957 of T1's time on W4 and about the same with 8 kv heads;
    /// bfloat16 W4 0.82 (5 each, noisy). In-process A/B runs (both hints in one process, calls in turns) read 0.93 for W4 and
    /// 0.66 for bfloat16 W4, but they overstate a change of hint: with the two builds alternating, the slower hint's calls
    /// also ran slower than in a process of their own. On the Zen 4 EPYC (family 19h) T0 was far slower (12.8 against
    /// 18.8 GB/s), and the Intel Xeon reads W4 above its read probe with T1, so every other CPU keeps T1. Either way the
    /// results are the same bits.
    /// </summary>
    public static readonly bool PrefetchToL1 = CpuIdentity.IsAmdFamily(0x1A);

    /// <summary>
    /// Whether the four-key steps prefetch the four rows ahead in address order (the item's stretch of those rows split
    /// into one equal share per kv head iteration: <c>DecodeKernel.AheadRows</c>) instead of each kv head's slice of each
    /// of the four rows (four streams a row apart, 16 KiB at W4's shape): on AMD family 1Ah (Zen 5), and for 16-bit K/V on
    /// 19h (Zen 4). On Zen 5, in alternating processes of a side harness (medians of 3 s each), W4 took 0.98, 0.965 and
    /// 0.95 of the time (5, 6 and 4 pairs), bfloat16 W4 0.91 and 0.92 (5 and 4), W4 with 8 kv heads 1.01 (4: within the
    /// noise); `--decode-patterns` (bench/results/amd-epyc-family-26-model-2/2026-12-03-decode-patterns-address-order.md)
    /// reads the kernel's reads alone at 93–95% of the sequential sum in address order against 72–74% by head slice. On the
    /// Zen 4 EPYC (family 19h), in-process A/B against head-slice order, one thread, 21 pairs: bfloat16 W4 0.914–0.936 of
    /// the time (four runs on two days), but float W4 1.09–1.10 (two runs on 2026-12-04; 1.070 and 0.970 the day before),
    /// so there only K/V of 16-bit elements (bfloat16, Half) prefetch in address order. Not measured elsewhere (the Intel
    /// Xeon already reads W4 above its probe by head slice), so other CPUs keep that order. The results are the same bits.
    /// </summary>
    /// <param name="elementSize">Bytes per K/V element.</param>
    public static bool PrefetchInAddressOrder(int elementSize) => AddressOrderAnyElement || (elementSize == 2 && AddressOrder16Bit);

    private static readonly bool AddressOrderAnyElement = CpuIdentity.IsAmdFamily(0x1A);
    private static readonly bool AddressOrder16Bit = CpuIdentity.IsAmdFamily(0x19);

    /// <summary>Keys per chunk: the T-precision state is merged into the double row state every chunk (MATH §14).</summary>
    public const int ChunkKeys = KernelConstants.KeyTile * KernelConstants.TilesPerChunk;

    /// <summary>
    /// At most this many (row, key split) states per head: the keys are split into up to 16/m ranges of whole chunks
    /// (m ≤ 16; none above), so that two or more threads share a long row while the partial states, H·16·(dv + 3)
    /// doubles, stay a small part of the workspace.
    /// </summary>
    public const int MaxSplitStates = 16;

    /// <summary>The most (row, head) pairs one work item takes, whatever the head count: a per-thread scratch of 585 KiB at
    /// d = dv = 128 in float (<see cref="ScratchBytes"/>; the block kernel's is 181 KiB there), 1.07 MiB at 256.</summary>
    public const int MaxPairs = 256;

    /// <summary>Pairs one work item of a call with <paramref name="headCount"/> query heads may take: H·<see cref="RowsPerItem"/>
    /// (every head of a row block), at least <see cref="KernelConstants.MaxBlockLanes"/> (within the block kernel's scratch)
    /// and at most <see cref="MaxPairs"/>. <see cref="KernelConstants.ScratchBytes"/> sizes the per-thread scratch for it.</summary>
    public static int PairLimit(int headCount) =>
        (int)Math.Clamp((long)headCount * RowsPerItem, KernelConstants.MaxBlockLanes, MaxPairs);

    /// <summary>Bytes of scratch a decode item of <paramref name="pairs"/> (row, head) pairs uses (<see cref="DecodeKernel{T, TVec, TOps, TKv, TFormat}.RunItem"/>):
    /// per pair the packed query, a score tile, the accumulator and three running values in T, then the double row state.</summary>
    public static long ScratchBytes(int headDim, int valueDim, int elementSize, int pairs) =>
        KernelConstants.Align((long)pairs * (headDim + KernelConstants.KeyTile + valueDim + 3) * elementSize)
        + KernelConstants.Align((long)pairs * (valueDim + 3) * sizeof(double));

    /// <summary>Query heads one work item covers: as many whole kv groups as fit in <see cref="PairLimit"/> (row, head)
    /// pairs, so that an item reads whole token rows of K and V — contiguous across pages, which the prefetcher follows; an
    /// item reading a 4 KiB stretch of each 16 KiB row reached 8 GB/s against 14 GB/s for the whole row. With the pairs
    /// capped at 64 (the block kernel's scratch), a call of 2–8 query rows and 32 heads read 1/2 to 1/8 of each row per item:
    /// in-process A/B on the AMD EPYC Zen 5, one thread, H = 32, n = 4096, d = 128, m = 8: 0.845–0.871 of the time, m = 4
    /// 0.866–0.904, m = 3 0.886; H = 64, n = 2048, d = 64, m = 4 0.922; GQA 32/8, m = 4 0.967; bitwise the same results.
    /// A kv group larger than the pair limit is split over items.</summary>
    public static int HeadsPerItem(int headCount, int groupSize, int rowsPerItem)
    {
        int pairLimit = Math.Max(1, PairLimit(headCount) / rowsPerItem);
        if (groupSize >= pairLimit) return pairLimit;
        return Math.Min(headCount, pairLimit / groupSize * groupSize);
    }

    /// <summary>Key splits of a call: up to <see cref="MaxSplitStates"/>/m ranges of whole chunks (1 when m &gt; 16 or n ≤ one chunk).</summary>
    public static int KeySplits(int queryCount, int keyCount, out int chunksPerSplit)
    {
        int chunks = (int)(((long)keyCount + ChunkKeys - 1) / ChunkKeys);
        int limit = Math.Max(1, MaxSplitStates / Math.Max(1, queryCount));
        int splits = Math.Max(1, Math.Min(chunks, limit));
        chunksPerSplit = Math.Max(1, (chunks + splits - 1) / splits);
        return chunks == 0 ? 1 : (chunks + chunksPerSplit - 1) / chunksPerSplit;
    }

    /// <summary>Bytes of the partial split states of a call with H heads, dv value columns and n keys (see
    /// <see cref="MaxSplitStates"/>): none when n fits one chunk, since such a call never splits its keys.</summary>
    public static long PartialBytes(int headCount, int valueDim, int keyCount) =>
        keyCount <= ChunkKeys ? 0 : (long)headCount * MaxSplitStates * (valueDim + 3) * sizeof(double);
}

/// <summary>
/// The decode kernel (few query rows against a long KV cache): one work item takes a fixed block of query heads (whole kv
/// groups) and rows and sweeps the keys in tiles of <see cref="KernelConstants.KeyTile"/>, key-major: for each key it reads
/// the item's kv heads of that token row, which are contiguous in token-major K and V, and serves every (row, head) pair of
/// the item from them — so K and V stream sequentially through whole pages, and a GQA kv row is read once for its G heads.
/// </summary>
/// <remarks>
/// <para>Per pair the arithmetic is that of the row kernel (MATH §4, §14): logits by a per-key dot product along d with four
/// partial sums and a fixed-order horizontal sum, then the key bias, the Gaussian clamp and the excluded diagonal; the tile
/// max, α = e^{m−M}, p_j = e^{s_j−M} and l in T; a ← α·a + Σ_j p_j v_j in key order; every
/// <see cref="KernelConstants.TilesPerChunk"/> tiles (and at the row's last tile) the chunk state is merged into a
/// double-precision row state in key order. Only the interleaving of pairs differs, so the result of a pair never depends on
/// which other pairs share its item, nor on the thread count.</para>
/// <para>K and V elements are read through <typeparamref name="TFormat"/>: as they are (T), or 16-bit formats widened in registers.</para>
/// </remarks>
internal static unsafe class DecodeKernel<T, TVec, TOps, TKv, TFormat>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TVec : unmanaged
    where TOps : struct, ISimdOps<T, TVec>
    where TKv : unmanaged
    where TFormat : struct, IKeyValueFormat<T, TVec, TKv>
{
    private const int KeyTile = KernelConstants.KeyTile;

    /// <summary>Computes query heads [firstHead, firstHead + heads) for rows [firstRow, firstRow + rows) over the keys of
    /// split <paramref name="split"/> of <paramref name="splits"/> (whole chunks [split·chunksPerSplit, …) of
    /// <see cref="DecodeConstants.ChunkKeys"/> keys). With one split the rows are finalised here; otherwise each pair's
    /// double state (m, l, term, a) goes to its slot in <paramref name="partials"/> for <see cref="MergeSplits"/>.</summary>
    /// <param name="scratch">At least <see cref="DecodeConstants.ScratchBytes"/> bytes for heads·rows pairs, 64-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunItem(in AttentionProblem<T> p, in DecodeLayout<TKv> kv, int firstHead, int heads, int firstRow, int rows,
        int split, int splits, int chunksPerSplit, double* partials, byte* scratch)
    {
        int d = p.HeadDim;
        int dv = p.ValueDim;
        int m = p.QueryCount;
        int n = p.KeyCount;
        int group = p.GroupSize;
        int pairs = heads * rows;
        bool gaussian = p.Gaussian;
        bool direct = gaussian && p.DirectDifferences;
        bool clamp = gaussian && !direct && !p.HasKeyLogWeights;
        int offset = n - m;
        double half = p.HalfInverseBandwidthSquared;
        T negativeHalf = T.CreateTruncating(-half * VectorExp.Log2E); // the direct logit's −D/(2h²) in base 2
        int splitStart = (int)System.Math.Min((long)split * chunksPerSplit * DecodeConstants.ChunkKeys, n);
        int splitEnd = (int)System.Math.Min((long)(split + 1) * chunksPerSplit * DecodeConstants.ChunkKeys, n);

        // Scratch (T): packed queries pairs × d, score tiles pairs × KeyTile, accumulators pairs × dv, running max and sum,
        // the Gaussian clamp bound; then doubles: row state a (pairs × dv), m, l and the row term. Pair index = head·rows + row.
        T* queries = (T*)scratch;
        T* scores = queries + (nint)pairs * d;
        T* accumulators = scores + (nint)pairs * KeyTile;
        T* runningMax = accumulators + (nint)pairs * dv;
        T* runningSum = runningMax + pairs;
        T* bounds = runningSum + pairs;
        double* rowA = (double*)(scratch + KernelConstants.Align((long)((byte*)(bounds + pairs) - scratch)));
        double* rowM = rowA + (nint)pairs * dv;
        double* rowL = rowM + pairs;
        double* rowTerm = rowL + pairs;

        // End of the keys each row reads in this split: its causal limit (MATH §3), non-decreasing in the row.
        int* keyEnds = stackalloc int[DecodeConstants.RowsPerItem];
        for (int r = 0; r < rows; r++)
        {
            int visible = p.Causal ? (int)Math.Clamp((long)firstRow + r + offset + 1, 0, n) : n;
            keyEnds[r] = Math.Min(visible, splitEnd);
        }
        int keyEndMax = keyEnds[rows - 1];
        T* maxLanes = stackalloc T[TOps.Count];

        for (int hl = 0; hl < heads; hl++)
        {
            int head = firstHead + hl;
            int kvHead = head / group;
            // The sink starts the first split's state (MATH §3: m = s₀, l = 1, a = 0); the other splits start empty.
            double sink = p.SinkLogits != null && split == 0 ? p.SinkLogits[head] : double.NegativeInfinity;
            bool hasSink = !double.IsNegativeInfinity(sink);
            for (int r = 0; r < rows; r++)
            {
                int pair = hl * rows + r;
                T* query = p.Query + (nint)(firstRow + r) * p.QueryStride + (nint)head * d;
                double normSquared = 0;
                if (gaussian)
                    normSquared = FusedAttentionKernel<T, TVec, TOps>.PackQuery(query, p.Centers + (nint)kvHead * d, d, direct ? 1.0 : p.Scale, queries + (nint)pair * d, 1);
                else
                    FusedAttentionKernel<T, TVec, TOps>.PackScaledQuery(query, d, p.Scale, queries + (nint)pair * d, 1);
                double term = gaussian && !direct ? -normSquared * half : 0.0;
                // Tile logits and the clamp bound are in base 2 (as in the block kernel); the row state stays natural.
                bounds[pair] = T.CreateTruncating(-term * VectorExp.Log2E);
                rowM[pair] = hasSink ? sink - term : double.NegativeInfinity;
                rowL[pair] = hasSink ? 1.0 : 0.0;
                rowTerm[pair] = term;
                runningMax[pair] = T.NegativeInfinity;
                runningSum[pair] = T.Zero;
            }
        }
        new Span<double>(rowA, pairs * dv).Clear();
        new Span<T>(accumulators, pairs * dv).Clear();

        // Tiles are counted from the split's start, a chunk boundary, so chunks merge where they would in one sweep.
        int tileIndex = 0;
        for (int tileStart = splitStart; tileStart < keyEndMax; tileStart += KeyTile, tileIndex++)
        {
            int tileKeys = Math.Min(KeyTile, keyEndMax - tileStart);
            if (direct) TileScores<TrueFlag>(in p, in kv, firstHead, heads, rows, keyEnds, tileStart, tileKeys, queries, scores);
            else TileScores<FalseFlag>(in p, in kv, firstHead, heads, rows, keyEnds, tileStart, tileKeys, queries, scores);

            // Online-softmax step per pair (MATH §4), with the row kernel's scalar logit finishing; plain dot logits (no
            // bias, clamp or excluded diagonal) only need the max, taken a register at a time.
            bool plain = !gaussian && p.KeyBias == null && !p.ExcludeDiagonal;
            for (int hl = 0; hl < heads; hl++)
            {
                T* keyBias = p.KeyBias != null ? p.KeyBias + (nint)((firstHead + hl) / group) * n : null;
                for (int r = 0; r < rows; r++)
                {
                    int pairKeys = Math.Min(KeyTile, keyEnds[r] - tileStart);
                    if (pairKeys <= 0) continue;
                    int pair = hl * rows + r;
                    int diagonal = p.ExcludeDiagonal ? firstRow + r + offset : -1;
                    T* s = scores + (nint)pair * KeyTile;
                    T bound = bounds[pair];
                    T tileMax = T.NegativeInfinity;
                    bool finite = plain && PlainTileMax(s, pairKeys, maxLanes, out tileMax);
                    for (int j = 0; j < pairKeys && !finite; j++)
                    {
                        T x = s[j];
                        if (direct) x *= negativeHalf;
                        if (keyBias != null) x += keyBias[tileStart + j];
                        if (clamp && !(x <= bound)) x = T.IsNaN(x) ? x : bound; // D ≥ 0 (MATH §2); NaN stays
                        if (tileStart + j == diagonal) x = T.NegativeInfinity;
                        s[j] = x;
                        tileMax = T.IsNaN(x) || x > tileMax ? x : tileMax;    // NaN-propagating max
                    }
                    T oldMax = runningMax[pair];
                    T newMax = T.IsNaN(tileMax) || tileMax > oldMax ? tileMax : oldMax;
                    T shift = T.IsNegativeInfinity(newMax) ? T.Zero : newMax;
                    // The max stays (finite): α = 2⁰ = 1 exactly, and the rescale is skipped.
                    bool same = newMax == oldMax && !T.IsNegativeInfinity(oldMax);
                    T alpha = same ? T.One : VectorExp.Exp2<T, T, ScalarOps<T>>(oldMax - shift);
                    runningSum[pair] = alpha * runningSum[pair] + FusedAttentionKernel<T, TVec, TOps>.ExpInPlace(s, pairKeys, shift);
                    runningMax[pair] = newMax;
                    if (!same) Scale(accumulators + (nint)pair * dv, dv, alpha);
                }
            }

            TileValues(in p, in kv, firstHead, heads, rows, keyEnds, tileStart, tileKeys,
                Math.Min(keyEndMax, tileStart + 2 * KeyTile), scores, accumulators);

            for (int r = 0; r < rows; r++)
            {
                if (keyEnds[r] <= tileStart) continue;
                bool lastTile = tileStart + KeyTile >= keyEnds[r];
                if (!lastTile && tileIndex % KernelConstants.TilesPerChunk != KernelConstants.TilesPerChunk - 1) continue;
                for (int hl = 0; hl < heads; hl++)
                {
                    int pair = hl * rows + r;
                    FusedAttentionKernel<T, TVec, TOps>.MergeChunk(1, 1, dv, runningMax + pair, runningSum + pair,
                        accumulators + (nint)pair * dv, rowM + pair, rowL + pair, rowA + (nint)pair * dv);
                }
            }
        }

        for (int hl = 0; hl < heads; hl++)
        {
            for (int r = 0; r < rows; r++)
            {
                int pair = hl * rows + r;
                if (splits == 1)
                {
                    FusedAttentionKernel<T, TVec, TOps>.Finalise(in p, firstHead + hl, firstRow + r, 1,
                        rowM + pair, rowL + pair, rowA + (nint)pair * dv, rowTerm + pair);
                    continue;
                }
                double* slot = partials + (((nint)(firstHead + hl) * m + firstRow + r) * splits + split) * (dv + 3);
                slot[0] = rowM[pair];
                slot[1] = rowL[pair];
                slot[2] = rowTerm[pair];
                new ReadOnlySpan<double>(rowA + (nint)pair * dv, dv).CopyTo(new Span<double>(slot + 3, dv));
            }
        }
    }

    /// <summary>The max of s[0, count) a register at a time, when every element is finite (then the order does not matter);
    /// false (and the caller's scalar loop decides) when one is NaN or ±∞. <paramref name="lanes"/>: TOps.Count elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool PlainTileMax(T* s, int count, T* lanes, out T max)
    {
        int w = TOps.Count;
        max = T.NegativeInfinity;
        if (count < w) return false;
        TVec m = TOps.Load(s);
        TVec check = TOps.Multiply(m, TOps.Zero); // 0 unless an element is NaN or ±∞
        int j = w;
        for (; j + w <= count; j += w)
        {
            TVec x = TOps.Load(s + j);
            m = TOps.Max(m, x);
            check = TOps.Add(check, TOps.Multiply(x, TOps.Zero));
        }
        for (; j < count; j++)
        {
            if (!T.IsFinite(s[j])) return false;
            max = s[j] > max ? s[j] : max;
        }
        if (TOps.HorizontalSum(check) != T.Zero) return false;
        TOps.Store(m, lanes);
        for (int lane = 0; lane < w; lane++) max = lanes[lane] > max ? lanes[lane] : max;
        return true;
    }

    /// <summary>Merges the split states of (head, row) in split order into the first (MATH §4 merge, in double) and finalises.</summary>
    public static void MergeSplits(in AttentionProblem<T> p, double* partials, int splits, int head, int row)
    {
        int dv = p.ValueDim;
        double* first = partials + ((nint)head * p.QueryCount + row) * splits * (dv + 3);
        for (int split = 1; split < splits; split++)
        {
            double* state = first + (nint)split * (dv + 3);
            double l = state[1];
            if (l == 0) continue; // an empty split (a NaN sum is merged, and spreads)
            double merged = Math.Max(first[0], state[0]); // Math.Max propagates NaN
            double oldFactor = double.IsNegativeInfinity(first[0]) ? 0.0 : Math.Exp(first[0] - merged);
            double newFactor = Math.Exp(state[0] - merged);
            first[1] = oldFactor * first[1] + newFactor * l;
            for (int c = 0; c < dv; c++)
                first[3 + c] = oldFactor * first[3 + c] + newFactor * state[3 + c];
            first[0] = merged;
        }
        FusedAttentionKernel<T, TVec, TOps>.Finalise(in p, head, row, 1, first, first + 1, first + 3, first + 2);
    }

    /// <summary>Logits of the tile for every pair, key-major: per pair of keys, the item's kv heads in order (contiguous
    /// stretches of the two token rows), and per kv head its query heads and the rows that see the keys. Two keys at a time
    /// share the query loads; each key's dot product is computed exactly as alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileScores<TDirect>(in AttentionProblem<T> p, in DecodeLayout<TKv> kv, int firstHead, int heads, int rows,
        int* keyEnds, int tileStart, int tileKeys, T* queries, T* scores)
        where TDirect : struct, IFlag
    {
        int d = p.HeadDim;
        int group = p.GroupSize;
        int lastHead = firstHead + heads;
        int firstKvHead = firstHead / group;
        int lastKvHead = (lastHead - 1) / group;
        nint keyHeadStride = kv.KeyHeadStride;
        int j = 0;
        // 512-bit paths (32 registers): four keys per step share the query loads (16 accumulators + 4 query registers).
        if (Unsafe.SizeOf<TVec>() == 64)
        {
            for (; j + 4 <= tileKeys; j += 4)
            {
                int key = tileStart + j;
                int firstRowSeeing = 0;
                while (keyEnds[firstRowSeeing] <= key) firstRowSeeing++;
                int allFrom = firstRowSeeing;
                while (keyEnds[allFrom] <= key + 3) allFrom++;
                TKv* keyRow = kv.Key + (nint)key * kv.KeyStride;
                // The four rows after this step's: K of this tile, then V of this tile.
                byte* ahead0 = ScoresAheadRow(in kv, tileStart, tileKeys, j + 4);
                byte* ahead1 = ScoresAheadRow(in kv, tileStart, tileKeys, j + 5);
                byte* ahead2 = ScoresAheadRow(in kv, tileStart, tileKeys, j + 6);
                byte* ahead3 = ScoresAheadRow(in kv, tileStart, tileKeys, j + 7);
                var ahead = new AheadRows(in kv, firstKvHead, lastKvHead - firstKvHead + 1, d, p.ValueDim,
                    ahead0, j + 4 >= tileKeys, ahead1, j + 5 >= tileKeys, ahead2, j + 6 >= tileKeys, ahead3, j + 7 >= tileKeys);
                int head = firstHead;
                for (int kvHead = firstKvHead; kvHead <= lastKvHead; kvHead++)
                {
                    int groupEnd = Math.Min(lastHead, (kvHead + 1) * group);
                    ahead.Issue(kvHead - firstKvHead);
                    TKv* k0 = keyRow + kvHead * keyHeadStride;
                    for (; head < groupEnd; head++)
                    {
                        T* s = scores + (nint)(head - firstHead) * rows * KeyTile + j;
                        T* q = queries + (nint)(head - firstHead) * rows * d;
                        int r = firstRowSeeing;
                        for (; r < allFrom; r++)
                        {
                            for (int jj = 0; jj < 4 && key + jj < keyEnds[r]; jj++)
                                s[(nint)r * KeyTile + jj] = Dot<TDirect>(k0 + jj * kv.KeyStride, q + (nint)r * d, d);
                        }
                        for (; r < rows; r++)
                            Dot4<TDirect>(k0, kv.KeyStride, q + (nint)r * d, d, s + (nint)r * KeyTile);
                    }
                }
            }
        }
        for (; j < tileKeys; j += 2)
        {
            int key = tileStart + j;
            bool two = j + 1 < tileKeys;
            int firstRowSeeing = 0;
            while (keyEnds[firstRowSeeing] <= key) firstRowSeeing++; // the last row sees every key of the sweep
            int bothFrom = firstRowSeeing;                             // rows from here see key + 1 too
            if (two) while (keyEnds[bothFrom] <= key + 1) bothFrom++;
            else bothFrom = rows;
            TKv* keyRow = kv.Key + (nint)key * kv.KeyStride;
            // The rows PrefetchRows keys ahead: K of this tile, then V of this tile (read next, by TileValues).
            int aheadIndex = j + PrefetchRows;
            bool aheadIsKey = aheadIndex < tileKeys;
            byte* ahead = aheadIsKey ? (byte*)(keyRow + PrefetchRows * kv.KeyStride)
                : aheadIndex - tileKeys < tileKeys ? (byte*)(kv.Value + (nint)(tileStart + aheadIndex - tileKeys) * kv.ValueStride) : null;
            nint aheadRowStride = (aheadIsKey ? kv.KeyStride : kv.ValueStride) * sizeof(TKv);
            bool aheadTwo = aheadIndex + 1 < (aheadIsKey ? tileKeys : 2 * tileKeys) && aheadIndex + 1 != tileKeys;
            nint aheadHeadStride = aheadIsKey ? keyHeadStride * sizeof(TKv) : (nint)p.ValueDim * sizeof(TKv);
            int aheadBytes = (aheadIsKey ? d : p.ValueDim) * sizeof(TKv);
            int head = firstHead;
            for (int kvHead = firstKvHead; kvHead <= lastKvHead; kvHead++)
            {
                int groupEnd = Math.Min(lastHead, (kvHead + 1) * group);
                if (ahead != null)
                {
                    Prefetch(ahead + kvHead * aheadHeadStride, aheadBytes);
                    if (aheadTwo) Prefetch(ahead + aheadRowStride + kvHead * aheadHeadStride, aheadBytes);
                }
                TKv* k0 = keyRow + kvHead * keyHeadStride;
                TKv* k1 = k0 + kv.KeyStride;
                for (; head < groupEnd; head++)
                {
                    T* s = scores + (nint)(head - firstHead) * rows * KeyTile + j;
                    T* q = queries + (nint)(head - firstHead) * rows * d;
                    int r = firstRowSeeing;
                    for (; r < bothFrom; r++)
                        s[(nint)r * KeyTile] = Dot<TDirect>(k0, q + (nint)r * d, d);
                    for (; r < rows; r++)
                        Dot2<TDirect>(k0, k1, q + (nint)r * d, d, s + (nint)r * KeyTile);
                }
            }
        }
    }

    /// <summary>a ← a + p_j·v_j for every pair, key-major like <see cref="TileScores"/> (α was applied before); four (then
    /// two) keys at a time keep the accumulator in registers across them (same order per element: key j, then j + 1, …),
    /// and on 512-bit paths the pairs of a kv group (GQA heads, decode rows) share each value load four pairs at a time
    /// (in-process A/B on the Intel Xeon, one thread, H = 32, n = 4096, d = 128: G = 4 −11%, G = 8 −14%, bf16 G = 4 −12%,
    /// four causal rows −13% in time; W4 (G = 1) unchanged; bitwise the same results).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileValues(in AttentionProblem<T> p, in DecodeLayout<TKv> kv, int firstHead, int heads, int rows,
        int* keyEnds, int tileStart, int tileKeys, int nextTileEnd, T* probabilities, T* accumulators)
    {
        int dv = p.ValueDim;
        if (dv == 0) return;
        int group = p.GroupSize;
        int lastHead = firstHead + heads;
        int firstKvHead = firstHead / group;
        int lastKvHead = (lastHead - 1) / group;
        int j = 0;
        // Four keys per step: the accumulator goes through registers once per four value rows.
        for (; j + 4 <= tileKeys; j += 4)
        {
            int key = tileStart + j;
            int firstRowSeeing = 0;
            while (keyEnds[firstRowSeeing] <= key) firstRowSeeing++;
            int allFrom = firstRowSeeing;                 // rows from here see all four keys
            while (keyEnds[allFrom] <= key + 3) allFrom++;
            TKv* valueRow = kv.Value + (nint)key * kv.ValueStride;
            // The four rows after this step's: V of this tile, then K of the next tile.
            byte* ahead0 = AheadRow(in kv, tileStart, tileKeys, nextTileEnd, j + 4);
            byte* ahead1 = AheadRow(in kv, tileStart, tileKeys, nextTileEnd, j + 5);
            byte* ahead2 = AheadRow(in kv, tileStart, tileKeys, nextTileEnd, j + 6);
            byte* ahead3 = AheadRow(in kv, tileStart, tileKeys, nextTileEnd, j + 7);
            var ahead = new AheadRows(in kv, firstKvHead, lastKvHead - firstKvHead + 1, p.HeadDim, dv,
                ahead0, j + 4 < tileKeys, ahead1, j + 5 < tileKeys, ahead2, j + 6 < tileKeys, ahead3, j + 7 < tileKeys);
            int head = firstHead;
            for (int kvHead = firstKvHead; kvHead <= lastKvHead; kvHead++)
            {
                int groupEnd = Math.Min(lastHead, (kvHead + 1) * group);
                ahead.Issue(kvHead - firstKvHead);
                TKv* v0 = valueRow + (nint)kvHead * dv;
                int groupStart = head;
                for (; head < groupEnd; head++)
                {
                    for (int r = firstRowSeeing; r < allFrom; r++)
                    {
                        // A row whose causal end falls inside the step: its keys one at a time, in order.
                        int pair = (head - firstHead) * rows + r;
                        for (int jj = j; jj < j + 4 && tileStart + jj < keyEnds[r]; jj++)
                            MultiplyAdd(probabilities[(nint)pair * KeyTile + jj], v0 + (nint)(jj - j) * kv.ValueStride, accumulators + (nint)pair * dv, dv);
                    }
                }
                // The group's pairs that see all four keys: four at a time share the value loads (512-bit paths: 16
                // broadcasts, 4 value and 4 accumulator registers fit the 32), the rest one at a time.
                int fullRows = rows - allFrom;
                int groupPairs = (groupEnd - groupStart) * fullRows;
                int localStart = groupStart - firstHead;
                int index = 0;
                if (Unsafe.SizeOf<TVec>() == 64)
                {
                    for (; index + 4 <= groupPairs; index += 4)
                    {
                        int pair0 = GroupPair(localStart, rows, allFrom, fullRows, index);
                        int pair1 = GroupPair(localStart, rows, allFrom, fullRows, index + 1);
                        int pair2 = GroupPair(localStart, rows, allFrom, fullRows, index + 2);
                        int pair3 = GroupPair(localStart, rows, allFrom, fullRows, index + 3);
                        MultiplyAdd4Shared(probabilities + j, pair0, pair1, pair2, pair3, v0, kv.ValueStride, accumulators, dv);
                    }
                }
                for (; index < groupPairs; index++)
                {
                    int pair = GroupPair(localStart, rows, allFrom, fullRows, index);
                    MultiplyAdd4(probabilities + (nint)pair * KeyTile + j, v0, kv.ValueStride, accumulators + (nint)pair * dv, dv);
                }
            }
        }
        for (; j < tileKeys; j += 2)
        {
            int key = tileStart + j;
            bool two = j + 1 < tileKeys;
            int firstRowSeeing = 0;
            while (keyEnds[firstRowSeeing] <= key) firstRowSeeing++;
            int bothFrom = firstRowSeeing;
            if (two) while (keyEnds[bothFrom] <= key + 1) bothFrom++;
            else bothFrom = rows;
            TKv* valueRow = kv.Value + (nint)key * kv.ValueStride;
            // The rows PrefetchRows keys ahead: V of this tile, then K of the next tile.
            int aheadIndex = j + PrefetchRows;
            bool aheadIsValue = aheadIndex < tileKeys;
            int aheadKey = aheadIsValue ? key + PrefetchRows : tileStart + KeyTile + aheadIndex - tileKeys;
            byte* ahead = aheadIsValue ? (byte*)(valueRow + PrefetchRows * kv.ValueStride)
                : aheadKey < nextTileEnd ? (byte*)(kv.Key + (nint)aheadKey * kv.KeyStride) : null;
            nint aheadRowStride = (aheadIsValue ? kv.ValueStride : kv.KeyStride) * sizeof(TKv);
            bool aheadTwo = aheadIsValue ? aheadIndex + 1 < tileKeys : aheadKey + 1 < nextTileEnd;
            nint aheadHeadStride = aheadIsValue ? (nint)dv * sizeof(TKv) : kv.KeyHeadStride * sizeof(TKv);
            int aheadBytes = (aheadIsValue ? dv : p.HeadDim) * sizeof(TKv);
            int head = firstHead;
            for (int kvHead = firstKvHead; kvHead <= lastKvHead; kvHead++)
            {
                int groupEnd = Math.Min(lastHead, (kvHead + 1) * group);
                if (ahead != null)
                {
                    Prefetch(ahead + kvHead * aheadHeadStride, aheadBytes);
                    if (aheadTwo) Prefetch(ahead + aheadRowStride + kvHead * aheadHeadStride, aheadBytes);
                }
                TKv* v0 = valueRow + (nint)kvHead * dv;
                TKv* v1 = v0 + kv.ValueStride;
                for (; head < groupEnd; head++)
                {
                    int pairBase = (head - firstHead) * rows;
                    int r = firstRowSeeing;
                    for (; r < bothFrom; r++)
                    {
                        int pair = pairBase + r;
                        MultiplyAdd(probabilities[(nint)pair * KeyTile + j], v0, accumulators + (nint)pair * dv, dv);
                    }
                    for (; r < rows; r++)
                    {
                        int pair = pairBase + r;
                        T* pj = probabilities + (nint)pair * KeyTile + j;
                        MultiplyAdd2(pj[0], v0, pj[1], v1, accumulators + (nint)pair * dv, dv);
                    }
                }
            }
        }
    }

    /// <summary>The row at index <paramref name="index"/> of the logit sweep's read-ahead sequence: K rows of this tile, then
    /// V rows of this tile (null past them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* ScoresAheadRow(in DecodeLayout<TKv> kv, int tileStart, int tileKeys, int index)
    {
        if (index < tileKeys) return (byte*)(kv.Key + (nint)(tileStart + index) * kv.KeyStride);
        return index - tileKeys < tileKeys ? (byte*)(kv.Value + (nint)(tileStart + index - tileKeys) * kv.ValueStride) : null;
    }

    /// <summary>Four keys' <see cref="Dot{TDirect}"/> (rows <paramref name="keyStride"/> apart) against one query, sharing
    /// its loads; each result as computed alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4<TDirect>(TKv* key0, nint keyStride, T* query, int d, T* scores)
        where TDirect : struct, IFlag
    {
        int w = TOps.Count;
        TKv* key1 = key0 + keyStride, key2 = key1 + keyStride, key3 = key2 + keyStride;
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        TVec b0 = TOps.Zero, b1 = TOps.Zero, b2 = TOps.Zero, b3 = TOps.Zero;
        TVec c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero;
        TVec e0 = TOps.Zero, e1 = TOps.Zero, e2 = TOps.Zero, e3 = TOps.Zero;
        int k = 0;
        // In bounds: k + 4w <= d (then k + w <= d) on the four key rows and on the packed query.
        for (; k + 4 * w <= d; k += 4 * w)
        {
            TVec q0 = TOps.Load(query + k), q1 = TOps.Load(query + k + w), q2 = TOps.Load(query + k + 2 * w), q3 = TOps.Load(query + k + 3 * w);
            a0 = Term<TDirect>(q0, key0 + k, a0);
            b0 = Term<TDirect>(q0, key1 + k, b0);
            c0 = Term<TDirect>(q0, key2 + k, c0);
            e0 = Term<TDirect>(q0, key3 + k, e0);
            a1 = Term<TDirect>(q1, key0 + k + w, a1);
            b1 = Term<TDirect>(q1, key1 + k + w, b1);
            c1 = Term<TDirect>(q1, key2 + k + w, c1);
            e1 = Term<TDirect>(q1, key3 + k + w, e1);
            a2 = Term<TDirect>(q2, key0 + k + 2 * w, a2);
            b2 = Term<TDirect>(q2, key1 + k + 2 * w, b2);
            c2 = Term<TDirect>(q2, key2 + k + 2 * w, c2);
            e2 = Term<TDirect>(q2, key3 + k + 2 * w, e2);
            a3 = Term<TDirect>(q3, key0 + k + 3 * w, a3);
            b3 = Term<TDirect>(q3, key1 + k + 3 * w, b3);
            c3 = Term<TDirect>(q3, key2 + k + 3 * w, c3);
            e3 = Term<TDirect>(q3, key3 + k + 3 * w, e3);
        }
        for (; k + w <= d; k += w)
        {
            TVec q0 = TOps.Load(query + k);
            a0 = Term<TDirect>(q0, key0 + k, a0);
            b0 = Term<TDirect>(q0, key1 + k, b0);
            c0 = Term<TDirect>(q0, key2 + k, c0);
            e0 = Term<TDirect>(q0, key3 + k, e0);
        }
        TVec s0 = TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)), s1 = TOps.Add(TOps.Add(b0, b1), TOps.Add(b2, b3));
        TVec s2 = TOps.Add(TOps.Add(c0, c1), TOps.Add(c2, c3)), s3 = TOps.Add(TOps.Add(e0, e1), TOps.Add(e2, e3));
        if (typeof(TVec) == typeof(Vector512<float>) && Avx512F.IsSupported && k == d)
        {
            HorizontalSums.Four((Vector512<float>)(object)s0, (Vector512<float>)(object)s1, (Vector512<float>)(object)s2,
                (Vector512<float>)(object)s3).Store((float*)scores);
            return;
        }
        T t0 = TOps.HorizontalSum(s0), t1 = TOps.HorizontalSum(s1), t2 = TOps.HorizontalSum(s2), t3 = TOps.HorizontalSum(s3);
        for (; k < d; k++)
        {
            T x0 = TFormat.LoadScalar(key0 + k), x1 = TFormat.LoadScalar(key1 + k), x2 = TFormat.LoadScalar(key2 + k), x3 = TFormat.LoadScalar(key3 + k);
            T qk = query[k];
            T y0 = TDirect.Value ? qk - x0 : x0, y1 = TDirect.Value ? qk - x1 : x1, y2 = TDirect.Value ? qk - x2 : x2, y3 = TDirect.Value ? qk - x3 : x3;
            t0 = T.FusedMultiplyAdd(y0, TDirect.Value ? y0 : qk, t0);
            t1 = T.FusedMultiplyAdd(y1, TDirect.Value ? y1 : qk, t1);
            t2 = T.FusedMultiplyAdd(y2, TDirect.Value ? y2 : qk, t2);
            t3 = T.FusedMultiplyAdd(y3, TDirect.Value ? y3 : qk, t3);
        }
        scores[0] = t0;
        scores[1] = t1;
        scores[2] = t2;
        scores[3] = t3;
    }

    /// <summary>The row at index <paramref name="index"/> of the value sweep's read-ahead sequence: V rows of this tile, then
    /// K rows of the next tile (null past the keys of the sweep).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* AheadRow(in DecodeLayout<TKv> kv, int tileStart, int tileKeys, int nextTileEnd, int index)
    {
        if (index < tileKeys) return (byte*)(kv.Value + (nint)(tileStart + index) * kv.ValueStride);
        int key = tileStart + KeyTile + index - tileKeys;
        return key < nextTileEnd ? (byte*)(kv.Key + (nint)key * kv.KeyStride) : null;
    }

    /// <summary>
    /// The four rows after a four-key step (K or V rows: <see cref="ScoresAheadRow"/>, <see cref="AheadRow"/>; null past
    /// the keys) and what of them the step's kv head iterations prefetch, one <see cref="Issue"/> each. By head slice:
    /// iteration i requests kv head first + i's slice of each of the four rows. In address order (where
    /// <see cref="DecodeConstants.PrefetchInAddressOrder"/> holds for the element size and the kv heads' K slices lie side by
    /// side, as in token-major K; V's always do): per row the stretch of the item's kv heads, the rows laid end to end and
    /// split into one equal share per iteration, so that the iterations walk the four rows front to back.
    /// </summary>
    private readonly struct AheadRows
    {
        private readonly byte* start0, start1, start2, start3;   // the item's first kv head's slice of each row (null: none)
        private readonly int slice0, slice1, slice2, slice3;     // bytes of one kv head's slice
        private readonly nint stride0, stride1, stride2, stride3; // bytes from one kv head's slice to the next
        private readonly int kvHeads;
        private readonly int share;                              // bytes per iteration in address order; 0: by head slice

        public AheadRows(in DecodeLayout<TKv> kv, int firstKvHead, int kvHeads, int d, int dv,
            byte* row0, bool value0, byte* row1, bool value1, byte* row2, bool value2, byte* row3, bool value3)
        {
            this.kvHeads = kvHeads;
            Row(in kv, row0, value0, firstKvHead, d, dv, out start0, out slice0, out stride0);
            Row(in kv, row1, value1, firstKvHead, d, dv, out start1, out slice1, out stride1);
            Row(in kv, row2, value2, firstKvHead, d, dv, out start2, out slice2, out stride2);
            Row(in kv, row3, value3, firstKvHead, d, dv, out start3, out slice3, out stride3);
            long total = ((long)slice0 + slice1 + slice2 + slice3) * kvHeads;
            share = DecodeConstants.PrefetchInAddressOrder(sizeof(TKv)) && kv.KeyHeadStride == d ? (int)(((total + kvHeads - 1) / kvHeads + 63) & ~63L) : 0;
        }

        private static void Row(in DecodeLayout<TKv> kv, byte* row, bool isValue, int firstKvHead, int d, int dv,
            out byte* start, out int slice, out nint stride)
        {
            slice = row == null ? 0 : (isValue ? dv : d) * sizeof(TKv);
            stride = isValue ? (nint)dv * sizeof(TKv) : kv.KeyHeadStride * sizeof(TKv);
            start = row == null ? null : row + (nint)firstKvHead * stride;
        }

        /// <summary>The prefetches of kv head iteration <paramref name="index"/> (0 = the item's first kv head).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Issue(int index)
        {
            if (share == 0)
            {
                if (start0 != null) Prefetch(start0 + index * stride0, slice0);
                if (start1 != null) Prefetch(start1 + index * stride1, slice1);
                if (start2 != null) Prefetch(start2 + index * stride2, slice2);
                if (start3 != null) Prefetch(start3 + index * stride3, slice3);
                return;
            }
            long offset = (long)index * share;
            int left = share;
            Part(start0, slice0 * kvHeads, ref offset, ref left);
            Part(start1, slice1 * kvHeads, ref offset, ref left);
            Part(start2, slice2 * kvHeads, ref offset, ref left);
            Part(start3, slice3 * kvHeads, ref offset, ref left);
        }

        /// <summary>This stretch's part of bytes [offset, offset + left) of the stretches laid end to end.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Part(byte* start, int length, ref long offset, ref int left)
        {
            if (left <= 0) return;
            if (offset >= length)
            {
                offset -= length;
                return;
            }
            int bytes = (int)Math.Min(length - offset, left);
            Prefetch(start + offset, bytes);
            left -= bytes;
            offset = 0;
        }
    }

    /// <summary>acc ← p₃v₃ + (p₂v₂ + (p₁v₁ + (p₀v₀ + acc))) along dv: four consecutive value rows (stride
    /// <paramref name="valueStride"/>) with the accumulator in registers; per element the same operations in the same order
    /// as four <see cref="MultiplyAdd"/> calls.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd4(T* probabilities, TKv* value, nint valueStride, T* accumulator, int dv)
    {
        int w = TOps.Count;
        TVec b0 = TOps.Broadcast(probabilities[0]), b1 = TOps.Broadcast(probabilities[1]);
        TVec b2 = TOps.Broadcast(probabilities[2]), b3 = TOps.Broadcast(probabilities[3]);
        TKv* v1 = value + valueStride, v2 = v1 + valueStride, v3 = v2 + valueStride;
        int c = 0;
        // In bounds: c + 2w <= dv (then c + w <= dv) on the four value rows and the accumulator.
        for (; c + 2 * w <= dv; c += 2 * w)
        {
            TVec x0 = TOps.MultiplyAdd(b0, TFormat.Load(value + c), TOps.Load(accumulator + c));
            TVec x1 = TOps.MultiplyAdd(b0, TFormat.Load(value + c + w), TOps.Load(accumulator + c + w));
            x0 = TOps.MultiplyAdd(b1, TFormat.Load(v1 + c), x0);
            x1 = TOps.MultiplyAdd(b1, TFormat.Load(v1 + c + w), x1);
            x0 = TOps.MultiplyAdd(b2, TFormat.Load(v2 + c), x0);
            x1 = TOps.MultiplyAdd(b2, TFormat.Load(v2 + c + w), x1);
            TOps.Store(TOps.MultiplyAdd(b3, TFormat.Load(v3 + c), x0), accumulator + c);
            TOps.Store(TOps.MultiplyAdd(b3, TFormat.Load(v3 + c + w), x1), accumulator + c + w);
        }
        for (; c + w <= dv; c += w)
        {
            TVec x = TOps.MultiplyAdd(b0, TFormat.Load(value + c), TOps.Load(accumulator + c));
            x = TOps.MultiplyAdd(b1, TFormat.Load(v1 + c), x);
            x = TOps.MultiplyAdd(b2, TFormat.Load(v2 + c), x);
            TOps.Store(TOps.MultiplyAdd(b3, TFormat.Load(v3 + c), x), accumulator + c);
        }
        for (; c < dv; c++)
        {
            T x = T.FusedMultiplyAdd(probabilities[0], TFormat.LoadScalar(value + c), accumulator[c]);
            x = T.FusedMultiplyAdd(probabilities[1], TFormat.LoadScalar(v1 + c), x);
            x = T.FusedMultiplyAdd(probabilities[2], TFormat.LoadScalar(v2 + c), x);
            accumulator[c] = T.FusedMultiplyAdd(probabilities[3], TFormat.LoadScalar(v3 + c), x);
        }
    }

    /// <summary>Pair index of the <paramref name="index"/>-th (head, row) of a kv group's rows [firstRow, firstRow + rowCount)
    /// (heads from the item-local <paramref name="firstLocalHead"/>; head-major, as pair = local head·rows + row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int GroupPair(int firstLocalHead, int rows, int firstRow, int rowCount, int index) =>
        (firstLocalHead + index / rowCount) * rows + firstRow + index % rowCount;

    /// <summary><see cref="MultiplyAdd4"/> for four pairs reading the same four value rows: each value register is loaded
    /// (and widened) once for the four; per element every pair gets exactly the operations, in the order, of its own call.
    /// <paramref name="probabilities"/> points at key j of the tile's first row (pair index 0); pair p's keys are
    /// KeyTile·p further on, its accumulator dv·p after <paramref name="accumulators"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd4Shared(T* probabilities, int pair0, int pair1, int pair2, int pair3, TKv* value,
        nint valueStride, T* accumulators, int dv)
    {
        int w = TOps.Count;
        T* p0 = probabilities + (nint)pair0 * KeyTile, p1 = probabilities + (nint)pair1 * KeyTile;
        T* p2 = probabilities + (nint)pair2 * KeyTile, p3 = probabilities + (nint)pair3 * KeyTile;
        T* a0 = accumulators + (nint)pair0 * dv, a1 = accumulators + (nint)pair1 * dv;
        T* a2 = accumulators + (nint)pair2 * dv, a3 = accumulators + (nint)pair3 * dv;
        TVec b00 = TOps.Broadcast(p0[0]), b01 = TOps.Broadcast(p0[1]), b02 = TOps.Broadcast(p0[2]), b03 = TOps.Broadcast(p0[3]);
        TVec b10 = TOps.Broadcast(p1[0]), b11 = TOps.Broadcast(p1[1]), b12 = TOps.Broadcast(p1[2]), b13 = TOps.Broadcast(p1[3]);
        TVec b20 = TOps.Broadcast(p2[0]), b21 = TOps.Broadcast(p2[1]), b22 = TOps.Broadcast(p2[2]), b23 = TOps.Broadcast(p2[3]);
        TVec b30 = TOps.Broadcast(p3[0]), b31 = TOps.Broadcast(p3[1]), b32 = TOps.Broadcast(p3[2]), b33 = TOps.Broadcast(p3[3]);
        TKv* v1 = value + valueStride, v2 = v1 + valueStride, v3 = v2 + valueStride;
        int c = 0;
        // In bounds: c + w <= dv on the four value rows and the four accumulators.
        for (; c + w <= dv; c += w)
        {
            TVec x0 = TFormat.Load(value + c), x1 = TFormat.Load(v1 + c), x2 = TFormat.Load(v2 + c), x3 = TFormat.Load(v3 + c);
            TOps.Store(TOps.MultiplyAdd(b03, x3, TOps.MultiplyAdd(b02, x2, TOps.MultiplyAdd(b01, x1, TOps.MultiplyAdd(b00, x0, TOps.Load(a0 + c))))), a0 + c);
            TOps.Store(TOps.MultiplyAdd(b13, x3, TOps.MultiplyAdd(b12, x2, TOps.MultiplyAdd(b11, x1, TOps.MultiplyAdd(b10, x0, TOps.Load(a1 + c))))), a1 + c);
            TOps.Store(TOps.MultiplyAdd(b23, x3, TOps.MultiplyAdd(b22, x2, TOps.MultiplyAdd(b21, x1, TOps.MultiplyAdd(b20, x0, TOps.Load(a2 + c))))), a2 + c);
            TOps.Store(TOps.MultiplyAdd(b33, x3, TOps.MultiplyAdd(b32, x2, TOps.MultiplyAdd(b31, x1, TOps.MultiplyAdd(b30, x0, TOps.Load(a3 + c))))), a3 + c);
        }
        for (; c < dv; c++)
        {
            T x0 = TFormat.LoadScalar(value + c), x1 = TFormat.LoadScalar(v1 + c), x2 = TFormat.LoadScalar(v2 + c), x3 = TFormat.LoadScalar(v3 + c);
            a0[c] = T.FusedMultiplyAdd(p0[3], x3, T.FusedMultiplyAdd(p0[2], x2, T.FusedMultiplyAdd(p0[1], x1, T.FusedMultiplyAdd(p0[0], x0, a0[c]))));
            a1[c] = T.FusedMultiplyAdd(p1[3], x3, T.FusedMultiplyAdd(p1[2], x2, T.FusedMultiplyAdd(p1[1], x1, T.FusedMultiplyAdd(p1[0], x0, a1[c]))));
            a2[c] = T.FusedMultiplyAdd(p2[3], x3, T.FusedMultiplyAdd(p2[2], x2, T.FusedMultiplyAdd(p2[1], x1, T.FusedMultiplyAdd(p2[0], x0, a2[c]))));
            a3[c] = T.FusedMultiplyAdd(p3[3], x3, T.FusedMultiplyAdd(p3[2], x2, T.FusedMultiplyAdd(p3[1], x1, T.FusedMultiplyAdd(p3[0], x0, a3[c]))));
        }
    }

    /// <summary>Two keys' <see cref="Dot{TDirect}"/> against one query, sharing its loads (each result as computed alone).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot2<TDirect>(TKv* key0, TKv* key1, T* query, int d, T* scores)
        where TDirect : struct, IFlag
    {
        int w = TOps.Count;
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        TVec b0 = TOps.Zero, b1 = TOps.Zero, b2 = TOps.Zero, b3 = TOps.Zero;
        int k = 0;
        // In bounds: k + 4w <= d (then k + w <= d) on both key rows and on the packed query.
        for (; k + 4 * w <= d; k += 4 * w)
        {
            TVec q0 = TOps.Load(query + k), q1 = TOps.Load(query + k + w), q2 = TOps.Load(query + k + 2 * w), q3 = TOps.Load(query + k + 3 * w);
            a0 = Term<TDirect>(q0, key0 + k, a0);
            b0 = Term<TDirect>(q0, key1 + k, b0);
            a1 = Term<TDirect>(q1, key0 + k + w, a1);
            b1 = Term<TDirect>(q1, key1 + k + w, b1);
            a2 = Term<TDirect>(q2, key0 + k + 2 * w, a2);
            b2 = Term<TDirect>(q2, key1 + k + 2 * w, b2);
            a3 = Term<TDirect>(q3, key0 + k + 3 * w, a3);
            b3 = Term<TDirect>(q3, key1 + k + 3 * w, b3);
        }
        for (; k + w <= d; k += w)
        {
            TVec q0 = TOps.Load(query + k);
            a0 = Term<TDirect>(q0, key0 + k, a0);
            b0 = Term<TDirect>(q0, key1 + k, b0);
        }
        T t0 = TOps.HorizontalSum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
        T t1 = TOps.HorizontalSum(TOps.Add(TOps.Add(b0, b1), TOps.Add(b2, b3)));
        for (; k < d; k++)
        {
            T x0 = TFormat.LoadScalar(key0 + k), x1 = TFormat.LoadScalar(key1 + k);
            T e0 = TDirect.Value ? query[k] - x0 : x0, e1 = TDirect.Value ? query[k] - x1 : x1;
            t0 = T.FusedMultiplyAdd(e0, TDirect.Value ? e0 : query[k], t0);
            t1 = T.FusedMultiplyAdd(e1, TDirect.Value ? e1 : query[k], t1);
        }
        scores[0] = t0;
        scores[1] = t1;
    }

    /// <summary>q̂·k (or Σ(q̂ − k)² for direct differences) with four partial sums along d combined in a fixed order,
    /// exactly as the row kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Dot<TDirect>(TKv* key, T* query, int d)
        where TDirect : struct, IFlag
    {
        int w = TOps.Count;
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        int k = 0;
        // In bounds: k + 4w <= d (then k + w <= d) on the key row and on the packed query.
        for (; k + 4 * w <= d; k += 4 * w)
        {
            a0 = Term<TDirect>(query + k, key + k, a0);
            a1 = Term<TDirect>(query + k + w, key + k + w, a1);
            a2 = Term<TDirect>(query + k + 2 * w, key + k + 2 * w, a2);
            a3 = Term<TDirect>(query + k + 3 * w, key + k + 3 * w, a3);
        }
        for (; k + w <= d; k += w)
            a0 = Term<TDirect>(query + k, key + k, a0);
        T t = TOps.HorizontalSum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
        for (; k < d; k++)
        {
            T x = TFormat.LoadScalar(key + k);
            T e = TDirect.Value ? query[k] - x : x;
            t = T.FusedMultiplyAdd(e, TDirect.Value ? e : query[k], t);
        }
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Term<TDirect>(T* query, TKv* key, TVec sum)
        where TDirect : struct, IFlag
        => Term<TDirect>(TOps.Load(query), key, sum);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Term<TDirect>(TVec q, TKv* key, TVec sum)
        where TDirect : struct, IFlag
    {
        if (TDirect.Value)
        {
            TVec e = TOps.Subtract(q, TFormat.Load(key));
            return TOps.MultiplyAdd(e, e, sum);
        }
        return TOps.MultiplyAdd(TFormat.Load(key), q, sum);
    }

    /// <summary>Rows ahead of the one in use whose bytes are requested into L2. Without it the hardware prefetcher left the
    /// transfers and the arithmetic in series (W4 time ≈ in-cache compute time + transfer time); 2 rows measured best of
    /// 0–4 (W4 bf16 11.8 → 7.2 ms, float 18.9 → 13.9 ms, one thread).</summary>
    private const int PrefetchRows = 2;

    /// <summary>Requests [address, address + bytes) into L2, or L1 where <see cref="DecodeConstants.PrefetchToL1"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* address, int bytes) => CachePrefetch.Range(address, bytes, DecodeConstants.PrefetchToL1);

    /// <summary>acc ← α·acc (the row kernel's first step of its value update).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(T* accumulator, int dv, T alpha)
    {
        int w = TOps.Count;
        TVec alphaVector = TOps.Broadcast(alpha);
        int c = 0;
        for (; c + w <= dv; c += w)
            TOps.Store(TOps.Multiply(TOps.Load(accumulator + c), alphaVector), accumulator + c);
        for (; c < dv; c++)
            accumulator[c] *= alpha;
    }

    /// <summary>acc ← p1·v1 + (p0·v0 + acc) along dv: <see cref="MultiplyAdd"/> for key j then key j + 1, with the
    /// accumulator kept in registers in between.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd2(T probability0, TKv* value0, T probability1, TKv* value1, T* accumulator, int dv)
    {
        int w = TOps.Count;
        TVec b0 = TOps.Broadcast(probability0), b1 = TOps.Broadcast(probability1);
        int c = 0;
        // In bounds: c + 4w <= dv (then c + w <= dv) on both value rows and the accumulator.
        for (; c + 4 * w <= dv; c += 4 * w)
        {
            TVec x0 = TOps.MultiplyAdd(b0, TFormat.Load(value0 + c), TOps.Load(accumulator + c));
            TVec x1 = TOps.MultiplyAdd(b0, TFormat.Load(value0 + c + w), TOps.Load(accumulator + c + w));
            TVec x2 = TOps.MultiplyAdd(b0, TFormat.Load(value0 + c + 2 * w), TOps.Load(accumulator + c + 2 * w));
            TVec x3 = TOps.MultiplyAdd(b0, TFormat.Load(value0 + c + 3 * w), TOps.Load(accumulator + c + 3 * w));
            TOps.Store(TOps.MultiplyAdd(b1, TFormat.Load(value1 + c), x0), accumulator + c);
            TOps.Store(TOps.MultiplyAdd(b1, TFormat.Load(value1 + c + w), x1), accumulator + c + w);
            TOps.Store(TOps.MultiplyAdd(b1, TFormat.Load(value1 + c + 2 * w), x2), accumulator + c + 2 * w);
            TOps.Store(TOps.MultiplyAdd(b1, TFormat.Load(value1 + c + 3 * w), x3), accumulator + c + 3 * w);
        }
        for (; c + w <= dv; c += w)
        {
            TVec x = TOps.MultiplyAdd(b0, TFormat.Load(value0 + c), TOps.Load(accumulator + c));
            TOps.Store(TOps.MultiplyAdd(b1, TFormat.Load(value1 + c), x), accumulator + c);
        }
        for (; c < dv; c++)
        {
            T x = T.FusedMultiplyAdd(probability0, TFormat.LoadScalar(value0 + c), accumulator[c]);
            accumulator[c] = T.FusedMultiplyAdd(probability1, TFormat.LoadScalar(value1 + c), x);
        }
    }

    /// <summary>acc ← p·v + acc along dv (vector FMA of the path, fused scalar FMA on the tail: as the row kernel).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd(T probability, TKv* value, T* accumulator, int dv)
    {
        int w = TOps.Count;
        TVec b = TOps.Broadcast(probability);
        int c = 0;
        // In bounds: c + 4w <= dv (then c + w <= dv) on the value row and the accumulator.
        for (; c + 4 * w <= dv; c += 4 * w)
        {
            TVec x0 = TOps.MultiplyAdd(b, TFormat.Load(value + c), TOps.Load(accumulator + c));
            TVec x1 = TOps.MultiplyAdd(b, TFormat.Load(value + c + w), TOps.Load(accumulator + c + w));
            TVec x2 = TOps.MultiplyAdd(b, TFormat.Load(value + c + 2 * w), TOps.Load(accumulator + c + 2 * w));
            TVec x3 = TOps.MultiplyAdd(b, TFormat.Load(value + c + 3 * w), TOps.Load(accumulator + c + 3 * w));
            TOps.Store(x0, accumulator + c);
            TOps.Store(x1, accumulator + c + w);
            TOps.Store(x2, accumulator + c + 2 * w);
            TOps.Store(x3, accumulator + c + 3 * w);
        }
        for (; c + w <= dv; c += w)
            TOps.Store(TOps.MultiplyAdd(b, TFormat.Load(value + c), TOps.Load(accumulator + c)), accumulator + c);
        for (; c < dv; c++)
            accumulator[c] = T.FusedMultiplyAdd(probability, TFormat.LoadScalar(value + c), accumulator[c]);
    }
}
