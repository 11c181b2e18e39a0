using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CommunityToolkit.HighPerformance;

namespace FastKernelAttention.Benchmarks;

/// <summary>
/// <c>--decode-patterns</c>: how fast one core reads W4's K and V (token-major, 8192 × 32 heads × 128 floats each) in the
/// orders a decode kernel can use, without arithmetic, in turns with our W4 call on the same arrays (medians of 8 rounds):
/// the sequential probe; K then V in 64-key tiles (our kernel's order); 16-key groups read head by head, each head's
/// 512-byte stretch of the 16 rows (the order of a keys-as-lanes kernel, whose 16 logits come out as one register), with
/// the stretches two steps ahead requested into L2; and the same groups with the next phase's rows requested in address
/// order (V of this group while K is read, K of the next while V is read).
/// </summary>
public static unsafe class DecodePatterns
{
    private const int Heads = 32, HeadDim = 128, Keys = 8192, Group = 16;
    private const long RowFloats = Heads * HeadDim;

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

        string[] names =
        {
            "sequential sum (K, then V)",
            "K then V in 64-key tiles (our decode order)",
            "16-key groups, head by head (keys as lanes), 2 steps ahead",
            "16-key groups, next phase's rows requested in address order",
            "our W4 call (Attention.ForwardMultiHead)",
        };
        var rates = new List<double>[names.Length];
        for (int i = 0; i < names.Length; i++) rates[i] = new List<double>();
        fixed (float* k = key, v = value)
        {
            for (int round = 0; round < 10; round++)
            {
                for (int pattern = 0; pattern < names.Length; pattern++)
                {
                    var watch = Stopwatch.StartNew();
                    float sink = pattern switch
                    {
                        0 => Sum(k, key.LongLength) + Sum(v, value.LongLength),
                        1 => Tiles(k, v),
                        2 => Slices(k, v, phased: false),
                        3 => Slices(k, v, phased: true),
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
        for (int i = 0; i < names.Length; i++)
            Console.WriteLine($"| {names[i]} | {Median(rates[i]):F1} | {Median(rates[i]) / sequential:P0} |");
        return 0;
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

    private static float Slices(float* k, float* v, bool phased)
    {
        Vector512<float> sum = default;
        long groupLines = Group * RowFloats * sizeof(float) / 64;
        for (long group = 0; group < Keys; group += Group)
        {
            for (int phase = 0; phase < 2; phase++)
            {
                float* rows = phase == 0 ? k : v;
                for (int head = 0; head < Heads; head++)
                {
                    if (phased && Sse.IsSupported)
                    {
                        byte* ahead = phase == 0 ? (byte*)(v + group * RowFloats) : group + Group < Keys ? (byte*)(k + (group + Group) * RowFloats) : null;
                        if (ahead != null)
                            for (long line = groupLines * head / Heads, end = groupLines * (head + 1) / Heads; line < end; line++) Sse.Prefetch1(ahead + line * 64);
                    }
                    else if (!phased && Sse.IsSupported)
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
