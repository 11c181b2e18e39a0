using System;
using System.Collections.Generic;
using FastKernelAttention.Reference;
using Xunit;

namespace FastKernelAttention.Tests.Reference;

// Inside the namespace so that it wins over the FastKernelAttention.Math namespace.
using Math = System.Math;

/// <summary>The hand-worked examples of MATH.md (§1–4, §15) against the double reference, plus its masking, NaN,
/// empty-row and multi-head conventions.</summary>
public sealed class NaiveAttentionTests
{
    private const double Tolerance = 1e-6; // MATH.md: hand-worked numbers are given to 6 decimals

    private static readonly ReferenceOptions Unscaled = new() { Scale = 1 };

    // MATH §1: q = (1,0), keys (1,0) and (0,1), V = I₂, scale 1.
    [Fact]
    public void Section1_TwoKeyExample()
    {
        double[,] query = { { 1, 0 } };
        double[,] key = { { 1, 0 }, { 0, 1 } };
        double[,] value = { { 1, 0 }, { 0, 1 } };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, Unscaled);

        Assert.Equal(0.731059, output[0, 0], Tolerance);
        Assert.Equal(0.268941, output[0, 1], Tolerance);
        Assert.Equal(1.313262, logSumExp[0], Tolerance);
    }

    [Fact]
    public void Section1_DefaultScaleIsOneOverSqrtHeadDim()
    {
        double[,] query = { { 1, 2, 3, 4 } };
        double[,] key = { { 0.5, -1, 2, 0.25 } };

        double[,] scores = NaiveAttention.Scores(query, key, new ReferenceOptions());

        Assert.Equal((0.5 - 2 + 6 + 1) / 2.0, scores[0, 0], 1e-15);
    }

    // MATH §4: s = (1, 0). The two-pass softmax has M = 1, l = 1 + e^{−1} = 1.367879 and a = (1, 0.367879),
    // the same state the tile merge reaches, and finalises to the §1 O and LSE.
    [Fact]
    public void Section4_TwoPassStateMatchesMergedState()
    {
        double[,] query = { { 1, 0 } };
        double[,] key = { { 1, 0 }, { 0, 1 } };
        double[,] value = { { 1, 0 }, { 0, 1 } };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, Unscaled);
        double rowMax = 1;
        double expSum = Math.Exp(logSumExp[0] - rowMax);

        Assert.Equal(1.367879, expSum, Tolerance);
        Assert.Equal(1, output[0, 0] * expSum, Tolerance);
        Assert.Equal(0.367879, output[0, 1] * expSum, Tolerance);
    }

    // MATH §2: d = 1, h = 1, q = 10000.25, keys {10000, 10001}: D = (0.0625, 0.5625), w = (0.562177, 0.437823).
    [Fact]
    public void Section2_GaussianAtLargeOffsetIsExact()
    {
        double[,] query = { { 10000.25 } };
        double[,] key = { { 10000 }, { 10001 } };
        double[,] value = { { 1, 0 }, { 0, 1 } };
        var options = new ReferenceOptions { Kernel = ReferenceKernel.Gaussian, Bandwidth = 1 };

        double[,] scores = NaiveAttention.Scores(query, key, options);
        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, options);

        Assert.Equal(-0.0625 / 2, scores[0, 0]); // exact: the differences are exact in double
        Assert.Equal(-0.5625 / 2, scores[0, 1]);
        Assert.Equal(0.562177, output[0, 0], Tolerance);
        Assert.Equal(0.437823, output[0, 1], Tolerance);
        Assert.Equal(Math.Log(Math.Exp(-0.03125) + Math.Exp(-0.28125)), logSumExp[0], 1e-15);
    }

    // MATH §2: the Gaussian LSE is the true one, log Σ_j exp(−‖q − k_j‖²/(2h²)), query-norm term included.
    [Fact]
    public void Section2_GaussianLogSumExpIncludesQueryNorm()
    {
        double[,] query = { { 3, -1 }, { 0.5, 2 } };
        double[,] key = { { 0, 0 }, { 1, 1 }, { -2, 0.5 } };
        double[,] value = { { 1 }, { 2 }, { 3 } };
        const double bandwidth = 0.7;
        var options = new ReferenceOptions { Kernel = ReferenceKernel.Gaussian, Bandwidth = bandwidth };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, options);

        for (int i = 0; i < 2; i++)
        {
            double expSum = 0, weighted = 0;
            for (int j = 0; j < 3; j++)
            {
                double dx = query[i, 0] - key[j, 0], dy = query[i, 1] - key[j, 1];
                double p = Math.Exp(-(dx * dx + dy * dy) / (2 * bandwidth * bandwidth));
                expSum += p;
                weighted += p * value[j, 0];
            }

            Assert.Equal(Math.Log(expSum), logSumExp[i], 1e-12);
            Assert.Equal(weighted / expSum, output[i, 0], 1e-12);
        }
    }

    public static TheoryData<int, int, int?, int[][]> VisibilityCases() => new()
    {
        // MATH §3, m = 2, n = 4, bottom-right causal: q0 → {0,1,2}, q1 → {0..3}.
        { 2, 4, null, new[] { new[] { 0, 1, 2 }, new[] { 0, 1, 2, 3 } } },
        // ... with window w = 2: q0 → {1,2}, q1 → {2,3}.
        { 2, 4, 2, new[] { new[] { 1, 2 }, new[] { 2, 3 } } },
        // m = 4, n = 2: q0, q1 → ∅; q2 → {0}; q3 → {0,1}.
        { 4, 2, null, new[] { Array.Empty<int>(), Array.Empty<int>(), new[] { 0 }, new[] { 0, 1 } } },
        // m = n = 3: lower triangle.
        { 3, 3, null, new[] { new[] { 0 }, new[] { 0, 1 }, new[] { 0, 1, 2 } } },
    };

    [Theory]
    [MemberData(nameof(VisibilityCases))]
    public void Section3_CausalVisibilitySets(int m, int n, int? window, int[][] expected)
    {
        var options = new ReferenceOptions { Causal = true, Window = window };
        double[,] query = Filled(m, 2, seed: 1);
        double[,] key = Filled(n, 2, seed: 2);

        double[,] scores = NaiveAttention.Scores(query, key, options);

        for (int i = 0; i < m; i++)
        {
            var visible = new List<int>();
            for (int j = 0; j < n; j++)
            {
                bool isVisible = NaiveAttention.IsVisible(i, j, m, n, options);
                if (isVisible) visible.Add(j);
                Assert.Equal(!isVisible, double.IsNegativeInfinity(scores[i, j]));
            }

            Assert.Equal(expected[i], visible);
        }

        Assert.Equal(VisibleCount(expected), FlopCount.VisiblePairs(m, n, causal: true, window));
    }

    [Fact]
    public void Section3_NoMaskSeesEveryKey()
    {
        var options = new ReferenceOptions();
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                Assert.True(NaiveAttention.IsVisible(i, j, 3, 5, options));
        Assert.Equal(15, FlopCount.VisiblePairs(3, 5, causal: false));
    }

    // MATH §3: s = (0,0), s₀ = 0, v = (1,3) → O = 4/3 = 1.333333, LSE = ln 3 = 1.098612.
    [Fact]
    public void Section3_SinkExample()
    {
        double[,] query = { { 0 } };
        double[,] key = { { 1 }, { 1 } };
        double[,] value = { { 1 }, { 3 } };
        var options = new ReferenceOptions { SinkLogit = 0 };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, options);

        Assert.Equal(1.333333, output[0, 0], Tolerance);
        Assert.Equal(1.098612, logSumExp[0], Tolerance);
        Assert.Equal(Math.Log(3), logSumExp[0], 1e-15);
    }

    [Fact]
    public void Section3_EmptyRowsGiveZeroAndMinusInfinity()
    {
        double[,] query = Filled(4, 3, seed: 3);
        double[,] key = Filled(2, 3, seed: 4);
        double[,] value = Filled(2, 2, seed: 5);

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, new ReferenceOptions { Causal = true });

        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(double.NegativeInfinity, logSumExp[i]);
            Assert.Equal(0, output[i, 0]);
            Assert.Equal(0, output[i, 1]);
        }

        Assert.True(double.IsFinite(logSumExp[2]));
        Assert.Equal(value[0, 0], output[2, 0], 1e-15); // a single visible key gets weight 1
        Assert.Equal(value[0, 1], output[2, 1], 1e-15);
    }

    [Fact]
    public void Section3_EmptyRowsWithSinkGiveZeroAndSinkLogit()
    {
        double[,] query = Filled(4, 3, seed: 3);
        double[,] key = Filled(2, 3, seed: 4);
        double[,] value = Filled(2, 2, seed: 5);
        var options = new ReferenceOptions { Causal = true, SinkLogit = 0.75 };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, options);

        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(0.75, logSumExp[i]);
            Assert.Equal(0, output[i, 0]);
            Assert.Equal(0, output[i, 1]);
        }
    }

    [Fact]
    public void Section1_NoKeysMakesEveryRowEmpty()
    {
        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(
            Filled(3, 2, seed: 6), new double[0, 2], new double[0, 4], new ReferenceOptions());

        Assert.Equal(3, output.GetLength(0));
        Assert.Equal(4, output.GetLength(1));
        foreach (double lse in logSumExp) Assert.Equal(double.NegativeInfinity, lse);
        foreach (double o in output) Assert.Equal(0, o);
    }

    [Fact]
    public void Section1_ZeroValueDimIsLogSumExpOnly()
    {
        double[,] query = { { 1, 0 } };
        double[,] key = { { 1, 0 }, { 0, 1 } };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, new double[2, 0], Unscaled);

        Assert.Equal(0, output.GetLength(1));
        Assert.Equal(1.313262, logSumExp[0], Tolerance);
    }

    [Fact]
    public void Section3_NaNInMaskedKeyOrValueDoesNotSpread()
    {
        double[,] query = Filled(3, 2, seed: 7);
        double[,] key = Filled(3, 2, seed: 8);
        double[,] value = Filled(3, 2, seed: 9);
        key[2, 0] = double.NaN;   // key 2 is visible only to query 2
        value[2, 1] = double.NaN;

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, new ReferenceOptions { Causal = true });

        for (int i = 0; i < 2; i++)
        {
            Assert.True(double.IsFinite(logSumExp[i]));
            Assert.True(double.IsFinite(output[i, 0]));
            Assert.True(double.IsFinite(output[i, 1]));
        }

        Assert.True(double.IsNaN(logSumExp[2]));
        Assert.True(double.IsNaN(output[2, 0]));
        Assert.True(double.IsNaN(output[2, 1]));
    }

    [Fact]
    public void Section3_NaNInMaskedValueOnlyDoesNotSpread()
    {
        double[,] query = Filled(2, 2, seed: 10);
        double[,] key = Filled(4, 2, seed: 11);
        double[,] value = Filled(4, 1, seed: 12);
        value[0, 0] = double.NaN;  // window 2, m = 2, n = 4: key 0 is visible to no query
        value[3, 0] = double.PositiveInfinity; // key 3 is visible only to q1

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(
            query, key, value, new ReferenceOptions { Causal = true, Window = 2 });

        Assert.True(double.IsFinite(output[0, 0]));
        Assert.True(double.IsFinite(logSumExp[0]));
        Assert.Equal(double.PositiveInfinity, output[1, 0]);
        Assert.True(double.IsFinite(logSumExp[1]));
    }

    [Fact]
    public void Section4_NaNInVisibleQueryMakesOnlyThatRowNaN()
    {
        double[,] query = Filled(3, 2, seed: 13);
        double[,] key = Filled(3, 2, seed: 14);
        double[,] value = Filled(3, 2, seed: 15);
        query[1, 1] = double.NaN;

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, new ReferenceOptions());

        Assert.True(double.IsNaN(logSumExp[1]));
        Assert.True(double.IsNaN(output[1, 0]) && double.IsNaN(output[1, 1]));
        foreach (int i in new[] { 0, 2 })
            Assert.True(double.IsFinite(logSumExp[i]) && double.IsFinite(output[i, 0]) && double.IsFinite(output[i, 1]));
    }

    [Fact]
    public void Section4_PositiveInfiniteLogitMakesRowNaN()
    {
        double[,] query = { { 1e200 }, { 1 } };
        double[,] key = { { 1e200 }, { 1 } };
        double[,] value = { { 1 }, { 2 } };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, Unscaled);

        Assert.True(double.IsNaN(output[0, 0]));
        Assert.True(double.IsNaN(logSumExp[0]));
        Assert.True(double.IsFinite(output[1, 0])); // q1·k0 = 1e200 is finite: row 1 is fine
    }

    [Fact]
    public void Section4_LargeLogitsDoNotOverflow()
    {
        double[,] query = { { 1e4 } };
        double[,] key = { { 1 }, { 0.999 } };
        double[,] value = { { 1 }, { 0 } };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, Unscaled);

        Assert.Equal(1 / (1 + Math.Exp(-10)), output[0, 0], 1e-12);
        Assert.Equal(1e4 + Math.Log(1 + Math.Exp(-10)), logSumExp[0], 1e-9);
    }

    // MATH §1: token-major multi-head layout, GQA with H = 4, Hkv = 2: head h reads kv head h / 2.
    [Fact]
    public void Section1_MultiHeadEqualsSingleHeadOnColumnSlices()
    {
        const int m = 3, n = 5, headCount = 4, keyValueHeadCount = 2, headDim = 3, valueDim = 2;
        double[,] query = Filled(m, headCount * headDim, seed: 16);
        double[,] key = Filled(n, keyValueHeadCount * headDim, seed: 17);
        double[,] value = Filled(n, keyValueHeadCount * valueDim, seed: 18);
        double[] sinks = { 0.5, double.NegativeInfinity, -1, 2 };
        var options = new ReferenceOptions { Causal = true };

        (double[,] output, double[,] logSumExp) = NaiveAttention.ForwardMultiHead(
            query, key, value, headCount, keyValueHeadCount, options, sinks);

        Assert.Equal(m, output.GetLength(0));
        Assert.Equal(headCount * valueDim, output.GetLength(1));
        Assert.Equal(headCount, logSumExp.GetLength(0));
        Assert.Equal(m, logSumExp.GetLength(1));
        for (int head = 0; head < headCount; head++)
        {
            int kvHead = head / (headCount / keyValueHeadCount);
            (double[,] headOutput, double[] headLse) = NaiveAttention.Forward(
                Columns(query, head * headDim, headDim),
                Columns(key, kvHead * headDim, headDim),
                Columns(value, kvHead * valueDim, valueDim),
                options with { SinkLogit = sinks[head] });
            for (int i = 0; i < m; i++)
            {
                Assert.Equal(headLse[i], logSumExp[head, i]);
                for (int c = 0; c < valueDim; c++)
                    Assert.Equal(headOutput[i, c], output[i, head * valueDim + c]);
            }
        }
    }

    [Fact]
    public void Section1_MultiHeadUsesOptionsSinkWithoutPerHeadSinks()
    {
        double[,] query = Filled(2, 4, seed: 19);
        double[,] key = Filled(3, 2, seed: 20);
        double[,] value = Filled(3, 1, seed: 21);
        var options = new ReferenceOptions { SinkLogit = 0.25 };

        (double[,] output, double[,] logSumExp) = NaiveAttention.ForwardMultiHead(query, key, value, 2, 1, options);

        for (int head = 0; head < 2; head++)
        {
            (double[,] headOutput, double[] headLse) = NaiveAttention.Forward(Columns(query, head * 2, 2), key, value, options);
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(headLse[i], logSumExp[head, i]);
                Assert.Equal(headOutput[i, 0], output[i, head]);
            }
        }
    }

    [Fact]
    public void FloatOverloadEqualsDoubleOnConvertedInputs()
    {
        float[,] query = { { 0.1f, -0.7f }, { 1.5f, 0.25f } };
        float[,] key = { { 0.3f, 0.9f }, { -1.1f, 0.4f }, { 0.6f, -0.2f } };
        float[,] value = { { 1f }, { -2f }, { 0.5f } };
        var options = new ReferenceOptions { Kernel = ReferenceKernel.Gaussian, Bandwidth = 0.8, Causal = true };

        (double[,] output, double[] logSumExp) = NaiveAttention.Forward(query, key, value, options);
        (double[,] expectedOutput, double[] expectedLse) = NaiveAttention.Forward(
            ToDouble(query), ToDouble(key), ToDouble(value), options);

        Assert.Equal(expectedLse, logSumExp);
        Assert.Equal(expectedOutput, output);
    }

    [Fact]
    public void InconsistentShapesThrowNamingTheArgument()
    {
        var options = new ReferenceOptions();
        Assert.Equal("key", Assert.Throws<ArgumentException>(
            () => NaiveAttention.Forward(new double[2, 3], new double[4, 2], new double[4, 1], options)).ParamName);
        Assert.Equal("value", Assert.Throws<ArgumentException>(
            () => NaiveAttention.Forward(new double[2, 3], new double[4, 3], new double[5, 1], options)).ParamName);
        Assert.Equal("query", Assert.Throws<ArgumentException>(
            () => NaiveAttention.Scores(new double[2, 0], new double[4, 0], options)).ParamName);
        Assert.Equal("keyValueHeadCount", Assert.Throws<ArgumentException>(
            () => NaiveAttention.ForwardMultiHead(new double[1, 6], new double[2, 4], new double[2, 4], 3, 2, options)).ParamName);
        Assert.Equal("key", Assert.Throws<ArgumentException>(
            () => NaiveAttention.ForwardMultiHead(new double[1, 8], new double[2, 6], new double[2, 4], 4, 2, options)).ParamName);
        Assert.Equal("sinkLogits", Assert.Throws<ArgumentException>(
            () => NaiveAttention.ForwardMultiHead(new double[1, 8], new double[2, 4], new double[2, 4], 4, 2, options, new double[3])).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentOutOfRangeException>(
            () => NaiveAttention.Scores(new double[1, 1], new double[1, 1], new ReferenceOptions { Kernel = ReferenceKernel.Gaussian, Bandwidth = 0 })).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentOutOfRangeException>(
            () => NaiveAttention.Scores(new double[1, 1], new double[1, 1], new ReferenceOptions { Window = 0 })).ParamName);
    }

    // MATH §15: m = n = 1024, d = dv = 64 → 268,435,456 dense and 134,348,800 causal; m = 2, n = 4 causal → P = 7.
    [Fact]
    public void Section15_FlopCounts()
    {
        Assert.Equal(268_435_456L, FlopCount.Forward(1024, 1024, 64, 64, causal: false));
        Assert.Equal(134_348_800L, FlopCount.Forward(1024, 1024, 64, 64, causal: true));
        Assert.Equal(7L, FlopCount.VisiblePairs(2, 4, causal: true));
        Assert.Equal(8L, FlopCount.VisiblePairs(2, 4, causal: false));
        Assert.Equal(3L, FlopCount.VisiblePairs(4, 2, causal: true));
        Assert.Equal(4L * 134_348_800L, FlopCount.Forward(1024, 1024, 64, 64, causal: true, heads: 4));
        // Decode (m = 1, n = 4096, d = dv = 64): 1,048,576 flops.
        Assert.Equal(1_048_576L, FlopCount.Forward(1, 4096, 64, 64, causal: true));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(7, 3)]
    [InlineData(16, 16)]
    [InlineData(5, 40)]
    public void Section15_CausalPairFormulaMatchesExactCount(int m, int n)
    {
        var options = new ReferenceOptions { Causal = true };
        long counted = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                if (NaiveAttention.IsVisible(i, j, m, n, options)) counted++;

        Assert.Equal(counted, FlopCount.VisiblePairs(m, n, causal: true));
        if (m <= n) Assert.Equal((long)m * (n - m) + (long)m * (m + 1) / 2, counted);
        foreach (int window in new[] { 1, 2, 5 })
        {
            var windowed = options with { Window = window };
            long windowCount = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    if (NaiveAttention.IsVisible(i, j, m, n, windowed)) windowCount++;
            Assert.Equal(windowCount, FlopCount.VisiblePairs(m, n, causal: true, window));
            Assert.True(windowCount <= (long)m * window);
        }
    }

    private static long VisibleCount(int[][] sets)
    {
        long count = 0;
        foreach (int[] set in sets) count += set.Length;
        return count;
    }

    private static double[,] Filled(int rows, int columns, int seed)
    {
        var random = new Random(seed);
        var result = new double[rows, columns];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                result[r, c] = 2 * random.NextDouble() - 1; // uniform[−1, 1], MATH §14
        return result;
    }

    private static double[,] Columns(double[,] source, int first, int count)
    {
        var result = new double[source.GetLength(0), count];
        for (int r = 0; r < source.GetLength(0); r++)
            for (int c = 0; c < count; c++)
                result[r, c] = source[r, first + c];
        return result;
    }

    private static double[,] ToDouble(float[,] source)
    {
        var result = new double[source.GetLength(0), source.GetLength(1)];
        for (int r = 0; r < source.GetLength(0); r++)
            for (int c = 0; c < source.GetLength(1); c++)
                result[r, c] = source[r, c];
        return result;
    }
}
