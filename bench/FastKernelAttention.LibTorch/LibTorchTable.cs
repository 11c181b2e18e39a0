using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Benchmarks;
using FastKernelAttention.Benchmarks.Workloads;
using TorchSharp;

namespace FastKernelAttention.LibTorch;

/// <summary>
/// Issue 5's workloads (<see cref="Workload.All"/>) on libtorch at each requested thread count
/// (<c>torch.set_num_threads</c>), beside our <c>Attention.ForwardMultiHead</c> measured in the same process at the same
/// thread count. Every variant's output is compared with ours on the same inputs before it is timed. Writes
/// bench/results/&lt;cpu&gt;/libtorch-summary.json (the fields of the main table's summary.json, impl "libtorch") and
/// &lt;date&gt;-libtorch.md.
/// </summary>
public static class LibTorchTable
{
    /// <summary>The most a libtorch output may differ from ours (absolute, inputs N(0, 1)) before the run is refused as
    /// wrong; measured differences are 4e-8 to 2e-6.</summary>
    public const double Tolerance = 1e-3;

    private const int Runs = 7;

    /// <summary>CPU use by other processes (% of one core) above which the markdown says the run was disturbed.</summary>
    private const double DisturbedPercent = 10;

    /// <summary>One libtorch measurement, with ours at the same thread count.</summary>
    private sealed record Result(Workload Workload, string Variant, int Threads, double Milliseconds, double MaxAbsDiff, double FkaMilliseconds)
    {
        public double Gflops => Workload.Flops / Milliseconds / 1e6;

        public double? Gbps => Workload.Decode ? Workload.KeyValueBytes / Milliseconds / 1e6 : null;
    }

    /// <summary>Measures, prints and (with <paramref name="save"/>) writes the results.</summary>
    /// <param name="threadCounts">libtorch intra-op thread counts and our MaxDegreeOfParallelism, in order.</param>
    /// <param name="only">Comma-separated workload id prefixes (e.g. "W1,W4"), or null for all.</param>
    /// <param name="save">Write libtorch-summary.json and the markdown table under bench/results/&lt;cpu&gt;/.</param>
    /// <returns>0; 2 when libtorch does not load; 3 when an output differs from ours by more than <see cref="Tolerance"/>
    /// (nothing is written then).</returns>
    public static int Run(int[] threadCounts, string? only, bool save)
    {
        if (LibTorchBaseline.Version is null)
        {
            Console.Error.WriteLine("error: libtorch (TorchSharp-cpu) did not load, so nothing was measured.");
            Console.Error.WriteLine("On Debian 12 the packaged libLibTorchSharp.so needs GLIBCXX_3.4.32; run "
                + "bash bench/FastKernelAttention.LibTorch/run.sh (it patches the build output's copy), or setup.sh after a build.");
            Console.Error.WriteLine(LibTorchBaseline.LoadError);
            return 2;
        }

        MachineState.WaitForQuiet();
        string loadBefore = MachineState.LoadAverage();
        Console.WriteLine($"libtorch {LibTorchBaseline.Version} (TorchSharp {LibTorchBaseline.TorchSharpVersion}); load average before: {loadBefore}. Measuring the FMA peak…");
        var fmaPeak = threadCounts.Distinct().ToDictionary(t => t, Roofline.FmaPeakGflops);
        // The 16-bit K/V rows (W4-bf16, W4-f16) exercise fka's own storage overloads; libtorch's baseline is the float32 W4.
        var selected = Workload.All.Where(w => !w.HalfPrecision).Where(w => only is null
            || only.Split(',', StringSplitOptions.RemoveEmptyEntries).Any(p => w.Id.StartsWith(p.Trim(), StringComparison.OrdinalIgnoreCase))).ToList();
        var results = new List<Result>();
        var others = new Dictionary<Workload, double>();
        var watch = Stopwatch.StartNew();
        using (torch.no_grad())
        {
            foreach (Workload workload in selected)
            {
                Console.WriteLine($"{workload.Id} ({workload.Shape}) at {watch.Elapsed.TotalSeconds:F0} s…");
                var ticks = MachineState.CpuTicks();
                double start = watch.Elapsed.TotalSeconds;
                if (!Measure(workload, threadCounts, results)) return 3;
                others[workload] = MachineState.OtherProcesses(ticks, MachineState.CpuTicks(), watch.Elapsed.TotalSeconds - start);
            }
        }

        string table = Format(results, others, threadCounts, fmaPeak, loadBefore, MachineState.LoadAverage());
        Console.Write(table);
        if (save)
        {
            string folder = QuickTable.ResultsFolder();
            string markdown = Path.Combine(folder, $"{DateTime.UtcNow:yyyy-MM-dd}-libtorch.md");
            File.WriteAllText(markdown, table);
            string json = Path.Combine(folder, "libtorch-summary.json");
            File.WriteAllText(json, Json(results));
            Console.WriteLine($"saved {markdown} and {json}");
        }
        return 0;
    }

    /// <summary>Ours and every libtorch variant, interleaved, at each thread count; false when a libtorch output is wrong.</summary>
    private static bool Measure(Workload w, int[] threadCounts, List<Result> results)
    {
        int h = w.Heads, hkv = w.KeyValueHeads, lq = w.QueryLength, lk = w.KeyLength, d = w.HeadDim;
        // The main workloads table's inputs: the same generator, seed and order.
        var random = new Random(5);
        float[] q = QuickTable.Normal(random, lq * h * d), k = QuickTable.Normal(random, lk * hkv * d), v = QuickTable.Normal(random, lk * hkv * d);
        var ours = new float[lq * h * d];
        using LibTorchPlan plan = LibTorchBaseline.Plan(w, q, k, v);
        foreach (int t in threadCounts)
        {
            AttentionOptions options = w.Options(t);
            // The output is bitwise the same for every thread count.
            void Fka() => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<float>(k, lk, hkv * d),
                new ReadOnlySpan2D<float>(v, lk, hkv * d), new Span2D<float>(ours, lq, h * d), h, hkv, options);
            Fka();

            torch.set_num_threads(t);
            if (torch.get_num_threads() != t)
                throw new InvalidOperationException($"torch.set_num_threads({t}) left {torch.get_num_threads()} threads.");
            var calls = new List<Action> { Fka };
            var differences = new List<double>();
            foreach (LibTorchVariant variant in plan.Variants)
            {
                double diff = MaxAbsDiff(variant.Output(), ours);
                if (!(diff <= Tolerance))
                {
                    Console.Error.WriteLine($"error: {w.Id} libtorch \"{variant.Name}\" at {t} threads differs from Attention.ForwardMultiHead "
                        + $"by {diff:0.0e+0} (> {Tolerance:0e+0}); nothing saved.");
                    return false;
                }
                differences.Add(diff);
                calls.Add(variant.Run);
            }
            // Ours and every variant, in turns on one thread (QuickTable.InterleavedMedians).
            double[] medians = QuickTable.InterleavedMedians(calls, Runs, t);
            for (int i = 0; i < plan.Variants.Count; i++)
            {
                results.Add(new Result(w, plan.Variants[i].Name, t, medians[i + 1], differences[i], medians[0]));
                Console.WriteLine($"  {t}T {plan.Variants[i].Name}: {medians[i + 1]:F3} ms (fka {medians[0]:F3} ms), max abs diff {differences[i]:0.0e+0}");
            }
        }
        GC.Collect();
        return true;
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        if (a.Length != b.Length) return double.NaN;
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(diff)) return double.NaN;
            max = Math.Max(max, diff);
        }
        return max;
    }

    private static string Format(List<Result> results, Dictionary<Workload, double> others, int[] threadCounts,
        Dictionary<int, double> fmaPeak, string loadBefore, string loadAfter)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# libtorch on the workloads W1–W7 (issue 5)");
        text.AppendLine();
        text.AppendLine(c, $"CPU: {QuickTable.CpuModel()} ({Environment.ProcessorCount} logical cores), fka ISA path: {Attention.ActiveIsa}, {RuntimeInformation.FrameworkDescription}, commit {MachineState.Commit()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine(c, $"libtorch {LibTorchBaseline.Version} (TorchSharp-cpu {LibTorchBaseline.TorchSharpVersion}, libtorch-cpu-linux-x64), float32, torch.no_grad; libLibTorchSharp.so patched by bench/FastKernelAttention.LibTorch/setup.sh (its GLIBCXX_3.4.32 need marked weak, see bench/README.md).");
        text.AppendLine(c, $"Threads: {string.Join(" and ", threadCounts)} (torch.set_num_threads; fka's MaxDegreeOfParallelism, measured in the same process).");
        text.AppendLine(c, $"Load average (1, 5, 15 min): {loadBefore} before, {loadAfter} after.");
        foreach (int t in fmaPeak.Keys)
            text.AppendLine(c, $"Measured FMA peak on {t} thread{(t == 1 ? "" : "s")}: {fmaPeak[t]:F1} GFLOP/s (float).");
        text.AppendLine("GFLOP/s counts 4·Lq·Lk·d·H (visible pairs only when causal); decode (W4) also as GB/s of K and V read (2·Lk·Hkv·d·4 bytes).");
        text.AppendLine(c, $"Median of {Runs} samples after ≥ 0.3 s warm-up (QuickTable.InterleavedMedians, as for ONNX Runtime: on 1 thread ours and every variant in turns, on more each on its own); inputs N(0, 1) with the main table's seed; max abs diff: libtorch's output against Attention.ForwardMultiHead's on the same inputs.");
        double busiest = others.Values.DefaultIfEmpty(double.NaN).Max();
        if (busiest > DisturbedPercent)
            text.AppendLine(c, $"**Disturbed run:** other processes used up to {busiest:F0}% of one core while workloads were measured (column \"other processes\"), so both libtorch's and our rows are slower than on an idle machine, the 2-thread rows most; rerun when the machine is idle.");
        text.AppendLine();

        text.AppendLine("## Best libtorch variant against ours");
        text.AppendLine();
        var header = new StringBuilder("| workload | shape | unit |");
        var rule = new StringBuilder("|---|---|---|");
        foreach (int t in threadCounts)
        {
            header.Append(c, $" libtorch {t}T | fka {t}T | fka / libtorch {t}T | libtorch variant {t}T |");
            rule.Append("---:|---:|---:|---|");
        }
        text.AppendLine(header + " other processes |");
        text.AppendLine(rule + "---:|");
        foreach (Workload w in results.Select(r => r.Workload).Distinct())
        {
            string unit = w.Decode ? "GB/s" : "GFLOP/s";
            var row = new StringBuilder().Append(c, $"| {w.Id} | {w.Shape} | {unit} |");
            foreach (int t in threadCounts)
            {
                Result best = results.Where(r => r.Workload == w && r.Threads == t).MinBy(r => r.Milliseconds)!;
                double speed = w.Decode ? best.Gbps!.Value : best.Gflops;
                double fkaSpeed = (w.Decode ? w.KeyValueBytes : w.Flops) / best.FkaMilliseconds / 1e6;
                row.Append(c, $" {speed:F1} | {fkaSpeed:F1} | {best.Milliseconds / best.FkaMilliseconds:F2}× | {best.Variant} |");
            }
            string other = double.IsNaN(others[w]) ? "?" : others[w].ToString("F0", c) + "%";
            text.AppendLine(row + $" {other} |");
        }
        text.AppendLine();
        text.AppendLine("fka / libtorch > 1 means ours is faster. \"other processes\": CPU time that processes other than this benchmark used while the workload ran, in % of one core (/proc/stat); above a few % the row was disturbed.");
        text.AppendLine();

        text.AppendLine("## Every measurement");
        text.AppendLine();
        text.AppendLine("| workload | variant | threads | median ms | runs | GFLOP/s | % FMA peak | GB/s | max abs diff (vs fka) | fka ms | fka / libtorch |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Result r in results)
        {
            string gbps = r.Gbps is double g ? g.ToString("F1", c) : "";
            text.AppendLine(c, $"| {r.Workload.Id} | {r.Variant} | {r.Threads} | {r.Milliseconds:F3} | {Runs} | {r.Gflops:F1} | {r.Gflops / fmaPeak[r.Threads] * 100:F0}% | {gbps} | {r.MaxAbsDiff:0.0e+0} | {r.FkaMilliseconds:F3} | {r.Milliseconds / r.FkaMilliseconds:F2}× |");
        }
        return text.ToString();
    }

    /// <summary>libtorch-summary.json: a list of { workload, impl = "libtorch", threads, ms, gflops, gbps (decode only, else
    /// null), variant, max_abs_diff, runs }, the fields and rounding of the main table's summary.json.</summary>
    private static string Json(List<Result> results)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (Result r in results)
            {
                json.WriteStartObject();
                json.WriteString("workload", r.Workload.Id);
                json.WriteString("impl", "libtorch");
                json.WriteNumber("threads", r.Threads);
                json.WriteNumber("ms", Math.Round(r.Milliseconds, 4));
                json.WriteNumber("gflops", Math.Round(r.Gflops, 2));
                if (r.Gbps is double g) json.WriteNumber("gbps", Math.Round(g, 2));
                else json.WriteNull("gbps");
                json.WriteString("variant", r.Variant);
                json.WriteNumber("max_abs_diff", r.MaxAbsDiff);
                json.WriteNumber("runs", Runs);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
