using System;
using System.Numerics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Bad input gets an ArgumentException (or ArgumentOutOfRangeException) whose ParamName is the offending argument
/// and whose message names what was expected, before anything is written — on every ISA path, float and double, with and
/// without a caller workspace. A sufficient workspace gives the same bits as none.</summary>
public class ValidationTests
{
    private const int M = 5, N = 7, D = 4, Dv = 3;

    private static void Both(bool isDouble, Action<IsaPath> asFloat, Action<IsaPath> asDouble, IsaPath path)
    {
        if (isDouble) asDouble(path);
        else asFloat(path);
    }

    /// <summary>One call through the internal entry on <paramref name="path"/> (the public overloads forward to the same
    /// driver): fresh arrays of the given shapes, output and LSE pre-filled with a sentinel that must survive a throw.</summary>
    private sealed record Shape(int QRows = M, int QCols = D, int KRows = N, int KCols = D, int VRows = N, int VCols = Dv,
        int ORows = M, int OCols = Dv, int Heads = 1, int KvHeads = 1, int LseLength = M, int SinkCount = 0, double SinkValue = 0,
        int? WorkspaceBytes = null)
    {
        public void Invoke<T>(IsaPath path, in AttentionOptions options)
            where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            var q = new T[Math.Max(1, QRows * QCols)];
            var k = new T[Math.Max(1, KRows * KCols)];
            var v = new T[Math.Max(1, VRows * VCols)];
            var o = new T[Math.Max(1, ORows * OCols)];
            var lse = new T[LseLength];
            var sinks = new T[SinkCount];
            Array.Fill(sinks, T.CreateTruncating(SinkValue));
            T sentinel = T.CreateTruncating(42);
            Array.Fill(o, sentinel);
            Array.Fill(lse, sentinel);
            byte[] workspace = new byte[WorkspaceBytes ?? 0];
            try
            {
                Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, QRows, QCols), new ReadOnlySpan2D<T>(k, KRows, KCols),
                    new ReadOnlySpan2D<T>(v, VRows, VCols), new Span2D<T>(o, ORows, OCols), Heads, KvHeads, options, lse, sinks,
                    default, false, workspace, WorkspaceBytes.HasValue);
            }
            catch (ArgumentException)
            {
                Assert.All(o, x => Assert.Equal(sentinel, x));
                Assert.All(lse, x => Assert.Equal(sentinel, x));
                throw;
            }
        }
    }

    private static void Throws<T>(IsaPath path, Shape shape, AttentionOptions options, string parameter, string? fragment = null, bool outOfRange = false)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // Without and with a (large enough) workspace: validation is the same on both routes.
        foreach (Shape s in new[] { shape, shape.WorkspaceBytes.HasValue ? shape : shape with { WorkspaceBytes = 1 << 20 } })
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => s.Invoke<T>(path, options));
            Assert.True(parameter == error.ParamName, $"{path} {typeof(T).Name} {s}: ParamName {error.ParamName}, expected {parameter}; {error.Message}");
            if (fragment is not null)
                Assert.True(error.Message.Contains(fragment, StringComparison.Ordinal), $"{path} {typeof(T).Name} {s}: message \"{error.Message}\" lacks \"{fragment}\"");
            if (outOfRange) Assert.IsType<ArgumentOutOfRangeException>(error);
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void ShapeMismatchesNameTheArgumentAndTheExpectedShape(IsaPath path, bool isDouble) => Both(isDouble, Shapes<float>, Shapes<double>, path);

    private static void Shapes<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var ok = new Shape();
        ok.Invoke<T>(path, default); // the valid call goes through
        Throws<T>(path, ok with { KCols = D + 1 }, default, "key", $"keyCount × {D}");
        Throws<T>(path, ok with { KCols = D - 1 }, default, "key", $"keyCount × {D}");
        Throws<T>(path, ok with { VRows = N - 1 }, default, "value", $"{N} × valueDim");
        Throws<T>(path, ok with { VRows = N + 1 }, default, "value", $"{N} × valueDim");
        Throws<T>(path, ok with { ORows = M + 1 }, default, "output", $"{M} × {Dv}");
        Throws<T>(path, ok with { ORows = M - 1 }, default, "output", $"{M} × {Dv}");
        Throws<T>(path, ok with { OCols = Dv + 1 }, default, "output", $"{M} × {Dv}");
        Throws<T>(path, ok with { OCols = Dv - 1 }, default, "output", $"{M} × {Dv}");
        Throws<T>(path, ok with { QCols = 0, KCols = 0 }, default, "query", "headDim ≥ 1");
        Throws<T>(path, ok with { LseLength = M - 1 }, default, "logSumExp", $"at least {M}");

        // Multi-head: Q m × (H·d), K n × (Hkv·d), V n × (Hkv·dv), O m × (H·dv), LSE H·m.
        var multi = new Shape(QCols: 4 * D, KCols: 2 * D, VCols: 2 * Dv, OCols: 4 * Dv, Heads: 4, KvHeads: 2, LseLength: 4 * M);
        multi.Invoke<T>(path, default);
        Throws<T>(path, multi with { KCols = 2 * D + 2 }, default, "key", $"keyCount × {2 * D} (keyValueHeadCount·headDim)");
        Throws<T>(path, multi with { KCols = D }, default, "key", $"keyCount × {2 * D}");
        Throws<T>(path, multi with { VCols = 2 * Dv + 1 }, default, "value", "keyValueHeadCount = 2");
        Throws<T>(path, multi with { OCols = 4 * Dv - 1 }, default, "output", $"{M} × {4 * Dv}");
        Throws<T>(path, multi with { LseLength = 4 * M - 1 }, default, "logSumExp", $"at least {4 * M}");
        Throws<T>(path, multi with { QCols = 4 * D + 2 }, default, "query", "headCount = 4");
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void HeadCountsAreChecked(IsaPath path, bool isDouble) => Both(isDouble, Heads<float>, Heads<double>, path);

    private static void Heads<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var multi = new Shape(QCols: 4 * D, KCols: 2 * D, VCols: 2 * Dv, OCols: 4 * Dv, Heads: 4, KvHeads: 2, LseLength: 4 * M);
        Throws<T>(path, multi with { KvHeads = 3, KCols = 3 * D, VCols = 3 * Dv }, default, "keyValueHeadCount", "divide the head count (4)", outOfRange: true);
        Throws<T>(path, multi with { KvHeads = 0 }, default, "keyValueHeadCount", outOfRange: true);
        Throws<T>(path, multi with { Heads = 0 }, default, "headCount", outOfRange: true);
        Throws<T>(path, multi with { Heads = -1 }, default, "headCount", outOfRange: true);
        // Query width 8 is not divisible by H = 3.
        Throws<T>(path, new Shape(QCols: 8, KCols: 2, VCols: 2, OCols: 3, Heads: 3, KvHeads: 1, LseLength: 3 * M), default, "query", "headCount = 3");
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void InvalidOptionsNameOptions(IsaPath path, bool isDouble) => Both(isDouble, Options<float>, Options<double>, path);

    private static void Options<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var ok = new Shape();
        foreach (double bandwidth in new[] { 0.0, -0.0, -1.0, double.NaN, double.PositiveInfinity, double.NegativeInfinity })
            Throws<T>(path, ok, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth }, "options", "Bandwidth");
        foreach (double scale in new[] { 0.0, -0.0, -0.5, double.NaN, double.PositiveInfinity, double.NegativeInfinity })
            Throws<T>(path, ok, new AttentionOptions { Scale = scale }, "options", "Scale");
        Throws<T>(path, ok, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1, Scale = 2 }, "options", "Scale");
        Throws<T>(path, ok, new AttentionOptions { SinkLogit = double.NaN }, "options", "SinkLogit");
        Throws<T>(path, ok, new AttentionOptions { SinkLogit = double.PositiveInfinity }, "options", "SinkLogit");
        Throws<T>(path, ok, new AttentionOptions { MaxDegreeOfParallelism = -2 }, "options", "MaxDegreeOfParallelism", outOfRange: true);
        Throws<T>(path, ok, new AttentionOptions { MaxDegreeOfParallelism = int.MinValue }, "options", "MaxDegreeOfParallelism", outOfRange: true);
        Throws<T>(path, ok, new AttentionOptions { Kernel = (AttentionKernel)7 }, "options", outOfRange: true);
        // The edges that are valid: −∞ sink (none), degree −1, 0 and 1, a tiny positive bandwidth and scale.
        foreach (var options in new[]
        {
            new AttentionOptions { SinkLogit = double.NegativeInfinity }, new AttentionOptions { MaxDegreeOfParallelism = -1 },
            new AttentionOptions { MaxDegreeOfParallelism = 0 }, new AttentionOptions { Scale = double.Epsilon },
            new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e-300 },
        })
            ok.Invoke<T>(path, options);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SinkLogitsAreChecked(IsaPath path, bool isDouble) => Both(isDouble, Sinks<float>, Sinks<double>, path);

    private static void Sinks<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var multi = new Shape(QCols: 4 * D, KCols: 2 * D, VCols: 2 * Dv, OCols: 4 * Dv, Heads: 4, KvHeads: 2, LseLength: 4 * M);
        multi.Invoke<T>(path, default);
        (multi with { SinkCount = 4, SinkValue = double.NegativeInfinity }).Invoke<T>(path, default);
        Throws<T>(path, multi with { SinkCount = 3 }, default, "sinkLogits", "one logit per head (4)");
        Throws<T>(path, multi with { SinkCount = 5 }, default, "sinkLogits", "one logit per head (4)");
        Throws<T>(path, multi with { SinkCount = 4, SinkValue = double.NaN }, default, "sinkLogits", "NaN");
        Throws<T>(path, multi with { SinkCount = 4, SinkValue = double.PositiveInfinity }, default, "sinkLogits", "+∞");
        Throws<T>(path, multi with { SinkCount = 4 }, new AttentionOptions { SinkLogit = 1 }, "options", "not both");
        Throws<T>(path, new Shape(SinkCount: 1), new AttentionOptions { SinkLogit = 1 }, "options", "not both");
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void OutputsMustNotOverlapInputs(IsaPath path, bool isDouble) => Both(isDouble, Overlaps<float>, Overlaps<double>, path);

    private static void Overlaps<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // One buffer, carved into views: Q at [0, 20), K at [20, 48), V at [48, 69); O is 15 and LSE 5 elements long.
        var buffer = new T[200];
        void Call(int outputStart, int lseStart, int lseLength) =>
            Attention.ForwardOnPath(path, new ReadOnlySpan2D<T>(buffer, 0, M, D, 0), new ReadOnlySpan2D<T>(buffer, 20, N, D, 0),
                new ReadOnlySpan2D<T>(buffer, 48, N, Dv, 0), new Span2D<T>(buffer, outputStart, M, Dv, 0), 1, 1, default,
                buffer.AsSpan(lseStart, lseLength));
        void Expect(int outputStart, int lseStart, int lseLength, string parameter, string other)
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => Call(outputStart, lseStart, lseLength));
            Assert.True(parameter == error.ParamName, $"{path} {typeof(T).Name}: ParamName {error.ParamName}, expected {parameter}");
            Assert.Contains($"'{other}'", error.Message, StringComparison.Ordinal);
        }
        Expect(10, 0, 0, "output", "query");   // O over the end of Q
        Expect(0, 0, 0, "output", "query");    // the same start
        Expect(40, 0, 0, "output", "key");     // over the end of K
        Expect(60, 0, 0, "output", "value");   // over the end of V
        Expect(100, 110, M, "logSumExp", "output");
        Expect(100, 15, M, "logSumExp", "query");
        Expect(100, 45, M, "logSumExp", "key");
        Expect(100, 65, M, "logSumExp", "value");
        Call(69, 84, M); // adjacent, not overlapping: valid
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void WorkspaceMustBeLargeEnough(IsaPath path, bool isDouble) => Both(isDouble, WorkspaceSize<float>, WorkspaceSize<double>, path);

    private static void WorkspaceSize<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var multi = new Shape(QCols: 4 * D, KCols: 2 * D, VCols: 2 * Dv, OCols: 4 * Dv, Heads: 4, KvHeads: 2, LseLength: 4 * M);
        foreach (var options in new[]
        {
            default, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.5 },
            new AttentionOptions { MaxDegreeOfParallelism = 2 }, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1, MaxDegreeOfParallelism = -1 },
        })
        {
            foreach (var (shape, d, dv, heads, kvHeads) in new[] { (new Shape(), D, Dv, 1, 1), (multi, D, Dv, 4, 2) })
            {
                int size = Attention.GetWorkspaceSize<T>(d, dv, N, options, heads, kvHeads);
                (shape with { WorkspaceBytes = size }).Invoke<T>(path, options);
                (shape with { WorkspaceBytes = size + 1000 }).Invoke<T>(path, options);
                Throws<T>(path, shape with { WorkspaceBytes = size - 1 }, options, "workspace", $"at least {size} bytes");
                Throws<T>(path, shape with { WorkspaceBytes = 0 }, options, "workspace", $"at least {size} bytes");
                // Checked even when there is nothing to compute (m = 0).
                Throws<T>(path, shape with { QRows = 0, ORows = 0, LseLength = 0, WorkspaceBytes = size - 1 }, options, "workspace", $"{size}");
            }
        }
        Assert.Throws<NotSupportedException>(() => Attention.GetWorkspaceSize<int>(D, Dv, N, default));
        Assert.Equal("headDim", Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<T>(0, Dv, N, default)).ParamName);
        Assert.Equal("valueDim", Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<T>(D, -1, N, default)).ParamName);
        Assert.Equal("keyCount", Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<T>(D, Dv, -1, default)).ParamName);
        Assert.Equal("keyValueHeadCount", Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<T>(D, Dv, N, default, 4, 3)).ParamName);
        Assert.Equal("options", Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<T>(D, Dv, N, new AttentionOptions { MaxDegreeOfParallelism = -2 })).ParamName);
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void ASufficientWorkspaceGivesTheSameBits(IsaPath path, bool isDouble) => Both(isDouble, SameBits<float>, SameBits<double>, path);

    private static void SameBits<T>(IsaPath path)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        const int m = 70, n = 150, d = 12, dv = 5, heads = 4, kvHeads = 2;
        var random = new Random(13);
        T[] q = DenseCase.Uniform<T>(random, m * heads * d), k = DenseCase.Uniform<T>(random, n * kvHeads * d), v = DenseCase.Uniform<T>(random, n * kvHeads * dv);
        foreach (var options in new[]
        {
            new AttentionOptions { Causal = true, SinkLogit = 0.5 },
            new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.3, MaxDegreeOfParallelism = 2 },
        })
        {
            foreach (int rows in new[] { 2, m }) // the row kernel and the lane kernel
            {
                var (expected, expectedLse) = DenseCase.Run(path, q, k, v, rows, n, d, dv, options, heads, kvHeads);
                int size = Attention.GetWorkspaceSize<T>(d, dv, n, options, heads, kvHeads);
                var storage = new byte[size + 7];
                Array.Fill(storage, (byte)0xFF); // NaN bit patterns: the result must not depend on the old contents
                foreach (int offset in new[] { 0, 1, 7 }) // any alignment
                {
                    var o = new T[rows * heads * dv];
                    var lse = new T[heads * rows];
                    Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, rows, heads * d), new ReadOnlySpan2D<T>(k, n, kvHeads * d),
                        new ReadOnlySpan2D<T>(v, n, kvHeads * dv), new Span2D<T>(o, rows, heads * dv), heads, kvHeads, options, lse,
                        default, default, false, storage.AsSpan(offset, size), true);
                    Assert.True(expected.AsSpan().SequenceEqual(o), $"{path} {typeof(T).Name} {options} m={rows} offset {offset}: output differs with a workspace");
                    Assert.True(expectedLse.AsSpan().SequenceEqual(lse), $"{path} {typeof(T).Name} {options} m={rows} offset {offset}: LSE differs with a workspace");
                }
            }
        }
    }
}
