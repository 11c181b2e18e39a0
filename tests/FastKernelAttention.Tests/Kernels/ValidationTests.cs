using System;
using CommunityToolkit.HighPerformance;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Bad input gets an ArgumentException naming the argument and the expected shape, before anything is written.</summary>
public class ValidationTests
{
    private const int M = 5, N = 7, D = 4, Dv = 3;
    private readonly float[] q = new float[M * D], k = new float[N * D], v = new float[N * Dv], o = new float[M * Dv], lse = new float[M];

    private static ArgumentException Throws(Action call, string parameter, string? fragment = null)
    {
        var error = Assert.ThrowsAny<ArgumentException>(call);
        Assert.Equal(parameter, error.ParamName);
        if (fragment is not null) Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
        return error;
    }

    private void Call(int qRows = M, int qCols = D, int kRows = N, int kCols = D, int vRows = N, int vCols = Dv, int oRows = M, int oCols = Dv,
        AttentionOptions options = default, int lseLength = M)
    {
        var bigQ = new float[Math.Max(1, qRows * qCols)];
        var bigK = new float[Math.Max(1, kRows * kCols)];
        var bigV = new float[Math.Max(1, vRows * vCols)];
        var bigO = new float[Math.Max(1, oRows * oCols)];
        Attention.Forward(new ReadOnlySpan2D<float>(bigQ, qRows, qCols), new ReadOnlySpan2D<float>(bigK, kRows, kCols),
            new ReadOnlySpan2D<float>(bigV, vRows, vCols), new Span2D<float>(bigO, oRows, oCols), options, new float[lseLength]);
    }

    [Fact]
    public void ShapeMismatchesNameTheArgument()
    {
        Throws(() => Call(kCols: D + 1), "key", $"× {D}");
        Throws(() => Call(vRows: N - 1), "value", $"{N} ×");
        Throws(() => Call(oRows: M + 1), "output", $"{M} × {Dv}");
        Throws(() => Call(oCols: Dv + 1), "output", $"{M} × {Dv}");
        Throws(() => Call(qCols: 0, kCols: 0), "query", "headDim ≥ 1");
        Throws(() => Call(lseLength: M - 1), "logSumExp", $"{M}");
    }

    [Fact]
    public void InvalidOptionsNameOptions()
    {
        foreach (double bandwidth in new[] { 0.0, -1.0, double.NaN, double.PositiveInfinity })
            Throws(() => Call(options: new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth }), "options", "Bandwidth");
        foreach (double scale in new[] { 0.0, -0.5, double.NaN, double.NegativeInfinity })
            Throws(() => Call(options: new AttentionOptions { Scale = scale }), "options", "Scale");
        Throws(() => Call(options: new AttentionOptions { SinkLogit = double.NaN }), "options", "SinkLogit");
        Throws(() => Call(options: new AttentionOptions { SinkLogit = double.PositiveInfinity }), "options", "SinkLogit");
        Throws(() => Call(options: new AttentionOptions { MaxDegreeOfParallelism = -2 }), "options", "MaxDegreeOfParallelism");
        Throws(() => Call(options: new AttentionOptions { Kernel = (AttentionKernel)7 }), "options");
        Throws(() => Call(options: new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1, Scale = 2 }), "options", "Scale");
    }

    [Fact]
    public void MultiHeadLayoutsAreChecked()
    {
        var query = new float[M * 8];
        var key = new float[N * 4];
        var value = new float[N * 4];
        var output = new float[M * 8];
        void Run(int heads, int kvHeads, int queryWidth = 8, int keyWidth = 4, int valueWidth = 4, int outputWidth = 8, float[]? sinks = null, AttentionOptions options = default) =>
            Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(new float[M * queryWidth], M, queryWidth), new ReadOnlySpan2D<float>(new float[N * keyWidth], N, keyWidth),
                new ReadOnlySpan2D<float>(new float[N * valueWidth], N, valueWidth), new Span2D<float>(new float[M * outputWidth], M, outputWidth), heads, kvHeads, options,
                default, sinks);
        Throws(() => Run(4, 3), "keyValueHeadCount");
        Throws(() => Run(0, 1), "headCount");
        Throws(() => Run(3, 1, queryWidth: 8), "query", "headCount = 3");
        Throws(() => Run(4, 2, keyWidth: 6), "key", "keyValueHeadCount·headDim");
        Throws(() => Run(4, 2, outputWidth: 6), "output");
        Throws(() => Run(4, 2, sinks: new float[3]), "sinkLogits", "(4)");
        Throws(() => Run(4, 2, sinks: new[] { 0f, float.NaN, 0f, 0f }), "sinkLogits");
        Throws(() => Run(4, 2, sinks: new float[4], options: new AttentionOptions { SinkLogit = 1 }), "options", "not both");
        Run(4, 2); // the valid call goes through
        _ = (query, key, value, output);
    }

    [Fact]
    public void OutputsMustNotOverlapInputs()
    {
        var buffer = new float[64];
        var outputs = new float[M * Dv];
        Throws(() => Attention.Forward(new ReadOnlySpan2D<float>(buffer, 0, 2, 4, 0), new ReadOnlySpan2D<float>(k, N, D),
            new ReadOnlySpan2D<float>(v, N, Dv), new Span2D<float>(buffer, 6, 2, Dv, 0), default), "output", "query");
        Throws(() => Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D),
            new ReadOnlySpan2D<float>(v, N, Dv), new Span2D<float>(v, 0, M, Dv, 0), default), "output", "value");
        Throws(() => Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D),
            new ReadOnlySpan2D<float>(v, N, Dv), new Span2D<float>(outputs, M, Dv), default, outputs.AsSpan(0, M)), "logSumExp", "output");
        Throws(() => Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D),
            new ReadOnlySpan2D<float>(v, N, Dv), new Span2D<float>(outputs, M, Dv), default, k.AsSpan(0, M)), "logSumExp", "key");
    }

    [Fact]
    public void WorkspaceMustBeLargeEnoughAndGivesTheSameBits()
    {
        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.5 };
        var random = new Random(5);
        foreach (float[] a in new[] { q, k, v }) for (int i = 0; i < a.Length; i++) a[i] = (float)random.NextDouble();
        int size = Attention.GetWorkspaceSize<float>(D, Dv, N, options);
        Throws(() => Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D), new ReadOnlySpan2D<float>(v, N, Dv),
            new Span2D<float>(o, M, Dv), options, lse, new byte[size - 1]), "workspace", $"{size}");
        var withWorkspace = new float[M * Dv];
        var withWorkspaceLse = new float[M];
        Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D), new ReadOnlySpan2D<float>(v, N, Dv),
            new Span2D<float>(withWorkspace, M, Dv), options, withWorkspaceLse, new byte[size]);
        Attention.Forward(new ReadOnlySpan2D<float>(q, M, D), new ReadOnlySpan2D<float>(k, N, D), new ReadOnlySpan2D<float>(v, N, Dv),
            new Span2D<float>(o, M, Dv), options, lse);
        Assert.Equal(o, withWorkspace);
        Assert.Equal(lse, withWorkspaceLse);
        Assert.Throws<NotSupportedException>(() => Attention.GetWorkspaceSize<int>(D, Dv, N, options));
        Assert.ThrowsAny<ArgumentException>(() => Attention.GetWorkspaceSize<float>(0, Dv, N, options));
    }
}
