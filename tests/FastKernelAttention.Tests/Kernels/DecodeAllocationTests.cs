using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Decode calls with key splits (float, bfloat16 and half K/V, stack and native scratch) allocate no managed memory,
/// on the calling thread and with 2 threads (serial: the process-wide counter sees every thread).</summary>
[Collection(nameof(AllocationCollection))]
public class DecodeAllocationTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.Supported), MemberType = typeof(IsaPaths))]
    public void DecodeCallsAllocateNothing(IsaPath path)
    {
        foreach (var (m, n, d, h, hkv) in new[] { (1, 3000, 64, 8, 2), (2, 1200, 16, 4, 4), (1, 600, 256, 2, 1) })
        {
            var random = new Random(4);
            float[] q = DenseCase.Uniform<float>(random, m * h * d), k = DenseCase.Uniform<float>(random, n * hkv * d), v = DenseCase.Uniform<float>(random, n * hkv * d);
            BFloat16[] kb = Array.ConvertAll(k, x => (BFloat16)x), vb = Array.ConvertAll(v, x => (BFloat16)x);
            Half[] kh = Array.ConvertAll(k, x => (Half)x), vh = Array.ConvertAll(v, x => (Half)x);
            float[] o = new float[m * h * d], lse = new float[h * m];
            foreach (int degree in new[] { 1, 2 })
            {
                var options = new AttentionOptions { Causal = true, SinkLogit = 0.5, MaxDegreeOfParallelism = degree };
                var calls = new (string Name, Action Call)[]
                {
                    ("float", () => Attention.ForwardOnPath(path, new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<float>(k, n, hkv * d),
                        new ReadOnlySpan2D<float>(v, n, hkv * d), new Span2D<float>(o, m, h * d), h, hkv, options, lse)),
                    ("bf16", () => Attention.ForwardHalfPrecisionOnPath(path, new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<BFloat16>(kb, n, hkv * d),
                        new ReadOnlySpan2D<BFloat16>(vb, n, hkv * d), new Span2D<float>(o, m, h * d), h, hkv, options, lse)),
                    ("half", () => Attention.ForwardHalfPrecisionOnPath(path, new ReadOnlySpan2D<float>(q, m, h * d), new ReadOnlySpan2D<Half>(kh, n, hkv * d),
                        new ReadOnlySpan2D<Half>(vh, n, hkv * d), new Span2D<float>(o, m, h * d), h, hkv, options, lse)),
                };
                foreach (var (name, call) in calls)
                {
                    long bytes = degree == 1 ? Allocations.OnThisThread(call, warmUpSeconds: 0) : Allocations.InProcess(call, callsPerTrial: 3, warmUpSeconds: 0);
                    Assert.True(bytes == 0, $"{path} {name} m={m} n={n} d={d} H={h} Hkv={hkv} degree {degree}: {bytes} bytes");
                }
            }
        }
    }
}
