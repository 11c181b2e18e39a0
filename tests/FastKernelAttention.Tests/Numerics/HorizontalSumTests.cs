using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Kernels;
using FastKernelAttention.Kernels.Isa;
using Xunit;

namespace FastKernelAttention.Tests.Numerics;

/// <summary>The AVX-512 decode logits' four-at-once horizontal sum (<see cref="HorizontalSums.Four"/>) against four calls of
/// the path's own <see cref="Avx512Ops{T}.HorizontalSum"/>: bitwise the same for random values over many magnitudes (where
/// the order of the additions shows in the last bits), signed zeros, ±∞, NaN and values that overflow when summed.</summary>
public class HorizontalSumTests
{
    [Fact]
    public void FourAtOnceIsBitwiseTheSameAsOneAtATime()
    {
        if (!Avx512F.IsSupported || !Vector512.IsHardwareAccelerated) return; // the helper exists for the AVX-512 path only
        var random = new Random(21);
        float[] specials = { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, -float.MaxValue, float.Epsilon, 1e-38f };
        var lanes = new float[4][];
        for (int trial = 0; trial < 20_000; trial++)
        {
            for (int r = 0; r < 4; r++)
            {
                lanes[r] = new float[16];
                for (int i = 0; i < 16; i++)
                {
                    double magnitude = Math.Pow(2, random.Next(-30, 31));
                    lanes[r][i] = trial % 10 == 9 && random.Next(4) == 0
                        ? specials[random.Next(specials.Length)]
                        : (float)((random.NextDouble() * 2 - 1) * magnitude);
                }
            }
            Vector512<float> x0 = Vector512.Create(lanes[0]), x1 = Vector512.Create(lanes[1]), x2 = Vector512.Create(lanes[2]), x3 = Vector512.Create(lanes[3]);
            Vector128<float> four = HorizontalSums.Four(x0, x1, x2, x3);
            float[] expected = { Avx512Ops<float>.HorizontalSum(x0), Avx512Ops<float>.HorizontalSum(x1), Avx512Ops<float>.HorizontalSum(x2), Avx512Ops<float>.HorizontalSum(x3) };
            for (int r = 0; r < 4; r++)
                Assert.True(BitConverter.SingleToInt32Bits(four.GetElement(r)) == BitConverter.SingleToInt32Bits(expected[r]),
                    $"trial {trial}, register {r}: {four.GetElement(r):R} against {expected[r]:R} ({string.Join(", ", lanes[r])})");
        }
    }
}
