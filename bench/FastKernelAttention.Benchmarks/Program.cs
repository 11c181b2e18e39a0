using System;
using System.Globalization;
using BenchmarkDotNet.Running;

namespace FastKernelAttention.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/FastKernelAttention.Benchmarks</c>: the quick table, then the workloads W1–W7 on
/// one thread beside ONNX Runtime and libtorch's last saved run (about a minute in all). Options: <c>--m N --n N --d N
/// --threads N --save</c> (writes bench/results/&lt;cpu&gt;/&lt;date&gt;-quick.md), <c>--no-workloads</c> (the quick table only).
/// <c>-- --bdn [BenchmarkDotNet arguments]</c>: the BenchmarkDotNet suites (e.g. <c>--bdn --filter '*'</c>).
/// <c>-- --workloads [--threads N] [--save] [--only W1,W4] [--no-reference]</c>: issue 5's workloads W1–W7 against ONNX Runtime
/// (minutes; --save writes bench/results/&lt;cpu&gt;/summary.json, &lt;date&gt;-workloads.md and workloads.png).
/// <c>-- --chart [path/summary.json]</c>: redraws workloads.png from a saved summary without measuring.
/// <c>-- --decode-patterns</c>: one core's read rate of W4's K and V in the orders a decode kernel can use, and our decode call
/// with K and V in L2, L3 and memory (<see cref="DecodePatterns"/>).
/// <c>-- --results-folder</c>: prints this machine's bench/results/&lt;cpu&gt; folder (for scripts that write beside it:
/// bench/device/run.sh).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (Array.IndexOf(args, "--bdn") >= 0)
        {
            string[] rest = Array.FindAll(args, a => a != "--bdn");
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest);
            return 0;
        }
        if (Array.IndexOf(args, "--decode-patterns") >= 0) return DecodePatterns.Run();
        if (Array.IndexOf(args, "--results-folder") >= 0)
        {
            Console.WriteLine(QuickTable.ResultsFolder());
            return 0;
        }
        int chart = Array.IndexOf(args, "--chart");
        if (chart >= 0)
            return Workloads.WorkloadChart.Run(chart + 1 < args.Length && !args[chart + 1].StartsWith("--", StringComparison.Ordinal) ? args[chart + 1] : null);
        if (Array.IndexOf(args, "--workloads") >= 0)
        {
            int index = Array.IndexOf(args, "--only");
            return Workloads.WorkloadTable.Run(Option(args, "--threads", 2), Array.IndexOf(args, "--save") >= 0,
                index >= 0 && index + 1 < args.Length ? args[index + 1] : null, Array.IndexOf(args, "--no-reference") < 0);
        }
        int m = Option(args, "--m", 1024), n = Option(args, "--n", m), d = Option(args, "--d", 64), threads = Option(args, "--threads", 2);
        int status = QuickTable.Run(m, n, d, threads, Array.IndexOf(args, "--save") >= 0);
        if (status != 0 || Array.IndexOf(args, "--no-workloads") >= 0) return status;
        // The workloads W1–W7 on one thread beside ONNX Runtime (samples in turns) and libtorch's last saved run; the full
        // table (two threads, TensorPrimitives, the reference, summary.json and the chart) is --workloads --save.
        Console.WriteLine();
        Console.WriteLine("Workloads W1–W7, one thread (the full table with two threads, TensorPrimitives and the reference: --workloads):");
        return Workloads.WorkloadTable.Run(threads: 1, save: false, only: null, withReference: false, withTensorPrimitives: false);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
