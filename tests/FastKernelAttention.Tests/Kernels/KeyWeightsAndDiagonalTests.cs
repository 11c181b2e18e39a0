using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>The estimators' extensions of the kernel: per-key log-weights and the leave-one-out (diagonal) mask,
/// against the reference logits with the log-weights added and the diagonal removed, then a literal softmax.</summary>
public class KeyWeightsAndDiagonalTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void MatchesReference(IsaPath path, bool isDouble)
    {
        int caseIndex = 0;
        foreach (int n in new[] { 1, 5, 33, 70, 130 })
        {
            foreach (bool gaussian in new[] { false, true })
            {
                foreach (bool causal in new[] { false, true })
                {
                    caseIndex++;
                    if (isDouble) Check<double>(path, n, n, 7, 3, gaussian, causal, caseIndex);
                    else Check<float>(path, n, n, 7, 3, gaussian, causal, caseIndex);
                }
            }
        }
        if (isDouble) Check<double>(path, 40, 90, 5, 2, true, false, 99);
        else Check<float>(path, 40, 90, 5, 2, false, true, 99);
        // Decode shapes (the decode kernel, with key splits for n = 1100): log-weights and the diagonal at key n − m + i.
        foreach (var (m, n, gaussian, causal) in new[] { (1, 1100, false, false), (3, 1100, true, true), (2, 70, true, false), (1, 513, false, true) })
        {
            caseIndex++;
            if (isDouble) Check<double>(path, m, n, 9, 5, gaussian, causal, caseIndex);
            else Check<float>(path, m, n, 9, 5, gaussian, causal, caseIndex);
        }
    }

    private static void Check<T>(IsaPath path, int m, int n, int d, int dv, bool gaussian, bool causal, int seed)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(seed);
        T[] q = AttentionCase.Fill<T>(random, m, d, 0, 0);
        T[] k = AttentionCase.Fill<T>(random, n, d, 0, 0);
        T[] v = AttentionCase.Fill<T>(random, n, dv, 0, 0);
        T[] logWeights = new T[n];
        for (int j = 0; j < n; j++) logWeights[j] = T.CreateTruncating(j % 7 == 3 ? double.NegativeInfinity : random.NextDouble() * 2 - 1);
        var options = new AttentionOptions
        {
            Kernel = gaussian ? AttentionKernel.Gaussian : AttentionKernel.Dot,
            Bandwidth = gaussian ? 2.0 : 0,
            Causal = causal,
        };
        var output = new T[m * dv];
        var lse = new T[m];
        var query = new ReadOnlySpan2D<T>(q, m, d);
        var key = new ReadOnlySpan2D<T>(k, n, d);
        Attention.ForwardCore(path, query, key, new ReadOnlySpan2D<T>(v, n, dv), new Span2D<T>(output, m, dv), 1, 1,
            options, lse, default, logWeights, excludeDiagonal: true, default, workspaceGiven: false);

        var referenceOptions = new ReferenceOptions
        {
            Kernel = gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
            Bandwidth = gaussian ? 2.0 : 1.0,
            Causal = causal,
        };
        double[,] scores = NaiveAttention.Scores(AttentionCase.ToDouble(query), AttentionCase.ToDouble(key), referenceOptions);
        bool isDouble = typeof(T) == typeof(double);
        for (int i = 0; i < m; i++)
        {
            double max = double.NegativeInfinity;
            var s = new double[n];
            for (int j = 0; j < n; j++)
            {
                s[j] = j == i + (n - m) ? double.NegativeInfinity : scores[i, j] + double.CreateTruncating(logWeights[j]);
                max = Math.Max(max, s[j]);
            }
            double sum = 0;
            var expected = new double[dv];
            if (!double.IsNegativeInfinity(max))
            {
                for (int j = 0; j < n; j++)
                {
                    double e = Math.Exp(s[j] - max);
                    sum += e;
                    for (int c = 0; c < dv; c++) expected[c] += e * double.CreateTruncating(v[j * dv + c]);
                }
            }
            double expectedLse = sum == 0 ? double.NegativeInfinity : max + Math.Log(sum);
            double tolerance = Tolerance.Output(isDouble) * 5; // max|V| ≤ 5 for these normal samples
            for (int c = 0; c < dv; c++)
            {
                double e = sum == 0 ? 0 : expected[c] / sum;
                Assert.True(Tolerance.Close(double.CreateTruncating(output[i * dv + c]), e, tolerance),
                    $"{path} O[{i},{c}] = {output[i * dv + c]}, expected {e} (m={m} n={n} gaussian={gaussian} causal={causal})");
            }
            Assert.True(Tolerance.Close(double.CreateTruncating(lse[i]), expectedLse, Tolerance.LogSumExp(isDouble) * Math.Max(1, Math.Abs(expectedLse))),
                $"{path} LSE[{i}] = {lse[i]}, expected {expectedLse}");
        }
    }
}
