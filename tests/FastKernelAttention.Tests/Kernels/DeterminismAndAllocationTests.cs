using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>Bitwise-identical results for every degree of parallelism (per ISA path), and zero managed allocation per
/// steady-state call. Serial: the allocation counters must not see other tests' work.</summary>
[Collection(nameof(SerialCollection))]
public class DeterminismAndAllocationTests
{
    public static TheoryData<IsaPath, bool, AttentionKernel, bool> Cases()
    {
        var data = new TheoryData<IsaPath, bool, AttentionKernel, bool>();
        foreach (object[] row in IsaPaths.Supported())
        {
            data.Add((IsaPath)row[0], false, AttentionKernel.Dot, true);
            data.Add((IsaPath)row[0], true, AttentionKernel.Gaussian, false);
            data.Add((IsaPath)row[0], false, AttentionKernel.Gaussian, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryDegreeOfParallelismGivesTheSameBits(IsaPath path, bool isDouble, AttentionKernel kernel, bool causal)
    {
        if (isDouble) CheckDeterminism<double>(path, kernel, causal);
        else CheckDeterminism<float>(path, kernel, causal);
    }

    private static void CheckDeterminism<T>(IsaPath path, AttentionKernel kernel, bool causal)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        const int M = 300, N = 500, D = 24, Dv = 20, H = 4, Hkv = 2;
        var random = new Random(11);
        T[] q = AttentionCase.Fill<T>(random, M, H * D, 0, 0), k = AttentionCase.Fill<T>(random, N, Hkv * D, 0, 0), v = AttentionCase.Fill<T>(random, N, Hkv * Dv, 0, 0);
        T[]? first = null, firstLse = null;
        foreach (int degree in new[] { 1, 2, 7, -1 })
        {
            var o = new T[M * H * Dv];
            var lse = new T[H * M];
            var options = new AttentionOptions { Kernel = kernel, Bandwidth = 5, Causal = causal, SinkLogit = 0.5, MaxDegreeOfParallelism = degree };
            Attention.ForwardOnPath(path, new ReadOnlySpan2D<T>(q, M, H * D), new ReadOnlySpan2D<T>(k, N, Hkv * D),
                new ReadOnlySpan2D<T>(v, N, Hkv * Dv), new Span2D<T>(o, M, H * Dv), H, Hkv, options, lse);
            if (first is null)
            {
                first = o;
                firstLse = lse;
                continue;
            }
            Assert.True(first.AsSpan().SequenceEqual(o), $"{path}: output differs at degree {degree}");
            Assert.True(firstLse.AsSpan().SequenceEqual(lse), $"{path}: log-sum-exp differs at degree {degree}");
        }
    }

    [Theory]
    [InlineData(AttentionKernel.Dot, false, 64)]
    [InlineData(AttentionKernel.Gaussian, true, 64)]
    [InlineData(AttentionKernel.Dot, true, 512)] // scratch beyond the stack bound: native memory, still no managed allocation
    public void SteadyStateCallsAllocateNothing(AttentionKernel kernel, bool causal, int d)
    {
        const int M = 96, N = 200;
        var random = new Random(2);
        float[] q = AttentionCase.Fill<float>(random, M, d, 0, 0), k = AttentionCase.Fill<float>(random, N, d, 0, 0), v = AttentionCase.Fill<float>(random, N, d, 0, 0);
        double[] qd = Array.ConvertAll(q, x => (double)x), kd = Array.ConvertAll(k, x => (double)x), vd = Array.ConvertAll(v, x => (double)x);
        float[] o = new float[M * d], lse = new float[M];
        double[] od = new double[M * d], lsed = new double[M];
        var options = new AttentionOptions { Kernel = kernel, Bandwidth = 6, Causal = causal };
        byte[] workspace = new byte[Attention.GetWorkspaceSize<float>(d, d, N, options)];
        float[] qh = new float[4 * 8 * 16], kh = new float[N * 2 * 16], vh = new float[N * 2 * 16], oh = new float[4 * 8 * 16];

        void Calls()
        {
            Attention.Forward(new ReadOnlySpan2D<float>(q, M, d), new ReadOnlySpan2D<float>(k, N, d), new ReadOnlySpan2D<float>(v, N, d), new Span2D<float>(o, M, d), options, lse);
            Attention.Forward(new ReadOnlySpan2D<float>(q, M, d), new ReadOnlySpan2D<float>(k, N, d), new ReadOnlySpan2D<float>(v, N, d), new Span2D<float>(o, M, d), options, lse, workspace);
            Attention.Forward(new ReadOnlySpan2D<double>(qd, M, d), new ReadOnlySpan2D<double>(kd, N, d), new ReadOnlySpan2D<double>(vd, N, d), new Span2D<double>(od, M, d), options, lsed);
            Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(qh, 4, 8 * 16), new ReadOnlySpan2D<float>(kh, N, 2 * 16), new ReadOnlySpan2D<float>(vh, N, 2 * 16),
                new Span2D<float>(oh, 4, 8 * 16), 8, 2, options); // decode-sized: the row kernel
        }

        // Warm up by time so that tiered compilation settles (a tier-up may allocate once on the calling thread), then
        // measure: a real per-call allocation shows in every trial, so the quietest trial must be 0.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < 0.3) Calls();
        long quietestThread = long.MaxValue;
        for (int trial = 0; trial < 5 && quietestThread > 0; trial++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Calls();
            quietestThread = Math.Min(quietestThread, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, quietestThread);

        // Parallel: workers are persistent threads and the job object is cached, so after warm-up nothing is allocated.
        var parallel = options with { MaxDegreeOfParallelism = 2 };
        void Parallel() => Attention.Forward(new ReadOnlySpan2D<float>(q, M, d), new ReadOnlySpan2D<float>(k, N, d), new ReadOnlySpan2D<float>(v, N, d), new Span2D<float>(o, M, d), parallel, lse);
        // The process-wide counter also sees the test runner's own threads, so take the quietest of several trials: any
        // trial at 0 shows that the calls themselves allocate nothing.
        for (int i = 0; i < 3; i++) Parallel();
        long quietest = long.MaxValue;
        for (int trial = 0; trial < 10 && quietest > 0; trial++)
        {
            long total = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 5; i++) Parallel();
            quietest = Math.Min(quietest, GC.GetTotalAllocatedBytes(precise: true) - total);
        }
        Assert.Equal(0, quietest);
    }
}

[CollectionDefinition(nameof(SerialCollection), DisableParallelization = true)]
public sealed class SerialCollection;
