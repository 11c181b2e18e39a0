using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;

namespace FastKernelAttention.Benchmarks.Workloads;

/// <summary>One entry of bench/results/&lt;cpu&gt;/summary.json (and of libtorch-summary.json, which has the same fields):
/// <c>{ "workload", "impl", "threads", "ms", "gflops", "gbps" (decode only, else null), "variant", "max_abs_diff", "runs" }</c>.</summary>
/// <param name="Workload">The workload id (W1 … W7-causal).</param>
/// <param name="Impl">fka, onnxruntime, libtorch, tensorprimitives or reference.</param>
/// <param name="Threads">The thread count of the measurement.</param>
/// <param name="Milliseconds">Median ms per call ("ms").</param>
/// <param name="Gflops">GFLOP/s, 4·Lq·Lk·d·H (visible pairs when causal) / time.</param>
/// <param name="Gbps">GB/s of K and V read (decode only), else null.</param>
/// <param name="Variant">How the implementation expressed the workload.</param>
/// <param name="MaxAbsDiff">Max |difference| against fka (against the reference for the reference row), or null.</param>
/// <param name="Runs">Samples behind the median.</param>
public sealed record SummaryEntry(string Workload, string Impl, int Threads, double Milliseconds, double Gflops, double? Gbps,
    string Variant, double? MaxAbsDiff, int Runs)
{
    /// <summary>The file the libtorch engineer's runner writes beside summary.json.</summary>
    public const string LibTorchFileName = "libtorch-summary.json";

    /// <summary>What the table and the chart say where there is no <see cref="LibTorchFileName"/>.</summary>
    public const string LibTorchMissing = "not measured (run bench/FastKernelAttention.LibTorch/run.sh)";

    /// <summary>Reads a summary file (a JSON array of entries; unknown fields are ignored, missing numbers are null or 0).</summary>
    /// <param name="path">summary.json or libtorch-summary.json.</param>
    /// <exception cref="InvalidDataException">The file is not a JSON array of objects with the fields above.</exception>
    public static List<SummaryEntry> Read(string path)
    {
        var entries = new List<SummaryEntry>();
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            foreach (JsonElement item in document.RootElement.EnumerateArray())
            {
                entries.Add(new SummaryEntry(Text(item, "workload"), Text(item, "impl"), (int)(Number(item, "threads") ?? 1),
                    Number(item, "ms") ?? double.NaN, Number(item, "gflops") ?? double.NaN, Number(item, "gbps"), Text(item, "variant"),
                    Number(item, "max_abs_diff"), (int)(Number(item, "runs") ?? 0)));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a summary (a JSON array of {{ workload, impl, threads, ms, gflops, gbps, variant, max_abs_diff, runs }}): {e.Message}", e);
        }
        return entries;
    }

    /// <summary>The libtorch entries of <paramref name="folder"/>/<see cref="LibTorchFileName"/>, or null when that file
    /// does not exist.</summary>
    /// <param name="folder">bench/results/&lt;cpu&gt;.</param>
    public static List<SummaryEntry>? ReadLibTorch(string folder)
    {
        string path = Path.Combine(folder, LibTorchFileName);
        return File.Exists(path) ? Read(path).FindAll(e => e.Impl == "libtorch") : null;
    }

    /// <summary>The entries of <paramref name="summary"/> with every libtorch entry replaced by <paramref name="libTorch"/>
    /// (unchanged when it is null).</summary>
    /// <param name="summary">Entries of summary.json.</param>
    /// <param name="libTorch">From <see cref="ReadLibTorch"/>.</param>
    public static List<SummaryEntry> WithLibTorch(IEnumerable<SummaryEntry> summary, List<SummaryEntry>? libTorch)
    {
        var merged = new List<SummaryEntry>(summary);
        if (libTorch is not null)
        {
            merged.RemoveAll(e => e.Impl == "libtorch");
            merged.AddRange(libTorch);
        }
        return merged;
    }

    /// <summary>summary.json's text: the entries in order, indented, with ms, GFLOP/s and GB/s rounded as before.</summary>
    /// <param name="entries">The entries to write.</param>
    public static string Json(IEnumerable<SummaryEntry> entries)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (SummaryEntry e in entries)
            {
                json.WriteStartObject();
                json.WriteString("workload", e.Workload);
                json.WriteString("impl", e.Impl);
                json.WriteNumber("threads", e.Threads);
                json.WriteNumber("ms", Math.Round(e.Milliseconds, 4));
                json.WriteNumber("gflops", Math.Round(e.Gflops, 2));
                if (e.Gbps is double g) json.WriteNumber("gbps", Math.Round(g, 2));
                else json.WriteNull("gbps");
                json.WriteString("variant", e.Variant);
                if (e.MaxAbsDiff is double x && double.IsFinite(x)) json.WriteNumber("max_abs_diff", x);
                else json.WriteNull("max_abs_diff");
                json.WriteNumber("runs", e.Runs);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static string Text(JsonElement item, string name) =>
        item.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";

    private static double? Number(JsonElement item, string name) =>
        item.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;
}
