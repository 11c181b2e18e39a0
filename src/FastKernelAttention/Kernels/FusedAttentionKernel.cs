using System;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Internals;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Numerics;

namespace FastKernelAttention.Kernels;

/// <summary>How the micro-kernel's sums become logits (fixed per call).</summary>
internal enum LogitForm
{
    /// <summary>s = Σ q̂·k (dot kernel; the scale is folded into the packed queries).</summary>
    Plain,

    /// <summary>s = Σ q̂·k + b_j.</summary>
    Bias,

    /// <summary>s = min(‖q̃‖²/(2h²), Σ q̂·k̃ + b_j): the Gaussian expansion with its clamp D ≥ 0.</summary>
    BiasClamped,

    /// <summary>s = −Σ(q̃ − k̃)²/(2h²) + b_j: direct differences.</summary>
    Direct,
}

/// <summary>Tile and block sizes shared by every path (constants: never derived from the thread count, MATH §4).</summary>
internal static class KernelConstants
{
    /// <summary>
    /// Keys per tile. A tile's work set is the packed query block (d × lanes), the score/probability tile (64 × lanes) and
    /// the value accumulator (dv × lanes), plus the tile's 64 K and V rows streamed from L2: for d = dv = 64, 3 × 4 KiB on
    /// AVX2 (16 lanes) and 3 × 16 KiB on AVX-512 floats (64 lanes), more than a 32 KiB L1 but measured faster than
    /// 32-key tiles (with 16 tiles per chunk: W1 0.975×, W3 0.989×, W7 0.985× in alternating processes, AMD EPYC Zen 4).
    /// </summary>
    public const int KeyTile = 64;

    /// <summary>Tiles accumulated in T before the chunk state is merged into the double-precision row state (MATH §14).</summary>
    public const int TilesPerChunk = 8;

    /// <summary>The largest block (AVX-512 float: 4 × 16 lanes), used to size workspaces for any path.</summary>
    public const int MaxBlockLanes = 64;

    /// <summary>Bytes of per-thread scratch of a call with <paramref name="headCount"/> query heads: room for one block
    /// (<see cref="FusedAttentionKernel{T, TVec, TOps}"/>) or one decode item (<see cref="DecodeConstants.ScratchBytes"/>).</summary>
    public static long ScratchBytes(int headDim, int valueDim, int elementSize, int headCount) =>
        System.Math.Max(BlockScratchBytes(headDim, valueDim, elementSize),
            DecodeConstants.ScratchBytes(headDim, valueDim, elementSize, DecodeConstants.PairLimit(headCount)));

    /// <summary>Bytes of per-thread scratch for one block: see <see cref="FusedAttentionKernel{T, TVec, TOps}"/>.</summary>
    private static long BlockScratchBytes(int headDim, int valueDim, int elementSize)
    {
        const int Lanes = MaxBlockLanes;
        long elements = (long)headDim * Lanes        // packed queries
                        + (long)KeyTile * Lanes      // scores, then probabilities
                        + (long)valueDim * Lanes     // chunk accumulator
                        + 8L * Lanes                 // running max, running sum, row bound, causal limit, α, exp offsets (2), tile max
                        + (long)KeyTile * valueDim;  // a streamed tile's V rows, contiguous
        long doubles = (long)Lanes * valueDim + 6L * Lanes;          // row state a, m, l, the row term, merge factors and mask
        return Align(elements * elementSize) + Align(doubles * sizeof(double));
    }

    public static long Align(long bytes) => (bytes + 63) & ~63L;
}

/// <summary>Compile-time count of query vectors a micro-kernel call covers (the JIT folds the guards on it).</summary>
internal interface IVectorCount
{
    static abstract int Value { get; }
}

internal struct VectorCount1 : IVectorCount
{
    public static int Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => 1;
    }
}

internal struct VectorCount2 : IVectorCount
{
    public static int Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => 2;
    }
}

internal struct VectorCount3 : IVectorCount
{
    public static int Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => 3;
    }
}

internal struct VectorCount4 : IVectorCount
{
    public static int Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => 4;
    }
}

/// <summary>
/// The fused attention kernel for one block of queries of one head, one specialised body per (T, ISA path).
/// </summary>
/// <remarks>
/// <para>Queries sit in vector lanes: a block of V·W queries (V = 4 register vectors on 512-bit paths, which have 32
/// registers, else 2) is packed transposed (d × VW), so logits, the running max and the running sum of the online softmax
/// are vertical vector operations with no horizontal reductions. K and V are read row-major from the caller's memory
/// through broadcasts; the score tile S (keys × VW) and the value accumulator (dv × VW) are both computed by the same
/// 4×V-register micro-kernel Out[a][lanes] += Σ_b X[a,b]·Y[b][lanes] (4 broadcasts and V loads feed 4V FMAs).</para>
/// <para>Numerics (MATH §4, §14): within a chunk of <see cref="KernelConstants.TilesPerChunk"/> tiles the state (m, l, a) is kept
/// in T; each chunk is merged, in key order, into a double-precision row state, so long rows lose no accuracy. The block
/// size and the chunking are constants, so a row's result never depends on the thread count.</para>
/// </remarks>
internal static unsafe partial class FusedAttentionKernel<T, TVec, TOps>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TVec : unmanaged
    where TOps : struct, ISimdOps<T, TVec>
{
    private const int KeyTile = KernelConstants.KeyTile;

    /// <summary>Four query vectors per block on 512-bit paths (32 registers hold the 16 accumulators), two elsewhere.
    /// A JIT-time constant.</summary>
    private static bool Wide
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Unsafe.SizeOf<TVec>() == 64;
    }

    /// <summary>The AVX-512 float path fuses the softmax's exponentiation into the value step (<see cref="FusedExpValues"/>).
    /// A JIT-time constant.</summary>
    private static bool FusedExp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => typeof(TVec) == typeof(Vector512<float>) && Avx512F.IsSupported;
    }

    /// <summary>K/V bytes of one kv head above which every block streams strided K/V from memory (<see cref="RunBlock"/>);
    /// below, the head's later blocks find them in L3 and the hints only cost issue slots (4 MiB against 512 KiB, in-process
    /// A/B on the Zen 5 EPYC, H = 8, n = 2048, d = 64, m = 256: 1.013 against 1.035 of the time without hints; n = 16384:
    /// 0.622).</summary>
    private const long StreamResidentBytes = 4L << 20;

    /// <summary>Queries per block (V·W).</summary>
    public static int BlockLanes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (Wide ? 4 : 2) * TOps.Count;
    }

    /// <summary>Computes rows [block·VW, min(m, (block+1)·VW)) of head <paramref name="head"/>.</summary>
    /// <param name="scratch">At least <see cref="KernelConstants.ScratchBytes"/> bytes (for any head count), 64-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunBlock(in AttentionProblem<T> p, int head, int block, byte* scratch)
    {
        int lanes = BlockLanes;
        int w = TOps.Count;
        int d = p.HeadDim;
        int dv = p.ValueDim;
        int m = p.QueryCount;
        int n = p.KeyCount;
        int firstRow = block * lanes;
        int rows = System.Math.Min(lanes, m - firstRow);
        int kvHead = head / p.GroupSize;
        bool gaussian = p.Gaussian;
        bool direct = gaussian && p.DirectDifferences;

        // Scratch layout (T elements, then doubles at a 64-byte boundary).
        T* packedQuery = (T*)scratch;                     // d × lanes
        T* scores = packedQuery + (nint)d * lanes;        // KeyTile × lanes
        T* accumulator = scores + (nint)KeyTile * lanes;  // dv × lanes
        T* runningMax = accumulator + (nint)dv * lanes;   // lanes
        T* runningSum = runningMax + lanes;               // lanes
        T* rowBound = runningSum + lanes;                 // lanes: ‖q̃‖²/(2h²), the clamp of the expanded Gaussian logit
        T* causalLimit = rowBound + lanes;                // lanes: i + (n − m), the last visible key of each row
        T* alpha = causalLimit + lanes;                   // lanes: the tile's rescale factor e^{m_old − m_new}
        T* expOffsets = alpha + lanes;                    // 2 × lanes: c − m′ and m′ − 126 of a deferred exponentiation
        T* tileMax = expOffsets + 2 * lanes;              // lanes: the tile's max logit, taken by the logit step (Dot4)
        T* valueCopy = tileMax + lanes;                   // KeyTile × dv: a streamed tile's V rows (stride dv)
        double* rowA = (double*)(scratch + KernelConstants.Align((long)((byte*)(valueCopy + (nint)KeyTile * dv) - scratch)));
        double* rowM = rowA + (nint)lanes * dv;
        double* rowL = rowM + lanes;
        double* rowTerm = rowL + lanes;
        double* mergeFactors = rowTerm + lanes;             // 3 × lanes: e^{m_row − M}, e^{m_chunk − M}, keep mask
        int vectors = Wide ? 4 : 2;
        int* vectorKeys = stackalloc int[4];                // causal band tiles: keys each query vector needs
        // A partial block on the 512-bit path (at most 48 rows) runs only the query vectors that hold rows on its full tiles:
        // the logit and softmax steps by whole pairs of vectors, the value step vector by vector. The other lanes are
        // padding, never read back (their merges keep the row state as it is).
        int rowVectors = Wide ? (rows + w - 1) / w : vectors;
        int pairVectors = System.Math.Min(vectors, rowVectors + (rowVectors & 1));

        T* queryBase = p.Query + (nint)head * d;
        // The Gaussian kernel reads the centred copy of K made once per call (contiguous, stride d) and its key bias.
        T* keyBase = gaussian ? p.CentredKeys + (nint)kvHead * n * d : p.Key + kvHead * p.KeyHeadStride;
        nint keyStride = gaussian ? d : p.KeyStride;
        T* keyBiasBase = p.KeyBias != null ? p.KeyBias + (nint)kvHead * n : null;
        // How the micro-kernel's sums become logits: as they are (dot), + key bias (log-weights, Gaussian expansion),
        // + bias then the clamp D ≥ 0 (Gaussian expansion without weights), or −D/(2h²) + bias (direct differences).
        LogitForm form = direct ? LogitForm.Direct
            : keyBiasBase == null ? LogitForm.Plain
            : gaussian && !p.HasKeyLogWeights ? LogitForm.BiasClamped : LogitForm.Bias;
        int diagonalStart = firstRow + (n - m);             // the diagonal keys of this block's rows
        int diagonalEnd = diagonalStart + rows;
        T* valueBase = p.Value + kvHead * p.ValueHeadStride;
        T* center = gaussian ? p.Centers + (nint)kvHead * d : null;
        double sink = p.SinkLogits != null ? p.SinkLogits[head] : double.NegativeInfinity;
        double half = p.HalfInverseBandwidthSquared;
        double logitHalf = half * VectorExp.Log2E;          // the direct logit's −D/(2h²) in base 2

        // Pack the block's queries transposed (scaled, and centred for the Gaussian kernel); padding lanes are zero.
        double queryScale = gaussian ? (direct ? 1.0 : p.Scale) : p.Scale;
        if (!gaussian) PackScaledQueries(queryBase + (nint)firstRow * p.QueryStride, p.QueryStride, rows, d, queryScale, packedQuery, lanes);
        // The Gaussian kernel's ‖q̃‖² per lane, parked in rowTerm until the loop below turns it into the row term.
        int centred = gaussian ? PackCentredQueries(queryBase + (nint)firstRow * p.QueryStride, p.QueryStride, rows, center, d, queryScale, packedQuery, lanes, rowTerm) : 0;
        for (int lane = 0; lane < lanes; lane++)
        {
            double normSquared = 0;
            if (lane < rows)
            {
                T* query = queryBase + (nint)(firstRow + lane) * p.QueryStride;
                if (gaussian) normSquared = lane < centred ? rowTerm[lane] : PackQuery(query, center, d, queryScale, packedQuery + lane, lanes);
            }
            else
            {
                for (int k = 0; k < d; k++) packedQuery[(nint)k * lanes + lane] = T.Zero;
            }

            // Logits are computed without the row term −‖q̃‖²/(2h²) of the expanded Gaussian kernel; it cancels in the
            // weights and is added back to the log-sum-exp (and the sink is moved onto the same scale). Tile logits and
            // the clamp bound are in base 2; the double row state (m, l, a) and the term stay natural (MergeBlockChunk).
            double term = gaussian && !direct ? -normSquared * half : 0.0;
            rowBound[lane] = T.CreateTruncating(-term * VectorExp.Log2E);
            causalLimit[lane] = T.CreateTruncating((double)firstRow + lane + (n - m));
            runningMax[lane] = T.NegativeInfinity;
            runningSum[lane] = T.Zero;
            // Row state (MATH §4): empty (−∞, 0, 0), or the sink (s₀, 1, 0) on the logit scale used here.
            bool hasSink = !double.IsNegativeInfinity(sink);
            rowM[lane] = hasSink ? sink - term : double.NegativeInfinity;
            rowL[lane] = hasSink ? 1.0 : 0.0;
            rowTerm[lane] = term;
        }
        new Span<T>(accumulator, lanes * dv).Clear();

        // Visible key range: keys ≥ keyEnd are invisible to every row of the block and are never read; keys < fullEnd are
        // visible to every row, so only tiles overlapping [fullEnd, keyEnd) need the mask.
        int keyEnd = n;
        int fullEnd = n;
        if (p.Causal)
        {
            long last = (long)firstRow + rows - 1 + (n - m);
            keyEnd = (int)System.Math.Clamp(last + 1, 0, n);
            fullEnd = (int)System.Math.Clamp((long)firstRow + (n - m) + 1, 0, keyEnd);
        }
        // The AVX-512 float merge starts the row state from a = 0 itself and leaves O = a / l at the last tile; elsewhere,
        // or when no tile runs, a is cleared here and divided by FinaliseBlock.
        bool mergeFinalises = FusedExp && keyEnd > 0;
        if (!mergeFinalises) new Span<double>(rowA, lanes * dv).Clear();

        // Prefetch hints, spread over the block's last tiles: the query rows of the next block (the next work item, what a
        // single worker runs next) and this block's output rows (and, causal, the next block's new K/V rows: below).
        // Token-major Q and O rows sit H·d elements apart (2–16 KiB, a page per row for wide calls), so without the hint each
        // row costs a TLB miss and a cache miss in sequence. Only the last PrefetchTiles tiles issue them: a line fetched
        // earlier would be pushed out of L2 by the K and V rows streamed after it (1 MiB per kv head at n = 1024, d = 128).
        // Within a tile they go out a few rows per group of keys (RowHints).
        const int PrefetchTiles = 4;
        int tileCount = (keyEnd + KeyTile - 1) / KeyTile;
        int firstPrefetchTile = System.Math.Max(0, tileCount - PrefetchTiles);
        int rowsPerTile = tileCount > 0 ? (lanes + (tileCount - firstPrefetchTile) - 1) / (tileCount - firstPrefetchTile) : 0;
        int nextFirstRow = firstRow + lanes, nextHead = head;
        if (nextFirstRow >= m) { nextFirstRow = 0; nextHead++; }
        int nextRows = nextHead < p.HeadCount ? System.Math.Min(lanes, m - nextFirstRow) : 0;
        T* nextQuery = p.Query + (nint)nextHead * d + (nint)nextFirstRow * p.QueryStride;
        T* outputBase = p.Output + (nint)firstRow * p.OutputStride + (nint)head * dv;
        // Causal: the keys the next block of this head reads and this one does not, [keyEnd, its key end), are not in cache
        // (no block of the head has read them yet); their K and V rows go with the same hints. Without them the band tile
        // at the end of each causal block waited on memory: it took 1.6× a full tile's time for 0.625× the work (W2).
        int newKeys = p.Causal && nextHead == head && nextRows > 0
            ? (int)System.Math.Clamp((long)nextFirstRow + nextRows + (n - m) - keyEnd, 0, n - keyEnd) : 0;

        var hints = new RowHints
        {
            HeadDim = d, ValueDim = dv,
            Query = nextQuery, QueryStride = p.QueryStride, QueryRows = nextRows,
            Output = outputBase, OutputStride = p.OutputStride, OutputRows = rows,
            Key = keyBase + (nint)keyEnd * keyStride, KeyStride = keyStride,
            Value = valueBase + (nint)keyEnd * p.ValueStride, ValueStride = p.ValueStride, KeyRows = newKeys,
            PerGroup = (rowsPerTile + KeyTile / 4 - 1) / (KeyTile / 4),
        };

        // Strided (unpacked, token-major) K and V that are not in cache, i.e. the head's first block or K/V too large to stay
        // in L3 between blocks: the next tile's rows go out with the hints too (each row on its own page at wide pitches, so
        // the hardware prefetcher does not follow them).
        bool stream = !gaussian && (keyStride != d || p.ValueStride != dv)
            && (block == 0 || (long)n * (d + dv) * sizeof(T) > StreamResidentBytes);
        int tileIndex = 0;
        for (int tileStart = 0; tileStart < keyEnd; tileStart += KeyTile, tileIndex++)
        {
            int hintRow = (tileIndex - firstPrefetchTile) * rowsPerTile;
            hints.Next = System.Math.Max(hintRow, 0);
            hints.End = hintRow >= 0 ? System.Math.Min(hintRow + rowsPerTile, lanes) : 0;

            int tileKeys = System.Math.Min(KeyTile, keyEnd - tileStart);
            if (stream)
            {
                hints.StreamKey = keyBase + (nint)(tileStart + KeyTile) * keyStride;
                hints.StreamValue = valueBase + (nint)(tileStart + KeyTile) * p.ValueStride;
                hints.StreamRows = System.Math.Clamp(keyEnd - tileStart - KeyTile, 0, KeyTile);
                hints.StreamNext = 0;
                // Spread over the logit step's groups of four keys and the value step's groups of four columns.
                int groups = KeyTile / 4 + System.Math.Max(1, dv / 4);
                hints.StreamPerGroup = (hints.StreamRows + groups - 1) / groups;
            }
            // Keys [tileStart, tileStart + unmasked) are visible to every row; the rest of the tile is the causal band.
            int unmasked = System.Math.Clamp(fullEnd - tileStart, 0, tileKeys);
            T* keyTile = keyBase + (nint)tileStart * keyStride;
            T* valueTile = valueBase + (nint)tileStart * p.ValueStride;
            T* keyBias = keyBiasBase != null ? keyBiasBase + tileStart : null;
            bool diagonal = p.ExcludeDiagonal && tileStart < diagonalEnd && diagonalStart < tileStart + tileKeys;

            // Masked keys have p = 0 exactly, so they may join the plain value step unless a band value is NaN or ±∞ (0·NaN
            // would spread to rows that must not see the key): only then is the band accumulated key by key under the mask.
            // With finite band values each query vector stops at its own last visible key (vectorKeys): on the diagonal
            // tile of a square causal call the four vectors of a 64-row block need 16, 32, 48 and 64 of the 64 keys.
            bool band = unmasked < tileKeys;
            bool bandFinite = band && (p.ValuesFinite || FiniteCheck<T>.AllFinite(valueTile + (nint)unmasked * p.ValueStride, p.ValueStride, tileKeys - unmasked, dv));
            if (bandFinite)
            {
                for (int v = 0; v < vectors; v++)
                    vectorKeys[v] = (int)System.Math.Clamp((long)firstRow + (long)(v + 1) * w + (n - m) - tileStart, 0, tileKeys);
            }

            // Unmasked tiles of the expanded forms: the logit step also adds the key bias, clamps (Gaussian without weights)
            // and takes the tile's max, all in registers, so the softmax skips its pass over the tile.
            T* logitMax = !direct && !band && !diagonal ? tileMax : null;
            bool partial = rowVectors < vectors && !direct && !band && !diagonal;
            int softmaxVectors = partial ? pairVectors : vectors;
            int tileVectors = partial ? rowVectors : vectors;
            if (direct) SquaredDistances(keyTile, keyStride, tileKeys, packedQuery, d, scores);
            else if (bandFinite) ScoresBand(keyTile, keyStride, tileKeys, packedQuery, d, scores, vectorKeys, ref hints);
            else Scores(keyTile, keyStride, tileKeys, packedQuery, d, scores, logitMax, logitMax != null ? keyBias : null,
                logitMax != null && form == LogitForm.BiasClamped ? rowBound : null, tileVectors, ref hints);
            hints.Flush();

            // Streamed V rows a multiple of 4 KiB apart all fall into the same L1 sets, and a value step on one or two
            // query vectors re-reads every row of the tile per column group with little arithmetic in between: there the tile
            // goes to a contiguous copy first (from L2, where the hints put it). With more vectors, or rows spread over more
            // sets, the copy costs more than the misses it saves (A/B, one thread, H = 32, n = 4096, d = 128: m = 32 0.879,
            // m = 16 0.963, m = 64 1.014 of the time; a 2 KiB pitch, H = 8, n = 4096, d = 64, m = 16: 1.069; 512 bytes,
            // H = 4, n = 700, d = 32, m = 10: 1.139).
            T* values = valueTile;
            nint valueStride = p.ValueStride;
            if (stream && dv > 0 && tileVectors <= 2 && p.ValueStride * sizeof(T) % 4096 == 0)
            {
                for (int j = 0; j < tileKeys; j++)
                    RowCopy.Copy((byte*)(valueTile + (nint)j * p.ValueStride), (byte*)(valueCopy + (nint)j * dv), dv * sizeof(T));
                values = valueCopy;
                valueStride = dv;
            }

            // The softmax step runs per pair of query vectors and leaves α for the value step in scratch. On full tiles of the
            // AVX-512 float path it leaves the exponentiation to the first value columns (FusedExpValues), where it overlaps
            // with FMAs; a pair that cannot (huge or NaN logits) exponentiates here.
            T* deferred = FusedExp && !band && dv >= 1 ? expOffsets : null;
            int deferredPairs = 0;
            for (int pair = 0; pair < softmaxVectors * w; pair += 2 * w)
            {
                T* pairDeferred = deferred != null ? deferred + pair : null;
                bool deferredHere;
                if (band)
                {
                    int pairKeys = bandFinite ? vectorKeys[pair / w + 1] : tileKeys;
                    if (diagonal) deferredHere = Softmax<TrueFlag, TrueFlag>(scores + pair, lanes, pairKeys, tileStart, keyBias, form, logitHalf, rowBound + pair, causalLimit + pair, runningMax + pair, runningSum + pair, alpha + pair, null, null);
                    else deferredHere = Softmax<TrueFlag, FalseFlag>(scores + pair, lanes, pairKeys, tileStart, keyBias, form, logitHalf, rowBound + pair, causalLimit + pair, runningMax + pair, runningSum + pair, alpha + pair, null, null);
                }
                else
                {
                    if (diagonal) deferredHere = Softmax<FalseFlag, TrueFlag>(scores + pair, lanes, tileKeys, tileStart, keyBias, form, logitHalf, rowBound + pair, causalLimit + pair, runningMax + pair, runningSum + pair, alpha + pair, pairDeferred, null);
                    else deferredHere = Softmax<FalseFlag, FalseFlag>(scores + pair, lanes, tileKeys, tileStart, keyBias, form, logitHalf, rowBound + pair, causalLimit + pair, runningMax + pair, runningSum + pair, alpha + pair, pairDeferred, logitMax != null ? logitMax + pair : null);
                }
                if (deferredHere) deferredPairs |= 1 << (pair / (2 * w));
            }
            bool fused = deferred != null && deferredPairs == (1 << (lanes / (2 * w))) - 1;
            if (!fused && deferredPairs != 0)
            {
                for (int pair = 0; pair < lanes; pair += 2 * w)
                {
                    if ((deferredPairs & (1 << (pair / (2 * w)))) != 0)
                        FinishDeferred(scores + pair, lanes, tileKeys, expOffsets + pair, runningSum + pair, alpha + pair);
                }
            }

            int plainKeys = band && !bandFinite ? unmasked : tileKeys;
            if (bandFinite) AccumulateValuesBand(values, valueStride, dv, scores, accumulator, alpha, vectorKeys);
            else if (fused)
            {
                int fusedColumns = System.Math.Min(dv, 4);
                FusedExpValues.ExponentiateAndAccumulate((float*)values, valueStride, tileKeys, (float*)scores, (float*)accumulator,
                    (float*)alpha, (float*)expOffsets, (float*)runningSum, fusedColumns);
                AccumulateValues<FalseFlag>(values + fusedColumns, valueStride, tileKeys, dv - fusedColumns, scores,
                    accumulator + (nint)fusedColumns * lanes, alpha, causalLimit, tileStart, tileVectors, stream, ref hints);
            }
            else AccumulateValues<FalseFlag>(values, valueStride, plainKeys, dv, scores, accumulator, alpha, causalLimit, tileStart, tileVectors, stream, ref hints);
            if (plainKeys < tileKeys)
            {
                // α was already applied by the call above (even with no keys).
                new Span<T>(alpha, lanes).Fill(T.One);
                AccumulateValues<TrueFlag>(values + (nint)unmasked * valueStride, valueStride, tileKeys - unmasked, dv,
                    scores + (nint)unmasked * lanes, accumulator, alpha, causalLimit, tileStart + unmasked, vectors, stream, ref hints);
            }
            hints.FlushStream();

            bool lastTile = tileStart + KeyTile >= keyEnd;
            if (lastTile || tileIndex % KernelConstants.TilesPerChunk == KernelConstants.TilesPerChunk - 1)
            {
                MergeBlockChunk(rows, lanes, dv, runningMax, runningSum, accumulator, rowM, rowL, rowA, mergeFactors,
                    fresh: tileIndex < KernelConstants.TilesPerChunk, final: lastTile);
            }
        }

        FinaliseBlock(in p, head, firstRow, rows, lanes, rowM, rowL, rowA, rowTerm, accumulator, mergeFinalises);
    }

    /// <summary>
    /// The prefetch hints of one tile: rows [Next, End) of the next block's queries, of this block's outputs and of the K
    /// and V rows the next block reads first (causal), issued <see cref="PerGroup"/> rows per group of four keys by the logit
    /// step (<see cref="Scores"/>), between its micro-kernel calls. One burst of them at the start of the tile filled the
    /// line fill buffers and stalled the core on the hints themselves (≈ 80% of RunBlock's own samples on two prefetch
    /// instructions, W2). A block streaming strided K/V from memory also hints the next tile's K and V rows
    /// [StreamNext, StreamRows) from <see cref="StreamKey"/> and <see cref="StreamValue"/>, <see cref="StreamPerGroup"/>
    /// rows per group of four keys of the logit step and per group of four columns of the value step (a burst in the logit
    /// step alone stalled on the hints: H = 32, n = 4096, d = 128, m = 16 and 64 took 0.91 of the time spread). Query and
    /// key rows have <see cref="HeadDim"/> elements, output and value rows <see cref="ValueDim"/>.
    /// </summary>
    private struct RowHints
    {
        public int HeadDim;
        public int ValueDim;
        public T* Query;
        public nint QueryStride;
        public int QueryRows;
        public T* Output;
        public nint OutputStride;
        public int OutputRows;
        public T* Key;
        public nint KeyStride;
        public T* Value;
        public nint ValueStride;
        public int KeyRows;
        public int Next;
        public int End;
        public int PerGroup;
        public T* StreamKey;
        public T* StreamValue;
        public int StreamRows;
        public int StreamNext;
        public int StreamPerGroup;

        /// <summary>Issues the next <see cref="StreamPerGroup"/> K/V rows of the next tile (streamed calls) and the hints
        /// of the next <see cref="PerGroup"/> query and output rows.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Issue()
        {
            if (StreamNext < StreamRows) IssueStream(System.Math.Min(StreamNext + StreamPerGroup, StreamRows));
            if (Next >= End) return;
            IssueRows(System.Math.Min(Next + PerGroup, End));
        }

        /// <summary>Issues the next tile's K and V rows left.</summary>
        public void FlushStream()
        {
            if (StreamNext < StreamRows) IssueStream(StreamRows);
        }

        private void IssueStream(int end)
        {
            for (int r = StreamNext; r < end; r++)
            {
                PrefetchRow(StreamKey + (nint)r * KeyStride, HeadDim);
                PrefetchRow(StreamValue + (nint)r * ValueStride, ValueDim);
            }
            StreamNext = end;
        }

        /// <summary>Issues the query and output hints left.</summary>
        public void Flush()
        {
            if (Next < End) IssueRows(End);
        }

        private void IssueRows(int end)
        {
            for (int r = Next; r < end; r++)
            {
                if (r < QueryRows) PrefetchRow(Query + (nint)r * QueryStride, HeadDim);
                if (r < OutputRows) PrefetchRow(Output + (nint)r * OutputStride, ValueDim);
                if (r < KeyRows)
                {
                    PrefetchRow(Key + (nint)r * KeyStride, HeadDim);
                    PrefetchRow(Value + (nint)r * ValueStride, ValueDim);
                }
            }
            Next = end;
        }
    }

    /// <summary>Hints the cache lines of one row of <paramref name="count"/> elements into L2 (x86; a no-op elsewhere).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRow(T* row, int count) => CachePrefetch.Range((byte*)row, count * sizeof(T), toL1: false);

    /// <summary>Packs <paramref name="rows"/> query rows (<paramref name="queryStride"/> apart) transposed into the block,
    /// lane i ← row i, each element fl(q·scale) as <see cref="PackScaledQuery"/>. On the AVX-512 float path whole 16 × 16
    /// squares go through registers (<see cref="FloatSquares.PackScaledSquare"/>); the rest in runs of four columns across
    /// the rows, so that the stores of one run land on the 4 × lanes elements of four packed rows (16 cache lines for 64
    /// float lanes) instead of sweeping the whole block for every query row (at d = 128 the block is 32 KiB, all of L1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackScaledQueries(T* queries, nint queryStride, int rows, int d, double scale, T* destination, int lanes)
    {
        int squareRows = 0, squareColumns = 0;
        if (FusedExp)
        {
            squareRows = rows & ~15;
            squareColumns = squareRows > 0 ? d & ~15 : 0;
            for (int row = 0; row < squareRows; row += 16)
            {
                for (int k = 0; k < squareColumns; k += 16)
                    FloatSquares.PackScaledSquare((float*)queries + row * queryStride + k, queryStride, scale, (float*)destination + (nint)k * lanes + row, lanes);
            }
        }
        PackScaledRuns(queries, queryStride, 0, squareRows, squareColumns, d, scale, destination, lanes);
        PackScaledRuns(queries, queryStride, squareRows, rows, 0, d, scale, destination, lanes);
    }

    /// <summary>Rows [firstRow, endRow) and columns [firstColumn, d) of <see cref="PackScaledQueries"/>, four columns at a time.</summary>
    private static void PackScaledRuns(T* queries, nint queryStride, int firstRow, int endRow, int firstColumn, int d, double scale, T* destination, int lanes)
    {
        if (firstRow >= endRow) return;
        int k = firstColumn;
        if (typeof(T) == typeof(float) && Vector256.IsHardwareAccelerated)
        {
            Vector256<double> scaleVector = Vector256.Create(scale);
            float* output = (float*)destination;
            // In bounds: k + 4 <= d elements of each query row in [firstRow, endRow), and packed elements (k … k + 3)·lanes + lane.
            for (; k + 4 <= d; k += 4)
            {
                float* row = (float*)queries + firstRow * queryStride + k;
                float* column = output + (nint)k * lanes;
                for (int lane = firstRow; lane < endRow; lane++, row += queryStride)
                {
                    Vector256<double> product = Vector256.WidenLower(Vector128.Load(row).ToVector256Unsafe()) * scaleVector;
                    Vector128<float> rounded = Vector256.Narrow(product, product).GetLower();
                    column[lane] = rounded.GetElement(0);
                    column[lanes + lane] = rounded.GetElement(1);
                    column[2 * lanes + lane] = rounded.GetElement(2);
                    column[3 * lanes + lane] = rounded.GetElement(3);
                }
            }
        }
        for (; k < d; k++)
        {
            for (int lane = firstRow; lane < endRow; lane++)
                destination[(nint)k * lanes + lane] = T.CreateTruncating(double.CreateTruncating(queries[lane * queryStride + k]) * scale);
        }
    }

    /// <summary>Writes q·scale (the product in double, rounded once to T) at stride <paramref name="stride"/> (the dot
    /// kernel: no centring and no norm, so no dependent chain of double additions per element). Float rows go four
    /// elements at a time (widen, multiply, narrow: the same roundings); the scalar loop was ≈ 8% of a causal W2 call.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackScaledQuery(T* query, int d, double scale, T* destination, nint stride)
    {
        int k = 0;
        if (typeof(T) == typeof(float) && Vector256.IsHardwareAccelerated)
        {
            Vector256<double> scaleVector = Vector256.Create(scale);
            float* output = (float*)destination;
            // In bounds: k + 4 <= d elements of the query row, and destination elements k·stride … (k + 3)·stride.
            for (; k + 4 <= d; k += 4)
            {
                Vector256<double> product = Vector256.WidenLower(Vector128.Load((float*)query + k).ToVector256Unsafe()) * scaleVector;
                Vector128<float> rounded = Vector256.Narrow(product, product).GetLower();
                if (stride == 1)
                {
                    rounded.Store(output + k);
                }
                else
                {
                    output[k * stride] = rounded.GetElement(0);
                    output[(k + 1) * stride] = rounded.GetElement(1);
                    output[(k + 2) * stride] = rounded.GetElement(2);
                    output[(k + 3) * stride] = rounded.GetElement(3);
                }
            }
        }
        for (; k < d; k++)
            destination[k * stride] = T.CreateTruncating(double.CreateTruncating(query[k]) * scale);
    }

    /// <summary>
    /// <see cref="PackQuery"/> for the first rows of a block, eight lanes at a time (float, 256-bit vectors): the rows' elements
    /// k go into two 4-lane double vectors, whose per-lane arithmetic is <see cref="PackQuery"/>'s (difference, square, sum in
    /// k order, product rounded to float: the same bits), and the rounded products land as contiguous runs of the packed
    /// row k. Writes ‖q − c‖² of lane i to <paramref name="normSquared"/>[i] and returns how many lanes it packed (a multiple
    /// of eight, 0 elsewhere); the caller packs the rest with <see cref="PackQuery"/>. The scalar loop's chain of double
    /// additions per row was 2.6% of a Gaussian call at d = 16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int PackCentredQueries(T* queries, nint queryStride, int rows, T* center, int d, double scale, T* destination,
        int lanes, double* normSquared)
    {
        if (typeof(T) != typeof(float) || !Vector256.IsHardwareAccelerated) return 0;
        Vector256<double> scaleVector = Vector256.Create(scale);
        int lane = 0;
        // In bounds: lanes [lane, lane + 8) < rows of d elements each; packed elements k·lanes + lane … + 7.
        for (; lane + 8 <= rows; lane += 8)
        {
            float* q = (float*)queries + lane * queryStride;
            nint s = queryStride;
            Vector256<double> sum0 = Vector256<double>.Zero, sum1 = Vector256<double>.Zero;
            float* output = (float*)destination + lane;
            for (int k = 0; k < d; k++, output += lanes)
            {
                Vector256<double> x0 = Vector256.Create((double)q[k], q[s + k], q[2 * s + k], q[3 * s + k]);
                Vector256<double> x1 = Vector256.Create((double)q[4 * s + k], q[5 * s + k], q[6 * s + k], q[7 * s + k]);
                if (center != null)
                {
                    Vector256<double> c = Vector256.Create((double)((float*)center)[k]);
                    x0 -= c;
                    x1 -= c;
                }
                sum0 += x0 * x0;
                sum1 += x1 * x1;
                Vector256.Narrow(x0 * scaleVector, x1 * scaleVector).Store(output);
            }
            sum0.Store(normSquared + lane);
            sum1.Store(normSquared + lane + 4);
        }
        return lane;
    }

    /// <summary>Writes (q − c)·scale (c = null: no centring) at stride <paramref name="stride"/>; returns ‖q − c‖² (double).</summary>
    internal static double PackQuery(T* query, T* center, int d, double scale, T* destination, nint stride)
    {
        double normSquared = 0;
        for (int k = 0; k < d; k++)
        {
            double value = double.CreateTruncating(query[k]);
            if (center != null) value -= double.CreateTruncating(center[k]);
            normSquared += value * value;
            destination[k * stride] = T.CreateTruncating(value * scale);
        }
        return normSquared;
    }

    /// <summary>S[j][lanes] = Σ_k X[j,k]·Q̂[k][lanes] for the tile's keys (logits before mask). With
    /// <paramref name="tileMax"/> also the tile's max per lane, after adding <paramref name="keyBias"/> (when not null) and
    /// clamping to <paramref name="rowBound"/> (when not null): the softmax's logit step, done by <see cref="Dot4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores(T* keys, nint keyStride, int tileKeys, T* packedQuery, int d, T* scores, T* tileMax, T* keyBias, T* rowBound,
        int vectorCount, ref RowHints hints)
    {
        int lanes = BlockLanes;
        if (tileMax != null) new Span<T>(tileMax, lanes).Fill(T.NegativeInfinity);
        int j = 0;
        // Two-vector blocks (16 registers on AVX2): six keys per call, 12 accumulators, enough to cover the FMA latency
        // (four keys are 8: AVX2 W3 logit loop 98–107 against 116–119 GFLOP/s alone, Zen 5); each logit as computed alone.
        int sixEnd = Wide ? 0 : 6 * SixGroups(tileKeys);
        // One query vector of rows (a partial block): eight keys per call (8 accumulators instead of 4 dependent chains).
        int eightEnd = Wide && vectorCount == 1 ? tileKeys & ~7 : 0;
        for (; j < eightEnd; j += 8)
        {
            hints.Issue();
            hints.Issue();
            Dot8(keys + (nint)j * keyStride, keyStride, packedQuery, d, scores + (nint)j * lanes, tileMax, keyBias != null ? keyBias + j : null, rowBound);
        }
        for (; j < sixEnd; j += 6)
        {
            hints.Issue();
            Dot6(keys + (nint)j * keyStride, keyStride, packedQuery, d, scores + (nint)j * lanes, tileMax, keyBias != null ? keyBias + j : null, rowBound);
        }
        for (; j + 4 <= tileKeys; j += 4)
        {
            T* bias = keyBias != null ? keyBias + j : null;
            hints.Issue();
            if (Wide && vectorCount > 2) Dot4<VectorCount4>(keys + (nint)j * keyStride, keyStride, packedQuery, d, scores + (nint)j * lanes, tileMax, bias, rowBound);
            else Dot4<VectorCount2>(keys + (nint)j * keyStride, keyStride, packedQuery, d, scores + (nint)j * lanes, tileMax, bias, rowBound);
        }
        for (; j < tileKeys; j++)
            Dot1(keys + (nint)j * keyStride, packedQuery, d, scores + (nint)j * lanes, 0, tileMax, keyBias != null ? keyBias + j : null, rowBound);
    }

    /// <summary>The logits of a causal band tile: query vector v needs only keys [0, vectorKeys[v]) (non-decreasing in v),
    /// so a group of keys is computed only for the vectors from the first one that sees it. The scores of the other
    /// vectors are left as they are and never read (the softmax and value steps stop at the same counts).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresBand(T* keys, nint keyStride, int tileKeys, T* packedQuery, int d, T* scores, int* vectorKeys,
        ref RowHints hints)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        int vectors = Wide ? 4 : 2;
        int first = 0;   // the first vector that needs key j
        int j = 0;
        for (; j + 4 <= tileKeys; j += 4)
        {
            while (first < vectors && vectorKeys[first] <= j) first++;
            T* key = keys + (nint)j * keyStride;
            T* query = packedQuery + (nint)first * w;
            T* output = scores + (nint)j * lanes + (nint)first * w;
            hints.Issue();
            switch (vectors - first)
            {
                case 4: Dot4<VectorCount4>(key, keyStride, query, d, output, null, null, null); break;
                case 3: Dot4<VectorCount3>(key, keyStride, query, d, output, null, null, null); break;
                case 2: Dot4<VectorCount2>(key, keyStride, query, d, output, null, null, null); break;
                case 1: Dot4<VectorCount1>(key, keyStride, query, d, output, null, null, null); break;
            }
        }
        for (; j < tileKeys; j++)
        {
            while (first < vectors && vectorKeys[first] <= j) first++;
            Dot1(keys + (nint)j * keyStride, packedQuery, d, scores + (nint)j * lanes, first * w, null, null, null);
        }
    }

    /// <summary>S[j][lanes] = Σ_k (Q̂[k][lanes] − X[j,k])² (direct differences for ill-conditioned Gaussian calls).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SquaredDistances(T* keys, nint keyStride, int tileKeys, T* packedQuery, int d, T* scores)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        for (int j = 0; j < tileKeys; j++)
        {
            T* key = keys + (nint)j * keyStride;
            for (int v = 0; v < lanes; v += w)
            {
                TVec sum = TOps.Zero;
                T* y = packedQuery + v;
                for (int k = 0; k < d; k++, y += lanes)
                {
                    TVec difference = TOps.Subtract(TOps.Load(y), TOps.BroadcastFrom(key + k));
                    sum = TOps.MultiplyAdd(difference, difference, sum);
                }
                TOps.Store(sum, scores + (nint)j * lanes + v);
            }
        }
    }

    /// <summary>The 4×V-register micro-kernel: four keys against <typeparamref name="TCount"/> consecutive query vectors
    /// (the block's V, or the last few on the causal band), reduced over d. With <paramref name="tileMax"/> it also does the
    /// softmax's logit step on the registers, with the same operations in the same order: + the four keys' bias
    /// (<paramref name="keyBias"/>, when not null), then min(bound, s) per lane (<paramref name="rowBound"/>, the Gaussian
    /// clamp, when not null), and folds the four logits into the running tile max per lane in key order — on the add pipes
    /// while the FMA loop is the bottleneck, without the softmax's load-and-store pass over the tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4<TCount>(T* key, nint keyStride, T* packedQuery, int d, T* output, T* tileMax, T* keyBias, T* rowBound)
        where TCount : struct, IVectorCount
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        TVec a00 = TOps.Zero, a01 = TOps.Zero, a02 = TOps.Zero, a03 = TOps.Zero;
        TVec a10 = TOps.Zero, a11 = TOps.Zero, a12 = TOps.Zero, a13 = TOps.Zero;
        TVec a20 = TOps.Zero, a21 = TOps.Zero, a22 = TOps.Zero, a23 = TOps.Zero;
        TVec a30 = TOps.Zero, a31 = TOps.Zero, a32 = TOps.Zero, a33 = TOps.Zero;
        T* k0 = key;
        T* k1 = key + keyStride;
        T* k2 = k1 + keyStride;
        T* k3 = k2 + keyStride;
        T* y = packedQuery;
        // In bounds: each key row has d elements; the packed block is d × lanes and the TCount vectors lie inside it.
        for (int k = 0; k < d; k++, y += lanes)
        {
            TVec y0 = TOps.Load(y);
            TVec y1 = TCount.Value > 1 ? TOps.Load(y + w) : default;
            TVec y2 = TCount.Value > 2 ? TOps.Load(y + 2 * w) : default;
            TVec y3 = TCount.Value > 3 ? TOps.Load(y + 3 * w) : default;
            TVec b = TOps.BroadcastFrom(k0 + k);
            a00 = TOps.MultiplyAdd(b, y0, a00);
            if (TCount.Value > 1) a01 = TOps.MultiplyAdd(b, y1, a01);
            if (TCount.Value > 2) a02 = TOps.MultiplyAdd(b, y2, a02);
            if (TCount.Value > 3) a03 = TOps.MultiplyAdd(b, y3, a03);
            b = TOps.BroadcastFrom(k1 + k);
            a10 = TOps.MultiplyAdd(b, y0, a10);
            if (TCount.Value > 1) a11 = TOps.MultiplyAdd(b, y1, a11);
            if (TCount.Value > 2) a12 = TOps.MultiplyAdd(b, y2, a12);
            if (TCount.Value > 3) a13 = TOps.MultiplyAdd(b, y3, a13);
            b = TOps.BroadcastFrom(k2 + k);
            a20 = TOps.MultiplyAdd(b, y0, a20);
            if (TCount.Value > 1) a21 = TOps.MultiplyAdd(b, y1, a21);
            if (TCount.Value > 2) a22 = TOps.MultiplyAdd(b, y2, a22);
            if (TCount.Value > 3) a23 = TOps.MultiplyAdd(b, y3, a23);
            b = TOps.BroadcastFrom(k3 + k);
            a30 = TOps.MultiplyAdd(b, y0, a30);
            if (TCount.Value > 1) a31 = TOps.MultiplyAdd(b, y1, a31);
            if (TCount.Value > 2) a32 = TOps.MultiplyAdd(b, y2, a32);
            if (TCount.Value > 3) a33 = TOps.MultiplyAdd(b, y3, a33);
        }
        var tail = new LogitTail<TCount>(tileMax, keyBias, rowBound);
        tail.Key(0, output, ref a00, ref a01, ref a02, ref a03);
        tail.Key(1, output + lanes, ref a10, ref a11, ref a12, ref a13);
        tail.Key(2, output + 2 * lanes, ref a20, ref a21, ref a22, ref a23);
        tail.Key(3, output + 3 * lanes, ref a30, ref a31, ref a32, ref a33);
        tail.StoreMax();
    }

    /// <summary>One element broadcast and multiplied into a two-vector block's pair of accumulators: a0 ← x·y0 + a0,
    /// a1 ← x·y1 + a1 (the step of <see cref="Dot6"/> and <see cref="Accumulate6"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd2(T* element, TVec y0, TVec y1, ref TVec a0, ref TVec a1)
    {
        TVec b = TOps.BroadcastFrom(element);
        a0 = TOps.MultiplyAdd(b, y0, a0);
        a1 = TOps.MultiplyAdd(b, y1, a1);
    }

    /// <summary>How many groups of six of <paramref name="count"/> keys or columns the six-wide micro-kernels take: as many
    /// as leave a remainder that groups of four cover best (the one-at-a-time kernels of what is left are a single dependent
    /// chain per vector: at dv = 128 the two columns left to them took ≈ 2.5% of an AVX2 W7 call, for 0.8% of its FLOPs).</summary>
    private static int SixGroups(int count)
    {
        int groups = count / 6;
        return groups > 0 && (count - 6 * groups) % 4 > (count - 6 * (groups - 1)) % 4 ? groups - 1 : groups;
    }

    /// <summary><see cref="Dot4"/> for six keys against a two-vector block's two query vectors (12 accumulators), with the
    /// same logit step per key and the tile max folded in key order: per logit the same operations as alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot6(T* key, nint keyStride, T* packedQuery, int d, T* output, T* tileMax, T* keyBias, T* rowBound)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        TVec a00 = TOps.Zero, a01 = TOps.Zero, a10 = TOps.Zero, a11 = TOps.Zero, a20 = TOps.Zero, a21 = TOps.Zero;
        TVec a30 = TOps.Zero, a31 = TOps.Zero, a40 = TOps.Zero, a41 = TOps.Zero, a50 = TOps.Zero, a51 = TOps.Zero;
        T* k0 = key;
        T* k1 = k0 + keyStride;
        T* k2 = k1 + keyStride;
        T* k3 = k2 + keyStride;
        T* k4 = k3 + keyStride;
        T* k5 = k4 + keyStride;
        T* y = packedQuery;
        // In bounds: each key row has d elements; the packed block is d × lanes (two vectors).
        for (int k = 0; k < d; k++, y += lanes)
        {
            TVec y0 = TOps.Load(y), y1 = TOps.Load(y + w);
            MultiplyAdd2(k0 + k, y0, y1, ref a00, ref a01);
            MultiplyAdd2(k1 + k, y0, y1, ref a10, ref a11);
            MultiplyAdd2(k2 + k, y0, y1, ref a20, ref a21);
            MultiplyAdd2(k3 + k, y0, y1, ref a30, ref a31);
            MultiplyAdd2(k4 + k, y0, y1, ref a40, ref a41);
            MultiplyAdd2(k5 + k, y0, y1, ref a50, ref a51);
        }
        var tail = new LogitTail<VectorCount2>(tileMax, keyBias, rowBound);
        tail.Key(0, output, ref a00, ref a01, ref a01, ref a01);
        tail.Key(1, output + lanes, ref a10, ref a11, ref a11, ref a11);
        tail.Key(2, output + 2 * lanes, ref a20, ref a21, ref a21, ref a21);
        tail.Key(3, output + 3 * lanes, ref a30, ref a31, ref a31, ref a31);
        tail.Key(4, output + 4 * lanes, ref a40, ref a41, ref a41, ref a41);
        tail.Key(5, output + 5 * lanes, ref a50, ref a51, ref a51, ref a51);
        tail.StoreMax();
    }

    /// <summary>
    /// <see cref="Dot4{TCount}"/> for eight keys against the first query vector of a block whose other vectors hold no rows:
    /// eight accumulators instead of four dependent chains. The second vector, its partner in the softmax's pair, gets the
    /// logits the pair's micro-kernel makes of its zero (padding) queries for finite keys: +0, then the logit step; so the
    /// softmax sees the tile that <see cref="Dot4{TCount}"/> on two vectors leaves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8(T* key, nint keyStride, T* packedQuery, int d, T* output, T* tileMax, T* keyBias, T* rowBound)
    {
        int lanes = BlockLanes;
        TVec a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        TVec a4 = TOps.Zero, a5 = TOps.Zero, a6 = TOps.Zero, a7 = TOps.Zero;
        T* k0 = key, k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride;
        T* k4 = k3 + keyStride, k5 = k4 + keyStride, k6 = k5 + keyStride, k7 = k6 + keyStride;
        T* y = packedQuery;
        // In bounds: each key row has d elements; the packed block is d × lanes.
        for (int k = 0; k < d; k++, y += lanes)
        {
            TVec q = TOps.Load(y);
            a0 = TOps.MultiplyAdd(TOps.BroadcastFrom(k0 + k), q, a0);
            a1 = TOps.MultiplyAdd(TOps.BroadcastFrom(k1 + k), q, a1);
            a2 = TOps.MultiplyAdd(TOps.BroadcastFrom(k2 + k), q, a2);
            a3 = TOps.MultiplyAdd(TOps.BroadcastFrom(k3 + k), q, a3);
            a4 = TOps.MultiplyAdd(TOps.BroadcastFrom(k4 + k), q, a4);
            a5 = TOps.MultiplyAdd(TOps.BroadcastFrom(k5 + k), q, a5);
            a6 = TOps.MultiplyAdd(TOps.BroadcastFrom(k6 + k), q, a6);
            a7 = TOps.MultiplyAdd(TOps.BroadcastFrom(k7 + k), q, a7);
        }
        var tail = new LogitTail<VectorCount2>(tileMax, keyBias, rowBound);
        tail.FirstVectorKey(0, output, ref a0);
        tail.FirstVectorKey(1, output + lanes, ref a1);
        tail.FirstVectorKey(2, output + 2 * lanes, ref a2);
        tail.FirstVectorKey(3, output + 3 * lanes, ref a3);
        tail.FirstVectorKey(4, output + 4 * lanes, ref a4);
        tail.FirstVectorKey(5, output + 5 * lanes, ref a5);
        tail.FirstVectorKey(6, output + 6 * lanes, ref a6);
        tail.FirstVectorKey(7, output + 7 * lanes, ref a7);
        tail.StoreMax();
    }

    /// <summary>
    /// The end of a logit micro-kernel call (<see cref="Dot4"/>, <see cref="Dot6"/>), key by key in key order: the logit
    /// step on the key's registers when there is a key bias (<see cref="FinishLogits{TCount}"/>), the store of its row, and
    /// with a tile max its fold into the running max per lane (max(m, s), m first), which <see cref="StoreMax"/> writes back.
    /// </summary>
    private ref struct LogitTail<TCount>
        where TCount : struct, IVectorCount
    {
        private readonly T* tileMax;
        private readonly T* keyBias;
        private readonly T* rowBound;
        private TVec max0, max1, max2, max3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public LogitTail(T* tileMax, T* keyBias, T* rowBound)
        {
            this.tileMax = tileMax;
            this.keyBias = keyBias;
            this.rowBound = rowBound;
            int w = TOps.Count;
            max0 = tileMax != null ? TOps.Load(tileMax) : default;
            max1 = tileMax != null && TCount.Value > 1 ? TOps.Load(tileMax + w) : default;
            max2 = tileMax != null && TCount.Value > 2 ? TOps.Load(tileMax + 2 * w) : default;
            max3 = tileMax != null && TCount.Value > 3 ? TOps.Load(tileMax + 3 * w) : default;
        }

        /// <summary>Key <paramref name="index"/> of the call, its logits in v0…v3, its row of the score tile at <paramref name="row"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Key(int index, T* row, ref TVec v0, ref TVec v1, ref TVec v2, ref TVec v3)
        {
            if (keyBias != null) FinishLogits<TCount>(keyBias + index, rowBound, ref v0, ref v1, ref v2, ref v3);
            StoreRow<TCount>(row, v0, v1, v2, v3);
            if (tileMax == null) return;
            max0 = TOps.Max(max0, v0);
            if (TCount.Value > 1) max1 = TOps.Max(max1, v1);
            if (TCount.Value > 2) max2 = TOps.Max(max2, v2);
            if (TCount.Value > 3) max3 = TOps.Max(max3, v3);
        }

        /// <summary><see cref="Key"/> for a key computed on the first vector only (<see cref="Dot8"/>): the second vector's
        /// logits are those of zero queries, +0 before the logit step.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void FirstVectorKey(int index, T* row, ref TVec v0)
        {
            TVec zero = TOps.Zero;
            Key(index, row, ref v0, ref zero, ref zero, ref zero);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void StoreMax()
        {
            if (tileMax != null) StoreRow<TCount>(tileMax, max0, max1, max2, max3);
        }
    }

    /// <summary>One key's logits across <typeparamref name="TCount"/> query vectors (the others are not touched): s + bias,
    /// then min(bound, s) when <paramref name="rowBound"/> is not null (the clamp D ≥ 0, MATH §2; the min keeps a NaN s).
    /// The logit step of <see cref="Dot4"/> and <see cref="Dot1"/>, and the softmax's on masked tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishLogits<TCount>(T* bias, T* rowBound, ref TVec v0, ref TVec v1, ref TVec v2, ref TVec v3)
        where TCount : struct, IVectorCount
    {
        int w = TOps.Count;
        TVec b = TOps.BroadcastFrom(bias);
        v0 = TOps.Add(v0, b);
        if (TCount.Value > 1) v1 = TOps.Add(v1, b);
        if (TCount.Value > 2) v2 = TOps.Add(v2, b);
        if (TCount.Value > 3) v3 = TOps.Add(v3, b);
        if (rowBound == null) return;
        v0 = TOps.Min(TOps.Load(rowBound), v0);
        if (TCount.Value > 1) v1 = TOps.Min(TOps.Load(rowBound + w), v1);
        if (TCount.Value > 2) v2 = TOps.Min(TOps.Load(rowBound + 2 * w), v2);
        if (TCount.Value > 3) v3 = TOps.Min(TOps.Load(rowBound + 3 * w), v3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TCount>(T* row, TVec v0, TVec v1, TVec v2, TVec v3)
        where TCount : struct, IVectorCount
    {
        int w = TOps.Count;
        TOps.Store(v0, row);
        if (TCount.Value > 1) TOps.Store(v1, row + w);
        if (TCount.Value > 2) TOps.Store(v2, row + 2 * w);
        if (TCount.Value > 3) TOps.Store(v3, row + 3 * w);
    }

    /// <summary>One key against the block's lanes from <paramref name="firstLane"/> on (tile remainder); the bias, the
    /// clamp and the tile max as in <see cref="Dot4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot1(T* key, T* packedQuery, int d, T* output, int firstLane, T* tileMax, T* keyBias, T* rowBound)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        for (int v = firstLane; v < lanes; v += w)
        {
            TVec sum = TOps.Zero;
            T* y = packedQuery + v;
            for (int k = 0; k < d; k++, y += lanes)
                sum = TOps.MultiplyAdd(TOps.BroadcastFrom(key + k), TOps.Load(y), sum);
            if (keyBias != null) FinishLogits<VectorCount1>(keyBias, rowBound != null ? rowBound + v : null, ref sum, ref sum, ref sum, ref sum);
            TOps.Store(sum, output + v);
            if (tileMax != null) TOps.Store(TOps.Max(TOps.Load(tileMax + v), sum), tileMax + v);
        }
    }

    /// <summary>
    /// The online-softmax step of one tile for one pair of query vectors (MATH §4): finishes the logits (key bias, Gaussian
    /// clamp, causal and diagonal masks), M = max(m, max_j s_j), α = e^{m−M}, p_j = e^{s_j−M} written over the scores,
    /// l ← α·l + Σ_j p_j. <paramref name="tileMax"/> (unmasked tiles, not the direct form): the logit step already finished the logits and took
    /// max_j s_j (<see cref="Dot4"/>).
    /// <paramref name="deferred"/> (AVX-512 float full tiles): when the offset form applies, stores its offsets there, sets
    /// m and α, and returns true without computing p or l (FusedExpValues or FinishDeferred does). The exp loop of the offset
    /// form is its own method (VectorExp.Exp2OffsetPair); the portable one is inline, since every vector register is
    /// caller-saved and a call inside it would spill the exp constants.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Softmax<TMasked, TDiagonal>(T* scores, int lanes, int tileKeys, int tileStart, T* keyBias, LogitForm form,
        double logitHalf, T* rowBound, T* causalLimit, T* runningMax, T* runningSum, T* alpha, T* deferred, T* tileMax)
        where TMasked : struct, IFlag
        where TDiagonal : struct, IFlag
    {
        int w = TOps.Count;
        TVec negativeInfinity = TOps.Broadcast(T.NegativeInfinity);
        TVec limit0 = TOps.Load(causalLimit), limit1 = TOps.Load(causalLimit + w);
        TVec negativeHalf = TOps.Broadcast(T.CreateTruncating(-logitHalf));
        TVec max0 = negativeInfinity, max1 = negativeInfinity;
        T* s = scores;
        if (tileMax != null)
        {
            // No masks, not the direct form: the logit step already added the bias, clamped and took the max (Dot4), in
            // the same key order.
            max0 = TOps.Load(tileMax);
            max1 = TOps.Load(tileMax + w);
        }
        else
        {
            for (int j = 0; j < tileKeys; j++, s += lanes)
            {
                TVec s0 = TOps.Load(s), s1 = TOps.Load(s + w);
                if (form == LogitForm.Direct)
                {
                    TVec bias = keyBias != null ? TOps.BroadcastFrom(keyBias + j) : TOps.Zero;
                    s0 = TOps.MultiplyAdd(s0, negativeHalf, bias);
                    s1 = TOps.MultiplyAdd(s1, negativeHalf, bias);
                }
                else if (form != LogitForm.Plain)
                {
                    // + bias, and for the Gaussian expansion without weights the clamp D ≥ 0 (MATH §2), as the logit step does.
                    FinishLogits<VectorCount2>(keyBias + j, form == LogitForm.BiasClamped ? rowBound : null, ref s0, ref s1, ref s0, ref s0);
                }
                if (TMasked.Value || TDiagonal.Value)
                {
                    // Causal: key j is visible to row i iff j <= i + (n − m), i.e. unless limit < j. Diagonal: hidden iff j == limit.
                    TVec key = TOps.Broadcast(T.CreateTruncating(tileStart + j));
                    if (TMasked.Value)
                    {
                        s0 = TOps.SelectLessThan(limit0, key, negativeInfinity, s0);
                        s1 = TOps.SelectLessThan(limit1, key, negativeInfinity, s1);
                    }
                    if (TDiagonal.Value)
                    {
                        s0 = TOps.SelectEquals(limit0, key, negativeInfinity, s0);
                        s1 = TOps.SelectEquals(limit1, key, negativeInfinity, s1);
                    }
                }
                if (form != LogitForm.Plain || TMasked.Value || TDiagonal.Value)
                {
                    TOps.Store(s0, s);
                    TOps.Store(s1, s + w);
                }
                max0 = TOps.Max(max0, s0);
                max1 = TOps.Max(max1, s1);
            }
        }

        TVec old0 = TOps.Load(runningMax), old1 = TOps.Load(runningMax + w);
        TVec new0 = TOps.Max(old0, max0), new1 = TOps.Max(old1, max1);
        // A lane whose logits are all −∞ so far keeps M = −∞; shift by 0 there so that no −∞ − (−∞) = NaN appears.
        TVec shift0 = TOps.SelectEquals(new0, negativeInfinity, TOps.Zero, new0);
        TVec shift1 = TOps.SelectEquals(new1, negativeInfinity, TOps.Zero, new1);
        TVec sum0 = TOps.Zero, sum1 = TOps.Zero;
        s = scores;
        if (VectorExp.TryOffset(shift0, shift1, out TVec offset0, out TVec offset1))
        {
            // AVX-512 float: the shift moves onto the 1/16 grid (m′, kept as the running max) and folds into the exp's
            // rounding add (VectorExp.Exp2Offset), 3 operations per vector fewer.
            shift0 = VectorExp.OffsetShift(offset0);
            shift1 = VectorExp.OffsetShift(offset1);
            new0 = TOps.SelectEquals(new0, negativeInfinity, new0, shift0);
            new1 = TOps.SelectEquals(new1, negativeInfinity, new1, shift1);
            if (deferred != null)
            {
                // The fused value step (FusedExpValues) exponentiates and updates l: leave it the offsets and m′ − 126.
                TOps.Store(offset0, deferred);
                TOps.Store(offset1, deferred + w);
                TOps.Store((TVec)(object)VectorExp.OffsetLow((Vector512<float>)(object)offset0), deferred + lanes);
                TOps.Store((TVec)(object)VectorExp.OffsetLow((Vector512<float>)(object)offset1), deferred + lanes + w);
                StoreMaxAndAlpha(old0, old1, shift0, shift1, new0, new1, runningMax, alpha);
                return true;
            }
            VectorExp.Exp2OffsetPair((float*)s, lanes, tileKeys, (Vector512<float>)(object)offset0, (Vector512<float>)(object)offset1,
                out Vector512<float> total0, out Vector512<float> total1);
            sum0 = (TVec)(object)total0;
            sum1 = (TVec)(object)total1;
        }
        else
        {
            for (int j = 0; j < tileKeys; j++, s += lanes)
            {
                TVec p0 = VectorExp.Exp2<T, TVec, TOps>(TOps.Subtract(TOps.Load(s), shift0));
                TVec p1 = VectorExp.Exp2<T, TVec, TOps>(TOps.Subtract(TOps.Load(s + w), shift1));
                TOps.Store(p0, s);
                TOps.Store(p1, s + w);
                sum0 = TOps.Add(sum0, p0);
                sum1 = TOps.Add(sum1, p1);
            }
        }
        StoreMaxAndAlpha(old0, old1, shift0, shift1, new0, new1, runningMax, alpha);
        TOps.Store(TOps.MultiplyAdd(TOps.Load(alpha), TOps.Load(runningSum), sum0), runningSum);
        TOps.Store(TOps.MultiplyAdd(TOps.Load(alpha + w), TOps.Load(runningSum + w), sum1), runningSum + w);
        return false;
    }

    /// <summary>α = 2^(m_old − m_new) and the new running max of a pair of query vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreMaxAndAlpha(TVec old0, TVec old1, TVec shift0, TVec shift1, TVec new0, TVec new1, T* runningMax, T* alpha)
    {
        int w = TOps.Count;
        TOps.Store(VectorExp.Exp2<T, TVec, TOps>(TOps.Subtract(old0, shift0)), alpha);
        TOps.Store(VectorExp.Exp2<T, TVec, TOps>(TOps.Subtract(old1, shift1)), alpha + w);
        TOps.Store(new0, runningMax);
        TOps.Store(new1, runningMax + w);
    }

    /// <summary>Finishes a softmax step that deferred its exponentiation (<see cref="Softmax"/> returned true) when the
    /// fused value step does not run for the tile: p in place and l ← α·l + Σ p for one pair of query vectors.</summary>
    private static void FinishDeferred(T* scores, int lanes, int tileKeys, T* deferred, T* runningSum, T* alpha)
    {
        int w = TOps.Count;
        VectorExp.Exp2OffsetPair((float*)scores, lanes, tileKeys, (Vector512<float>)(object)TOps.Load(deferred),
            (Vector512<float>)(object)TOps.Load(deferred + w), out Vector512<float> total0, out Vector512<float> total1);
        TOps.Store(TOps.MultiplyAdd(TOps.Load(alpha), TOps.Load(runningSum), (TVec)(object)total0), runningSum);
        TOps.Store(TOps.MultiplyAdd(TOps.Load(alpha + w), TOps.Load(runningSum + w), (TVec)(object)total1), runningSum + w);
    }

    /// <summary>acc[c][lanes] ← α·acc[c][lanes] + Σ_j V[j,c]·P[j][lanes] for every value column c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateValues<TMasked>(T* values, nint valueStride, int tileKeys, int dv, T* probabilities,
        T* accumulator, T* alpha, T* causalLimit, int tileStart, int vectorCount, bool stream, ref RowHints hints)
        where TMasked : struct, IFlag
    {
        int lanes = BlockLanes;
        int c = 0;
        // Two-vector blocks, unmasked: six columns per call (12 accumulators; see Dot6).
        int sixEnd = Wide || TMasked.Value ? 0 : 6 * SixGroups(dv);
        for (; c < sixEnd; c += 6)
        {
            if (stream) hints.Issue();
            Accumulate6(values + c, valueStride, tileKeys, probabilities, accumulator + (nint)c * lanes, alpha);
        }
        // One query vector (a partial block): eight columns per call (8 accumulators; four would be 4 dependent chains).
        int eightEnd = Wide && vectorCount == 1 && !TMasked.Value ? dv & ~7 : 0;
        for (; c < eightEnd; c += 8)
        {
            if (stream)
            {
                hints.Issue();
                hints.Issue();
            }
            Accumulate8(values + c, valueStride, tileKeys, probabilities, accumulator + (nint)c * lanes, alpha);
        }
        for (; c + 4 <= dv; c += 4)
        {
            if (stream) hints.Issue();
            T* acc = accumulator + (nint)c * lanes;
            if (!Wide || vectorCount == 2) Accumulate4<TMasked, VectorCount2, TrueFlag>(values + c, valueStride, tileKeys, probabilities, acc, alpha, causalLimit, tileStart);
            else if (vectorCount == 4) Accumulate4<TMasked, VectorCount4, TrueFlag>(values + c, valueStride, tileKeys, probabilities, acc, alpha, causalLimit, tileStart);
            else if (vectorCount == 3) Accumulate4<TMasked, VectorCount3, TrueFlag>(values + c, valueStride, tileKeys, probabilities, acc, alpha, causalLimit, tileStart);
            else Accumulate4<TMasked, VectorCount1, TrueFlag>(values + c, valueStride, tileKeys, probabilities, acc, alpha, causalLimit, tileStart);
        }
        for (; c < dv; c++)
            Accumulate1<TMasked>(values + c, valueStride, tileKeys, probabilities, accumulator + (nint)c * lanes, alpha, causalLimit, tileStart, 0, true);
    }

    /// <summary>The value step of a causal band tile with finite values: query vector v accumulates keys [0, vectorKeys[v])
    /// only (non-decreasing in v). Each column group runs key segment s = [vectorKeys[s−1], vectorKeys[s]) for the vectors
    /// from s on, so every lane still adds its keys in ascending order (the same sums as the whole tile, whose extra keys
    /// have p = 0 exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateValuesBand(T* values, nint valueStride, int dv, T* probabilities, T* accumulator, T* alpha,
        int* vectorKeys)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        int vectors = Wide ? 4 : 2;
        int c = 0;
        for (; c + 4 <= dv; c += 4)
        {
            T* acc = accumulator + (nint)c * lanes;
            // Segment 0 (every vector) also applies α, even with no keys.
            if (Wide) Accumulate4<FalseFlag, VectorCount4, TrueFlag>(values + c, valueStride, vectorKeys[0], probabilities, acc, alpha, null, 0);
            else Accumulate4<FalseFlag, VectorCount2, TrueFlag>(values + c, valueStride, vectorKeys[0], probabilities, acc, alpha, null, 0);
            for (int s = 1; s < vectors; s++)
            {
                int from = vectorKeys[s - 1], keys = vectorKeys[s] - from;
                if (keys == 0) continue;
                T* v = values + (nint)from * valueStride + c;
                T* y = probabilities + (nint)from * lanes + (nint)s * w;
                T* a = acc + (nint)s * w;
                switch (vectors - s)
                {
                    case 3: Accumulate4<FalseFlag, VectorCount3, FalseFlag>(v, valueStride, keys, y, a, null, null, 0); break;
                    case 2: Accumulate4<FalseFlag, VectorCount2, FalseFlag>(v, valueStride, keys, y, a, null, null, 0); break;
                    default: Accumulate4<FalseFlag, VectorCount1, FalseFlag>(v, valueStride, keys, y, a, null, null, 0); break;
                }
            }
        }
        for (; c < dv; c++)
        {
            T* acc = accumulator + (nint)c * lanes;
            Accumulate1<FalseFlag>(values + c, valueStride, vectorKeys[0], probabilities, acc, alpha, null, 0, 0, true);
            for (int s = 1; s < vectors; s++)
            {
                int from = vectorKeys[s - 1], keys = vectorKeys[s] - from;
                Accumulate1<FalseFlag>(values + (nint)from * valueStride + c, valueStride, keys, probabilities + (nint)from * lanes,
                    acc, null, null, 0, s * w, false);
            }
        }
    }

    /// <summary>Four value columns against <typeparamref name="TCount"/> consecutive query vectors, reduced over the tile's
    /// keys; <typeparamref name="TScale"/>: first rescale the accumulator by α. In masked tiles a key invisible to a lane
    /// leaves that lane untouched, so a NaN in a masked value never spreads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate4<TMasked, TCount, TScale>(T* values, nint valueStride, int tileKeys, T* probabilities,
        T* accumulator, T* alpha, T* causalLimit, int tileStart)
        where TMasked : struct, IFlag
        where TCount : struct, IVectorCount
        where TScale : struct, IFlag
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        TVec al0 = TScale.Value ? TOps.Load(alpha) : default;
        TVec al1 = TScale.Value && TCount.Value > 1 ? TOps.Load(alpha + w) : default;
        TVec al2 = TScale.Value && TCount.Value > 2 ? TOps.Load(alpha + 2 * w) : default;
        TVec al3 = TScale.Value && TCount.Value > 3 ? TOps.Load(alpha + 3 * w) : default;
        TVec a00, a01 = default, a02 = default, a03 = default;
        TVec a10, a11 = default, a12 = default, a13 = default;
        TVec a20, a21 = default, a22 = default, a23 = default;
        TVec a30, a31 = default, a32 = default, a33 = default;
        T* row0 = accumulator + 0 * lanes;
        a00 = TScale.Value ? TOps.Multiply(TOps.Load(row0), al0) : TOps.Load(row0);
        if (TCount.Value > 1) a01 = TScale.Value ? TOps.Multiply(TOps.Load(row0 + w), al1) : TOps.Load(row0 + w);
        if (TCount.Value > 2) a02 = TScale.Value ? TOps.Multiply(TOps.Load(row0 + 2 * w), al2) : TOps.Load(row0 + 2 * w);
        if (TCount.Value > 3) a03 = TScale.Value ? TOps.Multiply(TOps.Load(row0 + 3 * w), al3) : TOps.Load(row0 + 3 * w);
        T* row1 = accumulator + 1 * lanes;
        a10 = TScale.Value ? TOps.Multiply(TOps.Load(row1), al0) : TOps.Load(row1);
        if (TCount.Value > 1) a11 = TScale.Value ? TOps.Multiply(TOps.Load(row1 + w), al1) : TOps.Load(row1 + w);
        if (TCount.Value > 2) a12 = TScale.Value ? TOps.Multiply(TOps.Load(row1 + 2 * w), al2) : TOps.Load(row1 + 2 * w);
        if (TCount.Value > 3) a13 = TScale.Value ? TOps.Multiply(TOps.Load(row1 + 3 * w), al3) : TOps.Load(row1 + 3 * w);
        T* row2 = accumulator + 2 * lanes;
        a20 = TScale.Value ? TOps.Multiply(TOps.Load(row2), al0) : TOps.Load(row2);
        if (TCount.Value > 1) a21 = TScale.Value ? TOps.Multiply(TOps.Load(row2 + w), al1) : TOps.Load(row2 + w);
        if (TCount.Value > 2) a22 = TScale.Value ? TOps.Multiply(TOps.Load(row2 + 2 * w), al2) : TOps.Load(row2 + 2 * w);
        if (TCount.Value > 3) a23 = TScale.Value ? TOps.Multiply(TOps.Load(row2 + 3 * w), al3) : TOps.Load(row2 + 3 * w);
        T* row3 = accumulator + 3 * lanes;
        a30 = TScale.Value ? TOps.Multiply(TOps.Load(row3), al0) : TOps.Load(row3);
        if (TCount.Value > 1) a31 = TScale.Value ? TOps.Multiply(TOps.Load(row3 + w), al1) : TOps.Load(row3 + w);
        if (TCount.Value > 2) a32 = TScale.Value ? TOps.Multiply(TOps.Load(row3 + 2 * w), al2) : TOps.Load(row3 + 2 * w);
        if (TCount.Value > 3) a33 = TScale.Value ? TOps.Multiply(TOps.Load(row3 + 3 * w), al3) : TOps.Load(row3 + 3 * w);
        T* v = values;
        T* y = probabilities;
        // In bounds: c + 4 <= dv columns of tileKeys rows; the probability tile is tileKeys × lanes and the TCount vectors
        // lie inside it.
        if (!TMasked.Value)
        {
            for (int j = 0; j < tileKeys; j++, v += valueStride, y += lanes)
            {
                TVec p0 = TOps.Load(y);
                TVec p1 = TCount.Value > 1 ? TOps.Load(y + w) : default;
                TVec p2 = TCount.Value > 2 ? TOps.Load(y + 2 * w) : default;
                TVec p3 = TCount.Value > 3 ? TOps.Load(y + 3 * w) : default;
                TVec b = TOps.BroadcastFrom(v);
                a00 = TOps.MultiplyAdd(b, p0, a00);
                if (TCount.Value > 1) a01 = TOps.MultiplyAdd(b, p1, a01);
                if (TCount.Value > 2) a02 = TOps.MultiplyAdd(b, p2, a02);
                if (TCount.Value > 3) a03 = TOps.MultiplyAdd(b, p3, a03);
                b = TOps.BroadcastFrom(v + 1);
                a10 = TOps.MultiplyAdd(b, p0, a10);
                if (TCount.Value > 1) a11 = TOps.MultiplyAdd(b, p1, a11);
                if (TCount.Value > 2) a12 = TOps.MultiplyAdd(b, p2, a12);
                if (TCount.Value > 3) a13 = TOps.MultiplyAdd(b, p3, a13);
                b = TOps.BroadcastFrom(v + 2);
                a20 = TOps.MultiplyAdd(b, p0, a20);
                if (TCount.Value > 1) a21 = TOps.MultiplyAdd(b, p1, a21);
                if (TCount.Value > 2) a22 = TOps.MultiplyAdd(b, p2, a22);
                if (TCount.Value > 3) a23 = TOps.MultiplyAdd(b, p3, a23);
                b = TOps.BroadcastFrom(v + 3);
                a30 = TOps.MultiplyAdd(b, p0, a30);
                if (TCount.Value > 1) a31 = TOps.MultiplyAdd(b, p1, a31);
                if (TCount.Value > 2) a32 = TOps.MultiplyAdd(b, p2, a32);
                if (TCount.Value > 3) a33 = TOps.MultiplyAdd(b, p3, a33);
            }
        }
        else
        {
            TVec limit0 = TOps.Load(causalLimit);
            TVec limit1 = TCount.Value > 1 ? TOps.Load(causalLimit + w) : default;
            TVec limit2 = TCount.Value > 2 ? TOps.Load(causalLimit + 2 * w) : default;
            TVec limit3 = TCount.Value > 3 ? TOps.Load(causalLimit + 3 * w) : default;
            for (int j = 0; j < tileKeys; j++, v += valueStride, y += lanes)
            {
                TVec key = TOps.Broadcast(T.CreateTruncating(tileStart + j));
                TVec p0 = TOps.Load(y);
                TVec p1 = TCount.Value > 1 ? TOps.Load(y + w) : default;
                TVec p2 = TCount.Value > 2 ? TOps.Load(y + 2 * w) : default;
                TVec p3 = TCount.Value > 3 ? TOps.Load(y + 3 * w) : default;
                // Keep the old value in lanes where the key is masked (limit < key).
                TVec b = TOps.BroadcastFrom(v);
                a00 = MaskedMultiplyAdd(b, p0, a00, limit0, key);
                if (TCount.Value > 1) a01 = MaskedMultiplyAdd(b, p1, a01, limit1, key);
                if (TCount.Value > 2) a02 = MaskedMultiplyAdd(b, p2, a02, limit2, key);
                if (TCount.Value > 3) a03 = MaskedMultiplyAdd(b, p3, a03, limit3, key);
                b = TOps.BroadcastFrom(v + 1);
                a10 = MaskedMultiplyAdd(b, p0, a10, limit0, key);
                if (TCount.Value > 1) a11 = MaskedMultiplyAdd(b, p1, a11, limit1, key);
                if (TCount.Value > 2) a12 = MaskedMultiplyAdd(b, p2, a12, limit2, key);
                if (TCount.Value > 3) a13 = MaskedMultiplyAdd(b, p3, a13, limit3, key);
                b = TOps.BroadcastFrom(v + 2);
                a20 = MaskedMultiplyAdd(b, p0, a20, limit0, key);
                if (TCount.Value > 1) a21 = MaskedMultiplyAdd(b, p1, a21, limit1, key);
                if (TCount.Value > 2) a22 = MaskedMultiplyAdd(b, p2, a22, limit2, key);
                if (TCount.Value > 3) a23 = MaskedMultiplyAdd(b, p3, a23, limit3, key);
                b = TOps.BroadcastFrom(v + 3);
                a30 = MaskedMultiplyAdd(b, p0, a30, limit0, key);
                if (TCount.Value > 1) a31 = MaskedMultiplyAdd(b, p1, a31, limit1, key);
                if (TCount.Value > 2) a32 = MaskedMultiplyAdd(b, p2, a32, limit2, key);
                if (TCount.Value > 3) a33 = MaskedMultiplyAdd(b, p3, a33, limit3, key);
            }
        }
        StoreRow<TCount>(accumulator, a00, a01, a02, a03);
        StoreRow<TCount>(accumulator + lanes, a10, a11, a12, a13);
        StoreRow<TCount>(accumulator + 2 * lanes, a20, a21, a22, a23);
        StoreRow<TCount>(accumulator + 3 * lanes, a30, a31, a32, a33);
    }

    /// <summary><see cref="Accumulate4"/> (unmasked, rescaled by α first) for six value columns against a two-vector
    /// block's two query vectors (12 accumulators): per element the same operations in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate6(T* values, nint valueStride, int tileKeys, T* probabilities, T* accumulator, T* alpha)
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        TVec al0 = TOps.Load(alpha), al1 = TOps.Load(alpha + w);
        T* row = accumulator;
        TVec a00 = TOps.Multiply(TOps.Load(row), al0), a01 = TOps.Multiply(TOps.Load(row + w), al1);
        row += lanes;
        TVec a10 = TOps.Multiply(TOps.Load(row), al0), a11 = TOps.Multiply(TOps.Load(row + w), al1);
        row += lanes;
        TVec a20 = TOps.Multiply(TOps.Load(row), al0), a21 = TOps.Multiply(TOps.Load(row + w), al1);
        row += lanes;
        TVec a30 = TOps.Multiply(TOps.Load(row), al0), a31 = TOps.Multiply(TOps.Load(row + w), al1);
        row += lanes;
        TVec a40 = TOps.Multiply(TOps.Load(row), al0), a41 = TOps.Multiply(TOps.Load(row + w), al1);
        row += lanes;
        TVec a50 = TOps.Multiply(TOps.Load(row), al0), a51 = TOps.Multiply(TOps.Load(row + w), al1);
        T* v = values;
        T* y = probabilities;
        // In bounds: c + 6 <= dv columns of tileKeys rows; the probability tile is tileKeys × lanes (two vectors).
        for (int j = 0; j < tileKeys; j++, v += valueStride, y += lanes)
        {
            TVec p0 = TOps.Load(y), p1 = TOps.Load(y + w);
            MultiplyAdd2(v, p0, p1, ref a00, ref a01);
            MultiplyAdd2(v + 1, p0, p1, ref a10, ref a11);
            MultiplyAdd2(v + 2, p0, p1, ref a20, ref a21);
            MultiplyAdd2(v + 3, p0, p1, ref a30, ref a31);
            MultiplyAdd2(v + 4, p0, p1, ref a40, ref a41);
            MultiplyAdd2(v + 5, p0, p1, ref a50, ref a51);
        }
        StoreRow<VectorCount2>(accumulator, a00, a01, a01, a01);
        StoreRow<VectorCount2>(accumulator + lanes, a10, a11, a11, a11);
        StoreRow<VectorCount2>(accumulator + 2 * lanes, a20, a21, a21, a21);
        StoreRow<VectorCount2>(accumulator + 3 * lanes, a30, a31, a31, a31);
        StoreRow<VectorCount2>(accumulator + 4 * lanes, a40, a41, a41, a41);
        StoreRow<VectorCount2>(accumulator + 5 * lanes, a50, a51, a51, a51);
    }

    /// <summary><see cref="Accumulate4{TMasked, TCount, TScale}"/> (unmasked, α applied) for eight value columns against one
    /// query vector: eight accumulators, enough to cover the FMA latency; per element the same operations in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate8(T* values, nint valueStride, int tileKeys, T* probabilities, T* accumulator, T* alpha)
    {
        int lanes = BlockLanes;
        TVec al = TOps.Load(alpha);
        TVec a0 = TOps.Multiply(TOps.Load(accumulator), al), a1 = TOps.Multiply(TOps.Load(accumulator + lanes), al);
        TVec a2 = TOps.Multiply(TOps.Load(accumulator + 2 * lanes), al), a3 = TOps.Multiply(TOps.Load(accumulator + 3 * lanes), al);
        TVec a4 = TOps.Multiply(TOps.Load(accumulator + 4 * lanes), al), a5 = TOps.Multiply(TOps.Load(accumulator + 5 * lanes), al);
        TVec a6 = TOps.Multiply(TOps.Load(accumulator + 6 * lanes), al), a7 = TOps.Multiply(TOps.Load(accumulator + 7 * lanes), al);
        T* v = values;
        T* y = probabilities;
        // In bounds: c + 8 <= dv columns of tileKeys rows; the first vector of each probability row.
        for (int j = 0; j < tileKeys; j++, v += valueStride, y += lanes)
        {
            TVec p = TOps.Load(y);
            a0 = TOps.MultiplyAdd(TOps.BroadcastFrom(v), p, a0);
            a1 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 1), p, a1);
            a2 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 2), p, a2);
            a3 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 3), p, a3);
            a4 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 4), p, a4);
            a5 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 5), p, a5);
            a6 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 6), p, a6);
            a7 = TOps.MultiplyAdd(TOps.BroadcastFrom(v + 7), p, a7);
        }
        TOps.Store(a0, accumulator);
        TOps.Store(a1, accumulator + lanes);
        TOps.Store(a2, accumulator + 2 * lanes);
        TOps.Store(a3, accumulator + 3 * lanes);
        TOps.Store(a4, accumulator + 4 * lanes);
        TOps.Store(a5, accumulator + 5 * lanes);
        TOps.Store(a6, accumulator + 6 * lanes);
        TOps.Store(a7, accumulator + 7 * lanes);
    }

    /// <summary>b·p + acc in the lanes that see the key, acc where it is masked (limit &lt; key).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec MaskedMultiplyAdd(TVec b, TVec p, TVec accumulator, TVec limit, TVec key) =>
        TOps.SelectLessThan(limit, key, accumulator, TOps.MultiplyAdd(b, p, accumulator));

    /// <summary>One value column (the dv remainder), vector by vector over the lanes from <paramref name="firstLane"/> on;
    /// <paramref name="scale"/>: first rescale by α.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate1<TMasked>(T* values, nint valueStride, int tileKeys, T* probabilities,
        T* accumulator, T* alpha, T* causalLimit, int tileStart, int firstLane, bool scale)
        where TMasked : struct, IFlag
    {
        int w = TOps.Count;
        int lanes = BlockLanes;
        for (int lane = firstLane; lane < lanes; lane += w)
        {
            TVec sum = scale ? TOps.Multiply(TOps.Load(accumulator + lane), TOps.Load(alpha + lane)) : TOps.Load(accumulator + lane);
            TVec limit = TMasked.Value ? TOps.Load(causalLimit + lane) : default;
            T* v = values;
            T* y = probabilities + lane;
            for (int j = 0; j < tileKeys; j++, v += valueStride, y += lanes)
            {
                sum = TMasked.Value
                    ? MaskedMultiplyAdd(TOps.BroadcastFrom(v), TOps.Load(y), sum, limit, TOps.Broadcast(T.CreateTruncating(tileStart + j)))
                    : TOps.MultiplyAdd(TOps.BroadcastFrom(v), TOps.Load(y), sum);
            }
            TOps.Store(sum, accumulator + lane);
        }
    }

    /// <summary>Merges the chunk state (m, l, acc) in T into the double row state (MATH §4 merge), then empties the chunk.
    /// The chunk's m is a base-2 logit, the row state's natural: m·ln 2 in double moves it over. The row state a is kept as dv × lanes like the accumulator, so the merge runs down whole lane vectors; its
    /// multiplies and adds are separate (no FMA), so the vector loop gives exactly the scalar results.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergeBlockChunk(int rows, int lanes, int dv, T* runningMax, T* runningSum, T* accumulator,
        double* rowM, double* rowL, double* rowA, double* factors, bool fresh, bool final)
    {
        double* oldFactors = factors;
        double* newFactors = factors + lanes;
        long* keep = (long*)(factors + 2 * lanes);    // all ones: the lane's row state stays as it is
        int first = 0;
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            // Four lanes at a time with the double 2^x of the AVX2 path (e^x = 2^(x·log₂e)): the same decisions as the
            // scalar loop below, which finishes the lanes.
            for (; first + 4 <= lanes; first += 4) MergeFactors4(first, rows, runningMax, runningSum, rowM, rowL, oldFactors, newFactors, keep);
        }
        for (int lane = first; lane < lanes; lane++)
        {
            double chunkSum = lane < rows ? double.CreateTruncating(runningSum[lane]) : 0.0;
            if (chunkSum == 0)
            {
                // Nothing visible in this chunk (or a padding lane): the row state is kept (a NaN sum is merged, and spreads).
                oldFactors[lane] = 1.0;
                newFactors[lane] = 0.0;
                keep[lane] = -1;
                continue;
            }
            double chunkMax = double.CreateTruncating(runningMax[lane]) * VectorExp.Ln2; // base 2 → natural
            double merged = System.Math.Max(rowM[lane], chunkMax); // Math.Max propagates NaN
            // One of the two factors is e^0 = 1 exactly (merged is one of the two maxima): only the other calls Exp.
            double oldFactor = double.IsNegativeInfinity(rowM[lane]) ? 0.0 : rowM[lane] == merged ? 1.0 : System.Math.Exp(rowM[lane] - merged);
            double newFactor = chunkMax == merged ? 1.0 : System.Math.Exp(chunkMax - merged);
            rowL[lane] = oldFactor * rowL[lane] + newFactor * chunkSum;
            rowM[lane] = merged;
            oldFactors[lane] = oldFactor;
            newFactors[lane] = newFactor;
            keep[lane] = 0;
        }

        if (FusedExp && lanes == 64)
        {
            // The factors in registers for all columns; the accumulator is emptied (or gets O) in the same pass.
            ChunkMerge.MergeColumns64(rowA, (float*)accumulator, dv, oldFactors, newFactors, keep, fresh, final ? rowL : null);
        }
        else
        {
            MergeColumns(lanes, dv, accumulator, rowA, oldFactors, newFactors, keep);
            new Span<T>(accumulator, lanes * dv).Clear();
        }
        new Span<T>(runningMax, lanes).Fill(T.NegativeInfinity);
        new Span<T>(runningSum, lanes).Clear();
    }

    /// <summary>a ← keep ? a : old·a + new·acc for every column and lane (<see cref="MergeBlockChunk"/>).</summary>
    private static void MergeColumns(int lanes, int dv, T* accumulator, double* rowA, double* oldFactors, double* newFactors, long* keep)
    {
        for (int c = 0; c < dv; c++)
        {
            double* a = rowA + (nint)c * lanes;
            T* acc = accumulator + (nint)c * lanes;
            int lane = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                // In bounds: lane + 8 <= lanes elements of this column's lane row, in a, acc and the factor rows.
                for (; lane + 8 <= lanes; lane += 8)
                {
                    Vector256<double> x0, x1;
                    if (typeof(T) == typeof(float))
                    {
                        (x0, x1) = Vector256.Widen(Vector256.Load((float*)acc + lane));
                    }
                    else
                    {
                        x0 = Vector256.Load((double*)acc + lane);
                        x1 = Vector256.Load((double*)acc + lane + 4);
                    }
                    MergeLanes(a + lane, x0, oldFactors + lane, newFactors + lane, keep + lane);
                    MergeLanes(a + lane + 4, x1, oldFactors + lane + 4, newFactors + lane + 4, keep + lane + 4);
                }
            }
            for (; lane < lanes; lane++)
            {
                if (keep[lane] == 0)
                    a[lane] = oldFactors[lane] * a[lane] + newFactors[lane] * double.CreateTruncating(acc[lane]);
            }
        }
    }

    /// <summary>The merge factors of lanes <paramref name="lane"/> … +3 (<see cref="MergeBlockChunk"/>): a lane with an empty
    /// chunk (or past <paramref name="rows"/>) keeps its row state; otherwise M = max(m_row, m_chunk) (NaN if either is NaN),
    /// the factors e^(m − M) (0 for m_row = −∞, exactly 1 for the larger one), l ← f_row·l + f_chunk·l_chunk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeFactors4(int lane, int rows, T* runningMax, T* runningSum, double* rowM, double* rowL,
        double* oldFactors, double* newFactors, long* keep)
    {
        Vector256<double> chunkSum, chunkMax;
        if (typeof(T) == typeof(float))
        {
            chunkSum = Vector256.WidenLower(Vector128.Load((float*)runningSum + lane).ToVector256Unsafe());
            chunkMax = Vector256.WidenLower(Vector128.Load((float*)runningMax + lane).ToVector256Unsafe());
        }
        else
        {
            chunkSum = Vector256.Load((double*)runningSum + lane);
            chunkMax = Vector256.Load((double*)runningMax + lane);
        }
        Vector256<double> laneIndex = Vector256.Create(0.0, 1.0, 2.0, 3.0) + Vector256.Create((double)lane);
        chunkSum = Vector256.ConditionalSelect(Vector256.LessThan(laneIndex, Vector256.Create((double)rows)), chunkSum, Vector256<double>.Zero);
        Vector256<double> empty = Vector256.Equals(chunkSum, Vector256<double>.Zero);
        chunkMax *= Vector256.Create(VectorExp.Ln2); // base 2 → natural
        Vector256<double> m = Vector256.Load(rowM + lane), l = Vector256.Load(rowL + lane);
        Vector256<double> anyNaN = ~(Vector256.Equals(m, m) & Vector256.Equals(chunkMax, chunkMax));
        Vector256<double> merged = Vector256.ConditionalSelect(anyNaN, Vector256.Create(double.NaN), Avx.Max(m, chunkMax));
        Vector256<double> log2E = Vector256.Create(VectorExp.Log2E);
        Vector256<double> negativeInfinity = Vector256.Create(double.NegativeInfinity);
        // m_row = −∞ (nothing merged yet) gives 0; the larger maximum gives exactly 1 (2^0), the other 2^((m − M)·log₂e).
        Vector256<double> oldFactor = Vector256.ConditionalSelect(Vector256.Equals(m, negativeInfinity), Vector256<double>.Zero,
            VectorExp.Exp2<double, Vector256<double>, Avx2Ops<double>>((m - merged) * log2E));
        Vector256<double> newFactor = VectorExp.Exp2<double, Vector256<double>, Avx2Ops<double>>((chunkMax - merged) * log2E);
        Vector256.ConditionalSelect(empty, l, oldFactor * l + newFactor * chunkSum).Store(rowL + lane);
        Vector256.ConditionalSelect(empty, m, merged).Store(rowM + lane);
        Vector256.ConditionalSelect(empty, Vector256<double>.One, oldFactor).Store(oldFactors + lane);
        Vector256.ConditionalSelect(empty, Vector256<double>.Zero, newFactor).Store(newFactors + lane);
        empty.AsInt64().Store(keep + lane);
    }

    /// <summary>a ← keep ? a : old·a + new·x on four lanes (separate multiply and add, as in the scalar tail).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeLanes(double* a, Vector256<double> x, double* oldFactors, double* newFactors, long* keep)
    {
        Vector256<double> old = Vector256.Load(a);
        Vector256<double> merged = Vector256.Load(oldFactors) * old + Vector256.Load(newFactors) * x;
        Vector256.ConditionalSelect(Vector256.Load(keep).AsDouble(), old, merged).Store(a);
    }

    /// <summary>Merges the chunk state (m, l, acc) in T into the double row state (MATH §4 merge), then empties the chunk
    /// (the decode kernel's layout: a is lanes × dv).</summary>
    internal static void MergeChunk(int rows, int lanes, int dv, T* runningMax, T* runningSum, T* accumulator,
        double* rowM, double* rowL, double* rowA)
    {
        for (int lane = 0; lane < rows; lane++)
        {
            double chunkSum = double.CreateTruncating(runningSum[lane]);
            if (chunkSum == 0) continue; // nothing visible in this chunk (a NaN sum is merged, and spreads)
            double chunkMax = double.CreateTruncating(runningMax[lane]) * VectorExp.Ln2; // base 2 → natural
            double merged = System.Math.Max(rowM[lane], chunkMax); // Math.Max propagates NaN
            double oldFactor = double.IsNegativeInfinity(rowM[lane]) ? 0.0 : System.Math.Exp(rowM[lane] - merged);
            double newFactor = System.Math.Exp(chunkMax - merged);
            rowL[lane] = oldFactor * rowL[lane] + newFactor * chunkSum;
            double* a = rowA + (nint)lane * dv;
            T* acc = accumulator + lane;
            int c = 0;
            if (lanes == 1 && Vector256.IsHardwareAccelerated)
            {
                // Contiguous columns (the decode kernel's one-lane states), four at a time with the scalar loop's separate
                // multiplies and add. In bounds: c + 4 <= dv.
                Vector256<double> oldVector = Vector256.Create(oldFactor), newVector = Vector256.Create(newFactor);
                for (; c + 4 <= dv; c += 4)
                {
                    Vector256<double> x = typeof(T) == typeof(float)
                        ? Vector256.WidenLower(Vector128.Load((float*)acc + c).ToVector256Unsafe())
                        : Vector256.Load((double*)acc + c);
                    (oldVector * Vector256.Load(a + c) + newVector * x).Store(a + c);
                }
            }
            for (; c < dv; c++)
                a[c] = oldFactor * a[c] + newFactor * double.CreateTruncating(acc[(nint)c * lanes]);
            rowM[lane] = merged;
        }
        new Span<T>(runningMax, lanes).Fill(T.NegativeInfinity);
        new Span<T>(runningSum, lanes).Clear();
        new Span<T>(accumulator, lanes * dv).Clear();
    }

    /// <summary>Whether row i has at least one key under the causal mask and the excluded diagonal (MATH §3).</summary>
    private static bool HasVisibleKey(in AttentionProblem<T> p, int i)
    {
        long offset = (long)p.KeyCount - p.QueryCount;
        long visible = p.Causal ? System.Math.Clamp(i + offset + 1, 0, p.KeyCount) : p.KeyCount;
        if (p.ExcludeDiagonal && i + offset >= 0 && i + offset < visible) visible--;
        return visible > 0;
    }

    /// <summary>O = a / l and LSE = m + log l (+ the Gaussian row term); l = 0 gives O = 0 and LSE = −∞ (MATH §4).
    /// The division runs down the dv × lanes row state in place (lanes with l = 0 are not read back), unless
    /// <paramref name="divided"/>: the AVX-512 float block's last merge did it and left the float quotients in
    /// <paramref name="accumulator"/> (cleared again by the next block), from which whole groups of 16 rows go out through
    /// 16 × 16 transposes when dv is a multiple of 16 (<see cref="BlockOutput"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FinaliseBlock(in AttentionProblem<T> p, int head, int firstRow, int rows, int lanes,
        double* rowM, double* rowL, double* rowA, double* rowTerm, T* accumulator, bool divided)
    {
        int dv = p.ValueDim;
        int squareRows = 0;
        if (divided)
        {
            if (dv % 16 == 0)
            {
                squareRows = rows & ~15;
                BlockOutput.StoreSquares((float*)accumulator, dv, (float*)(p.Output + (nint)firstRow * p.OutputStride + (nint)head * dv),
                    p.OutputStride, squareRows);
            }
        }
        else
        {
            for (int c = 0; c < dv; c++)
            {
                double* a = rowA + (nint)c * lanes;
                int lane = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    // In bounds: lane + 4 <= lanes.
                    for (; lane + 4 <= lanes; lane += 4)
                        (Vector256.Load(a + lane) / Vector256.Load(rowL + lane)).Store(a + lane);
                }
                for (; lane < lanes; lane++) a[lane] /= rowL[lane];
            }
        }

        int firstColumn = 0;
        if (Avx.IsSupported && (rows & ~3) > 0)
        {
            // O of whole groups of four rows, four columns at a time: a 4 × 4 transpose of the dv × lanes state in registers
            // (the strided scalar reads were ≈ 2% of a call). Rows without a visible key or with l = 0 are overwritten by
            // StoreRows; the last dv mod 4 columns, and the rows past the last whole group, are written there.
            firstColumn = dv & ~3;
            StoreRowGroups(in p, head, firstRow, squareRows, rows & ~3, lanes, rowA);
        }
        StoreRows(in p, head, firstRow, rows, rowM, rowL, rowA, rowTerm, laneStride: 1, columnStride: lanes, divided: true,
            firstColumn: firstColumn, firstScalarLane: rows & ~3);
    }

    /// <summary>O[firstRow + lane, c] = a[c][lane] (already divided by l, rounded once to T) for lanes [firstLane, endLane)
    /// (multiples of 4) and columns [0, dv − dv mod 4), four rows and four columns per transpose (AVX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreRowGroups(in AttentionProblem<T> p, int head, int firstRow, int firstLane, int endLane, int lanes, double* rowA)
    {
        int dv = p.ValueDim;
        for (int lane = firstLane; lane < endLane; lane += 4)
        {
            T* output0 = p.Output + (nint)(firstRow + lane) * p.OutputStride + (nint)head * dv;
            T* output1 = output0 + p.OutputStride, output2 = output1 + p.OutputStride, output3 = output2 + p.OutputStride;
            // In bounds: columns c..c+3 < dv of rows lane..lane+3 < endLane ≤ rows; a[c + i] is a lane row of the state.
            for (int c = 0; c + 4 <= dv; c += 4)
            {
                double* a = rowA + (nint)c * lanes + lane;
                Vector256<double> r0 = Avx.LoadVector256(a), r1 = Avx.LoadVector256(a + lanes);
                Vector256<double> r2 = Avx.LoadVector256(a + 2 * lanes), r3 = Avx.LoadVector256(a + 3 * lanes);
                Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
                Vector256<double> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
                StoreColumns(Avx.Permute2x128(t0, t2, 0x20), output0 + c);
                StoreColumns(Avx.Permute2x128(t1, t3, 0x20), output1 + c);
                StoreColumns(Avx.Permute2x128(t0, t2, 0x31), output2 + c);
                StoreColumns(Avx.Permute2x128(t1, t3, 0x31), output3 + c);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumns(Vector256<double> values, T* destination)
    {
        if (typeof(T) == typeof(float)) Avx.Store((float*)destination, Avx.ConvertToVector128Single(values));
        else Avx.Store((double*)destination, values);
    }

    /// <summary>O = a / l and LSE = m + log l (+ the Gaussian row term); l = 0 gives O = 0 and LSE = −∞ (MATH §4).</summary>
    internal static void Finalise(in AttentionProblem<T> p, int head, int firstRow, int rows,
        double* rowM, double* rowL, double* rowA, double* rowTerm)
        => StoreRows(in p, head, firstRow, rows, rowM, rowL, rowA, rowTerm, laneStride: p.ValueDim, columnStride: 1, divided: false);

    /// <summary>Writes O and LSE of rows [firstRow, firstRow + rows) from the double row state; a of lane r, column c is at
    /// rowA[r·laneStride + c·columnStride], already divided by l when <paramref name="divided"/>. Rows without a visible key
    /// get O = 0 and LSE = s₀ (or −∞) exactly, not s₀ moved to the shifted scale and back; l = 0 gives O = 0, LSE = −∞.
    /// Lanes below <paramref name="firstScalarLane"/> have their ordinary columns below <paramref name="firstColumn"/>
    /// written already (<see cref="StoreRowGroups"/>).</summary>
    private static void StoreRows(in AttentionProblem<T> p, int head, int firstRow, int rows, double* rowM, double* rowL,
        double* rowA, double* rowTerm, nint laneStride, nint columnStride, bool divided, int firstColumn = 0, int firstScalarLane = 0)
    {
        int dv = p.ValueDim;
        for (int lane = 0; lane < rows; lane++)
        {
            int i = firstRow + lane;
            T* output = p.Output + (nint)i * p.OutputStride + (nint)head * dv;
            double l = rowL[lane];
            double* a = rowA + lane * laneStride;
            double logSumExp;
            if (!HasVisibleKey(in p, i))
            {
                for (int c = 0; c < dv; c++) output[c] = T.Zero;
                logSumExp = p.SinkLogits != null ? p.SinkLogits[head] : double.NegativeInfinity;
            }
            else if (l == 0)
            {
                for (int c = 0; c < dv; c++) output[c] = T.Zero;
                logSumExp = double.NegativeInfinity;
            }
            else
            {
                int c = lane < firstScalarLane ? firstColumn : 0;
                if (!divided && columnStride == 1 && Vector256.IsHardwareAccelerated)
                {
                    // Contiguous row state (the decode kernel's): a / l four at a time, rounded once to T. In bounds: c + 4 <= dv.
                    Vector256<double> lVector = Vector256.Create(l);
                    for (; c + 4 <= dv; c += 4)
                    {
                        Vector256<double> quotient = Vector256.Load(a + c) / lVector;
                        if (typeof(T) == typeof(float)) Vector256.Narrow(quotient, quotient).GetLower().Store((float*)output + c);
                        else quotient.Store((double*)output + c);
                    }
                }
                for (; c < dv; c++)
                    output[c] = T.CreateTruncating(divided ? a[c * columnStride] : a[c * columnStride] / l);
                logSumExp = p.LogSumExp != null ? rowM[lane] + System.Math.Log(l) + rowTerm[lane] : 0;
            }
            if (p.LogSumExp != null) p.LogSumExp[(nint)head * p.QueryCount + i] = T.CreateTruncating(logSumExp);
        }
    }
}
