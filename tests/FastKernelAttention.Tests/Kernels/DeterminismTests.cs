using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>MATH §4: on each ISA path, MaxDegreeOfParallelism 1, 2, 7 and −1 give bitwise-identical O and LSE (block and
/// chunk sizes never depend on the thread count), float and double, dot and Gaussian, causal, sinks, multi-head GQA.</summary>
public class DeterminismTests
{
    private static readonly int[] Degrees = { 1, 2, 7, -1 };

    public static TheoryData<IsaPath, bool, AttentionKernel, bool> Cases()
    {
        var data = new TheoryData<IsaPath, bool, AttentionKernel, bool>();
        foreach (object[] row in IsaPaths.Supported())
        {
            foreach (bool isDouble in new[] { false, true })
            {
                data.Add((IsaPath)row[0], isDouble, AttentionKernel.Dot, false);
                data.Add((IsaPath)row[0], isDouble, AttentionKernel.Dot, true);
                data.Add((IsaPath)row[0], isDouble, AttentionKernel.Gaussian, false);
                data.Add((IsaPath)row[0], isDouble, AttentionKernel.Gaussian, true);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryDegreeOfParallelismGivesTheSameBits(IsaPath path, bool isDouble, AttentionKernel kernel, bool causal)
    {
        // Many blocks: m = 300, n = 500, H = 4 over Hkv = 2 (GQA), one sink for every head.
        var options = new AttentionOptions { Kernel = kernel, Bandwidth = 5, Causal = causal, SinkLogit = causal ? 0.5 : null };
        if (isDouble) CheckDeterminism<double>(path, 300, 500, 24, 20, 4, 2, options, perHeadSinks: false);
        else CheckDeterminism<float>(path, 300, 500, 24, 20, 4, 2, options, perHeadSinks: false);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void OtherShapesGiveTheSameBits(IsaPath path, bool isDouble)
    {
        foreach (var (m, n, d, dv, heads, kvHeads, options, perHead) in new[]
        {
            (3, 1100, 16, 8, 8, 1, new AttentionOptions { Causal = true }, true),                                        // decode: the row kernel, MQA, several key chunks
            (130, 1100, 9, 3, 2, 2, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 2 }, false),  // several key chunks
            (257, 40, 5, 7, 3, 1, new AttentionOptions { Causal = true, Scale = 0.3 }, true),                            // m > n: empty rows
            (64, 64, 128, 0, 2, 1, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e-2 }, false), // LSE only, direct differences
        })
        {
            if (isDouble) CheckDeterminism<double>(path, m, n, d, dv, heads, kvHeads, options, perHead);
            else CheckDeterminism<float>(path, m, n, d, dv, heads, kvHeads, options, perHead);
        }
    }

    /// <summary>The first element whose bits differ (NaN payloads and the sign of zero included), or −1.</summary>
    private static int FirstDifference<T>(T[] expected, T[] actual)
        where T : unmanaged
    {
        Assert.Equal(expected.Length, actual.Length);
        int bytes = MemoryMarshal.AsBytes(expected.AsSpan()).CommonPrefixLength(MemoryMarshal.AsBytes(actual.AsSpan()));
        return bytes == expected.Length * Unsafe.SizeOf<T>() ? -1 : bytes / Unsafe.SizeOf<T>();
    }

    private static void CheckDeterminism<T>(IsaPath path, int m, int n, int d, int dv, int heads, int kvHeads, AttentionOptions options, bool perHeadSinks)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(11 + m + n);
        T[] q = AttentionCase.Fill<T>(random, m, heads * d, 0, 0), k = AttentionCase.Fill<T>(random, n, kvHeads * d, 0, 0), v = AttentionCase.Fill<T>(random, n, kvHeads * dv, 0, 0);
        T[]? sinks = null;
        if (perHeadSinks)
        {
            sinks = new T[heads];
            for (int h = 0; h < heads; h++) sinks[h] = h % 3 == 2 ? T.NegativeInfinity : T.CreateTruncating(0.25 * h);
        }
        T[]? first = null, firstLse = null;
        foreach (int degree in Degrees)
        {
            var (o, lse) = DenseCase.Run(path, q, k, v, m, n, d, dv, options with { MaxDegreeOfParallelism = degree }, heads, kvHeads, sinks);
            if (first is null || firstLse is null)
            {
                first = o;
                firstLse = lse;
                Assert.Contains(lse, x => T.IsFinite(x)); // a real result, not all NaN or empty
                continue;
            }
            string where = $"{path} {typeof(T).Name} m={m} n={n} d={d} dv={dv} H={heads} Hkv={kvHeads} {options}";
            int at = FirstDifference(first, o);
            Assert.True(at < 0, $"{where}: O differs at degree {degree}, element {at}");
            at = FirstDifference(firstLse, lse);
            Assert.True(at < 0, $"{where}: LSE differs at degree {degree}, element {at}");
        }
    }
    /// <summary>A row's result does not depend on the rows beside it in its block: the first r rows of a 64-row call give
    /// the same bits alone, where the block kernel runs only the query vectors that hold rows (r = 9 … 48 on the 512-bit
    /// path: one vector with eight-key and eight-column micro-kernels, two, three) and the others on full blocks; strided
    /// multi-head K/V read from memory (their next tiles prefetched; at a V pitch of 4 KiB or 8 KiB, H = Hkv = 8 with
    /// dv = 128, one or two vectors copy each V tile first), dot and Gaussian, with and without a sink.</summary>
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void RowsAloneGiveTheBitsOfAFullBlock(IsaPath path, bool isDouble)
    {
        foreach (var options in new[]
        {
            new AttentionOptions { MaxDegreeOfParallelism = 1 },
            new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 4, SinkLogit = 0.5, MaxDegreeOfParallelism = 2 },
        })
        {
            foreach (var (d, dv, heads, kvHeads) in new[] { (40, 19, 4, 2), (24, 128, 8, 8) })
            {
                if (isDouble) CheckRowsAlone<double>(path, options, d, dv, heads, kvHeads);
                else CheckRowsAlone<float>(path, options, d, dv, heads, kvHeads);
            }
        }
    }

    private static void CheckRowsAlone<T>(IsaPath path, AttentionOptions options, int D, int Dv, int Heads, int KvHeads)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int M = 64, N = 300;
        var random = new Random(5);
        T[] q = AttentionCase.Fill<T>(random, M, Heads * D, 0, 0), k = AttentionCase.Fill<T>(random, N, KvHeads * D, 0, 0), v = AttentionCase.Fill<T>(random, N, KvHeads * Dv, 0, 0);
        var (full, fullLse) = DenseCase.Run(path, q, k, v, M, N, D, Dv, options, Heads, KvHeads, null);
        foreach (int rows in new[] { 9, 16, 17, 33, 48 })
        {
            var (o, lse) = DenseCase.Run(path, q.AsSpan(0, rows * Heads * D).ToArray(), k, v, rows, N, D, Dv, options, Heads, KvHeads, null);
            string where = $"{path} {typeof(T).Name} rows={rows} d={D} dv={Dv} H={Heads} Hkv={KvHeads} {options}";
            int at = FirstDifference(full.AsSpan(0, rows * Heads * Dv).ToArray(), o);
            Assert.True(at < 0, $"{where}: O differs at element {at}");
            // LSE is head-major, [H][m].
            for (int h = 0; h < Heads; h++)
            {
                at = FirstDifference(fullLse.AsSpan(h * M, rows).ToArray(), lse.AsSpan(h * rows, rows).ToArray());
                Assert.True(at < 0, $"{where}: LSE of head {h} differs at row {at}");
            }
        }
    }

    /// <summary>Strided multi-head dot calls pack K and V per head when they may (no workspace, or one with room for the copy):
    /// the same bits as the unpacked call with the minimal workspace, on every ISA path, dense, causal and GQA, one or two
    /// threads, and a single head read through a padded pitch.</summary>
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void PackedKeyValuesGiveTheSameBits(IsaPath path, bool isDouble)
    {
        foreach (var (m, n, d, dv, heads, kvHeads, pitch, options) in new[]
        {
            (450, 333, 24, 20, 8, 2, 0, new AttentionOptions { MaxDegreeOfParallelism = 2 }),
            (329, 400, 16, 5, 24, 3, 0, new AttentionOptions { Causal = true, SinkLogit = 0.5, MaxDegreeOfParallelism = 1 }),
            (270, 300, 8, 8, 16, 2, 0, new AttentionOptions { Causal = true, Scale = 0.7 }),
            (1540, 90, 12, 9, 1, 1, 5, new AttentionOptions()),
        })
        {
            if (isDouble) CheckPacking<double>(path, m, n, d, dv, heads, kvHeads, pitch, options);
            else CheckPacking<float>(path, m, n, d, dv, heads, kvHeads, pitch, options);
        }
    }

    /// <summary>The copy of V also decides whether a causal call's band tiles may treat V as finite: with ±∞ and NaN in V
    /// (in the vector part and the scalar tail of a head row, in different kv heads) the packed call must still give the
    /// unpacked call's bits, where a wrong "finite" would spread 0·NaN to rows that do not see the key.</summary>
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void PackedKeyValuesWithNonFiniteValues(IsaPath path, bool isDouble)
    {
        foreach (var (m, n, dv, options) in new[]
        {
            (329, 400, 9, new AttentionOptions { Causal = true, MaxDegreeOfParallelism = 1 }),
            (270, 300, 5, new AttentionOptions { Causal = true, SinkLogit = 0.5, MaxDegreeOfParallelism = 2 }),
        })
        {
            // One bad element per call at (key row, kv head, column): the last column is in every row's scalar tail, column 0
            // in the vector part (dv = 9).
            foreach (var poison in new[] { (150, 1, dv - 1, double.NaN), (211, 0, 0, double.NaN), (263, 2, 1, double.NegativeInfinity), (97, 2, dv - 1, double.PositiveInfinity) })
            {
                if (isDouble) CheckPacking<double>(path, m, n, 8, dv, 12, 3, 0, options, [poison]);
                else CheckPacking<float>(path, m, n, 8, dv, 12, 3, 0, options, [poison]);
            }
        }
    }

    private static void CheckPacking<T>(IsaPath path, int m, int n, int d, int dv, int heads, int kvHeads, int pitch, AttentionOptions options,
        (int Row, int Head, int Column, double Value)[]? poison = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(5 + m + n);
        int keyWidth = kvHeads * d, valueWidth = kvHeads * dv;
        T[] q = AttentionCase.Fill<T>(random, m, heads * d, 0, 0);
        T[] k = AttentionCase.Fill<T>(random, n, keyWidth, pitch, 0), v = AttentionCase.Fill<T>(random, n, valueWidth, pitch, 0);
        foreach (var (row, head, column, value) in poison ?? [])
            v[row * (valueWidth + pitch) + head * dv + column] = T.CreateTruncating(value);
        long packed = FastKernelAttention.Kernels.AttentionDriver.PackedKeyValueBytes(Unsafe.SizeOf<T>(), m, n, keyWidth + pitch, valueWidth + pitch, d, dv,
            heads, kvHeads, options.Kernel == AttentionKernel.Gaussian, options.Causal);
        Assert.True(packed > 0, $"the case must be one that packs: m={m} H={heads} Hkv={kvHeads} pitch={pitch}");
        int minimal = Attention.GetWorkspaceSize<T>(d, dv, n, options, heads, kvHeads);
        string where = $"{path} {typeof(T).Name} m={m} n={n} d={d} dv={dv} H={heads} Hkv={kvHeads} pitch={pitch} {options}";
        (T[] O, T[] Lse) Call(byte[]? workspace)
        {
            var o = new T[m * heads * dv];
            var lse = new T[heads * m];
            Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, m, heads * d), new ReadOnlySpan2D<T>(k, 0, n, keyWidth, pitch),
                new ReadOnlySpan2D<T>(v, 0, n, valueWidth, pitch), new Span2D<T>(o, m, heads * dv), heads, kvHeads, options, lse,
                default, default, false, workspace ?? default, workspace is not null);
            return (o, lse);
        }
        var (unpackedO, unpackedLse) = Call(new byte[minimal]);
        Assert.Contains(unpackedLse, x => T.IsFinite(x));
        if (poison != null) Assert.Contains(unpackedO, x => !T.IsFinite(x));
        foreach (var (name, workspace) in new[] { ("no workspace", (byte[]?)null), ("room for the copy", new byte[minimal + packed]) })
        {
            var (o, lse) = Call(workspace);
            int at = FirstDifference(unpackedO, o);
            Assert.True(at < 0, $"{where}, {name}: O differs from the unpacked call at element {at}");
            at = FirstDifference(unpackedLse, lse);
            Assert.True(at < 0, $"{where}, {name}: LSE differs from the unpacked call at element {at}");
        }
    }
}
