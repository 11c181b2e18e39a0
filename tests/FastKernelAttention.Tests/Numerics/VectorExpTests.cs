using System;
using System.Collections.Generic;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels.Isa;
using FastKernelAttention.Numerics;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Numerics;

/// <summary>MATH §5 (in base 2) on every ISA path, float and double: <see cref="VectorExp.Exp2{T, TVec, TOps}"/> is within
/// 3 ulp of 2^x (<see cref="double.Exp2(double)"/>; float also against Math.Exp(x·ln 2)) on the softmax domain, gives
/// exactly 1 at ±0, exactly +0 at −∞ and below the normal range (no denormals), a normal, accurate value at and just above
/// it, and NaN for NaN — lane by lane.</summary>
public class VectorExpTests
{
    private const int Points = 1_000_000;
    // The softmax domain of MATH §5 in base 2: x ∈ [−126, 0] (float), [−1022, 0] (double); 2^x is normal exactly from
    // the lower end on, and both ends are representable.
    private const double FloatLowest = -126;
    private const double DoubleLowest = -1022;
    private const float FloatLowestNormal = -126f;
    private const double DoubleLowestNormal = -1022.0;

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void WithinThreeUlpOverTheSoftmaxDomain(IsaPath path, bool isDouble)
    {
        if (isDouble) CheckDomain<double>(path, DoubleLowest);
        else CheckDomain<float>(path, FloatLowest);
    }

    private static void CheckDomain<T>(IsaPath path, double lowest)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // 10^6 evenly spaced points over [lowest, 0], both ends included, rounded to T.
        var inputs = new T[Points];
        for (int i = 0; i < Points; i++) inputs[i] = T.CreateTruncating(lowest * i / (Points - 1));
        T[] results = Evaluate(path, inputs);
        double worst = 0;
        int worstAt = 0;
        for (int i = 0; i < Points; i++)
        {
            double error = UlpError(results[i], double.Exp2(double.CreateTruncating(inputs[i])));
            if (!(error <= worst)) { worst = error; worstAt = i; }
        }
        Assert.True(worst <= 3, $"{path} {typeof(T).Name}: 2^({inputs[worstAt]:R}) = {results[worstAt]:R}, double.Exp2 {double.Exp2(double.CreateTruncating(inputs[worstAt])):R}: {worst:F2} ulp");
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SpecialValues(IsaPath path, bool isDouble)
    {
        if (isDouble) CheckSpecials(path, DoubleLowestNormal, DoubleLowest);
        else CheckSpecials(path, FloatLowestNormal, FloatLowest);
    }

    private static void CheckSpecials<T>(IsaPath path, T lowestNormal, double threshold)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // The representable values nearest the threshold on either side, a few steps further out, and far below it.
        T above = lowestNormal, below = T.BitDecrement(lowestNormal);
        Assert.True(double.Exp2(double.CreateTruncating(above)) >= Math.ScaleB(1, typeof(T) == typeof(float) ? -126 : -1022));
        Assert.True(double.Exp2(double.CreateTruncating(below)) < Math.ScaleB(1, typeof(T) == typeof(float) ? -126 : -1022));

        var cases = new (T X, string Name)[]
        {
            (T.Zero, "0"), (T.NegativeZero, "−0"), (T.NegativeInfinity, "−∞"), (T.NaN, "NaN"),
            (below, "just below"), (T.BitDecrement(below), "2 below"), (T.BitDecrement(T.BitDecrement(below)), "3 below"),
            (T.CreateTruncating(threshold - 0.1), "0.1 below"), (T.CreateTruncating(threshold - 1), "1 below"),
            (T.CreateTruncating(2 * threshold), "2× threshold"), (T.CreateTruncating(-1e30), "−1e30"), (-T.CreateTruncating(typeof(T) == typeof(float) ? float.MaxValue : double.MaxValue), "−MaxValue"),
            (above, "just above"), (T.BitIncrement(above), "2 above"), (T.BitIncrement(T.BitIncrement(above)), "3 above"),
            (T.CreateTruncating(threshold + 1e-3), "1e-3 above"), (-T.Epsilon, "−ε (smallest denormal)"),
        };
        // Several rotations so that every special value lands in every lane, between ordinary neighbours.
        int count = cases.Length;
        for (int rotation = 0; rotation < 17; rotation++)
        {
            var inputs = new T[count];
            for (int i = 0; i < count; i++) inputs[i] = cases[(i + rotation) % count].X;
            T[] results = Evaluate(path, inputs);
            for (int i = 0; i < count; i++)
            {
                var (x, name) = cases[(i + rotation) % count];
                T y = results[i];
                string where = $"{path} {typeof(T).Name} 2^({name} = {x:R}) = {y:R}";
                double xd = double.CreateTruncating(x);
                if (T.IsNaN(x))
                    Assert.True(T.IsNaN(y), where);
                else if (xd == 0)
                    Assert.True(y == T.One, where + ": must be exactly 1");
                else if (x < lowestNormal)
                    Assert.True(y == T.Zero && !T.IsNegative(y), where + ": below ln 2^(min exponent) must be exactly +0 (no denormals)");
                else
                {
                    Assert.True(T.IsNormal(y), where + ": above the threshold the result must be normal");
                    double error = UlpError(y, double.Exp2(xd));
                    Assert.True(error <= 3, $"{where}: {error:F2} ulp");
                    // e^(x·ln 2) as a second opinion where the double product's rounding is far below T's ulp.
                    if (typeof(T) == typeof(float))
                        Assert.True(UlpError(y, Math.Exp(xd * VectorExp.Ln2)) <= 3, $"{where}: against Math.Exp(x·ln 2)");
                }
            }
        }
    }

    /// <summary>The offset form of the AVX-512 float softmax (<see cref="VectorExp.TryOffset{TVec}"/>,
    /// <see cref="VectorExp.Exp2OffsetPair"/>): for shifts m across its range the applied shift m′ is a multiple of 1/16
    /// within 1/32 of m, 2^(s − m′) is within 3 ulp of the exact value for s − m′ ∈ [−126, 1/32] (s rounded to float, so
    /// s − m′ is exact in double), +0 below, +0 for s = −∞ and NaN for NaN, and the pair's sums are the sums of the
    /// results; shifts that are NaN, infinite or at least 2^17 in magnitude are refused. Elsewhere the form is unavailable.</summary>
    [Fact]
    public unsafe void OffsetFormWithinThreeUlpForEveryShift()
    {
        if (!Avx512F.IsSupported || !Vector512.IsHardwareAccelerated)
        {
            Assert.False(VectorExp.TryOffset(Vector256<float>.Zero, Vector256<float>.Zero, out _, out _));
            return;
        }
        var random = new Random(11);
        foreach (float limit in new[] { 131072f, -131072f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e30f })
            Assert.False(VectorExp.TryOffset(Vector512.Create(limit), Vector512<float>.Zero, out _, out _), $"shift {limit} must be refused");
        const int Rows = 4000;
        float* scores = stackalloc float[Rows * 32];
        double worst = 0;
        string worstAt = "";
        var shifts = new List<float> { 0f, -0f, 1f / 32, -1f / 32, 0.03125001f, 131071.9f, -131071.9f, 65536.03f, 1e-30f };
        for (int i = 0; i < 40; i++) shifts.Add((float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-3, 6))));
        foreach (float m in shifts)
        {
            Vector512<float> shift0 = Vector512.Create(m), shift1 = Vector512.Create(-m / 3);
            Assert.True(VectorExp.TryOffset(shift0, shift1, out Vector512<float> offset0, out Vector512<float> offset1), $"shift {m:R}");
            float applied0 = VectorExp.OffsetShift(offset0).GetElement(0), applied1 = VectorExp.OffsetShift(offset1).GetElement(0);
            foreach (var (wanted, applied) in new[] { (m, applied0), (-m / 3, applied1) })
            {
                Assert.True(Math.Abs((double)applied - wanted) <= 1.0 / 32, $"m′ = {applied:R} for m = {wanted:R}");
                Assert.Equal(0, Math.IEEERemainder(applied * 16.0, 1.0));
            }
            // Rows of s: m′ + x for x spread over [−130, 1/32], then specials, in both vectors of the pair.
            for (int j = 0; j < Rows; j++)
            {
                double x = -130 + (130 + 1.0 / 32) * j / (Rows - 1);
                for (int lane = 0; lane < 32; lane++)
                {
                    float a = lane < 16 ? applied0 : applied1;
                    float value = (float)(a + x + lane * 1e-3);
                    if (j == 7) value = float.NegativeInfinity;
                    if (j == 8 && lane % 5 == 0) value = float.NaN;
                    scores[j * 32 + lane] = value;
                }
            }
            var inputs = new float[Rows * 32];
            new Span<float>(scores, Rows * 32).CopyTo(inputs);
            VectorExp.Exp2OffsetPair(scores, 32, Rows, offset0, offset1, out Vector512<float> sum0, out Vector512<float> sum1);
            for (int lane = 0; lane < 32; lane++)
            {
                double applied = lane < 16 ? applied0 : applied1;
                float sum = 0;
                for (int j = 0; j < Rows; j++)
                {
                    float s = inputs[j * 32 + lane], y = scores[j * 32 + lane];
                    sum += y;
                    string where = $"m′ = {applied:R}, s = {s:R}: {y:R}";
                    if (float.IsNaN(s)) { Assert.True(float.IsNaN(y), where); continue; }
                    double exponent = s - applied;
                    if (exponent < -126) { Assert.True(y == 0 && !float.IsNegative(y), where + " must be +0"); continue; }
                    double error = UlpError(y, double.Exp2(exponent));
                    if (!(error <= worst)) { worst = error; worstAt = where; }
                }
                float expected = lane < 16 ? sum0.GetElement(lane) : sum1.GetElement(lane - 16);
                Assert.True(float.IsNaN(sum) ? float.IsNaN(expected) : sum == expected, $"lane {lane}: sum {expected:R}, of the results {sum:R}");
            }
        }
        Assert.True(worst <= 3, $"{worstAt}: {worst:F2} ulp");
    }

    /// <summary>|y − exact| in units of the last place of T at <paramref name="exact"/> (2^(⌊log₂ exact⌋ − p + 1)).</summary>
    private static double UlpError<T>(T y, double exact)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int precisionBits = typeof(T) == typeof(float) ? 24 : 53;
        int minExponent = typeof(T) == typeof(float) ? -126 : -1022;
        double ulp = Math.ScaleB(1, Math.Max(Math.ILogB(exact), minExponent) - (precisionBits - 1));
        return Math.Abs(double.CreateTruncating(y) - exact) / ulp;
    }

    private static T[] Evaluate<T>(IsaPath path, T[] inputs)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Assert.True(IsaDispatch.IsSupported(path));
        var outputs = new T[inputs.Length];
        switch (path)
        {
            case IsaPath.Avx512: Apply<T, Vector512<T>, Avx512Ops<T>>(inputs, outputs); break;
            case IsaPath.Avx2: Apply<T, Vector256<T>, Avx2Ops<T>>(inputs, outputs); break;
            case IsaPath.Vector128: Apply<T, Vector128<T>, Vector128Ops<T>>(inputs, outputs); break;
            case IsaPath.Scalar: Apply<T, T, ScalarOps<T>>(inputs, outputs); break;
            default: throw new ArgumentOutOfRangeException(nameof(path));
        }
        return outputs;
    }

    /// <summary>Whole vectors through the path's exp; the last partial vector padded with −1.</summary>
    private static unsafe void Apply<T, TVec, TOps>(T[] inputs, T[] outputs)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : unmanaged
        where TOps : struct, ISimdOps<T, TVec>
    {
        int width = TOps.Count;
        T* buffer = stackalloc T[64];
        for (int i = 0; i < inputs.Length; i += width)
        {
            int count = Math.Min(width, inputs.Length - i);
            for (int lane = 0; lane < width; lane++) buffer[lane] = lane < count ? inputs[i + lane] : -T.One;
            TOps.Store(VectorExp.Exp2<T, TVec, TOps>(TOps.Load(buffer)), buffer);
            for (int lane = 0; lane < count; lane++) outputs[i + lane] = buffer[lane];
        }
    }
}
