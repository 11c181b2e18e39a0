using System;

namespace FastKernelAttention.Tests.Estimators;

/// <summary>Bytes allocated on this thread by a warmed-up call (the quietest of a few trials).</summary>
internal static class Allocation
{
    public static long Measure(Action call)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < 0.2) call();
        long quietest = long.MaxValue;
        for (int trial = 0; trial < 5 && quietest > 0; trial++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            call();
            quietest = Math.Min(quietest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return quietest;
    }
}
