using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Benchmarks.Suites;
using FastKernelAttention.Reference;

namespace FastKernelAttention.Benchmarks;

/// <summary>The default run: a table in seconds comparing the fused kernel with the plain TensorPrimitives version and the
/// naive double reference, with GFLOP/s, the fraction of the measured FMA peak, the speed-up and the bytes allocated.</summary>
public static class QuickTable
{
    private sealed record Row(string Implementation, string Kernel, int Threads, double Milliseconds, double Flops, double Bytes, long Allocated);

    public static int Run(int m, int n, int d, int threads, bool save)
    {
        int dv = d;
        var random = new Random(7);
        float[] q = Normal(random, m * d), k = Normal(random, n * d), v = Normal(random, n * dv), o = new float[m * dv];
        double bandwidth = Math.Sqrt(d); // ≈ the typical distance scale of N(0, I_d) data
        MachineState.WaitForQuiet();
        double fmaPeak = Roofline.FmaPeakGflops();
        double readBandwidth = Roofline.ReadBandwidthGBps();
        var rows = new List<Row>();
        double flops = FlopCount.Forward(m, n, d, dv, causal: false);
        double causalFlops = FlopCount.Forward(m, n, d, dv, causal: true);

        void Fused(string kernel, AttentionOptions options, double count)
        {
            void Call() => Attention.Forward(new ReadOnlySpan2D<float>(q, m, d), new ReadOnlySpan2D<float>(k, n, d),
                new ReadOnlySpan2D<float>(v, n, dv), new Span2D<float>(o, m, dv), options);
            rows.Add(new Row("fused", kernel, Math.Max(1, options.MaxDegreeOfParallelism), Median(Call), count, 0, Allocated(Call)));
        }

        Fused("dot", new AttentionOptions(), flops);
        Fused("gaussian", new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth }, flops);
        Fused("dot causal", new AttentionOptions { Causal = true }, causalFlops);
        if (threads > 1)
        {
            Fused("dot", new AttentionOptions { MaxDegreeOfParallelism = threads }, flops);
            Fused("gaussian", new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = bandwidth, MaxDegreeOfParallelism = threads }, flops);
        }

        var scores = new float[n];
        var difference = new float[d];
        void Plain(string kernel, bool gaussian)
        {
            float factor = gaussian ? (float)(0.5 / (bandwidth * bandwidth)) : (float)(1 / Math.Sqrt(d));
            void Call() => TensorPrimitivesAttention.Forward(q, k, v, o, m, n, d, dv, gaussian, factor, false, scores, difference);
            rows.Add(new Row("TensorPrimitives", kernel, 1, Median(Call), flops, 0, Allocated(Call)));
        }
        Plain("dot", false);
        Plain("gaussian", true);

        double[,] qd = ToMatrix(q, m, d), kd = ToMatrix(k, n, d), vd = ToMatrix(v, n, dv);
        void Naive(string kernel, ReferenceOptions options)
        {
            void Call() => NaiveAttention.Forward(qd, kd, vd, options);
            rows.Add(new Row("reference (double)", kernel, 1, Median(Call, minimumRuns: 3, warmupSeconds: 0), flops, 0, -1));
        }
        Naive("dot", new ReferenceOptions());
        Naive("gaussian", new ReferenceOptions { Kernel = ReferenceKernel.Gaussian, Bandwidth = bandwidth });

        // Decode: one query per head against a KV cache (bandwidth-bound: reported as GB/s of K and V read).
        const int DecodeHeads = 8, DecodeKeys = 8192, DecodeDim = 128;
        float[] dq = Normal(random, DecodeHeads * DecodeDim), dk = Normal(random, DecodeKeys * DecodeHeads * DecodeDim);
        float[] dvalues = Normal(random, DecodeKeys * DecodeHeads * DecodeDim), dout = new float[DecodeHeads * DecodeDim];
        void Decode() => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(dq, 1, DecodeHeads * DecodeDim),
            new ReadOnlySpan2D<float>(dk, DecodeKeys, DecodeHeads * DecodeDim), new ReadOnlySpan2D<float>(dvalues, DecodeKeys, DecodeHeads * DecodeDim),
            new Span2D<float>(dout, 1, DecodeHeads * DecodeDim), DecodeHeads, DecodeHeads, new AttentionOptions());
        rows.Add(new Row("fused", $"decode H={DecodeHeads} n={DecodeKeys} d={DecodeDim}", 1, Median(Decode),
            FlopCount.Forward(1, DecodeKeys, DecodeDim, DecodeDim, false, DecodeHeads), 2.0 * DecodeKeys * DecodeHeads * DecodeDim * sizeof(float), Allocated(Decode)));

        // Estimators (issue 4): ours (float, caller workspace) against the literal double reference, one line each, at the
        // table's m and n (Suites/EstimatorCases.cs has the fixed dimensions and parameters).
        foreach (EstimatorCases.Case estimator in new EstimatorCases(m, n).All())
        {
            rows.Add(new Row("fused", estimator.Name, 1, Median(estimator.Ours, minimumRuns: 5), estimator.Flops, 0, Allocated(estimator.Ours)));
            // The reference is warmed up like ours: without it the first calls of these millisecond references run tier-0 code.
            if (estimator.Reference is Action reference)
                rows.Add(new Row("reference (double)", estimator.Name, 1, Median(reference, minimumRuns: 3), estimator.Flops, 0, -1));
        }

        string table = Format(rows, m, n, d, fmaPeak, readBandwidth);
        Console.Write(table);
        if (save)
        {
            string path = SavePath();
            File.WriteAllText(path, table);
            Console.WriteLine($"saved {path}");
        }
        return 0;
    }

    private static string Format(List<Row> rows, int m, int n, int d, double fmaPeak, double readBandwidth)
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"# FastKernelAttention quick table");
        text.AppendLine();
        text.AppendLine(c, $"CPU: {CpuModel()} ({Environment.ProcessorCount} logical cores), ISA path: {Attention.ActiveIsa}, {RuntimeInformation.FrameworkDescription}, {DateTime.UtcNow:yyyy-MM-dd}");
        text.AppendLine(c, $"Measured single-core limits: FMA peak {fmaPeak:F1} GFLOP/s (float), read bandwidth {readBandwidth:F1} GB/s.");
        text.AppendLine(c, $"Shape: m = n = {m}/{n}, d = dv = {d}, float32; GFLOP/s counts 2·m·n·(d + dv) (visible pairs only when causal). Median of ≥ 5 runs after ≥ 0.3 s warm-up.");
        text.AppendLine("Estimators (issue 4): ours in float with a caller-owned workspace on 1 thread against the literal double reference on the same data (median of 3 runs after the same warm-up); the shape is in the kernel column, the other parameters in bench/FastKernelAttention.Benchmarks/Suites/EstimatorCases.cs.");
        text.AppendLine();
        text.AppendLine("| implementation | kernel | threads | median ms | GFLOP/s | % FMA peak | GB/s | % bandwidth | vs reference | bytes allocated |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Row row in rows)
        {
            Row? reference = rows.Find(r => r.Implementation.StartsWith("reference", StringComparison.Ordinal) && row.Kernel.StartsWith(r.Kernel, StringComparison.Ordinal))
                ?? rows.Find(r => r.Implementation.StartsWith("reference", StringComparison.Ordinal) && r.Kernel == row.Kernel);
            // Same work on both sides unless flop counts say otherwise (causal rows against the dense reference).
            double work = row.Flops > 0 && reference is not null && reference.Flops > 0 ? row.Flops / reference.Flops : 1;
            string speedup = reference is null || row.Kernel.StartsWith("decode", StringComparison.Ordinal) ? "" :
                (reference.Milliseconds * work / row.Milliseconds).ToString("F0", c) + "×";
            string allocated = row.Allocated < 0 ? "n/a" : row.Allocated.ToString(c);
            if (row.Flops == 0)
            {
                text.AppendLine(c, $"| {row.Implementation} | {row.Kernel} | {row.Threads} | {row.Milliseconds:F3} |  |  |  |  | {speedup} | {allocated} |");
                continue;
            }
            double gflops = row.Flops / row.Milliseconds / 1e6;
            string gbps = row.Bytes > 0 ? (row.Bytes / row.Milliseconds / 1e6).ToString("F1", c) : "";
            string fraction = row.Bytes > 0 ? (row.Bytes / row.Milliseconds / 1e6 / readBandwidth * 100).ToString("F0", c) + "%" : "";
            string peak = (gflops / (fmaPeak * row.Threads) * 100).ToString("F0", c) + "%";
            text.AppendLine(c, $"| {row.Implementation} | {row.Kernel} | {row.Threads} | {row.Milliseconds:F3} | {gflops:F1} | {peak} | {gbps} | {fraction} | {speedup} | {allocated} |");
        }
        return text.ToString();
    }

    /// <summary>Median wall time in ms of one call: warm-up by time (tiered JIT needs it), then at least
    /// <paramref name="minimumRuns"/> samples, each batching enough calls to last ≥ 20 ms.</summary>
    internal static double Median(Action call, int minimumRuns = 7, double warmupSeconds = 0.3)
        => InterleavedMedians([call], minimumRuns, threads: 1, warmupSeconds)[0];

    /// <summary>
    /// Medians of <paramref name="rounds"/> samples per call, taken in turns (call 0, 1, …, 0, 1, …) after each call's
    /// warm-up, so that every call sees the same stretches of a drifting machine; a sample is a batch of ≥ 20 ms, as in
    /// <see cref="Median"/>. Only for single-threaded calls (<paramref name="threads"/> = 1): ONNX Runtime's and libtorch's
    /// pool threads keep spinning after a multi-threaded run and would take a core from the next call's sample (measured:
    /// our two-thread W1 fell from 155 to 91 GFLOP/s beside a spinning ORT pool), so with more threads each call is
    /// measured on its own, in order (<see cref="Median"/>).
    /// </summary>
    internal static double[] InterleavedMedians(IReadOnlyList<Action> calls, int rounds, int threads, double warmupSeconds = 0.3)
    {
        if (threads > 1)
        {
            var alone = new double[calls.Count];
            for (int i = 0; i < alone.Length; i++) alone[i] = Median(calls[i], rounds, warmupSeconds);
            return alone;
        }
        int count = calls.Count;
        var batches = new int[count];
        var watch = new Stopwatch();
        for (int i = 0; i < count; i++)
        {
            watch.Restart();
            do calls[i](); while (watch.Elapsed.TotalSeconds < warmupSeconds);
            watch.Restart();
            calls[i]();
            batches[i] = Math.Max(1, (int)(20 / Math.Max(watch.Elapsed.TotalMilliseconds, 1e-3)));
        }
        var samples = new double[count, rounds];
        for (int r = 0; r < rounds; r++)
        {
            for (int i = 0; i < count; i++)
            {
                watch.Restart();
                for (int b = 0; b < batches[i]; b++) calls[i]();
                samples[i, r] = watch.Elapsed.TotalMilliseconds / batches[i];
            }
        }
        var medians = new double[count];
        for (int i = 0; i < count; i++)
        {
            var row = new double[rounds];
            for (int r = 0; r < rounds; r++) row[r] = samples[i, r];
            Array.Sort(row);
            medians[i] = row[rounds / 2];
        }
        return medians;
    }

    /// <summary>Managed bytes allocated by one steady-state call on this thread.</summary>
    internal static long Allocated(Action call)
    {
        call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        call();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    internal static float[] Normal(Random random, int count)
    {
        var data = new float[count];
        for (int i = 0; i < count; i++)
            data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        return data;
    }

    internal static double[,] ToMatrix(float[] data, int rows, int columns)
    {
        var matrix = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                matrix[i, j] = data[i * columns + j];
        return matrix;
    }

    internal static string CpuModel()
        => CpuInfo("model name") ?? RuntimeInformation.ProcessArchitecture + " " + (Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") ?? "unknown CPU");

    /// <summary>The value of the first /proc/cpuinfo line whose key is <paramref name="field"/>, or null.</summary>
    private static string? CpuInfo(string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && line[..colon].Trim() == field) return line[(colon + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>bench/results/&lt;cpu-slug&gt;/&lt;date&gt;-quick.md under the repository root.</summary>
    private static string SavePath() => Path.Combine(ResultsFolder(), $"{DateTime.UtcNow:yyyy-MM-dd}-quick.md");

    /// <summary>bench/results/&lt;cpu-slug&gt;/ under the repository root (created if missing).</summary>
    internal static string ResultsFolder()
    {
        string directory = AppContext.BaseDirectory;
        while (directory.Length > 0 && !File.Exists(Path.Combine(directory, "FastKernelAttention.sln")))
            directory = Path.GetDirectoryName(directory) ?? "";
        if (directory.Length == 0) directory = Directory.GetCurrentDirectory();
        // A virtual machine's model name is often generic ("AMD EPYC", "Intel(R) Xeon(R) Processor") and the same for
        // several generations (here: Zen 4 and Zen 5); then the CPU family and model tell the folders apart.
        string name = CpuModel();
        if (!name.Any(char.IsAsciiDigit) && CpuInfo("cpu family") is string family && CpuInfo("model") is string model)
            name += $" family {family} model {model}";
        var slug = new StringBuilder();
        foreach (char ch in name.ToLowerInvariant()) slug.Append(char.IsAsciiLetterOrDigit(ch) ? ch : '-');
        string folder = Path.Combine(directory, "bench", "results", slug.ToString().Trim('-'));
        Directory.CreateDirectory(folder);
        return folder;
    }
}
