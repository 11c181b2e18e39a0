using System;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Reference;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>
/// bfloat16 and half-precision K/V (float Q, O): the widening on every ISA path against the exact conversion for all 65536
/// bit patterns; the call against the double reference on the widened K and V with the float tolerances of MATH §14 on
/// every path (odd d and dv, n = 0 and 1, n off the tile and chunk sizes, m from 1 to 20, MHA/GQA/MQA, causal, sinks);
/// bitwise determinism over thread counts; argument validation; the BFloat16 rounding.
/// </summary>
public class HalfPrecisionKeyValueTests
{
    public static TheoryData<IsaPath, bool> PathsAndFormats()
    {
        var data = new TheoryData<IsaPath, bool>();
        foreach (object[] row in IsaPaths.Supported())
        {
            data.Add((IsaPath)row[0], false); // bfloat16
            data.Add((IsaPath)row[0], true);  // half
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PathsAndFormats))]
    public unsafe void WideningIsExactForEveryBitPattern(IsaPath path, bool half)
    {
        var bits = new ushort[65536 + 64];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var widened = new float[bits.Length];
        fixed (ushort* source = bits)
        fixed (float* destination = widened)
        {
            switch (path)
            {
                case IsaPath.Avx512:
                    if (half) Widen<Vector512<float>, Avx512Ops<float>, HalfFormat<Vector512<float>>>(source, destination, 65536);
                    else Widen<Vector512<float>, Avx512Ops<float>, BFloat16Format<Vector512<float>>>(source, destination, 65536);
                    break;
                case IsaPath.Avx2:
                    if (half) Widen<Vector256<float>, Avx2Ops<float>, HalfFormat<Vector256<float>>>(source, destination, 65536);
                    else Widen<Vector256<float>, Avx2Ops<float>, BFloat16Format<Vector256<float>>>(source, destination, 65536);
                    break;
                case IsaPath.Vector128:
                    if (half) Widen<Vector128<float>, Vector128Ops<float>, HalfFormat<Vector128<float>>>(source, destination, 65536);
                    else Widen<Vector128<float>, Vector128Ops<float>, BFloat16Format<Vector128<float>>>(source, destination, 65536);
                    break;
                default:
                    if (half) Widen<float, ScalarOps<float>, HalfFormat<float>>(source, destination, 65536);
                    else Widen<float, ScalarOps<float>, BFloat16Format<float>>(source, destination, 65536);
                    break;
            }
        }
        for (int i = 0; i < 65536; i++)
        {
            float expected = half ? (float)BitConverter.UInt16BitsToHalf((ushort)i) : BitConverter.Int32BitsToSingle(i << 16);
            float actual = widened[i];
            if (float.IsNaN(expected))
                Assert.True(float.IsNaN(actual), $"{path} {(half ? "half" : "bf16")} 0x{i:X4}: NaN gave {actual}");
            else
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                    $"{path} {(half ? "half" : "bf16")} 0x{i:X4}: {actual:R}, expected {expected:R}");
        }
    }

    private static unsafe void Widen<TVec, TOps, TFormat>(ushort* source, float* destination, int count)
        where TVec : unmanaged
        where TOps : struct, ISimdOps<float, TVec>
        where TFormat : struct, IKeyValueFormat<float, TVec, ushort>
    {
        int w = TOps.Count;
        int i = 0;
        for (; i + w <= count / 2; i += w) TOps.Store(TFormat.Load(source + i), destination + i);
        for (; i < count; i++) destination[i] = TFormat.LoadScalar(source + i); // half the patterns through the scalar tail
    }

    /// <summary>(m, n, d, dv, H, Hkv).</summary>
    private static readonly (int M, int N, int D, int Dv, int H, int Hkv)[] Shapes =
    {
        (1, 0, 8, 8, 2, 1),
        (1, 1, 1, 1, 1, 1),
        (1, 65, 17, 3, 4, 4),
        (1, 513, 130, 127, 3, 1),
        (1, 2100, 64, 64, 8, 2),
        (3, 700, 9, 5, 70, 1),
        (8, 1100, 33, 31, 4, 2),
        (9, 600, 16, 16, 2, 2),      // two row blocks
        (2, 600, 96, 48, 4, 2),      // d and dv with a 32-column step after the 64-column ones
        (1, 300, 48, 80, 32, 32),    // W4's layout at a smaller size
        (20, 300, 24, 8, 4, 1),      // m > 16: no key splits
        (6, 4, 5, 5, 2, 2),          // m > n
    };

    [Theory]
    [MemberData(nameof(PathsAndFormats))]
    public void MatchesReferenceOnTheWidenedValues(IsaPath path, bool half)
    {
        int seed = 0;
        foreach (var (m, n, d, dv, h, hkv) in Shapes)
        {
            foreach (bool causal in new[] { false, true })
            {
                seed++;
                Check(path, half, m, n, d, dv, h, hkv, new AttentionOptions { Causal = causal, MaxDegreeOfParallelism = seed % 3 }, perHeadSinks: false, seed, pitch: 0);
                Check(path, half, m, n, d, dv, h, hkv, new AttentionOptions { Causal = causal, Scale = 0.3, SinkLogit = 0.5 }, perHeadSinks: false, seed + 50, pitch: 3);
                Check(path, half, m, n, d, dv, h, hkv, new AttentionOptions { Causal = causal, MaxDegreeOfParallelism = 2 }, perHeadSinks: true, seed + 100, pitch: 1);
            }
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndFormats))]
    public void EveryDegreeOfParallelismGivesTheSameBits(IsaPath path, bool half)
    {
        float[]? first = null, firstLse = null;
        foreach (int degree in new[] { 1, 2, 7, -1 })
        {
            var (o, lse) = Run(path, half, 2, 3000, 40, 24, 8, 2, new AttentionOptions { Causal = true, MaxDegreeOfParallelism = degree },
                perHeadSinks: true, seed: 7, pitch: 0);
            if (first is null || firstLse is null)
            {
                (first, firstLse) = (o, lse);
                continue;
            }
            Assert.True(MemoryMarshal.AsBytes(first.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(o.AsSpan())), $"{path}: O differs at degree {degree}");
            Assert.True(MemoryMarshal.AsBytes(firstLse.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(lse.AsSpan())), $"{path}: LSE differs at degree {degree}");
        }
    }

    [Fact]
    public void MaskedNaNDoesNotSpread()
    {
        // Decode with m = 2 causal over n = 70: key 69 is masked for row 0; a NaN in its K and V must leave row 0 finite.
        int m = 2, n = 70, d = 8;
        var random = new Random(3);
        float[] q = AttentionCase.Fill<float>(random, m, d, 0, 0);
        BFloat16[] k = Array.ConvertAll(AttentionCase.Fill<float>(random, n, d, 0, 0), x => (BFloat16)x);
        BFloat16[] v = Array.ConvertAll(AttentionCase.Fill<float>(random, n, d, 0, 0), x => (BFloat16)x);
        for (int c = 0; c < d; c++) k[69 * d + c] = v[69 * d + c] = (BFloat16)float.NaN;
        var o = new float[m * d];
        var lse = new float[m];
        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, m, d), new ReadOnlySpan2D<BFloat16>(k, n, d), new ReadOnlySpan2D<BFloat16>(v, n, d),
            new Span2D<float>(o, m, d), 1, 1, new AttentionOptions { Causal = true }, lse);
        for (int c = 0; c < d; c++) Assert.True(float.IsFinite(o[c]));
        Assert.True(float.IsFinite(lse[0]));
        Assert.True(float.IsNaN(lse[1]));
    }

    private static void Check(IsaPath path, bool half, int m, int n, int d, int dv, int h, int hkv, AttentionOptions options, bool perHeadSinks, int seed, int pitch)
    {
        var (o, lse) = Run(path, half, m, n, d, dv, h, hkv, options, perHeadSinks, seed, pitch, out double[,] qd, out double[,] kd, out double[,] vd, out double[]? sinks);
        var referenceOptions = new ReferenceOptions { Scale = options.Scale, Causal = options.Causal, SinkLogit = options.SinkLogit };
        var (expected, expectedLse) = NaiveAttention.ForwardMultiHead(qd, kd, vd, h, hkv, referenceOptions, sinks);
        double maxV = 0;
        foreach (double x in vd) maxV = Math.Max(maxV, Math.Abs(x));
        double tolerance = Tolerance.Output(false) * Math.Max(maxV, 1e-300);
        string where = $"{path} {(half ? "half" : "bf16")} m={m} n={n} d={d} dv={dv} H={h} Hkv={hkv} pitch={pitch} {options} perHead={perHeadSinks}";
        for (int i = 0; i < m; i++)
        {
            for (int c = 0; c < h * dv; c++)
            {
                double actual = o[i * (h * dv + pitch) + c];
                if (!Tolerance.Close(actual, expected[i, c], tolerance))
                    Assert.Fail($"{where}: O[{i},{c}] = {actual:R}, reference {expected[i, c]:R}");
            }
        }
        for (int head = 0; head < h; head++)
        {
            for (int i = 0; i < m; i++)
            {
                double reference = expectedLse[head, i];
                if (!Tolerance.Close(lse[head * m + i], reference, Tolerance.LogSumExp(false) * Math.Max(1, Math.Abs(reference))))
                    Assert.Fail($"{where}: LSE[{head},{i}] = {lse[head * m + i]:R}, reference {reference:R}");
            }
        }
    }

    private static (float[] O, float[] Lse) Run(IsaPath path, bool half, int m, int n, int d, int dv, int h, int hkv, AttentionOptions options, bool perHeadSinks, int seed, int pitch)
        => Run(path, half, m, n, d, dv, h, hkv, options, perHeadSinks, seed, pitch, out _, out _, out _, out _);

    /// <summary>Random N(0, 1) data rounded to the 16-bit format (padding NaN), the call, and the widened inputs in double.</summary>
    private static (float[] O, float[] Lse) Run(IsaPath path, bool half, int m, int n, int d, int dv, int h, int hkv, AttentionOptions options,
        bool perHeadSinks, int seed, int pitch, out double[,] qd, out double[,] kd, out double[,] vd, out double[]? sinks)
    {
        var random = new Random(seed);
        float[] q = AttentionCase.Fill<float>(random, m, h * d, pitch, 0);
        float[] kf = AttentionCase.Fill<float>(random, n, hkv * d, pitch, 0), vf = AttentionCase.Fill<float>(random, n, hkv * dv, pitch, 0);
        float[] o = new float[m * (h * dv + pitch) + 1];
        float[] lse = new float[h * m];
        float[] sinkLogits = new float[perHeadSinks ? h : 0];
        for (int i = 0; i < sinkLogits.Length; i++) sinkLogits[i] = i % 3 == 2 ? float.NegativeInfinity : 0.3f * i - 0.5f;
        sinks = perHeadSinks ? Array.ConvertAll(sinkLogits, s => (double)s) : null;
        var query = new ReadOnlySpan2D<float>(q, 0, m, h * d, pitch);
        var output = new Span2D<float>(o, 0, m, h * dv, pitch);
        float[] kw, vw;
        if (half)
        {
            Half[] k = Array.ConvertAll(kf, x => (Half)x), v = Array.ConvertAll(vf, x => (Half)x);
            (kw, vw) = (Array.ConvertAll(k, x => (float)x), Array.ConvertAll(v, x => (float)x));
            Attention.ForwardHalfPrecisionOnPath(path, query, new ReadOnlySpan2D<Half>(k, 0, n, hkv * d, pitch),
                new ReadOnlySpan2D<Half>(v, 0, n, hkv * dv, pitch), output, h, hkv, options, lse, sinkLogits);
        }
        else
        {
            BFloat16[] k = Array.ConvertAll(kf, x => (BFloat16)x), v = Array.ConvertAll(vf, x => (BFloat16)x);
            (kw, vw) = (Array.ConvertAll(k, x => (float)x), Array.ConvertAll(v, x => (float)x));
            Attention.ForwardHalfPrecisionOnPath(path, query, new ReadOnlySpan2D<BFloat16>(k, 0, n, hkv * d, pitch),
                new ReadOnlySpan2D<BFloat16>(v, 0, n, hkv * dv, pitch), output, h, hkv, options, lse, sinkLogits);
        }
        qd = AttentionCase.ToDouble(query);
        kd = AttentionCase.ToDouble(new ReadOnlySpan2D<float>(kw, 0, n, hkv * d, pitch));
        vd = AttentionCase.ToDouble(new ReadOnlySpan2D<float>(vw, 0, n, hkv * dv, pitch));
        return (o, lse);
    }

    /// <summary>Above 16 query rows (20 when H = Hkv) the 16-bit call widens each kv head into a float copy and runs the float block kernel:
    /// the float call's bits on the widened K and V (O and LSE), every path, dense and causal, MHA and GQA, sinks, padded
    /// pitches, one or two threads; at 16 rows (the decode kernel) only the tolerance holds, which the reference test checks.</summary>
    [Theory]
    [MemberData(nameof(PathsAndFormats))]
    public void AboveSixteenRowsGivesTheFloatCallsBits(IsaPath path, bool half)
    {
        int seed = 300;
        foreach (var (m, n, d, dv, h, hkv, pitch) in new[] { (17, 300, 24, 20, 4, 2, 0), (70, 650, 16, 33, 3, 3, 2), (40, 129, 64, 64, 8, 1, 1) })
        {
            foreach (bool causal in new[] { false, true })
            {
                var options = new AttentionOptions { Causal = causal, SinkLogit = causal ? 0.25 : null, MaxDegreeOfParallelism = 1 + seed % 2 };
                var (o, lse) = Run(path, half, m, n, d, dv, h, hkv, options, perHeadSinks: false, seed, pitch, out var qd, out var kd, out var vd, out _);
                float[] q = ToFloat(qd), k = ToFloat(kd), v = ToFloat(vd);
                float[] expected = new float[m * h * dv], expectedLse = new float[h * m];
                Attention.ForwardOnPath(path, new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<float>(k, n, hkv * d),
                    new ReadOnlySpan2D<float>(v, n, hkv * dv), new Span2D<float>(expected, m, h * dv), h, hkv, options, expectedLse);
                var actual = new Span2D<float>(o, 0, m, h * dv, pitch);
                string where = $"{path} {(half ? "half" : "bf16")} m={m} n={n} d={d} dv={dv} H={h}/{hkv} causal={causal}";
                for (int i = 0; i < m; i++)
                    for (int c = 0; c < h * dv; c++)
                        Assert.True(BitConverter.SingleToInt32Bits(actual[i, c]) == BitConverter.SingleToInt32Bits(expected[i * h * dv + c]), $"{where}: O[{i}, {c}]");
                for (int i = 0; i < h * m; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(lse[i]) == BitConverter.SingleToInt32Bits(expectedLse[i]), $"{where}: LSE[{i}]");
                seed++;
            }
        }
    }

    private static float[] ToFloat(double[,] a)
    {
        var f = new float[a.Length];
        int columns = a.GetLength(1);
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < columns; j++) f[i * columns + j] = (float)a[i, j];
        return f;
    }

    [Fact]
    public void BadArgumentsNameTheArgument()
    {
        int m = 1, n = 10, d = 8, h = 2;
        float[] q = new float[m * h * d], o = new float[m * h * d], lse = new float[h * m];
        BFloat16[] k = new BFloat16[n * h * d], v = new BFloat16[n * h * d];
        void Call(int kWidth, int vRows, int oWidth, int lseLength, int heads, int kvHeads, AttentionOptions options, float[]? sinks = null)
            => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<BFloat16>(k, 0, n, kWidth, h * d - kWidth),
                new ReadOnlySpan2D<BFloat16>(v, vRows, h * d), new Span2D<float>(o, m, oWidth), heads, kvHeads, options,
                lse.AsSpan(0, lseLength), sinks);
        void Expect(string parameter, Action call) => Assert.Equal(parameter, Assert.ThrowsAny<ArgumentException>(call).ParamName);

        Call(h * d, n, h * d, h * m, h, h, default); // valid
        Expect("key", () => Call(h * d - 1, n, h * d, h * m, h, h, default));
        Expect("value", () => Call(h * d, n - 1, h * d, h * m, h, h, default));
        Expect("output", () => Call(h * d, n, h * d - 2, h * m, h, h, default));
        Expect("logSumExp", () => Call(h * d, n, h * d, 1, h, h, default));
        Expect("headCount", () => Call(h * d, n, h * d, h * m, 0, 1, default));
        Expect("keyValueHeadCount", () => Call(h * d, n, h * d, h * m, h, 3, default));
        Expect("options", () => Call(h * d, n, h * d, h * m, h, h, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 }));
        Expect("options", () => Call(h * d, n, h * d, h * m, h, h, new AttentionOptions { Scale = -1 }));
        Expect("options", () => Call(h * d, n, h * d, h * m, h, h, new AttentionOptions { SinkLogit = double.NaN }));
        Expect("sinkLogits", () => Call(h * d, n, h * d, h * m, h, h, default, new float[1]));
        Expect("sinkLogits", () => Call(h * d, n, h * d, h * m, h, h, default, new[] { 0f, float.NaN }));

        // An output overlapping K (the same memory seen as float and as bfloat16).
        float[] shared = new float[n * h * d];
        Expect("output", () => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, m, h * d),
            MemoryMarshal.Cast<float, BFloat16>(shared.AsSpan()).Slice(0, n * h * d).AsSpan2D(n, h * d),
            new ReadOnlySpan2D<BFloat16>(v, n, h * d), new Span2D<float>(shared, m, h * d), h, h, default));
        Expect("options", () => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<Half>(new Half[n * h * d], n, h * d),
            new ReadOnlySpan2D<Half>(new Half[n * h * d], n, h * d), new Span2D<float>(o, m, h * d), h, h,
            new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 }));
    }

    [Fact]
    public void BFloat16RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, ((BFloat16)1f).Bits);
        Assert.Equal(0x3F80, ((BFloat16)BitConverter.Int32BitsToSingle(0x3F808000)).Bits); // tie, even below
        Assert.Equal(0x3F82, ((BFloat16)BitConverter.Int32BitsToSingle(0x3F818000)).Bits); // tie, even above
        Assert.Equal(0x3F81, ((BFloat16)BitConverter.Int32BitsToSingle(0x3F808001)).Bits); // above the tie
        Assert.Equal(0x7F80, ((BFloat16)float.MaxValue).Bits);                              // overflow to +∞
        Assert.Equal(0xFF80, ((BFloat16)float.NegativeInfinity).Bits);
        Assert.True(float.IsNaN((float)(BFloat16)float.NaN));
        Assert.True(float.IsNaN((float)(BFloat16)BitConverter.Int32BitsToSingle(0x7F800001))); // a NaN with only low payload bits
        for (int bits = 0; bits < 65536; bits++)
        {
            var value = BFloat16.FromBits((ushort)bits);
            if (float.IsNaN((float)value)) continue;
            Assert.Equal(value, (BFloat16)(float)value); // every value round-trips
        }
        Assert.Equal("1.5", ((BFloat16)1.5f).ToString());
        Assert.NotEqual(BFloat16.FromBits(0), BFloat16.FromBits(0x8000)); // bitwise: +0 ≠ −0
    }
}
