using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;
using Xunit;

namespace FastKernelAttention.Tests.Support;

/// <summary>One randomly generated attention call: shapes, pitches, options and data, run on a given ISA path and
/// compared with the double-precision reference.</summary>
public sealed record AttentionCase(
    int M, int N, int D, int Dv, int Heads, int KvHeads, int Pitch, AttentionKernel Kernel, double? Scale, double Bandwidth,
    bool Causal, double? Sink, bool PerHeadSinks, int Degree, int DataSeed, double Offset = 0)
{
    public override string ToString() =>
        $"m={M} n={N} d={D} dv={Dv} H={Heads} Hkv={KvHeads} pitch={Pitch} {Kernel} scale={Scale} h={Bandwidth} causal={Causal} sink={Sink} perHead={PerHeadSinks} dop={Degree} seed={DataSeed} offset={Offset}";

    public AttentionOptions Options => new()
    {
        Kernel = Kernel,
        Scale = Kernel == AttentionKernel.Dot ? Scale : null,
        Bandwidth = Bandwidth,
        Causal = Causal,
        SinkLogit = PerHeadSinks ? null : Sink,
        MaxDegreeOfParallelism = Degree,
    };

    /// <summary>Runs the case in T on <paramref name="path"/> and asserts the accuracy contract against the reference.</summary>
    public void Check<T>(IsaPath path)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(DataSeed);
        int qWidth = Heads * D, kWidth = KvHeads * D, vWidth = KvHeads * Dv, oWidth = Heads * Dv;
        T[] q = Fill<T>(random, M, qWidth, Pitch, Offset);
        T[] k = Fill<T>(random, N, kWidth, Pitch, Offset);
        T[] v = Fill<T>(random, N, vWidth, Pitch, 0);
        T[] o = new T[M * (oWidth + Pitch) + 1];
        T[] lse = new T[Heads * M];
        T[] sinks = new T[PerHeadSinks ? Heads : 0];
        for (int h = 0; h < sinks.Length; h++) sinks[h] = T.CreateTruncating(h % 3 == 2 ? double.NegativeInfinity : (Sink ?? 0) + 0.5 * h);

        var query = new ReadOnlySpan2D<T>(q, 0, M, qWidth, Pitch);
        var key = new ReadOnlySpan2D<T>(k, 0, N, kWidth, Pitch);
        var value = new ReadOnlySpan2D<T>(v, 0, N, vWidth, Pitch);
        var output = new Span2D<T>(o, 0, M, oWidth, Pitch);
        Attention.ForwardOnPath(path, query, key, value, output, Heads, KvHeads, Options, lse, sinks);

        var referenceOptions = new ReferenceOptions
        {
            Kernel = Kernel == AttentionKernel.Gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
            Scale = Kernel == AttentionKernel.Dot ? Scale : null,
            Bandwidth = Bandwidth,
            Causal = Causal,
            SinkLogit = PerHeadSinks ? null : Sink,
        };
        double[]? referenceSinks = PerHeadSinks ? Array.ConvertAll(sinks, s => double.CreateTruncating(s)) : null;
        var (expected, expectedLse) = NaiveAttention.ForwardMultiHead(ToDouble(query), ToDouble(key), ToDouble(value),
            Heads, KvHeads, referenceOptions, referenceSinks);

        bool isDouble = typeof(T) == typeof(double);
        double maxV = 0;
        // Row by row: with no keys (n = 0) the 2D span has no elements to read.
        for (int r = 0; r < value.Height; r++)
            for (int c = 0; c < value.Width; c++) maxV = Math.Max(maxV, Math.Abs(double.CreateTruncating(value[r, c])));
        double outputTolerance = Tolerance.Output(isDouble) * Math.Max(maxV, 1e-300);
        for (int i = 0; i < M; i++)
        {
            for (int c = 0; c < oWidth; c++)
            {
                double actual = double.CreateTruncating(output[i, c]);
                if (!Tolerance.Close(actual, expected[i, c], outputTolerance))
                    Assert.Fail($"{path} {typeof(T).Name} O[{i},{c}] = {actual:R}, reference {expected[i, c]:R} (tol {outputTolerance:E2}); case {this}");
            }
        }
        for (int h = 0; h < Heads; h++)
        {
            for (int i = 0; i < M; i++)
            {
                double actual = double.CreateTruncating(lse[h * M + i]);
                double reference = expectedLse[h, i];
                double tolerance = Tolerance.LogSumExp(isDouble) * Math.Max(1, Math.Abs(reference));
                if (!Tolerance.Close(actual, reference, tolerance))
                    Assert.Fail($"{path} {typeof(T).Name} LSE[{h},{i}] = {actual:R}, reference {reference:R}; case {this}");
            }
        }
    }

    /// <summary>Standard-normal data (Box–Muller) plus an offset, with <paramref name="pitch"/> padding elements holding NaN
    /// so that a read of padding shows up in the result.</summary>
    public static T[] Fill<T>(Random random, int rows, int width, int pitch, double offset)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        var data = new T[Math.Max(1, rows * (width + pitch))];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < width + pitch; c++)
            {
                double x = c < width ? Normal(random) + offset : double.NaN;
                data[r * (width + pitch) + c] = T.CreateTruncating(x);
            }
        }
        return data;
    }

    public static double Normal(Random random)
    {
        double u = 1.0 - random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * random.NextDouble());
    }

    public static double[,] ToDouble<T>(ReadOnlySpan2D<T> span)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        var result = new double[span.Height, span.Width];
        for (int i = 0; i < span.Height; i++)
            for (int j = 0; j < span.Width; j++)
                result[i, j] = double.CreateTruncating(span[i, j]);
        return result;
    }
}
