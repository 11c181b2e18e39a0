using System;
using System.Diagnostics;

namespace FastKernelAttention.Tests.Support;

/// <summary>Managed bytes allocated by warmed-up calls (STYLE §5). Warm-up runs by time so that tiered compilation settles
/// (a tier-up may allocate once on the calling thread); then the quietest of several trials is returned: a real per-call
/// allocation shows in every trial, a one-off runtime event in only one.</summary>
public static class Allocations
{
    /// <summary>Bytes allocated on the calling thread by one <paramref name="call"/> (GC.GetAllocatedBytesForCurrentThread).</summary>
    public static long OnThisThread(Action call, double warmUpSeconds = 0.2, int trials = 5)
    {
        WarmUp(call, warmUpSeconds);
        long quietest = long.MaxValue;
        for (int trial = 0; trial < trials && quietest > 0; trial++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            call();
            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return quietest;
    }

    /// <summary>Bytes allocated by the whole process (GC.GetTotalAllocatedBytes(precise: true)) across
    /// <paramref name="callsPerTrial"/> calls: covers worker threads. The counter also sees the test runner's own threads,
    /// hence the quietest trial; run it in a collection with parallelization disabled.</summary>
    public static long InProcess(Action call, int callsPerTrial = 5, double warmUpSeconds = 0.2, int trials = 10)
    {
        WarmUp(call, warmUpSeconds);
        long quietest = long.MaxValue;
        for (int trial = 0; trial < trials && quietest > 0; trial++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < callsPerTrial; i++) call();
            quietest = Math.Min(quietest, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        return quietest;
    }

    private static void WarmUp(Action call, double seconds)
    {
        call();
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds) call();
    }
}
