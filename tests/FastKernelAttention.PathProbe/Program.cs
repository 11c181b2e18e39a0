using System;
using CommunityToolkit.HighPerformance;

namespace FastKernelAttention.PathProbe;

/// <summary>
/// <c>oob</c>: every input and output of many calls sits against a no-access page (after its end, then before its start);
/// an access outside the arrays kills the process, so exit code 0 and the summary line mean none happened.
/// <c>selftest</c>: reads one element past a guarded buffer and must die. The ISA path is chosen by <c>FKA_FORCE_ISA</c>.
/// </summary>
internal static unsafe class Program
{
    private static int calls;

    public static int Main(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "oob";
        Console.WriteLine($"ISA path: {Attention.ActiveIsa}");
        if (mode == "selftest")
        {
            using var buffer = new GuardedBuffer<float>(3, guardBefore: false);
            float sum = 0;
            for (int i = 0; i <= buffer.Length; i++) sum += buffer.Pointer[i]; // one past the end: must fault
            Console.WriteLine($"selftest did not fault ({sum})");
            return 0;
        }

        int[] sizes = { 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 67 };
        foreach (bool guardBefore in new[] { false, true })
        {
            foreach (int m in sizes)
            {
                foreach (int n in new[] { 1, 9, 17, 64, 67 })
                {
                    int d = sizes[(m + n) % sizes.Length], dv = sizes[(m * 3 + n) % sizes.Length];
                    int pitch = (m + n) % 3;
                    foreach (AttentionKernel kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
                    {
                        var options = new AttentionOptions { Kernel = kernel, Bandwidth = kernel == AttentionKernel.Gaussian ? 1.5 : 0, Causal = (m + n) % 2 == 0, SinkLogit = m % 3 == 0 ? 0.5 : null };
                        Single<float>(m, n, d, dv, pitch, options, guardBefore);
                        Single<double>(m, n, d, dv, pitch, options, guardBefore);
                        MultiHead(m, n, Math.Min(d, 16), Math.Min(dv, 16), pitch, options, guardBefore);
                    }
                }
            }
            for (int d = 1; d <= 67; d++)
            {
                Single<float>(33, 65, d, 67 - d + 1, 1, new AttentionOptions { Causal = true }, guardBefore);
                Single<float>(3, 65, d, d, 0, new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 }, guardBefore);
            }
        }
        Console.WriteLine($"OOB probe: {calls} calls, 0 faults");
        return 0;
    }

    private static int Extent(int rows, int width, int pitch) => rows == 0 ? 0 : (rows - 1) * (width + pitch) + width;

    private static void Fill<T>(Span<T> data)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < data.Length; i++) data[i] = T.CreateTruncating(((i * 7919) % 2003) / 1001.5 - 1);
    }

    private static void Single<T>(int m, int n, int d, int dv, int pitch, AttentionOptions options, bool guardBefore)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        using var q = new GuardedBuffer<T>(Extent(m, d, pitch), guardBefore);
        using var k = new GuardedBuffer<T>(Extent(n, d, pitch), guardBefore);
        using var v = new GuardedBuffer<T>(Extent(n, dv, pitch), guardBefore);
        using var o = new GuardedBuffer<T>(Extent(m, dv, pitch), guardBefore);
        using var lse = new GuardedBuffer<T>(m, guardBefore);
        Fill(q.Span);
        Fill(k.Span);
        Fill(v.Span);
        if (typeof(T) == typeof(float))
        {
            Attention.Forward(new ReadOnlySpan2D<float>(q.Pointer, m, d, pitch), new ReadOnlySpan2D<float>(k.Pointer, n, d, pitch),
                new ReadOnlySpan2D<float>(v.Pointer, n, dv, pitch), new Span2D<float>(o.Pointer, m, dv, pitch), options, new Span<float>(lse.Pointer, m));
        }
        else
        {
            Attention.Forward(new ReadOnlySpan2D<double>(q.Pointer, m, d, pitch), new ReadOnlySpan2D<double>(k.Pointer, n, d, pitch),
                new ReadOnlySpan2D<double>(v.Pointer, n, dv, pitch), new Span2D<double>(o.Pointer, m, dv, pitch), options, new Span<double>(lse.Pointer, m));
        }
        calls++;
    }

    private static void MultiHead(int m, int n, int d, int dv, int pitch, AttentionOptions options, bool guardBefore)
    {
        const int H = 4, Hkv = 2;
        using var q = new GuardedBuffer<float>(Extent(m, H * d, pitch), guardBefore);
        using var k = new GuardedBuffer<float>(Extent(n, Hkv * d, pitch), guardBefore);
        using var v = new GuardedBuffer<float>(Extent(n, Hkv * dv, pitch), guardBefore);
        using var o = new GuardedBuffer<float>(Extent(m, H * dv, pitch), guardBefore);
        using var lse = new GuardedBuffer<float>(H * m, guardBefore);
        using var sinks = new GuardedBuffer<float>(H, guardBefore);
        Fill(q.Span);
        Fill(k.Span);
        Fill(v.Span);
        Fill(sinks.Span);
        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q.Pointer, m, H * d, pitch), new ReadOnlySpan2D<float>(k.Pointer, n, Hkv * d, pitch),
            new ReadOnlySpan2D<float>(v.Pointer, n, Hkv * dv, pitch), new Span2D<float>(o.Pointer, m, H * dv, pitch), H, Hkv,
            options with { SinkLogit = null }, lse.Span, sinks.Span);
        calls++;
    }
}
