using System;
using System.Collections.Generic;
using System.Numerics;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Tests.Support;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>No managed allocation per steady-state call, on every ISA path, float and double: dot and Gaussian, with and
/// without a caller workspace, single- and multi-head (row and lane kernels), and a head dimension whose scratch goes to
/// native memory; the parallel path (2 threads) allocates nothing process-wide. Serial, so that the process-wide counter
/// does not see other tests' work.</summary>
[Collection(nameof(AllocationCollection))]
public class AllocationTests
{
    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void SteadyStateCallsAllocateNothingOnTheCallingThread(IsaPath path, bool isDouble)
    {
        foreach (var (name, call) in isDouble ? Scenarios<double>(path, degree: 1) : Scenarios<float>(path, degree: 1))
            Assert.True(Allocations.OnThisThread(call, warmUpSeconds: 0) == 0, $"{path} {(isDouble ? "double" : "float")} {name}: allocates on the calling thread");
    }

    [Theory]
    [MemberData(nameof(IsaPaths.SupportedWithTypes), MemberType = typeof(IsaPaths))]
    public void ParallelCallsAllocateNothing(IsaPath path, bool isDouble)
    {
        // Workers are persistent threads and the job object is cached per work type, so after warm-up nothing is allocated.
        foreach (var (name, call) in isDouble ? Scenarios<double>(path, degree: 2) : Scenarios<float>(path, degree: 2))
            Assert.True(Allocations.InProcess(call, callsPerTrial: 3, warmUpSeconds: 0) == 0, $"{path} {(isDouble ? "double" : "float")} {name}: allocates with 2 threads");
    }

    [Fact]
    public void TheProbesSeeAnAllocation()
    {
        // Guards the two probes above against measuring nothing.
        object? sink = null;
        Assert.True(Allocations.OnThisThread(() => sink = new byte[64], warmUpSeconds: 0) > 0);
        Assert.True(Allocations.InProcess(() => System.Threading.Tasks.Task.Run(() => sink = new byte[64]).Wait(), callsPerTrial: 1, warmUpSeconds: 0) > 0);
        GC.KeepAlive(sink);
    }

    private static List<(string Name, Action Call)> Scenarios<T>(IsaPath path, int degree)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var scenarios = new List<(string, Action)>();
        var random = new Random(2);
        foreach (var (m, n, d, dv, heads, kvHeads) in new[]
        {
            (96, 200, 64, 64, 1, 1),  // lane kernel
            (4, 200, 16, 16, 8, 2),   // decode-sized GQA: the row kernel
            (70, 150, 16, 8, 4, 2),   // GQA, lane kernel
            (20, 100, 512, 512, 1, 1), // scratch beyond the stack bound: native memory
        })
        {
            T[] q = DenseCase.Uniform<T>(random, m * heads * d), k = DenseCase.Uniform<T>(random, n * kvHeads * d), v = DenseCase.Uniform<T>(random, n * kvHeads * dv);
            T[] o = new T[m * heads * dv], lse = new T[heads * m], sinks = new T[heads];
            foreach (var options in new[]
            {
                new AttentionOptions { MaxDegreeOfParallelism = degree },
                new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 6, Causal = true, MaxDegreeOfParallelism = degree },
                new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1e-3, MaxDegreeOfParallelism = degree }, // direct differences
            })
            {
                byte[] workspace = new byte[Attention.GetWorkspaceSize<T>(d, dv, n, options, heads, kvHeads)];
                string shape = $"m={m} n={n} d={d} dv={dv} H={heads} Hkv={kvHeads} {options.Kernel} h={options.Bandwidth}";
                scenarios.Add(($"{shape}, no workspace", () => Attention.ForwardOnPath(path, new ReadOnlySpan2D<T>(q, m, heads * d),
                    new ReadOnlySpan2D<T>(k, n, kvHeads * d), new ReadOnlySpan2D<T>(v, n, kvHeads * dv), new Span2D<T>(o, m, heads * dv),
                    heads, kvHeads, options, lse)));
                scenarios.Add(($"{shape}, workspace, per-head sinks", () => Attention.ForwardCore(path, new ReadOnlySpan2D<T>(q, m, heads * d),
                    new ReadOnlySpan2D<T>(k, n, kvHeads * d), new ReadOnlySpan2D<T>(v, n, kvHeads * dv), new Span2D<T>(o, m, heads * dv),
                    heads, kvHeads, options, lse, sinks, default, false, workspace, true)));
            }
            if (path == Dispatch.IsaDispatch.Selected)
            {
                // The public entry points (they run on the selected path).
                var options = new AttentionOptions { Causal = true, SinkLogit = 1, MaxDegreeOfParallelism = degree };
                byte[] workspace = new byte[Attention.GetWorkspaceSize<T>(d, dv, n, options, heads, kvHeads)];
                scenarios.Add(($"m={m} d={d} H={heads}: public ForwardMultiHead", () => Public(q, k, v, o, lse, m, n, d, dv, heads, kvHeads, options, null)));
                scenarios.Add(($"m={m} d={d} H={heads}: public ForwardMultiHead with workspace", () => Public(q, k, v, o, lse, m, n, d, dv, heads, kvHeads, options, workspace)));
            }
        }
        return scenarios;
    }

    private static void Public<T>(T[] q, T[] k, T[] v, T[] o, T[] lse, int m, int n, int d, int dv, int heads, int kvHeads, in AttentionOptions options, byte[]? workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            float[] qf = (float[])(object)q, kf = (float[])(object)k, vf = (float[])(object)v, of = (float[])(object)o, lf = (float[])(object)lse;
            if (workspace is null)
                Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(qf, m, heads * d), new ReadOnlySpan2D<float>(kf, n, kvHeads * d),
                    new ReadOnlySpan2D<float>(vf, n, kvHeads * dv), new Span2D<float>(of, m, heads * dv), heads, kvHeads, options, lf);
            else
                Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(qf, m, heads * d), new ReadOnlySpan2D<float>(kf, n, kvHeads * d),
                    new ReadOnlySpan2D<float>(vf, n, kvHeads * dv), new Span2D<float>(of, m, heads * dv), heads, kvHeads, options, lf, default, workspace);
        }
        else
        {
            double[] qd = (double[])(object)q, kd = (double[])(object)k, vd = (double[])(object)v, od = (double[])(object)o, ld = (double[])(object)lse;
            if (workspace is null)
                Attention.ForwardMultiHead(new ReadOnlySpan2D<double>(qd, m, heads * d), new ReadOnlySpan2D<double>(kd, n, kvHeads * d),
                    new ReadOnlySpan2D<double>(vd, n, kvHeads * dv), new Span2D<double>(od, m, heads * dv), heads, kvHeads, options, ld);
            else
                Attention.ForwardMultiHead(new ReadOnlySpan2D<double>(qd, m, heads * d), new ReadOnlySpan2D<double>(kd, n, kvHeads * d),
                    new ReadOnlySpan2D<double>(vd, n, kvHeads * dv), new Span2D<double>(od, m, heads * dv), heads, kvHeads, options, ld, default, workspace);
        }
    }
}

/// <summary>Allocation tests run alone: GC.GetTotalAllocatedBytes sees every thread of the process.</summary>
[CollectionDefinition(nameof(AllocationCollection), DisableParallelization = true)]
public sealed class AllocationCollection;
