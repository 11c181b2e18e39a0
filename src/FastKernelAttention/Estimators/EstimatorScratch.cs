using System;
using System.Runtime.InteropServices;

namespace FastKernelAttention.Estimators;

/// <summary>Shared plumbing of the particle, denoiser, ensemble and flow-matching estimators: the float/double check, the
/// 64-byte workspace layout and the native-memory fallback of the overloads without a workspace.</summary>
internal static unsafe class EstimatorScratch
{
    /// <summary>Bytes of one workspace region holding <paramref name="count"/> elements of <paramref name="elementSize"/>
    /// bytes, rounded up to 64 so that the next region stays aligned.</summary>
    public static long Region(long count, int elementSize) => (count * elementSize + 63) & ~63L;

    /// <summary>The first 64-byte boundary at or after <paramref name="buffer"/> (every workspace size includes 63 bytes of slack).</summary>
    public static byte* Align(byte* buffer) => (byte*)(((nuint)buffer + 63) & ~(nuint)63);

    public static void RequireFloatOrDouble<T>(string estimator)
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException($"{estimator} supports float and double.");
    }

    public static int Checked(long bytes, string parameter)
    {
        if (bytes > int.MaxValue) throw new ArgumentOutOfRangeException(parameter, "The workspace would exceed 2 GiB.");
        return (int)bytes;
    }

    /// <summary>Native scratch for the overloads without a workspace (no managed allocation); free with <see cref="Free"/>.</summary>
    public static byte* Allocate(long bytes) => (byte*)NativeMemory.Alloc((nuint)Math.Max(1, bytes));

    public static void Free(byte* memory) => NativeMemory.Free(memory);
}
