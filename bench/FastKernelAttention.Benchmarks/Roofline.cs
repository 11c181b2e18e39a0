using System;
using System.Diagnostics;
using System.Threading;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Benchmarks;

/// <summary>The machine's single-core limits, measured: the float FMA peak (register-only loop) and the read bandwidth
/// (a large sequential sum), so that every result can be reported as a fraction of the relevant limit.</summary>
public static class Roofline
{
    /// <summary>Float GFLOP/s of one core: ten independent FMA chains on the widest accelerated vector, best of five.</summary>
    public static double FmaPeakGflops()
    {
        double best = 0;
        for (int run = 0; run < 5; run++)
        {
            const long Iterations = 5_000_000;
            var watch = Stopwatch.StartNew();
            float sink = Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? Fma512(Iterations) : Fma.IsSupported ? Fma256(Iterations) : Mul128(Iterations);
            double seconds = watch.Elapsed.TotalSeconds;
            int lanes = Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? 16 : Fma.IsSupported ? 8 : 4;
            double flops = Iterations * 10.0 * lanes * 2;
            if (!float.IsNaN(sink)) best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }

    /// <summary>GB/s of one core reading a 256 MiB array sequentially, best of three.</summary>
    /// <summary>One pass of the read-bandwidth loop over <paramref name="count"/> floats (a multiple of 32): the probe that
    /// decode samples are taken in turns with, so that both see the same memory system.</summary>
    public static unsafe float SumOnce(float* p, long count)
    {
        Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
        for (long i = 0; i < count; i += 32)
        {
            s0 += Vector256.Load(p + i);
            s1 += Vector256.Load(p + i + 8);
            s2 += Vector256.Load(p + i + 16);
            s3 += Vector256.Load(p + i + 24);
        }
        return Vector256.Sum(s0 + s1 + s2 + s3);
    }

    public static unsafe double ReadBandwidthGBps()
    {
        var data = new float[64 * 1024 * 1024];
        for (int i = 0; i < data.Length; i += 1024) data[i] = 1;
        double best = 0;
        fixed (float* p = data)
        {
            for (int run = 0; run < 3; run++)
            {
                var watch = Stopwatch.StartNew();
                Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
                for (long i = 0; i < data.Length; i += 32)
                {
                    s0 += Vector256.Load(p + i);
                    s1 += Vector256.Load(p + i + 8);
                    s2 += Vector256.Load(p + i + 16);
                    s3 += Vector256.Load(p + i + 24);
                }
                double seconds = watch.Elapsed.TotalSeconds;
                if (Vector256.Sum(s0 + s1 + s2 + s3) >= 0) best = Math.Max(best, data.Length * 4.0 / seconds / 1e9);
            }
        }
        return best;
    }

    /// <summary>Float GFLOP/s of <paramref name="threads"/> cores together: the single-core FMA loop on that many threads at
    /// once, started by one barrier, best of five. It shows whether the cores share FMA units (SMT siblings, or a busy host).</summary>
    public static double FmaPeakGflops(int threads)
    {
        if (threads <= 1) return FmaPeakGflops();
        bool wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
        int lanes = wide ? 16 : Fma.IsSupported ? 8 : 4;
        const long Iterations = 50_000_000; // ≈ 140 ms a thread at 3.6 GHz: thread wake-up jitter stays under 1%
        double best = 0;
        for (int run = 0; run < 5; run++)
        {
            double seconds = Concurrently(threads, _ =>
            {
                float sink = wide ? Fma512(Iterations) : Fma.IsSupported ? Fma256(Iterations) : Mul128(Iterations);
                GC.KeepAlive(sink);
            });
            best = Math.Max(best, threads * Iterations * 10.0 * lanes * 2 / seconds / 1e9);
        }
        return best;
    }

    /// <summary>GB/s of <paramref name="threads"/> cores reading disjoint slices of one 256 MiB array at once, each its slice
    /// eight times over (≥ 40 ms, so thread wake-up jitter stays small), best of three.</summary>
    public static unsafe double ReadBandwidthGBps(int threads)
    {
        if (threads <= 1) return ReadBandwidthGBps();
        var data = new float[64 * 1024 * 1024];
        for (int i = 0; i < data.Length; i += 1024) data[i] = 1;
        long slice = data.Length / threads / 32 * 32;
        const int Passes = 8;
        double best = 0;
        fixed (float* pinned = data)
        {
            float* p = pinned;
            for (int run = 0; run < 3; run++)
            {
                double seconds = Concurrently(threads, t =>
                {
                    float* start = p + t * slice;
                    Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
                    for (int pass = 0; pass < Passes; pass++)
                    {
                        for (long i = 0; i < slice; i += 32)
                        {
                            s0 += Vector256.Load(start + i);
                            s1 += Vector256.Load(start + i + 8);
                            s2 += Vector256.Load(start + i + 16);
                            s3 += Vector256.Load(start + i + 24);
                        }
                    }
                    GC.KeepAlive(Vector256.Sum(s0 + s1 + s2 + s3));
                });
                best = Math.Max(best, Passes * threads * slice * 4.0 / seconds / 1e9);
            }
        }
        return best;
    }

    /// <summary>Wall seconds from a common start (a barrier) until the last of <paramref name="threads"/> dedicated threads
    /// finishes <paramref name="body"/>(thread index).</summary>
    private static double Concurrently(int threads, Action<int> body)
    {
        using var barrier = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() => { barrier.SignalAndWait(); body(index); }) { IsBackground = true };
            workers[t].Start();
        }
        barrier.SignalAndWait();
        var watch = Stopwatch.StartNew();
        foreach (Thread worker in workers) worker.Join();
        return watch.Elapsed.TotalSeconds;
    }

    private static float Fma512(long iterations)
    {
        Vector512<float> x = Vector512.Create(0.999999f), y = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, x, y); a1 = Avx512F.FusedMultiplyAdd(a1, x, y);
            a2 = Avx512F.FusedMultiplyAdd(a2, x, y); a3 = Avx512F.FusedMultiplyAdd(a3, x, y);
            a4 = Avx512F.FusedMultiplyAdd(a4, x, y); a5 = Avx512F.FusedMultiplyAdd(a5, x, y);
            a6 = Avx512F.FusedMultiplyAdd(a6, x, y); a7 = Avx512F.FusedMultiplyAdd(a7, x, y);
            a8 = Avx512F.FusedMultiplyAdd(a8, x, y); a9 = Avx512F.FusedMultiplyAdd(a9, x, y);
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).ToScalar();
    }

    private static float Fma256(long iterations)
    {
        Vector256<float> x = Vector256.Create(0.999999f), y = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Fma.MultiplyAdd(a0, x, y); a1 = Fma.MultiplyAdd(a1, x, y); a2 = Fma.MultiplyAdd(a2, x, y);
            a3 = Fma.MultiplyAdd(a3, x, y); a4 = Fma.MultiplyAdd(a4, x, y); a5 = Fma.MultiplyAdd(a5, x, y);
            a6 = Fma.MultiplyAdd(a6, x, y); a7 = Fma.MultiplyAdd(a7, x, y); a8 = Fma.MultiplyAdd(a8, x, y);
            a9 = Fma.MultiplyAdd(a9, x, y);
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).ToScalar();
    }

    private static float Mul128(long iterations)
    {
        Vector128<float> x = Vector128.Create(0.999999f), y = Vector128.Create(1e-7f);
        Vector128<float> a0 = Vector128.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = a0 * x + y; a1 = a1 * x + y; a2 = a2 * x + y; a3 = a3 * x + y; a4 = a4 * x + y;
            a5 = a5 * x + y; a6 = a6 * x + y; a7 = a7 * x + y; a8 = a8 * x + y; a9 = a9 * x + y;
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).ToScalar();
    }
}
