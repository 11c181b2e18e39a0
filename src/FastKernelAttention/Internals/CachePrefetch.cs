using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Internals;

/// <summary>Software prefetch of a byte range, every cache line it touches (x86; a no-op elsewhere; prefetches never fault).</summary>
internal static unsafe class CachePrefetch
{
    /// <summary>
    /// Hints each 64-byte line that [<paramref name="start"/>, <paramref name="start"/> + <paramref name="bytes"/>) touches,
    /// from the line holding its first byte (so a range that does not start on a line boundary also gets its last line), into
    /// L2 (T1) or, with <paramref name="toL1"/>, into L1 (T0); the callers pass a constant, which the JIT folds. Four lines
    /// per step while they last, then one at a time: the four-line steps cut the loop's bookkeeping (decode, in-process A/B:
    /// W4 +1.5–3.5%, bf16 W4 +3–4%, 8 heads × 4096 keys +8–17%; alternating processes within their noise, medians 0.96–1.01).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Range(byte* start, int bytes, bool toL1)
    {
        if (!Sse.IsSupported || bytes <= 0) return;
        int lead = (int)((nuint)start & 63);
        byte* line = start - lead;
        int span = bytes + lead, offset = 0;   // from the first line's start
        for (; offset + 256 <= span; offset += 256)
        {
            Line(line + offset, toL1);
            Line(line + offset + 64, toL1);
            Line(line + offset + 128, toL1);
            Line(line + offset + 192, toL1);
        }
        for (; offset < span; offset += 64) Line(line + offset, toL1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Line(byte* address, bool toL1)
    {
        if (toL1) Sse.Prefetch0(address);
        else Sse.Prefetch1(address);
    }
}
