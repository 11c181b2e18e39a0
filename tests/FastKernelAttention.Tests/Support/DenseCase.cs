using System;
using System.Numerics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;
using Xunit;

namespace FastKernelAttention.Tests.Support;

/// <summary>Hand-built attention calls on dense row-major arrays: run on one ISA path, run the double reference on the same
/// (already rounded) inputs, and compare under the contract of <see cref="Tolerance"/> plus, where a test states why, a
/// derived bound on the logit error that the reference does not share.</summary>
public static class DenseCase
{
    public static T[] Uniform<T>(Random random, int count, double low = -1, double high = 1)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var data = new T[count];
        for (int i = 0; i < count; i++) data[i] = T.CreateTruncating(low + (high - low) * random.NextDouble());
        return data;
    }

    public static double[,] Matrix<T>(T[] data, int rows, int columns)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var matrix = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                matrix[i, j] = double.CreateTruncating(data[i * columns + j]);
        return matrix;
    }

    /// <summary>The call on <paramref name="path"/>: Q m × (H·d), K n × (Hkv·d), V n × (Hkv·dv); returns O m × (H·dv) and LSE [H × m].</summary>
    public static (T[] O, T[] Lse) Run<T>(IsaPath path, T[] q, T[] k, T[] v, int m, int n, int d, int dv, in AttentionOptions options,
        int heads = 1, int kvHeads = 1, T[]? sinks = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var o = new T[m * heads * dv];
        var lse = new T[heads * m];
        Attention.ForwardOnPath(path, new ReadOnlySpan2D<T>(q, m, heads * d), new ReadOnlySpan2D<T>(k, n, kvHeads * d),
            new ReadOnlySpan2D<T>(v, n, kvHeads * dv), new Span2D<T>(o, m, heads * dv), heads, kvHeads, options, lse, sinks);
        return (o, lse);
    }

    public static ReferenceOptions ReferenceOptionsOf(in AttentionOptions options) => new()
    {
        Kernel = options.Kernel == AttentionKernel.Gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
        Scale = options.Kernel == AttentionKernel.Dot ? options.Scale : null,
        Bandwidth = options.Kernel == AttentionKernel.Gaussian ? options.Bandwidth : 1,
        Causal = options.Causal,
        SinkLogit = options.SinkLogit,
    };

    /// <summary>Runs the call on <paramref name="path"/> and the reference, and asserts
    /// |O − O_ref| ≤ (Tolerance.Output + 2·logitError)·max|V| and |LSE − LSE_ref| ≤ Tolerance.LogSumExp·max(1, |LSE_ref|) + logitError.
    /// NaN and ±∞ in the reference must be matched exactly. <paramref name="logitError"/> bounds |fl(s) − s| where a test
    /// derives it (a softmax moves by at most 2·max|δs| in total variation, so O moves by at most 2·max|δs|·max|V|).</summary>
    public static (T[] O, T[] Lse) Check<T>(IsaPath path, T[] q, T[] k, T[] v, int m, int n, int d, int dv, in AttentionOptions options,
        int heads = 1, int kvHeads = 1, T[]? sinks = null, double logitError = 0, string? label = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var (o, lse) = Run(path, q, k, v, m, n, d, dv, options, heads, kvHeads, sinks);
        var (expected, expectedLse) = NaiveAttention.ForwardMultiHead(Matrix(q, m, heads * d), Matrix(k, n, kvHeads * d),
            Matrix(v, n, kvHeads * dv), heads, kvHeads, ReferenceOptionsOf(options),
            sinks is null ? null : Array.ConvertAll(sinks, s => double.CreateTruncating(s)));

        bool isDouble = typeof(T) == typeof(double);
        double maxV = 0;
        foreach (T x in v)
            if (T.IsFinite(x)) maxV = Math.Max(maxV, Math.Abs(double.CreateTruncating(x)));
        double outputTolerance = (Tolerance.Output(isDouble) + 2 * logitError) * Math.Max(maxV, 1e-300);
        string where = $"{path} {typeof(T).Name} m={m} n={n} d={d} dv={dv} H={heads} Hkv={kvHeads} {options} {label}";
        for (int i = 0; i < m; i++)
        {
            for (int c = 0; c < heads * dv; c++)
            {
                double actual = double.CreateTruncating(o[i * heads * dv + c]);
                if (!Tolerance.Close(actual, expected[i, c], outputTolerance))
                    Assert.Fail($"O[{i},{c}] = {actual:R}, reference {expected[i, c]:R} (tol {outputTolerance:E2}); {where}");
            }
        }
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < m; i++)
            {
                double actual = double.CreateTruncating(lse[h * m + i]);
                double reference = expectedLse[h, i];
                double tolerance = Tolerance.LogSumExp(isDouble) * Math.Max(1, Math.Abs(reference)) + logitError;
                if (!Tolerance.Close(actual, reference, tolerance))
                    Assert.Fail($"LSE[{h},{i}] = {actual:R}, reference {reference:R} (tol {tolerance:E2}); {where}");
            }
        }
        return (o, lse);
    }

    /// <summary>Unit roundoff of T: 2^−24 (float) or 2^−53 (double).</summary>
    public static double UnitRoundoff<T>() => typeof(T) == typeof(float) ? Math.ScaleB(1, -24) : Math.ScaleB(1, -53);

    /// <summary>γ_k = k·u/(1 − k·u) (Higham), in T's unit roundoff.</summary>
    public static double Gamma<T>(int k) => k * UnitRoundoff<T>() / (1 - k * UnitRoundoff<T>());

    /// <summary>MATH §14: the dot logit s = scale·Σ q_k k_k computed in T (the scale folded in once) is off by at most
    /// γ_{d+2}·scale·Σ|q_k k_k|; this is the maximum of that bound over all (query, key) pairs of a single-head call.</summary>
    public static double DotLogitError<T>(T[] q, T[] k, int m, int n, int d, double scale)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double worst = 0;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int c = 0; c < d; c++) sum += Math.Abs(double.CreateTruncating(q[i * d + c]) * double.CreateTruncating(k[j * d + c]));
                worst = Math.Max(worst, sum);
            }
        }
        return Gamma<T>(d + 2) * scale * worst;
    }
}
