using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CommunityToolkit.HighPerformance;

namespace FastKernelAttention.Benchmarks;

/// <summary>
/// <c>--decode-patterns</c>: how fast one core reads W4's K and V (token-major, 8192 × 32 heads × 128 floats each) in the
/// orders a decode kernel can use, with and without its arithmetic, in turns with our W4 call on the same arrays (medians
/// of 8 rounds). The models do a decode kernel's loads, FMAs and horizontal sums on the same arrays (their results are
/// discarded); "state" is the per-head query (logit phase) and accumulator (value phase) such a kernel keeps in L1/L2:
/// 32 heads × 128 floats = 16 KiB each for W4, or 4 KiB when a model aliases the heads to show what the size costs.
/// A second table times our decode call with K and V in L2, L3 and memory, float against bfloat16 (<see cref="ByCacheLevel"/>).
/// </summary>
public static unsafe class DecodePatterns
{
    private const int Heads = 32, HeadDim = 128, Keys = 8192, Group = 16;
    private const long RowFloats = Heads * HeadDim;

    private static readonly string[] Names =
    {
        "sequential sum (K, then V)",
        "K then V in 64-key tiles, whole rows, no arithmetic",
        "our kernel's reads alone: 4 rows by head slice, next 4 rows prefetched",
        "1 row at a time, no prefetch, no arithmetic",
        "model of our kernel: Dot4 + MultiplyAdd4 by head slice, next 4 rows prefetched",
        "the same without software prefetch",
        "the same (prefetched) with a 4 KiB state",
        "1 row at a time: per-head dot + value FMAs, no prefetch",
        "the same with a 4 KiB state",
        "1 row at a time: per-head dot + value FMAs, each head's slice of the row 2 ahead prefetched",
        "the same, 4 rows ahead",
        "K of tile t+1 with V of tile t: Dot4 + MultiplyAdd4, next 4 rows of each prefetched",
        "8-head (4 KiB) stretches of each row per tile, 1-row arithmetic, 2 rows ahead",
        "16-key groups head by head (keys as lanes), no arithmetic, 2 steps ahead",
        "our kernel's reads alone, the next 4 rows prefetched in address order (2 KiB per head step)",
        "model of our kernel, the next 4 rows prefetched in address order",
        "the same, rows 8–11 on prefetched in address order",
        "our W4 call (Attention.ForwardMultiHead)",
    };

    public static int Run()
    {
        var key = new float[Keys * RowFloats];
        var value = new float[Keys * RowFloats];
        var query = new float[RowFloats];
        var output = new float[RowFloats];
        var random = new Random(4);
        foreach (float[] a in new[] { key, value, query })
            for (long i = 0; i < a.LongLength; i++) a[i] = (float)(random.NextDouble() * 2 - 1);
        var options = new AttentionOptions { MaxDegreeOfParallelism = 1 };
        double bytes = 2.0 * key.LongLength * sizeof(float);
        const int Small = 1024; // a 4 KiB state

        var rates = new List<double>[Names.Length];
        for (int i = 0; i < Names.Length; i++) rates[i] = new List<double>();
        fixed (float* k = key, v = value)
        {
            for (int round = 0; round < 10; round++)
            {
                for (int pattern = 0; pattern < Names.Length; pattern++)
                {
                    var watch = Stopwatch.StartNew();
                    float sink = pattern switch
                    {
                        0 => Sum(k, key.LongLength) + Sum(v, value.LongLength),
                        1 => Tiles(k, v),
                        2 => Ordered(k, v, 4, 4),
                        3 => Ordered(k, v, 1, 0),
                        4 => Compute4(k, v, query, output, (int)RowFloats, true),
                        5 => Compute4(k, v, query, output, (int)RowFloats, false),
                        6 => Compute4(k, v, query, output, Small, true),
                        7 => Compute(k, v, query, output, (int)RowFloats),
                        8 => Compute(k, v, query, output, Small),
                        9 => Compute(k, v, query, output, (int)RowFloats, ahead: 2),
                        10 => Compute(k, v, query, output, (int)RowFloats, ahead: 4),
                        11 => PipedCompute4(k, v, query, output, 4),
                        12 => Stretches(k, v, query, output, 8, 2),
                        13 => Slices(k, v),
                        14 => Ordered(k, v, 4, 4, addressOrder: true),
                        15 => Compute4(k, v, query, output, (int)RowFloats, true, addressOrder: 4),
                        16 => Compute4(k, v, query, output, (int)RowFloats, true, addressOrder: 8),
                        _ => Call(query, key, value, output, options),
                    };
                    double seconds = watch.Elapsed.TotalSeconds;
                    if (round >= 2 && !float.IsNaN(sink)) rates[pattern].Add(bytes / seconds / 1e9);
                }
            }
        }

        Console.WriteLine($"Reading W4's K and V ({bytes / (1 << 20):F0} MiB) on one core, in turns, medians of {rates[0].Count} rounds:");
        Console.WriteLine();
        Console.WriteLine("| order | GB/s | of the sequential sum |");
        Console.WriteLine("|---|---:|---:|");
        double sequential = Median(rates[0]);
        for (int i = 0; i < Names.Length; i++)
            Console.WriteLine($"| {Names[i]} | {Median(rates[i]):F1} | {Median(rates[i]) / sequential:P0} |");
        Console.WriteLine();
        ByCacheLevel();
        return 0;
    }

    /// <summary>
    /// Our decode call (W4's 32 heads × 128, one query row) with K and V stored as float and as bfloat16, for 16, 256 and
    /// 8192 keys: K and V of 512 KiB, 8 MiB and 256 MiB in float (half that in bfloat16), i.e. from L2, L3 and memory on a
    /// core with 1 MiB of L2 and 32 MiB of L3. Rates are elements of K and V per second (the arithmetic is the same per
    /// element in both formats) and GB/s of the stored bytes; the two formats of one size are timed in turns (medians).
    /// </summary>
    private static void ByCacheLevel()
    {
        var options = new AttentionOptions { MaxDegreeOfParallelism = 1 };
        var random = new Random(6);
        var query = new float[RowFloats];
        var output = new float[RowFloats];
        for (int i = 0; i < query.Length; i++) query[i] = (float)(random.NextDouble() * 2 - 1);
        Console.WriteLine("Our decode call by where K and V live (32 heads × 128, one query row; medians of calls in turns):");
        Console.WriteLine();
        Console.WriteLine("| keys | K + V (float) | float: G elements/s | GB/s | bfloat16: G elements/s | GB/s | bfloat16 / float |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (int keys in new[] { 16, 256, Keys })
        {
            var key = new float[keys * RowFloats];
            var value = new float[keys * RowFloats];
            for (long i = 0; i < key.LongLength; i++)
            {
                key[i] = (float)(random.NextDouble() * 2 - 1);
                value[i] = (float)(random.NextDouble() * 2 - 1);
            }
            BFloat16[] key16 = Array.ConvertAll(key, x => (BFloat16)x), value16 = Array.ConvertAll(value, x => (BFloat16)x);
            int width = (int)RowFloats;
            Action[] calls =
            {
                () => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(query, 1, width), new ReadOnlySpan2D<float>(key, keys, width),
                    new ReadOnlySpan2D<float>(value, keys, width), new Span2D<float>(output, 1, width), Heads, Heads, options),
                () => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(query, 1, width), new ReadOnlySpan2D<BFloat16>(key16, keys, width),
                    new ReadOnlySpan2D<BFloat16>(value16, keys, width), new Span2D<float>(output, 1, width), Heads, Heads, options),
            };
            double[] milliseconds = QuickTable.InterleavedMedians(calls, 15, threads: 1);
            double elements = 2.0 * key.LongLength;
            double floatRate = elements / milliseconds[0] / 1e6, bf16Rate = elements / milliseconds[1] / 1e6;
            Console.WriteLine($"| {keys} | {elements * sizeof(float) / (1 << 20):0.#} MiB | {floatRate:F1} | {floatRate * sizeof(float):F1} | "
                + $"{bf16Rate:F1} | {bf16Rate * 2:F1} | {milliseconds[0] / milliseconds[1]:F2}× |");
        }
    }

    private static float Call(float[] query, float[] key, float[] value, float[] output, AttentionOptions options)
    {
        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(query, 1, (int)RowFloats), new ReadOnlySpan2D<float>(key, Keys, (int)RowFloats),
            new ReadOnlySpan2D<float>(value, Keys, (int)RowFloats), new Span2D<float>(output, 1, (int)RowFloats), Heads, Heads, options);
        return output[0];
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private static float Sum(float* p, long count)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (long i = 0; i + 32 <= count; i += 32)
        {
            s0 += Vector256.Load(p + i);
            s1 += Vector256.Load(p + i + 8);
            s2 += Vector256.Load(p + i + 16);
            s3 += Vector256.Load(p + i + 24);
        }
        return Vector256.Sum(s0 + s1 + s2 + s3);
    }

    private static float Tiles(float* k, float* v)
    {
        float total = 0;
        for (long tile = 0; tile < Keys; tile += 64)
        {
            total += Sum(k + tile * RowFloats, 64 * RowFloats);
            total += Sum(v + tile * RowFloats, 64 * RowFloats);
        }
        return total;
    }

    /// <summary>rowsPerStep rows read head slice by head slice (K then V per 64-key tile), no arithmetic; with ahead &gt; 0,
    /// the slices of the rowsPerStep rows <paramref name="ahead"/> on in the K-then-V sequence are prefetched (as our kernel),
    /// or with <paramref name="addressOrder"/> those rows in address order, an equal share per head step.</summary>
    private static float Ordered(float* k, float* v, int rowsPerStep, int ahead, bool addressOrder = false)
    {
        Vector512<float> sum = default;
        for (long tile = 0; tile < Keys; tile += 64)
        {
            for (int phase = 0; phase < 2; phase++)
            {
                float* rows = (phase == 0 ? k : v) + tile * RowFloats;
                for (int j = 0; j < 64; j += rowsPerStep)
                {
                    for (int head = 0; head < Heads; head++)
                    {
                        if (addressOrder) PrefetchShare(k, v, tile, phase, j + ahead, rowsPerStep, head);
                        else
                        {
                            for (int a = 0; ahead > 0 && a < rowsPerStep; a++)
                                PrefetchSlice(AheadRow(k, v, tile, phase, j + ahead + a), head);
                        }
                        for (int r = 0; r < rowsPerStep; r++)
                        {
                            float* stretch = rows + (j + r) * RowFloats + head * HeadDim;
                            for (int c = 0; c < HeadDim; c += 16) sum += Vector512.Load(stretch + c);
                        }
                    }
                }
            }
        }
        return Vector512.Sum(sum);
    }

    /// <summary>Row <paramref name="index"/> (0 … 127) of tile <paramref name="tile"/>'s phase sequence: this phase's rows, then
    /// the next phase's (V of this tile after K; K of the next tile after V); null past the keys.</summary>
    private static float* AheadRow(float* k, float* v, long tile, int phase, int index)
    {
        if (index < 64) return (phase == 0 ? k : v) + (tile + index) * RowFloats;
        if (phase == 0) return v + (tile + index - 64) * RowFloats;
        return tile + index < Keys ? k + (tile + index) * RowFloats : null;
    }

    /// <summary>Requests head <paramref name="head"/>'s 512-byte slice of a row into L2 (no-op for null or without SSE).</summary>
    private static void PrefetchSlice(float* row, int head)
    {
        if (row == null || !Sse.IsSupported) return;
        byte* b = (byte*)(row + head * HeadDim);
        for (int line = 0; line < HeadDim * sizeof(float); line += 64) Sse.Prefetch1(b + line);
    }

    /// <summary>Head step <paramref name="head"/>'s share of rows [first, first + rows) of the phase sequence in address
    /// order: those rows' bytes split into Heads equal stretches, the head-th of them requested into L2.</summary>
    private static void PrefetchShare(float* k, float* v, long tile, int phase, int first, int rows, int head)
    {
        if (!Sse.IsSupported) return;
        long shareBytes = rows * RowFloats * sizeof(float) / Heads;
        long start = head * shareBytes;
        long rowBytes = RowFloats * sizeof(float);
        byte* row = (byte*)AheadRow(k, v, tile, phase, first + (int)(start / rowBytes));
        if (row == null) return;
        byte* b = row + start % rowBytes;
        for (long line = 0; line < shareBytes; line += 64) Sse.Prefetch1(b + line);
    }

    /// <summary>One row at a time: per head a dot product (four partial sums, a horizontal sum) over the K rows of a tile,
    /// then p·v into the head's accumulator over its V rows. stateFloats: the query and accumulator floats the heads use
    /// (RowFloats, or fewer: heads aliased). With <paramref name="ahead"/> &gt; 0, software prefetch in this order: while a
    /// head works on its slice of a row, the same slice of the row <paramref name="ahead"/> on in the K-then-V sequence is
    /// requested; 0: none.</summary>
    private static float Compute(float* k, float* v, float[] queryArray, float[] accArray, int stateFloats, int ahead = 0)
    {
        float* scores = stackalloc float[Heads * 64];
        fixed (float* q = queryArray, acc = accArray)
        {
            for (long tile = 0; tile < Keys; tile += 64)
            {
                for (int j = 0; j < 64; j++)
                {
                    float* aheadRow = ahead > 0 ? AheadRow(k, v, tile, 0, j + ahead) : null;
                    for (int head = 0; head < Heads; head++)
                    {
                        PrefetchSlice(aheadRow, head);
                        scores[head * 64 + j] = Dot1(k + (tile + j) * RowFloats + head * HeadDim, q + head * HeadDim % stateFloats);
                    }
                }
                for (int j = 0; j < 64; j++)
                {
                    float* aheadRow = ahead > 0 ? AheadRow(k, v, tile, 1, j + ahead) : null;
                    for (int head = 0; head < Heads; head++)
                    {
                        PrefetchSlice(aheadRow, head);
                        MultiplyAdd1(v + (tile + j) * RowFloats + head * HeadDim, scores[head * 64 + j], acc + head * HeadDim % stateFloats);
                    }
                }
            }
            return acc[0];
        }
    }

    /// <summary>Our kernel's arithmetic order: per 4-key step and head, four keys' dots sharing the query loads (logit
    /// phase), then four value rows into the accumulator (value phase), with the next four rows' slices prefetched, or with
    /// <paramref name="addressOrder"/> &gt; 0 the four rows that far on, in address order (<see cref="PrefetchShare"/>).</summary>
    private static float Compute4(float* k, float* v, float[] queryArray, float[] accArray, int stateFloats, bool prefetch, int addressOrder = 0)
    {
        float* scores = stackalloc float[Heads * 64];
        fixed (float* q = queryArray, acc = accArray)
        {
            for (long tile = 0; tile < Keys; tile += 64)
            {
                for (int phase = 0; phase < 2; phase++)
                {
                    float* rows = (phase == 0 ? k : v) + tile * RowFloats;
                    for (int j = 0; j < 64; j += 4)
                    {
                        for (int head = 0; head < Heads; head++)
                        {
                            if (addressOrder > 0) PrefetchShare(k, v, tile, phase, j + addressOrder, 4, head);
                            else for (int a = 4; prefetch && a < 8; a++) PrefetchSlice(AheadRow(k, v, tile, phase, j + a), head);
                            float* r0 = rows + j * RowFloats + head * HeadDim;
                            if (phase == 0) Dot4(r0, q + head * HeadDim % stateFloats, scores + head * 64 + j);
                            else MultiplyAdd4(r0, scores + head * 64 + j, acc + head * HeadDim % stateFloats);
                        }
                    }
                }
            }
            return acc[0];
        }
    }

    /// <summary>Software-pipelined: each 4-key step does the logits of tile t + 1 and the values of tile t, head by head,
    /// so K and V stream together; the next four rows of each are prefetched.</summary>
    private static float PipedCompute4(float* k, float* v, float[] queryArray, float[] accArray, int ahead)
    {
        float* scores = stackalloc float[2 * Heads * 64];
        fixed (float* q = queryArray, acc = accArray)
        {
            for (long tile = -64; tile < Keys; tile += 64)
            {
                float* kRows = tile + 64 < Keys ? k + (tile + 64) * RowFloats : null;
                float* vRows = tile >= 0 ? v + tile * RowFloats : null;
                float* kScores = scores + ((tile + 64) / 64 % 2) * Heads * 64;
                float* vScores = scores + ((tile + 128) / 64 % 2) * Heads * 64;
                for (int j = 0; j < 64; j += 4)
                {
                    for (int head = 0; head < Heads; head++)
                    {
                        for (int a = ahead; a < ahead + 4; a++)
                        {
                            long kIndex = tile + 64 + j + a, vIndex = tile + j + a;
                            PrefetchSlice(kIndex < Keys ? k + kIndex * RowFloats : null, head);
                            PrefetchSlice(vIndex >= 0 && vIndex < Keys ? v + vIndex * RowFloats : null, head);
                        }
                        if (kRows != null) Dot4(kRows + j * RowFloats + head * HeadDim, q + head * HeadDim, kScores + head * 64 + j);
                        if (vRows != null) MultiplyAdd4(vRows + j * RowFloats + head * HeadDim, vScores + head * 64 + j, acc + head * HeadDim);
                    }
                }
            }
            return acc[0];
        }
    }

    /// <summary>Per tile, the heads in groups of <paramref name="groupHeads"/> (a small state): each group's stretch of the
    /// 64 K rows, then of the 64 V rows, with the stretch <paramref name="ahead"/> rows on prefetched (the next phase's
    /// stretch past the end).</summary>
    private static float Stretches(float* k, float* v, float[] queryArray, float[] accArray, int groupHeads, int ahead)
    {
        float* scores = stackalloc float[Heads * 64];
        fixed (float* q = queryArray, acc = accArray)
        {
            for (long tile = 0; tile < Keys; tile += 64)
            {
                for (int first = 0; first < Heads; first += groupHeads)
                {
                    for (int phase = 0; phase < 2; phase++)
                    {
                        for (int j = 0; j < 64; j++)
                        {
                            int index = j + ahead;
                            float* aheadRow = index < 64 ? (phase == 0 ? k : v) + (tile + index) * RowFloats
                                : phase == 0 ? v + (tile + index - 64) * RowFloats
                                : first + groupHeads < Heads ? k + (tile + index - 64) * RowFloats
                                : tile + index < Keys ? k + (tile + index) * RowFloats : null;
                            int aheadFirst = index >= 64 && phase == 1 ? (first + groupHeads) % Heads : first;
                            for (int h = 0; h < groupHeads; h++) PrefetchSlice(aheadRow, aheadFirst + h);
                            for (int head = first; head < first + groupHeads; head++)
                            {
                                if (phase == 0) scores[head * 64 + j] = Dot1(k + (tile + j) * RowFloats + head * HeadDim, q + head * HeadDim);
                                else MultiplyAdd1(v + (tile + j) * RowFloats + head * HeadDim, scores[head * 64 + j], acc + head * HeadDim);
                            }
                        }
                    }
                }
            }
            return acc[0];
        }
    }

    /// <summary>A 128-element dot product with four partial sums (scaled down so the models' numbers stay small).</summary>
    private static float Dot1(float* x, float* q)
    {
        Vector512<float> a0 = Vector512.Load(x) * Vector512.Load(q);
        Vector512<float> a1 = Vector512.Load(x + 16) * Vector512.Load(q + 16);
        Vector512<float> a2 = Vector512.Load(x + 32) * Vector512.Load(q + 32);
        Vector512<float> a3 = Vector512.Load(x + 48) * Vector512.Load(q + 48);
        a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 64), Vector512.Load(q + 64), a0);
        a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 80), Vector512.Load(q + 80), a1);
        a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 96), Vector512.Load(q + 96), a2);
        a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 112), Vector512.Load(q + 112), a3);
        return Vector512.Sum((a0 + a1) + (a2 + a3)) * 1e-30f;
    }

    /// <summary>acc += p·x over 128 elements.</summary>
    private static void MultiplyAdd1(float* x, float p, float* acc)
    {
        Vector512<float> b = Vector512.Create(p);
        for (int c = 0; c < HeadDim; c += 16) Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(x + c), b, Vector512.Load(acc + c)), acc + c);
    }

    /// <summary>Four consecutive rows' dot products with one query (its loads shared), into scores[0..3].</summary>
    private static void Dot4(float* r0, float* q, float* scores)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default;
        for (int c = 0; c < HeadDim; c += 32)
        {
            Vector512<float> qa = Vector512.Load(q + c), qb = Vector512.Load(q + c + 16);
            s0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + c), qa, s0);
            s1 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + RowFloats + c), qa, s1);
            s2 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 2 * RowFloats + c), qa, s2);
            s3 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 3 * RowFloats + c), qa, s3);
            t0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + c + 16), qb, t0);
            t1 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + RowFloats + c + 16), qb, t1);
            t2 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 2 * RowFloats + c + 16), qb, t2);
            t3 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 3 * RowFloats + c + 16), qb, t3);
        }
        scores[0] = Vector512.Sum(s0 + t0) * 1e-30f;
        scores[1] = Vector512.Sum(s1 + t1) * 1e-30f;
        scores[2] = Vector512.Sum(s2 + t2) * 1e-30f;
        scores[3] = Vector512.Sum(s3 + t3) * 1e-30f;
    }

    /// <summary>acc += Σ p_r·row_r over four consecutive rows, the accumulator in registers across them.</summary>
    private static void MultiplyAdd4(float* r0, float* p, float* acc)
    {
        Vector512<float> p0 = Vector512.Create(p[0]), p1 = Vector512.Create(p[1]), p2 = Vector512.Create(p[2]), p3 = Vector512.Create(p[3]);
        for (int c = 0; c < HeadDim; c += 16)
        {
            Vector512<float> x = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + c), p0, Vector512.Load(acc + c));
            x = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + RowFloats + c), p1, x);
            x = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 2 * RowFloats + c), p2, x);
            Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(r0 + 3 * RowFloats + c), p3, x), acc + c);
        }
    }

    /// <summary>16-key groups read head by head (each head's 512-byte stretch of the 16 rows: a keys-as-lanes kernel's
    /// order), K then V per group, the stretches two steps ahead prefetched.</summary>
    private static float Slices(float* k, float* v)
    {
        Vector512<float> sum = default;
        for (long group = 0; group < Keys; group += Group)
        {
            for (int phase = 0; phase < 2; phase++)
            {
                float* rows = phase == 0 ? k : v;
                for (int head = 0; head < Heads; head++)
                {
                    if (Sse.IsSupported)
                    {
                        int aheadHead = head + 2;
                        long aheadGroup = group;
                        if (aheadHead >= Heads) { aheadHead -= Heads; aheadGroup += Group; }
                        if (aheadGroup < Keys)
                        {
                            for (int r = 0; r < Group; r++)
                            {
                                byte* stretch = (byte*)(rows + (aheadGroup + r) * RowFloats + aheadHead * HeadDim);
                                for (int b = 0; b < HeadDim * sizeof(float); b += 64) Sse.Prefetch1(stretch + b);
                            }
                        }
                    }
                    for (int r = 0; r < Group; r++)
                    {
                        float* stretch = rows + (group + r) * RowFloats + head * HeadDim;
                        for (int c = 0; c < HeadDim; c += 16) sum += Vector512.Load(stretch + c);
                    }
                }
            }
        }
        return Vector512.Sum(sum);
    }
}
