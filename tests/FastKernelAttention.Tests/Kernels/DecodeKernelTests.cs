using System;
using System.Collections.Generic;
using System.Numerics;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Kernels;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>The decode kernel (m ≤ lanes/8 in float and double): against the double reference on every ISA path, at sizes
/// that exercise its work partition — key splits (n over several 512-key chunks, split remainders), kv groups wider than one
/// work item (G above 64 pairs), items of every head of a row block (up to 256 pairs), odd d and dv, n = 0 and 1, causal decode with m ≤ n and m &gt; n, sinks, the Gaussian kernel
/// (expanded and direct differences) — and its bitwise determinism across thread counts.</summary>
public class DecodeKernelTests
{
    /// <summary>(m, n, d, dv, H, Hkv): shapes around the tile (64), the chunk (512) and the split limits.</summary>
    private static readonly (int M, int N, int D, int Dv, int H, int Hkv)[] Shapes =
    {
        (1, 0, 8, 8, 2, 1),          // no key at all
        (1, 1, 1, 1, 1, 1),          // n = 1, d = dv = 1
        (1, 63, 17, 3, 4, 4),        // one partial tile, d and dv off the vector widths
        (1, 65, 33, 31, 4, 2),       // a tile and one key, GQA
        (1, 513, 130, 127, 3, 1),    // a chunk and one key (two splits), MQA, d > 128
        (1, 2100, 64, 64, 8, 2),     // five chunks in five splits
        (2, 1100, 16, 24, 6, 3),     // two rows: three chunks, split limit 16/2
        (3, 700, 9, 5, 70, 1),       // G = 70 > 64/rows: one kv head over several items
        (8, 9000, 4, 6, 2, 2),       // eight rows: two splits of nine chunks
        (5, 3, 7, 7, 2, 1),          // m > n (causal rows that see nothing)
        (8, 700, 24, 20, 32, 32),    // one item of 256 (row, head) pairs (DecodeConstants.MaxPairs), two splits
        (3, 300, 16, 9, 40, 40),     // 40 heads of 3 rows: 120 pairs
        (4, 600, 12, 12, 48, 12),    // GQA, 48 heads of 4 rows: items of whole kv groups up to 256 pairs
    };

    public static TheoryData<IsaPath, bool> Paths()
    {
        var data = new TheoryData<IsaPath, bool>();
        foreach (object[] row in IsaPaths.SupportedWithTypes()) data.Add((IsaPath)row[0], (bool)row[1]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void MatchesReference(IsaPath path, bool isDouble)
    {
        int seed = 0;
        foreach (var (m, n, d, dv, h, hkv) in Shapes)
        {
            foreach (bool causal in new[] { false, true })
            {
                seed++;
                var cases = new List<AttentionCase>
                {
                    new(m, n, d, dv, h, hkv, 0, AttentionKernel.Dot, null, 1, causal, null, false, 1, seed),
                    new(m, n, d, dv, h, hkv, 2, AttentionKernel.Dot, 0.4, 1, causal, 0.5, seed % 2 == 0, 3, seed + 100),
                    new(m, n, d, dv, h, hkv, 1, AttentionKernel.Gaussian, null, 1.3 * Math.Sqrt(d), causal, -1.0, false, 2, seed + 200),
                    new(m, n, d, dv, h, hkv, 0, AttentionKernel.Gaussian, null, 1e-2, causal, null, true, 1, seed + 300), // direct differences
                };
                foreach (AttentionCase c in cases)
                {
                    if (isDouble) c.Check<double>(path);
                    else c.Check<float>(path);
                }
            }
        }
    }

    [Fact]
    public void SplitsCoverWholeChunksAndStayWithinTheStateBudget()
    {
        foreach (int m in new[] { 1, 2, 3, 8, 16, 17, 100 })
        {
            foreach (int n in new[] { 0, 1, 511, 512, 513, 1024, 5000, 8192, 100_000 })
            {
                int splits = DecodeConstants.KeySplits(m, n, out int chunksPerSplit);
                int chunks = (n + DecodeConstants.ChunkKeys - 1) / DecodeConstants.ChunkKeys;
                Assert.InRange(splits, 1, Math.Max(1, chunks));
                Assert.True(m * splits <= DecodeConstants.MaxSplitStates || splits == 1, $"m={m} n={n}: {splits} splits");
                Assert.True((long)splits * chunksPerSplit >= chunks && (long)(splits - 1) * chunksPerSplit < Math.Max(1, chunks),
                    $"m={m} n={n}: {splits} × {chunksPerSplit} chunks for {chunks}");
            }
        }
    }

    /// <summary>A call whose work items take every head of a row block (up to <see cref="DecodeConstants.MaxPairs"/> (row,
    /// head) pairs) gives, head by head, the bits of calls on eight heads at a time (items of at most 64 pairs, as the block
    /// kernel's scratch holds): a pair's result does not depend on which pairs share its item.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void ManyHeadItemsGiveTheBitsOfEightHeadCalls(IsaPath path, bool isDouble)
    {
        foreach (var (m, n, h, hkv, options) in new[]
        {
            (8, 1100, 32, 32, new AttentionOptions()),
            (5, 700, 32, 8, new AttentionOptions { Causal = true, SinkLogit = 0.25 }),
            (2, 300, 64, 16, new AttentionOptions { Scale = 0.3 }),
        })
        {
            if (isDouble) CheckHeadGroups<double>(path, m, n, 20, 13, h, hkv, options);
            else CheckHeadGroups<float>(path, m, n, 20, 13, h, hkv, options);
        }
    }

    private static void CheckHeadGroups<T>(IsaPath path, int m, int n, int d, int dv, int h, int hkv, AttentionOptions options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int Heads = 8;
        Assert.True(DecodeConstants.PairLimit(h) > DecodeConstants.PairLimit(Heads), "the call under test must take larger items");
        var random = new Random(m + n + h);
        T[] q = AttentionCase.Fill<T>(random, m, h * d, 0, 0), k = AttentionCase.Fill<T>(random, n, hkv * d, 0, 0), v = AttentionCase.Fill<T>(random, n, hkv * dv, 0, 0);
        var (o, lse) = DenseCase.Run(path, q, k, v, m, n, d, dv, options, h, hkv, null);
        int group = h / hkv, kvHeads = Heads / group;
        for (int first = 0; first < h; first += Heads)
        {
            int firstKv = first / group;
            var part = new T[m * Heads * dv];
            var partLse = new T[Heads * m];
            Attention.ForwardOnPath(path, new ReadOnlySpan2D<T>(q, first * d, m, Heads * d, (h - Heads) * d),
                new ReadOnlySpan2D<T>(k, firstKv * d, n, kvHeads * d, (hkv - kvHeads) * d),
                new ReadOnlySpan2D<T>(v, firstKv * dv, n, kvHeads * dv, (hkv - kvHeads) * dv),
                new Span2D<T>(part, m, Heads * dv), Heads, kvHeads, options, partLse, null);
            for (int i = 0; i < m; i++)
            {
                var expected = MemoryMarshal.AsBytes(part.AsSpan(i * Heads * dv, Heads * dv));
                var actual = MemoryMarshal.AsBytes(o.AsSpan(i * h * dv + first * dv, Heads * dv));
                Assert.True(expected.SequenceEqual(actual), $"{path} {typeof(T).Name} m={m} H={h}/{hkv}: O of heads {first}… row {i} differs");
            }
            Assert.True(MemoryMarshal.AsBytes(partLse.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(lse.AsSpan(first * m, Heads * m))),
                $"{path} {typeof(T).Name} m={m} H={h}/{hkv}: LSE of heads {first}… differs");
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void EveryDegreeOfParallelismGivesTheSameBits(IsaPath path, bool isDouble)
    {
        foreach (var (m, n, d, dv, h, hkv, options) in new[]
        {
            (1, 5000, 64, 64, 8, 2, new AttentionOptions()),
            (2, 2100, 20, 12, 4, 4, new AttentionOptions { Causal = true, SinkLogit = 0.25 }),
            (1, 1500, 12, 5, 70, 1, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 4 }),
        })
        {
            if (isDouble) Check<double>(path, m, n, d, dv, h, hkv, options);
            else Check<float>(path, m, n, d, dv, h, hkv, options);
        }
    }

    private static void Check<T>(IsaPath path, int m, int n, int d, int dv, int h, int hkv, AttentionOptions options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(m + n + h);
        T[] q = AttentionCase.Fill<T>(random, m, h * d, 0, 0), k = AttentionCase.Fill<T>(random, n, hkv * d, 0, 0), v = AttentionCase.Fill<T>(random, n, hkv * dv, 0, 0);
        T[]? first = null, firstLse = null;
        foreach (int degree in new[] { 1, 2, 7, -1 })
        {
            var (o, lse) = DenseCase.Run(path, q, k, v, m, n, d, dv, options with { MaxDegreeOfParallelism = degree }, h, hkv, null);
            if (first is null || firstLse is null)
            {
                first = o;
                firstLse = lse;
                Assert.Contains(lse, x => T.IsFinite(x));
                continue;
            }
            Assert.True(MemoryMarshal.AsBytes(first.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(o.AsSpan())), $"{path} {typeof(T).Name} m={m} n={n} H={h}: O differs at degree {degree}");
            Assert.True(MemoryMarshal.AsBytes(firstLse.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(lse.AsSpan())), $"{path} {typeof(T).Name} m={m} n={n} H={h}: LSE differs at degree {degree}");
        }
    }
}
