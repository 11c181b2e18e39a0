using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;

namespace FastKernelAttention.Benchmarks.Workloads;

/// <summary>
/// <c>--workloads</c>: issue 5's workloads W1–W7 with our kernel ("fka"), ONNX Runtime, the plain TensorPrimitives version
/// and the naive double reference, on 1 thread and on <c>--threads N</c>. Reports median ms, GFLOP/s (4·Lq·Lk·d·H, visible
/// pairs when causal), GB/s of K and V read for decode, and fractions of the FMA peak and read bandwidth measured here on
/// the same number of threads. libtorch's column comes from bench/results/&lt;cpu&gt;/libtorch-summary.json when that file
/// exists (written by bench/FastKernelAttention.LibTorch/run.sh). <c>--save</c> writes bench/results/&lt;cpu&gt;/summary.json
/// (libtorch's entries merged in), &lt;date&gt;-workloads.md and the chart workloads.png (<see cref="WorkloadChart"/>).
/// </summary>
public static class WorkloadTable
{
    /// <summary>One measurement; <paramref name="MaxAbsDiff"/> is against the reference (fka), or against fka (the others).</summary>
    private sealed record Result(Workload Workload, string Impl, string Variant, int Threads, double Milliseconds, int Runs,
        double? MaxAbsDiff, long Allocated)
    {
        public double Gflops => Workload.Flops / Milliseconds / 1e6;

        public double? Gbps => Workload.Decode ? Workload.KeyValueBytes / Milliseconds / 1e6 : null;

        public SummaryEntry ToEntry() => new(Workload.Id, Impl, Threads, Milliseconds, Gflops, Gbps, Variant, MaxAbsDiff, Runs);
    }

    private const int FastRuns = 9, SlowRuns = 3;

    /// <summary>Decode workloads: GB/s of the read probe (<see cref="Roofline.SumOnce"/> over as many bytes as the call reads)
    /// sampled in turns with ours and ONNX Runtime on one thread.</summary>
    private static readonly Dictionary<Workload, double> InTurnBandwidth = new();

    /// <summary>16-bit K/V workloads: milliseconds of our float32 call on the widened values, sampled in turns with the
    /// 16-bit call on one thread (so the speed-up of the 16-bit storage is a ratio within one set of turns).</summary>
    private static readonly Dictionary<Workload, double> InTurnFloat32 = new();

    /// <summary>Causal workloads: milliseconds of our dense call on the same data, sampled in turns with the causal call on
    /// one thread (W2's target is a ratio of our own two times; measured apart, this VM's drift moved it by ±10%).</summary>
    private static readonly Dictionary<Workload, double> InTurnDense = new();

    /// <param name="threads">N for the multi-threaded rows (1 runs single-threaded rows only).</param>
    /// <param name="save">Write summary.json and the markdown table under bench/results/&lt;cpu&gt;/.</param>
    /// <param name="only">Comma-separated workload id prefixes (e.g. "W1,W4"), or null for all.</param>
    /// <param name="withReference">Also time the naive double reference (seconds per call on the large workloads).</param>
    /// <param name="withTensorPrimitives">Also time the plain TensorPrimitives version (about a second per call on W7).</param>
    public static int Run(int threads, bool save, string? only, bool withReference, bool withTensorPrimitives = true)
    {
        threads = Math.Max(1, threads);
        int[] threadCounts = threads == 1 ? [1] : [1, threads];
        double waited = MachineState.WaitForQuiet();
        string loadBefore = MachineState.LoadAverage();
        Console.WriteLine($"Waited {waited:F1} s for other processes to go quiet; load average before: {loadBefore}. Measuring the roofline…");
        var fmaPeak = new Dictionary<int, double>();
        var readBandwidth = new Dictionary<int, double>();
        foreach (int t in threadCounts)
        {
            fmaPeak[t] = Roofline.FmaPeakGflops(t);
            readBandwidth[t] = Roofline.ReadBandwidthGBps(t);
        }

        string? ortVersion = OnnxRuntimeBaseline.Version;
        if (ortVersion is null) Console.WriteLine($"ONNX Runtime did not load: {OnnxRuntimeBaseline.LoadError}");

        var selected = Workload.All.Where(w => only is null
            || only.Split(',', StringSplitOptions.RemoveEmptyEntries).Any(p => w.Id.StartsWith(p.Trim(), StringComparison.OrdinalIgnoreCase))).ToList();
        var results = new List<Result>();
        var others = new Dictionary<Workload, string>();
        var watch = Stopwatch.StartNew();
        foreach (Workload workload in selected)
        {
            Console.WriteLine($"{workload.Id} ({workload.Shape}) at {watch.Elapsed.TotalSeconds:F0} s…");
            var ticks = MachineState.CpuTicks();
            double start = watch.Elapsed.TotalSeconds;
            Measure(workload, threadCounts, withReference, withTensorPrimitives, ortVersion is not null, results);
            double other = MachineState.OtherProcesses(ticks, MachineState.CpuTicks(), watch.Elapsed.TotalSeconds - start);
            others[workload] = double.IsNaN(other) ? "?" : other.ToString("F0", CultureInfo.InvariantCulture) + "%";
        }

        string loadAfter = MachineState.LoadAverage();
        string folder = QuickTable.ResultsFolder();
        string? libTorchSource = AddLibTorch(folder, selected, results);
        string table = Format(results, others, threadCounts, fmaPeak, readBandwidth, ortVersion, libTorchSource, loadBefore, loadAfter);
        Console.Write(table);
        if (save)
        {
            string markdown = Path.Combine(folder, $"{DateTime.UtcNow:yyyy-MM-dd}-workloads.md");
            File.WriteAllText(markdown, table);
            string json = Path.Combine(folder, "summary.json");
            List<SummaryEntry> entries = results.ConvertAll(r => r.ToEntry());
            File.WriteAllText(json, SummaryEntry.Json(entries));
            string chart = Path.Combine(folder, WorkloadChart.FileName);
            WorkloadChart.Write(entries, chart, WorkloadChart.Caption(folder));
            Console.WriteLine($"saved {markdown}, {json} and {chart}");
        }
        return 0;
    }

    /// <summary>Appends libtorch's entries for the selected workloads from <paramref name="folder"/>/libtorch-summary.json
    /// (all of its thread counts; GFLOP/s and GB/s recomputed from its ms with the same counts as ours); returns the file
    /// name, or null when it does not exist.</summary>
    private static string? AddLibTorch(string folder, List<Workload> selected, List<Result> results)
    {
        List<SummaryEntry>? libTorch = SummaryEntry.ReadLibTorch(folder);
        if (libTorch is null) return null;
        foreach (SummaryEntry e in libTorch)
        {
            Workload? w = selected.Find(x => x.Id == e.Workload);
            if (w is null || !(e.Milliseconds > 0)) continue;
            results.Add(new Result(w, "libtorch", e.Variant, e.Threads, e.Milliseconds, e.Runs, e.MaxAbsDiff, -1));
        }
        Console.WriteLine($"libtorch: {libTorch.Count} entries from {SummaryEntry.LibTorchFileName}.");
        return SummaryEntry.LibTorchFileName;
    }

    private static unsafe void Measure(Workload w, int[] threadCounts, bool withReference, bool withTensorPrimitives, bool withOnnxRuntime,
        List<Result> results)
    {
        int h = w.Heads, hkv = w.KeyValueHeads, lq = w.QueryLength, lk = w.KeyLength, d = w.HeadDim;
        var random = new Random(5);
        float[] q = QuickTable.Normal(random, lq * h * d), k = QuickTable.Normal(random, lk * hkv * d), v = QuickTable.Normal(random, lk * hkv * d);
        var o = new float[lq * h * d];
        // 16-bit K/V rows: fka reads the rounded copies; the float arrays hold the widened values for the reference.
        BFloat16[] kb = [], vb = [];
        Half[] kf16 = [], vf16 = [];
        if (w.KeyValueType == "bf16") { kb = Array.ConvertAll(k, x => (BFloat16)x); vb = Array.ConvertAll(v, x => (BFloat16)x); k = Array.ConvertAll(kb, x => (float)x); v = Array.ConvertAll(vb, x => (float)x); }
        if (w.KeyValueType == "f16") { kf16 = Array.ConvertAll(k, x => (Half)x); vf16 = Array.ConvertAll(v, x => (Half)x); k = Array.ConvertAll(kf16, x => (float)x); v = Array.ConvertAll(vf16, x => (float)x); }

        // Ours and ONNX Runtime per thread count, on one thread with their samples interleaved (QuickTable.InterleavedMedians)
        // so that both see the same machine: this VM's speed drifts by ±10% over seconds. Ours is bitwise the same for every count.
        var plans = withOnnxRuntime && !w.HalfPrecision ? OnnxRuntimeBaseline.Plans(w, q, k, v).ToList() : []; // the baselines read float32 K/V
        long probeFloats = (long)w.KeyValueBytes / sizeof(float) / 32 * 32;
        float* probeBuffer = w.Decode ? (float*)NativeMemory.AlignedAlloc((nuint)(probeFloats * sizeof(float)), 4096) : null;
        if (probeBuffer != null) new Span<float>(probeBuffer, checked((int)probeFloats)).Fill(1);
        float[]? ours = null;
        try
        {
            foreach (int t in threadCounts)
            {
                AttentionOptions options = w.Options(t);
                void Fka()
                {
                    if (w.KeyValueType == "bf16")
                        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<BFloat16>(kb, lk, hkv * d),
                            new ReadOnlySpan2D<BFloat16>(vb, lk, hkv * d), new Span2D<float>(o, lq, h * d), h, hkv, options);
                    else if (w.KeyValueType == "f16")
                        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<Half>(kf16, lk, hkv * d),
                            new ReadOnlySpan2D<Half>(vf16, lk, hkv * d), new Span2D<float>(o, lq, h * d), h, hkv, options);
                    else
                        Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<float>(k, lk, hkv * d),
                            new ReadOnlySpan2D<float>(v, lk, hkv * d), new Span2D<float>(o, lq, h * d), h, hkv, options);
                }
                Fka();
                ours ??= (float[])o.Clone();

                var sessions = new List<OnnxRuntimeSession>();
                try
                {
                    var calls = new List<Action> { Fka };
                    var differences = new List<double>();
                    foreach (OnnxRuntimePlan plan in plans)
                    {
                        OnnxRuntimeSession session = plan.Open(t);
                        sessions.Add(session);
                        Array.Clear(plan.Output);
                        session.Run(); // verify before timing
                        differences.Add(MaxAbsDiff(plan.Output, ours));
                        calls.Add(session.Run);
                    }
                    // 16-bit K/V on one thread: our float32 call on the widened values joins the turns.
                    int float32 = -1;
                    if (w.HalfPrecision && t == 1)
                    {
                        float32 = calls.Count;
                        var o32 = new float[o.Length];
                        calls.Add(() => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<float>(k, lk, hkv * d),
                            new ReadOnlySpan2D<float>(v, lk, hkv * d), new Span2D<float>(o32, lq, h * d), h, hkv, options));
                    }
                    // Causal on one thread: our dense call on the same data joins the turns.
                    int dense = -1;
                    if (w.Causal && t == 1)
                    {
                        dense = calls.Count;
                        var oDense = new float[o.Length];
                        AttentionOptions denseOptions = options with { Causal = false };
                        calls.Add(() => Attention.ForwardMultiHead(new ReadOnlySpan2D<float>(q, lq, h * d), new ReadOnlySpan2D<float>(k, lk, hkv * d),
                            new ReadOnlySpan2D<float>(v, lk, hkv * d), new Span2D<float>(oDense, lq, h * d), h, hkv, denseOptions));
                    }
                    // Decode on one thread: the read probe joins the turns (its buffer as large as K and V together).
                    int probe = -1;
                    if (w.Decode && t == 1 && probeBuffer != null)
                    {
                        probe = calls.Count;
                        calls.Add(() => GC.KeepAlive(Roofline.SumOnce(probeBuffer, probeFloats)));
                    }
                    double[] medians = QuickTable.InterleavedMedians(calls, FastRuns, t);
                    if (probe >= 0) InTurnBandwidth[w] = w.KeyValueBytes / medians[probe] / 1e6;
                    if (float32 >= 0) InTurnFloat32[w] = medians[float32];
                    if (dense >= 0) InTurnDense[w] = medians[dense];
                    results.Add(new Result(w, "fka", w.HalfPrecision ? $"Attention.ForwardMultiHead, K/V {w.KeyValueType}" : "Attention.ForwardMultiHead", t,
                        medians[0], FastRuns, null, QuickTable.Allocated(Fka)));
                    for (int i = 0; i < plans.Count; i++)
                        results.Add(new Result(w, "onnxruntime", plans[i].Variant, t, medians[i + 1], FastRuns, differences[i], QuickTable.Allocated(sessions[i].Run)));
                }
                finally
                {
                    foreach (OnnxRuntimeSession session in sessions) session.Dispose();
                }
            }
        }
        finally
        {
            foreach (OnnxRuntimePlan plan in plans) plan.Dispose();
            if (probeBuffer != null) NativeMemory.AlignedFree(probeBuffer);
        }
        if (ours is null) return; // no thread counts

        // The plain TensorPrimitives version works on one contiguous head at a time: give it head-major copies.
        if (withTensorPrimitives && !w.HalfPrecision)
        {
            float[] qh = OnnxRuntimeBaseline.HeadMajor(q, lq, h, d), kh = OnnxRuntimeBaseline.HeadMajor(k, lk, hkv, d);
            float[] vh = OnnxRuntimeBaseline.HeadMajor(v, lk, hkv, d), oh = new float[qh.Length];
            var scores = new float[lk];
            var difference = new float[d];
            float factor = w.Gaussian ? (float)(0.5 / (w.Bandwidth * w.Bandwidth)) : (float)(1 / Math.Sqrt(d));
            int group = h / hkv;
            void Plain()
            {
                for (int head = 0; head < h; head++)
                {
                    int kvHead = head / group;
                    TensorPrimitivesAttention.Forward(qh.AsSpan(head * lq * d, lq * d), kh.AsSpan(kvHead * lk * d, lk * d),
                        vh.AsSpan(kvHead * lk * d, lk * d), oh.AsSpan(head * lq * d, lq * d), lq, lk, d, d, w.Gaussian, factor, w.Causal,
                        scores, difference);
                }
            }
            Plain();
            double diff = MaxAbsDiff(OnnxRuntimeBaseline.HeadMajor(ours, lq, h, d), oh);
            results.Add(new Result(w, "tensorprimitives", "per head and query row (head-major copies)", 1,
                QuickTable.Median(Plain, SlowRuns), SlowRuns, diff, QuickTable.Allocated(Plain)));
        }

        if (withReference)
        {
            double[,] qd = QuickTable.ToMatrix(q, lq, h * d), kd = QuickTable.ToMatrix(k, lk, hkv * d), vd = QuickTable.ToMatrix(v, lk, hkv * d);
            var options = new ReferenceOptions
            {
                Kernel = w.Gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
                Bandwidth = w.Gaussian ? w.Bandwidth : 1,
                Causal = w.Causal,
            };
            double[,] expected = new double[0, 0];
            void Naive() => expected = NaiveAttention.ForwardMultiHead(qd, kd, vd, h, hkv, options).Output;
            (double ms, int runs) = SlowMedian(Naive);
            double diff = 0;
            for (int i = 0; i < lq; i++)
                for (int c = 0; c < h * d; c++)
                    diff = Math.Max(diff, Math.Abs(ours[i * h * d + c] - expected[i, c]));
            // The reference row carries fka's error against it; fka's rows leave the column to it.
            results.Add(new Result(w, "reference", "naive double, materialises S and P per head", 1, ms, runs, diff, -1));
        }
        GC.Collect();
    }

    /// <summary>The naive reference takes seconds per call: median of 3 calls without warm-up, or the first call alone when
    /// it took more than 4 s (JIT is well under 1% of that).</summary>
    private static (double Milliseconds, int Runs) SlowMedian(Action call)
    {
        var watch = Stopwatch.StartNew();
        call();
        double first = watch.Elapsed.TotalMilliseconds;
        if (first > 4000) return (first, 1);
        var samples = new double[SlowRuns];
        for (int s = 0; s < samples.Length; s++)
        {
            watch.Restart();
            call();
            samples[s] = watch.Elapsed.TotalMilliseconds;
        }
        Array.Sort(samples);
        return (samples[samples.Length / 2], SlowRuns);
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(diff)) return double.NaN;
            max = Math.Max(max, diff);
        }
        return max;
    }

    private static string Format(List<Result> results, Dictionary<Workload, string> others, int[] threadCounts, Dictionary<int, double> fmaPeak,
        Dictionary<int, double> readBandwidth, string? ortVersion, string? libTorchSource, string loadBefore, string loadAfter)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# FastKernelAttention workloads W1–W7 (issue 5)");
        text.AppendLine();
        text.AppendLine(c, $"CPU: {QuickTable.CpuModel()} ({Environment.ProcessorCount} logical cores), ISA path: {Attention.ActiveIsa}, {RuntimeInformation.FrameworkDescription}, commit {MachineState.Commit()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine(c, $"Load average (1, 5, 15 min): {loadBefore} before, {loadAfter} after.");
        text.AppendLine(c, $"ONNX Runtime: {(ortVersion is null ? "not measured — " + OnnxRuntimeBaseline.LoadError : ortVersion + " (Microsoft.ML.OnnxRuntime, CPU execution provider)")}. libtorch: {(libTorchSource is null ? SummaryEntry.LibTorchMissing : "from " + libTorchSource + " (its variants, thread counts and runs; measured separately)")}.");
        foreach (int t in threadCounts)
            text.AppendLine(c, $"Measured limits on {t} thread{(t == 1 ? "" : "s")}: FMA peak {fmaPeak[t]:F1} GFLOP/s (float), read bandwidth {readBandwidth[t]:F1} GB/s.");
        text.AppendLine("GFLOP/s counts 4·Lq·Lk·d·H (visible pairs only when causal); decode (W4) also as GB/s of K and V read (2·Lk·Hkv·d·4 bytes, ·2 for 16-bit K/V: W4-bf16, W4-f16 compare with the reference on the widened values).");
        text.AppendLine(c, $"fka and ONNX Runtime: median of {FastRuns} samples after ≥ 0.3 s warm-up (on 1 thread taken in turns, on more each on its own: QuickTable.InterleavedMedians); TensorPrimitives: median of {SlowRuns}; reference: see bench/README.md. Batch 1, float32, forward.");
        text.AppendLine();

        text.AppendLine("## Ours against ONNX Runtime");
        text.AppendLine();
        var header = new StringBuilder("| workload | shape | unit |");
        var rule = new StringBuilder("|---|---|---|");
        foreach (int t in threadCounts)
        {
            header.Append(c, $" fka {t}T | ONNX Runtime {t}T | fka / ORT {t}T |");
            rule.Append("---:|---:|---:|");
        }
        header.Append(" TensorPrimitives 1T | reference 1T | libtorch | other processes |");
        rule.Append("---:|---:|---|---:|");
        text.AppendLine(header.ToString());
        text.AppendLine(rule.ToString());
        // Each implementation's best variant of a workload at a thread count.
        Result? Best(Workload w, string impl, int t) => results.Where(r => r.Workload == w && r.Impl == impl && r.Threads == t).MinBy(r => r.Milliseconds);
        foreach (Workload w in results.Select(r => r.Workload).Distinct())
        {
            string unit = w.Decode ? "GB/s" : "GFLOP/s";
            double Rate(Result r) => w.Decode ? r.Gbps!.Value : r.Gflops;
            var line = new StringBuilder().Append(c, $"| {w.Id} | {w.Shape} | {unit} |");
            foreach (int t in threadCounts)
            {
                Result? fka = Best(w, "fka", t), ort = Best(w, "onnxruntime", t);
                line.Append(c, $" {(fka is null ? "–" : Rate(fka).ToString("F1", c))} | {(ort is null ? "not measured" : Rate(ort).ToString("F1", c))} |");
                line.Append(fka is null || ort is null ? " – |" : " " + (ort.Milliseconds / fka.Milliseconds).ToString("F2", c) + "× |");
            }
            Result? plain = Best(w, "tensorprimitives", 1), reference = Best(w, "reference", 1);
            string libTorch = libTorchSource is null ? SummaryEntry.LibTorchMissing : string.Join(", ", results
                .Where(r => r.Workload == w && r.Impl == "libtorch").Select(r => r.Threads).Distinct().Order()
                .Select(t => $"{Rate(Best(w, "libtorch", t)!).ToString("F1", c)} ({t}T)"));
            line.Append(c, $" {(plain is null ? "–" : Rate(plain).ToString("F1", c))} | {(reference is null ? "not measured" : Rate(reference).ToString("F2", c))} | {(libTorch.Length == 0 ? "–" : libTorch)} | {others.GetValueOrDefault(w, "")} |");
            text.AppendLine(line.ToString());
        }
        text.AppendLine();
        text.AppendLine("ONNX Runtime's column is its best variant at that thread count (see below); fka / ORT > 1 means ours is faster.");
        text.AppendLine("\"other processes\": CPU time that processes other than this benchmark used while the workload ran, in % of one core (/proc/stat); above a few % the row was disturbed.");
        text.AppendLine();
        // Ours on one thread beside a measurement taken in its turns (the read probe; our float32 call for 16-bit K/V; our dense
        // call for causal workloads).
        void InTurnTable(Dictionary<Workload, double> inTurn, string title, string header, Func<Result, double, string> row)
        {
            var rows = results.Where(r => r.Impl == "fka" && r.Threads == 1 && inTurn.ContainsKey(r.Workload)).ToList();
            if (rows.Count == 0) return;
            text.AppendLine(title);
            text.AppendLine();
            text.AppendLine(header);
            text.AppendLine("|---|---:|---:|---:|");
            foreach (Result r in rows) text.AppendLine(c, $"| {r.Workload.Id} | {row(r, inTurn[r.Workload])} |");
            text.AppendLine();
        }
        InTurnTable(InTurnBandwidth,
            "Decode against the read probe taken in turns with it (one thread; the probe reads as many bytes as the call, so both see the same memory system):",
            "| workload | fka GB/s | read probe GB/s (in turns) | fka / probe |",
            (r, probe) => string.Create(c, $"{r.Gbps:F1} | {probe:F1} | {r.Gbps!.Value / probe * 100:F0}%"));
        InTurnTable(InTurnFloat32,
            "16-bit K/V against our float32 call on the same (widened) values, taken in turns (one thread):",
            "| workload | 16-bit ms | float32 ms (in turns) | speed-up (time) |",
            (r, float32) => string.Create(c, $"{r.Milliseconds:F3} | {float32:F3} | {float32 / r.Milliseconds:F2}×"));
        InTurnTable(InTurnDense,
            "Causal against our dense call on the same data, taken in turns (one thread; W2's target: causal ≤ 0.55 × dense in time):",
            "| workload | causal ms | dense ms (in turns) | causal / dense (time) |",
            (r, dense) => string.Create(c, $"{r.Milliseconds:F3} | {dense:F3} | {r.Milliseconds / dense:F3}"));

        if (threadCounts.Length == 2)
        {
            // Speed-up = time on 1 thread / time on N (each implementation's best variant); efficiency = speed-up / N.
            int n = threadCounts[1];
            string Scaling(Workload w, string impl)
            {
                Result? one = Best(w, impl, 1), many = Best(w, impl, n);
                if (one is null || many is null) return "– | –";
                double speedUp = one.Milliseconds / many.Milliseconds;
                return string.Create(c, $"{speedUp:F2}× | {speedUp / n * 100:F0}%");
            }
            text.AppendLine(c, $"## Thread scaling, 1 → {n} threads");
            text.AppendLine();
            text.AppendLine(c, $"Speed-up = time on 1 thread / time on {n}; parallel efficiency = speed-up / {n}. The FMA probe itself: {fmaPeak[n] / fmaPeak[1]:F2}×, read bandwidth {readBandwidth[n] / readBandwidth[1]:F2}×.");
            text.AppendLine();
            text.AppendLine("| workload | fka speed-up | fka efficiency | ONNX Runtime speed-up | ONNX Runtime efficiency | libtorch speed-up | libtorch efficiency |");
            text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (Workload w in results.Select(r => r.Workload).Distinct())
                text.AppendLine(c, $"| {w.Id} | {Scaling(w, "fka")} | {Scaling(w, "onnxruntime")} | {Scaling(w, "libtorch")} |");
            text.AppendLine();
        }

        text.AppendLine("## Every measurement");
        text.AppendLine();
        text.AppendLine("| workload | impl | variant | threads | median ms | runs | GFLOP/s | % FMA peak | GB/s | % read BW | max abs diff | bytes allocated/call |");
        text.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Result r in results)
        {
            string gbps = r.Gbps is double g ? g.ToString("F1", c) : "";
            string bw = r.Gbps is double g2 && readBandwidth.TryGetValue(r.Threads, out double limit) ? (g2 / limit * 100).ToString("F0", c) + "%" : "";
            string peak = fmaPeak.TryGetValue(r.Threads, out double fma) ? (r.Gflops / fma * 100).ToString("F0", c) + "%" : "";
            string diff = r.MaxAbsDiff is double x ? x.ToString("0.0e+0", c) + (r.Impl == "reference" ? " (fka vs this)" : " (vs fka)") : "";
            string allocated = r.Allocated < 0 ? "n/a" : r.Allocated.ToString(c);
            text.AppendLine(c, $"| {r.Workload.Id} | {r.Impl} | {r.Variant} | {r.Threads} | {r.Milliseconds:F3} | {r.Runs} | {r.Gflops:F1} | {peak} | {gbps} | {bw} | {diff} | {allocated} |");
        }
        return text.ToString();
    }
}
