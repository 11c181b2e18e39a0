using System;
using System.Collections.Generic;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Threading;
using CommunityToolkit.HighPerformance;

namespace FastKernelAttention.PathProbe;

/// <summary>
/// Run as a child process by the tests, so that an access violation kills this process and not the test run.
/// <list type="bullet">
/// <item><c>oob [isa]</c>: about 20,000 calls of <see cref="Attention.Forward(ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, ReadOnlySpan2D{float}, Span2D{float}, in AttentionOptions, Span{float})"/>
/// and <c>ForwardMultiHead</c> (H = 4, Hkv = 2; decode calls also with 24–64 heads, items of up to 256 (row, head) pairs), float and double (and float with bfloat16 / half K and V), dot and Gaussian kernels, causal or not, with and without
/// sinks, log-sum-exp, caller workspace and threads, shapes m, n, d, dv in 1..67, row pitches 0..8. Every input, output,
/// sink array and workspace sits in its own <see cref="GuardedBuffer{T}"/> that ends exactly at a no-access page, then in a
/// second pass starts exactly after one; inputs are read-only pages. A stray access outside an array kills the process
/// (SIGSEGV), so exit code 0 with <c>OOB probe: N calls, 0 faults</c> means none happened. Within a buffer, the pitch
/// padding between rows is checked too: padding of an output must be left untouched, and padding of an input holds NaN,
/// which would reach the (otherwise finite) output if it were read.</item>
/// <item><c>selftest [end|start|readonly]</c>: reads one element past the end, one before the start, or writes a read-only
/// buffer; the process must die, which proves the guard works.</item>
/// </list>
/// The ISA path comes from <c>FKA_FORCE_ISA</c> (Avx512, Avx2, Vector128, Scalar), or from the optional <c>isa</c>
/// argument, which sets that variable before the library is first touched. The first line printed is
/// <c>ISA path: </c><see cref="Attention.ActiveIsa"/>.
/// </summary>
internal static unsafe class Program
{
    private static readonly int[] Sizes = { 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 67 };
    private static readonly int[] Pitches = { 0, 1, 3, 8 };
    private static readonly List<string> Failures = new();
    private static long calls;
    private static long faults;

    public static int Main(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "oob";
        if (args.Length > 1 && mode == "oob") Environment.SetEnvironmentVariable("FKA_FORCE_ISA", args[1]);
        // The library reads FKA_FORCE_ISA once, when Attention is first touched: only after the line above.
        return Run(mode, args.Length > 1 ? args[1] : "end");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Run(string mode, string variant)
    {
        Console.WriteLine($"ISA path: {Attention.ActiveIsa}");
        Console.WriteLine($"FKA_FORCE_ISA={Environment.GetEnvironmentVariable("FKA_FORCE_ISA")}");
        switch (mode)
        {
            case "selftest":
                return SelfTest(variant);
            case "oob":
                return OutOfBounds();
            default:
                Console.Error.WriteLine($"unknown mode '{mode}': use oob [isa] or selftest [end|start|readonly]");
                return 2;
        }
    }

    private static int SelfTest(string variant)
    {
        float sum = 0;
        switch (variant)
        {
            case "end":
            {
                using var buffer = new GuardedBuffer<float>(3, GuardAt.End);
                Console.WriteLine("selftest: reading one element past the end");
                Console.Out.Flush();
                for (int i = 0; i <= buffer.Length; i++) sum += buffer.Pointer[i];
                break;
            }
            case "start":
            {
                using var buffer = new GuardedBuffer<float>(3, GuardAt.Start);
                Console.WriteLine("selftest: reading one element before the start");
                Console.Out.Flush();
                for (int i = -1; i < buffer.Length; i++) sum += buffer.Pointer[i];
                break;
            }
            case "readonly":
            {
                using var buffer = new GuardedBuffer<float>(3, GuardAt.End);
                buffer.MakeReadOnly();
                sum = buffer.Pointer[1]; // reading is allowed
                Console.WriteLine("selftest: writing a read-only buffer");
                Console.Out.Flush();
                Volatile.Write(ref buffer.Pointer[1], 1f);
                break;
            }
            default:
                Console.Error.WriteLine($"unknown selftest '{variant}': use end, start or readonly");
                return 2;
        }
        Console.WriteLine($"selftest did not fault ({sum})");
        return 0;
    }

    private static int OutOfBounds()
    {
        foreach (GuardAt guard in new[] { GuardAt.End, GuardAt.Start })
        {
            int variant = 0;
            // Every (m, n) pair of the size set; d, dv and the pitch rotate through their sets.
            for (int i = 0; i < Sizes.Length; i++)
            {
                for (int j = 0; j < Sizes.Length; j++)
                {
                    int m = Sizes[i], n = Sizes[j];
                    int d = Sizes[(i + 2 * j) % Sizes.Length], dv = Sizes[(2 * i + j + 5) % Sizes.Length];
                    int pitch = Pitches[(i + j) % Pitches.Length];
                    foreach (AttentionKernel kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
                    {
                        foreach (bool causal in new[] { false, true })
                        {
                            foreach (bool sink in new[] { false, true })
                            {
                                var options = Options(kernel, causal, sink ? 0.25 : null, variant);
                                var shape = new Shape(m, n, d, dv, pitch, 1, 1);
                                Call<float>(shape, options, guard, SinkSource.Options, Extras(variant));
                                Call<double>(shape, options, guard, SinkSource.Options, Extras(variant + 1));
                                variant++;
                            }
                            // Multi-head (H = 4, Hkv = 2): no sink, one sink for every head, or one per head.
                            var sinkSource = (SinkSource)((i + j + (causal ? 1 : 0)) % 3);
                            var multiOptions = Options(kernel, causal, sinkSource == SinkSource.Options ? -0.5 : null, variant);
                            var multiShape = new Shape(m, n, d, dv, pitch, 4, 2);
                            Call<float>(multiShape, multiOptions, guard, sinkSource, Extras(variant));
                            Call<double>(multiShape, multiOptions, guard, sinkSource, Extras(variant + 1));
                            variant++;
                        }
                    }
                }
            }

            // Every d (and every dv) in 1..67 at a few (m, n).
            (int M, int N)[] few = { (1, 1), (5, 17), (33, 65), (67, 67) };
            for (int d = 1; d <= 67; d++)
            {
                for (int f = 0; f < few.Length; f++)
                {
                    int dv = f % 2 == 0 ? d : 68 - d;
                    foreach (AttentionKernel kernel in new[] { AttentionKernel.Dot, AttentionKernel.Gaussian })
                    {
                        var options = Options(kernel, (d + f) % 2 == 0, d % 3 == 0 ? 1.0 : null, variant);
                        var shape = new Shape(few[f].M, few[f].N, d, dv, d % 4, 1, 1);
                        Call<float>(shape, options, guard, SinkSource.Options, Extras(variant));
                        Call<double>(shape, options, guard, SinkSource.Options, Extras(variant + 1));
                        variant++;
                    }
                }
                int valueDim = Sizes[d % Sizes.Length];
                foreach (var (m, n) in new[] { (7, 31), (64, 64) })
                {
                    var options = Options(d % 2 == 0 ? AttentionKernel.Dot : AttentionKernel.Gaussian, d % 3 == 1, null, variant);
                    Call<float>(new Shape(m, n, valueDim, d, (d + 1) % 4, 1, 1), options, guard, SinkSource.Options, Extras(variant));
                    Call<double>(new Shape(m, n, valueDim, d, (d + 1) % 4, 1, 1), options, guard, SinkSource.Options, Extras(variant + 1));
                    variant++;
                }
                var multi = Options(d % 2 == 1 ? AttentionKernel.Dot : AttentionKernel.Gaussian, d % 2 == 0, null, variant);
                Call<float>(new Shape(17, 33, d, 68 - d, d % 3, 4, 2), multi, guard, (SinkSource)(d % 3), Extras(variant));
                Call<double>(new Shape(17, 33, d, 68 - d, d % 3, 4, 2), multi, guard, (SinkSource)(d % 3), Extras(variant + 1));
                variant++;
            }
        }

        // 16-bit K/V (bfloat16 and half, decode kernel for every m): every (m, n) pair, d and dv rotating, H = 4 over Hkv = 2
        // or single-head, causal or not, with NaN bit patterns in the K/V padding.
        foreach (GuardAt guard in new[] { GuardAt.End, GuardAt.Start })
        {
            int variant = 0;
            for (int i = 0; i < Sizes.Length; i++)
            {
                for (int j = 0; j < Sizes.Length; j++)
                {
                    int d = Sizes[(i + 2 * j) % Sizes.Length], dv = Sizes[(2 * i + j + 5) % Sizes.Length];
                    int pitch = Pitches[(i + j) % Pitches.Length];
                    foreach (bool causal in new[] { false, true })
                    {
                        var options = Options(AttentionKernel.Dot, causal, variant % 3 == 0 ? 0.25 : null, variant);
                        var shape = new Shape(Sizes[i], Sizes[j] * (variant % 7 == 0 ? 9 : 1), d, dv, pitch, variant % 2 == 0 ? 4 : 1, variant % 2 == 0 ? 2 : 1);
                        CallHalfPrecision(shape, options, guard, half: variant % 4 < 2, extras: Extras(variant));
                        variant++;
                    }
                }
            }
        }

        // Decode calls with many heads (work items of more than 64 (row, head) pairs, up to DecodeConstants.MaxPairs), a
        // caller workspace of exactly GetWorkspaceSize bytes every other call, key splits (n above one 512-key chunk).
        foreach (GuardAt guard in new[] { GuardAt.End, GuardAt.Start })
        {
            int variant = 0;
            foreach (var (h, hkv) in new[] { (32, 32), (24, 8), (40, 40), (64, 16) })
            {
                foreach (int m in new[] { 1, 2, 3, 5, 8 })
                {
                    foreach (int n in new[] { 1, 17, 600 })
                    {
                        var (d, dv) = (variant % 3) switch { 0 => (7, 9), 1 => (64, 64), _ => (33, 17) };
                        var sinkSource = (SinkSource)(variant % 3);
                        var options = Options(AttentionKernel.Dot, variant % 2 == 0, sinkSource == SinkSource.Options ? 0.25 : null, variant);
                        var shape = new Shape(m, n, d, dv, variant % 3, h, hkv);
                        Call<float>(shape, options, guard, sinkSource, Extras(variant));
                        Call<double>(shape, options, guard, sinkSource, Extras(variant + 1));
                        CallHalfPrecision(shape, options, guard, half: variant % 2 == 0, extras: Extras(variant));
                        variant++;
                    }
                }
            }
        }

        foreach (string failure in Failures) Console.WriteLine(failure);
        Console.WriteLine($"OOB probe: {calls} calls, {faults} faults");
        return faults == 0 ? 0 : 1;
    }

    private static AttentionOptions Options(AttentionKernel kernel, bool causal, double? sinkLogit, int variant) => new()
    {
        Kernel = kernel,
        Bandwidth = kernel == AttentionKernel.Gaussian ? 1 : 0,
        Causal = causal,
        SinkLogit = sinkLogit,
        MaxDegreeOfParallelism = variant % 5 == 0 ? 3 : variant % 5 == 1 ? -1 : 1,
    };

    /// <summary>Log-sum-exp requested (three calls in four) and caller workspace (every other call).</summary>
    private static CallExtras Extras(int variant) => new(LogSumExp: variant % 4 != 3, Workspace: variant % 2 == 1);

    private enum SinkSource
    {
        None,
        Options,
        PerHead,
    }

    private readonly record struct Shape(int M, int N, int D, int Dv, int Pitch, int Heads, int KeyValueHeads);

    private readonly record struct CallExtras(bool LogSumExp, bool Workspace);

    /// <summary>Elements a view of <paramref name="rows"/> rows spans: no padding after the last row.</summary>
    private static int Extent(int rows, int width, int pitch) => rows == 0 ? 0 : (rows - 1) * (width + pitch) + width;

    private static bool IsPadding(int index, int width, int pitch) => index % (width + pitch) >= width;

    /// <summary>Values in [−1, 1] in the view, NaN in the pitch padding (reading it would poison the output).</summary>
    private static void FillInput<T>(GuardedBuffer<T> buffer, int width, int pitch, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> data = buffer.Span;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = IsPadding(i, width, pitch) ? T.NaN : T.CreateTruncating((((i + seed) * 7919) % 2003) / 1001.0 - 1);
        }
        buffer.MakeReadOnly();
    }

    private static T Sentinel<T>()
        where T : unmanaged, IFloatingPointIeee754<T> => T.CreateTruncating(-7777.25);

    private static void Call<T>(Shape s, AttentionOptions options, GuardAt guard, SinkSource sinkSource, CallExtras extras)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int h = s.Heads, hkv = s.KeyValueHeads;
        using var q = new GuardedBuffer<T>(Extent(s.M, h * s.D, s.Pitch), guard);
        using var k = new GuardedBuffer<T>(Extent(s.N, hkv * s.D, s.Pitch), guard);
        using var v = new GuardedBuffer<T>(Extent(s.N, hkv * s.Dv, s.Pitch), guard);
        using var o = new GuardedBuffer<T>(Extent(s.M, h * s.Dv, s.Pitch), guard);
        using var lse = new GuardedBuffer<T>(extras.LogSumExp ? h * s.M : 0, guard);
        using var sinks = new GuardedBuffer<T>(sinkSource == SinkSource.PerHead ? h : 0, guard);
        int workspaceBytes = extras.Workspace ? Attention.GetWorkspaceSize<T>(s.D, s.Dv, s.N, options, h, hkv) : 0;
        using var workspace = new GuardedBuffer<byte>(workspaceBytes, guard);

        FillInput(q, h * s.D, s.Pitch, 1);
        FillInput(k, hkv * s.D, s.Pitch, 2);
        FillInput(v, hkv * s.Dv, s.Pitch, 3);
        for (int i = 0; i < sinks.Length; i++) sinks.Span[i] = T.CreateTruncating(i % 2 == 0 ? 0.5 - i : double.NegativeInfinity);
        if (sinks.Length > 0) sinks.MakeReadOnly();
        o.Span.Fill(Sentinel<T>());
        lse.Span.Fill(Sentinel<T>());

        Invoke(q.Pointer, k.Pointer, v.Pointer, o.Pointer, s, options, extras.LogSumExp ? lse.Pointer : null,
            sinks.Length > 0 ? sinks.Pointer : null, extras.Workspace ? workspace.Pointer : null, workspaceBytes);
        calls++;
        Check(o, lse, s, options, guard);
    }

    /// <summary>A call with float Q, O and 16-bit K, V (bfloat16 or half bit patterns; NaN in the padding).</summary>
    private static void CallHalfPrecision(Shape s, AttentionOptions options, GuardAt guard, bool half, CallExtras extras)
    {
        int h = s.Heads, hkv = s.KeyValueHeads;
        using var q = new GuardedBuffer<float>(Extent(s.M, h * s.D, s.Pitch), guard);
        using var k = new GuardedBuffer<ushort>(Extent(s.N, hkv * s.D, s.Pitch), guard);
        using var v = new GuardedBuffer<ushort>(Extent(s.N, hkv * s.Dv, s.Pitch), guard);
        using var o = new GuardedBuffer<float>(Extent(s.M, h * s.Dv, s.Pitch), guard);
        using var lse = new GuardedBuffer<float>(extras.LogSumExp ? h * s.M : 0, guard);
        FillInput(q, h * s.D, s.Pitch, 1);
        FillNarrow(k, hkv * s.D, s.Pitch, 2, half);
        FillNarrow(v, hkv * s.Dv, s.Pitch, 3, half);
        o.Span.Fill(Sentinel<float>());
        lse.Span.Fill(Sentinel<float>());

        var query = new ReadOnlySpan2D<float>(q.Pointer, s.M, h * s.D, s.Pitch);
        var output = new Span2D<float>(o.Pointer, s.M, h * s.Dv, s.Pitch);
        Span<float> logSumExp = extras.LogSumExp ? new Span<float>(lse.Pointer, h * s.M) : default;
        if (half)
            Attention.ForwardMultiHead(query, new ReadOnlySpan2D<Half>((Half*)k.Pointer, s.N, hkv * s.D, s.Pitch),
                new ReadOnlySpan2D<Half>((Half*)v.Pointer, s.N, hkv * s.Dv, s.Pitch), output, h, hkv, options, logSumExp);
        else
            Attention.ForwardMultiHead(query, new ReadOnlySpan2D<BFloat16>((BFloat16*)k.Pointer, s.N, hkv * s.D, s.Pitch),
                new ReadOnlySpan2D<BFloat16>((BFloat16*)v.Pointer, s.N, hkv * s.Dv, s.Pitch), output, h, hkv, options, logSumExp);
        calls++;
        Check(o, lse, s, options, guard);
    }

    /// <summary>16-bit values in [−1, 1] in the view and NaN bit patterns in the pitch padding.</summary>
    private static void FillNarrow(GuardedBuffer<ushort> buffer, int width, int pitch, int seed, bool half)
    {
        Span<ushort> data = buffer.Span;
        for (int i = 0; i < data.Length; i++)
        {
            float x = IsPadding(i, width, pitch) ? float.NaN : (float)((((i + seed) * 7919) % 2003) / 1001.0 - 1);
            data[i] = half ? BitConverter.HalfToUInt16Bits((Half)x) : ((BFloat16)x).Bits;
        }
        buffer.MakeReadOnly();
    }

    private static void Invoke<T>(T* q, T* k, T* v, T* o, Shape s, in AttentionOptions options, T* lse, T* sinks, byte* workspace, int workspaceBytes)
        where T : unmanaged
    {
        int h = s.Heads, hkv = s.KeyValueHeads;
        bool multi = h > 1 || hkv > 1;
        if (typeof(T) == typeof(float))
        {
            var query = new ReadOnlySpan2D<float>(q, s.M, h * s.D, s.Pitch);
            var key = new ReadOnlySpan2D<float>(k, s.N, hkv * s.D, s.Pitch);
            var value = new ReadOnlySpan2D<float>(v, s.N, hkv * s.Dv, s.Pitch);
            var output = new Span2D<float>(o, s.M, h * s.Dv, s.Pitch);
            Span<float> logSumExp = lse == null ? default : new Span<float>(lse, h * s.M);
            ReadOnlySpan<float> sinkLogits = sinks == null ? default : new ReadOnlySpan<float>(sinks, h);
            if (!multi && workspace == null) Attention.Forward(query, key, value, output, options, logSumExp);
            else if (!multi) Attention.Forward(query, key, value, output, options, logSumExp, new Span<byte>(workspace, workspaceBytes));
            else if (workspace == null) Attention.ForwardMultiHead(query, key, value, output, h, hkv, options, logSumExp, sinkLogits);
            else Attention.ForwardMultiHead(query, key, value, output, h, hkv, options, logSumExp, sinkLogits, new Span<byte>(workspace, workspaceBytes));
        }
        else
        {
            var query = new ReadOnlySpan2D<double>(q, s.M, h * s.D, s.Pitch);
            var key = new ReadOnlySpan2D<double>(k, s.N, hkv * s.D, s.Pitch);
            var value = new ReadOnlySpan2D<double>(v, s.N, hkv * s.Dv, s.Pitch);
            var output = new Span2D<double>(o, s.M, h * s.Dv, s.Pitch);
            Span<double> logSumExp = lse == null ? default : new Span<double>(lse, h * s.M);
            ReadOnlySpan<double> sinkLogits = sinks == null ? default : new ReadOnlySpan<double>(sinks, h);
            if (!multi && workspace == null) Attention.Forward(query, key, value, output, options, logSumExp);
            else if (!multi) Attention.Forward(query, key, value, output, options, logSumExp, new Span<byte>(workspace, workspaceBytes));
            else if (workspace == null) Attention.ForwardMultiHead(query, key, value, output, h, hkv, options, logSumExp, sinkLogits);
            else Attention.ForwardMultiHead(query, key, value, output, h, hkv, options, logSumExp, sinkLogits, new Span<byte>(workspace, workspaceBytes));
        }
    }

    /// <summary>Output padding untouched; every output element written and finite (a NaN means input padding was read);
    /// every log-sum-exp written and not NaN (−∞ is a row with no visible key).</summary>
    private static void Check<T>(GuardedBuffer<T> o, GuardedBuffer<T> lse, Shape s, in AttentionOptions options, GuardAt guard)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sentinel = Sentinel<T>();
        int width = s.Heads * s.Dv;
        ReadOnlySpan<T> output = o.Span;
        for (int i = 0; i < output.Length; i++)
        {
            bool padding = IsPadding(i, width, s.Pitch);
            if (padding && !output[i].Equals(sentinel)) Fail("wrote output padding", i, output[i], s, options, guard);
            else if (!padding && output[i].Equals(sentinel)) Fail("left an output element unwritten", i, output[i], s, options, guard);
            else if (!padding && !T.IsFinite(output[i])) Fail("non-finite output (input padding read?)", i, output[i], s, options, guard);
        }
        ReadOnlySpan<T> logSumExp = lse.Span;
        for (int i = 0; i < logSumExp.Length; i++)
        {
            if (logSumExp[i].Equals(sentinel)) Fail("left a log-sum-exp unwritten", i, logSumExp[i], s, options, guard);
            else if (T.IsNaN(logSumExp[i]) || T.IsPositiveInfinity(logSumExp[i])) Fail("NaN or +∞ log-sum-exp (input padding read?)", i, logSumExp[i], s, options, guard);
        }
    }

    private static void Fail<T>(string what, int index, T found, Shape s, in AttentionOptions options, GuardAt guard)
    {
        faults++;
        if (Failures.Count < 40)
        {
            Failures.Add($"FAULT: {what} at element {index} ({found}) of {typeof(T).Name} {s} {options} guard at {guard}");
        }
    }
}
