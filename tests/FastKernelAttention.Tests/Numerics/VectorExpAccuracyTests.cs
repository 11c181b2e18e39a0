using System;
using System.Numerics;
using System.Runtime.Intrinsics;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Numerics;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Numerics;

/// <summary>MATH §5: the inline exp is within 3 ulp of Math.Exp on the softmax domain, flushes to +0 below the normal
/// range, maps −∞ to +0 and propagates NaN — on every ISA path, float and double.</summary>
public class VectorExpAccuracyTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void FloatWithinThreeUlpOverTheWholeRange(IsaPath path)
    {
        const int Points = 1_000_000;
        const double Lowest = -87.33654; // the lowest float whose e^x is normal (ln 2^-126 = −87.33654475 lies between floats)
        var inputs = new float[Points];
        for (int i = 0; i < Points; i++) inputs[i] = (float)(Lowest * i / (Points - 1));
        float[] results = Evaluate(path, inputs);
        for (int i = 0; i < Points; i++)
        {
            double exact = Math.Exp(inputs[i]);
            double ulp = MathF.BitIncrement((float)exact) - (float)exact;
            double error = Math.Abs(results[i] - exact) / ulp;
            Assert.True(error <= 3, $"{path}: exp({inputs[i]:R}) = {results[i]:R}, exact {exact:R}, {error:F2} ulp");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void DoubleWithinThreeUlpOverTheWholeRange(IsaPath path)
    {
        const int Points = 1_000_000;
        const double Lowest = -708.3964185322641; // ln 2^-1022 as a double: e^x is normal from here
        var inputs = new double[Points];
        for (int i = 0; i < Points; i++) inputs[i] = Lowest * i / (Points - 1);
        double[] results = Evaluate(path, inputs);
        for (int i = 0; i < Points; i++)
        {
            double exact = Math.Exp(inputs[i]);
            double ulp = Math.BitIncrement(exact) - exact;
            double error = Math.Abs(results[i] - exact) / ulp;
            Assert.True(error <= 3, $"{path}: exp({inputs[i]:R}) = {results[i]:R}, exact {exact:R}, {error:F2} ulp");
        }
    }

    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void SpecialValues(IsaPath path)
    {
        float[] f = Evaluate(path, new[] { 0f, -0f, float.NegativeInfinity, float.NaN, -87.33655f, -87.3365f, -100f, -1e30f });
        Assert.Equal(1f, f[0]);
        Assert.Equal(1f, f[1]);
        Assert.Equal(0f, f[2]);
        Assert.True(BitConverter.SingleToInt32Bits(f[2]) == 0, "exp(−∞) must be +0");
        Assert.True(float.IsNaN(f[3]));
        Assert.True(BitConverter.SingleToInt32Bits(f[4]) == 0, $"below ln 2^-126 must flush to +0, got {f[4]:R}");
        Assert.True(float.IsNormal(f[5]) && Math.Abs(f[5] - Math.Exp(-87.3365f)) <= 3 * (MathF.BitIncrement(f[5]) - f[5]), $"just above the threshold: {f[5]:R}");
        Assert.Equal(0f, f[6]);
        Assert.Equal(0f, f[7]);

        double[] d = Evaluate(path, new[] { 0.0, -0.0, double.NegativeInfinity, double.NaN, -708.3964185322642, -708.39641853226, -800.0 });
        Assert.Equal(1.0, d[0]);
        Assert.Equal(1.0, d[1]);
        Assert.True(BitConverter.DoubleToInt64Bits(d[2]) == 0, "exp(−∞) must be +0");
        Assert.True(double.IsNaN(d[3]));
        Assert.True(BitConverter.DoubleToInt64Bits(d[4]) == 0, $"below ln 2^-1022 must flush to +0, got {d[4]:R}");
        Assert.True(double.IsNormal(d[5]), $"just above the threshold: {d[5]:R}");
        Assert.Equal(0.0, d[6]);
    }

    private static T[] Evaluate<T>(IsaPath path, T[] inputs)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var outputs = new T[inputs.Length];
        switch (path)
        {
            case IsaPath.Avx512: Apply<T, Vector512<T>, Avx512Ops<T>>(inputs, outputs); break;
            case IsaPath.Avx2: Apply<T, Vector256<T>, Avx2Ops<T>>(inputs, outputs); break;
            case IsaPath.Vector128: Apply<T, Vector128<T>, Vector128Ops<T>>(inputs, outputs); break;
            default: Apply<T, T, ScalarOps<T>>(inputs, outputs); break;
        }
        return outputs;
    }

    /// <summary>Full vectors through the path's exp; the remainder padded with zeros.</summary>
    private static unsafe void Apply<T, TVec, TOps>(T[] inputs, T[] outputs)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        int w = TOps.Count;
        T* buffer = stackalloc T[64];
        for (int i = 0; i < inputs.Length; i += w)
        {
            int count = Math.Min(w, inputs.Length - i);
            for (int l = 0; l < w; l++) buffer[l] = l < count ? inputs[i + l] : T.Zero;
            TOps.Store(VectorExp.Exp<T, TVec, TOps>(TOps.Load(buffer)), buffer);
            for (int l = 0; l < count; l++) outputs[i + l] = buffer[l];
        }
    }
}
