using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ScottPlot;
using SkiaSharp;

namespace FastKernelAttention.Benchmarks.Workloads;

/// <summary>
/// The workloads chart, bench/results/&lt;cpu&gt;/workloads.png (ScottPlot on SkiaSharp; the Linux native library comes from
/// SkiaSharp.NativeAssets.Linux.NoDependencies, which ScottPlot references, so no system package is needed): one row of
/// panels per thread count, grouped bars of GFLOP/s per workload (x) and implementation (fka, ONNX Runtime, libtorch,
/// TensorPrimitives; each its best variant, i.e. its lowest ms) on the left and the decode workload W4 as GB/s of K and V
/// read in a narrow panel on the right. Written by <c>--workloads --save</c>; <c>--chart [summary.json]</c> redraws it from a
/// saved summary (libtorch's entries replaced by libtorch-summary.json's when that file exists) without measuring.
/// </summary>
public static class WorkloadChart
{
    /// <summary>The chart's file name beside summary.json.</summary>
    public const string FileName = "workloads.png";

    private const int Width = 1800, RowHeight = 560, DecodeWidth = 380;

    /// <summary>The implementations drawn, in bar order, with their legend names and colours (reference is left out: ≈ 1 GFLOP/s).</summary>
    private static readonly (string Impl, string Label, string Color)[] Implementations =
    [
        ("fka", "fka (ours)", "#1f77b4"),
        ("onnxruntime", "ONNX Runtime", "#ff7f0e"),
        ("libtorch", "libtorch", "#2ca02c"),
        ("tensorprimitives", "TensorPrimitives", "#9467bd"),
    ];

    /// <summary><c>--chart [path/summary.json]</c>: redraws workloads.png beside the summary (default: this machine's
    /// bench/results/&lt;cpu&gt;/summary.json), merging libtorch-summary.json from the same folder when it exists.</summary>
    /// <param name="summaryPath">The summary to draw, or null for the default.</param>
    /// <returns>0, or 1 when the summary does not exist.</returns>
    public static int Run(string? summaryPath)
    {
        string path = summaryPath ?? Path.Combine(QuickTable.ResultsFolder(), "summary.json");
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"{path} does not exist: run --workloads --save first.");
            return 1;
        }
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        List<SummaryEntry>? libTorch = SummaryEntry.ReadLibTorch(folder);
        List<SummaryEntry> entries = SummaryEntry.WithLibTorch(SummaryEntry.Read(path), libTorch);
        string chart = Path.Combine(folder, FileName);
        Write(entries, chart, Caption(folder));
        Console.WriteLine($"saved {chart} from {path}" + (libTorch is null ? "" : $" and {SummaryEntry.LibTorchFileName}"));
        return 0;
    }

    /// <summary>The caption under the panel titles: the results folder and what the bars are.</summary>
    /// <param name="folder">bench/results/&lt;cpu&gt;.</param>
    public static string Caption(string folder) =>
        $"bench/results/{Path.GetFileName(folder)}/summary.json: float32 forward, batch 1; each bar the best variant (lowest median ms)";

    /// <summary>Draws the chart of <paramref name="entries"/> into <paramref name="path"/> (PNG).</summary>
    /// <param name="entries">summary.json's entries (other implementations, e.g. the reference, are ignored).</param>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="caption">A line under each panel's title.</param>
    public static void Write(IReadOnlyList<SummaryEntry> entries, string path, string caption)
    {
        var drawn = entries.Where(e => Implementations.Any(i => i.Impl == e.Impl) && e.Milliseconds > 0).ToList();
        int[] threadCounts = drawn.Select(e => e.Threads).Distinct().Order().ToArray();
        if (threadCounts.Length == 0) threadCounts = [1];
        // Workloads in summary order (W1 … W7-causal); decode ones (GB/s set) go to the narrow panel.
        string[] workloads = drawn.Select(e => e.Workload).Distinct().ToArray();
        string[] compute = workloads.Where(w => !drawn.Any(e => e.Workload == w && e.Gbps is not null)).ToArray();
        string[] decode = workloads.Except(compute).ToArray();
        // One bar slot per implementation present anywhere, so a bar keeps its place across panels.
        var slots = Implementations.Where(i => drawn.Any(e => e.Impl == i.Impl)).ToArray();

        using var surface = SKSurface.Create(new SKImageInfo(Width, RowHeight * threadCounts.Length));
        surface.Canvas.Clear(SKColors.White);
        for (int row = 0; row < threadCounts.Length; row++)
        {
            int threads = threadCounts[row];
            string threadText = threads == 1 ? "1 thread" : $"{threads} threads";
            int top = row * RowHeight;
            Plot flops = Panel(drawn, compute, slots, threads, gbps: false, $"{threadText}: GFLOP/s (4·Lq·Lk·d·H / median time; higher is better)", caption);
            Draw(surface.Canvas, flops, 0, top, decode.Length > 0 ? Width - DecodeWidth : Width, RowHeight);
            if (decode.Length > 0)
            {
                Plot bandwidth = Panel(drawn, decode, slots, threads, gbps: true, $"decode, {threadText}: GB/s", "K + V bytes read / time");
                Draw(surface.Canvas, bandwidth, Width - DecodeWidth, top, DecodeWidth, RowHeight);
            }
        }
        using SKImage image = surface.Snapshot();
        using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
        using FileStream file = File.Create(path);
        png.SaveTo(file);
    }

    /// <summary>Renders <paramref name="plot"/> on its own surface (a plot clears the canvas it renders on) and draws it at
    /// (<paramref name="left"/>, <paramref name="top"/>).</summary>
    private static void Draw(SKCanvas canvas, Plot plot, int left, int top, int width, int height)
    {
        using var panel = SKSurface.Create(new SKImageInfo(width, height));
        plot.Render(panel);
        using SKImage image = panel.Snapshot();
        canvas.DrawImage(image, left, top);
    }

    private static Plot Panel(List<SummaryEntry> entries, string[] workloads, (string Impl, string Label, string Color)[] slots, int threads,
        bool gbps, string title, string subtitle)
    {
        var plot = new Plot();
        plot.Font.Set(Fonts.Sans);
        plot.Title($"{title}\n{subtitle}", size: gbps ? 13 : 15);
        double groupWidth = 0.84, barWidth = groupWidth / Math.Max(1, slots.Length);
        var bars = new List<Bar>();
        var legend = new List<LegendItem>();
        double highest = 0;
        for (int s = 0; s < slots.Length; s++)
        {
            var color = Color.FromHex(slots[s].Color);
            bool any = false;
            for (int w = 0; w < workloads.Length; w++)
            {
                SummaryEntry? best = entries.Where(e => e.Workload == workloads[w] && e.Impl == slots[s].Impl && e.Threads == threads)
                    .MinBy(e => e.Milliseconds);
                if (best is null) continue;
                double value = gbps ? best.Gbps ?? 0 : best.Gflops;
                highest = Math.Max(highest, value);
                any = true;
                bars.Add(new Bar
                {
                    Position = w - groupWidth / 2 + (s + 0.5) * barWidth,
                    Value = value,
                    Size = barWidth * 0.92,
                    FillColor = color,
                    LineWidth = 0,
                    Label = value >= 100 ? value.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)
                        : value.ToString("F1", System.Globalization.CultureInfo.InvariantCulture),
                });
            }
            if (!gbps)
                legend.Add(new LegendItem { LabelText = slots[s].Label + (any ? "" : $" (not measured on {threads} thread{(threads == 1 ? "" : "s")})"), FillColor = color });
        }
        var plottable = plot.Add.Bars(bars);
        plottable.ValueLabelStyle.FontSize = gbps ? 12 : 11;
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, workloads.Length).Select(i => (double)i).ToArray(), workloads);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.Label.Text = gbps ? "GB/s" : "GFLOP/s";
        plot.Axes.Left.Label.FontSize = 14;
        plot.Axes.SetLimits(-0.6, workloads.Length - 0.4, 0, Math.Max(1, highest) * 1.12);
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        if (!gbps)
        {
            if (!legend.Any(l => l.LabelText!.StartsWith("libtorch", StringComparison.Ordinal)))
                legend.Add(new LegendItem { LabelText = "libtorch: " + SummaryEntry.LibTorchMissing, FillColor = Colors.Transparent });
            // Outside the data area, under the workload names, so that no bar is hidden.
            plot.Legend.ManualItems.AddRange(legend);
            plot.Legend.Orientation = Orientation.Horizontal;
            plot.Legend.FontSize = 13;
            plot.ShowLegend(Edge.Bottom);
        }
        return plot;
    }
}
