using System;

namespace FastKernelAttention.Tests.Support;

/// <summary>The accuracy contract of MATH §14 (STYLE §5): pass if |x − ref| ≤ abs + rel·|ref|.</summary>
public static class Tolerance
{
    /// <summary>max|O − O_ref| ≤ this · max|V|.</summary>
    public static double Output(bool isDouble) => isDouble ? 1e-12 : 1e-5;

    /// <summary>|ΔLSE| ≤ this · max(1, |LSE|).</summary>
    public static double LogSumExp(bool isDouble) => isDouble ? 1e-12 : 1e-5;

    public static bool Close(double actual, double expected, double scaledTolerance)
    {
        if (double.IsNaN(expected)) return double.IsNaN(actual);
        if (double.IsInfinity(expected)) return actual == expected;
        return Math.Abs(actual - expected) <= scaledTolerance;
    }
}
