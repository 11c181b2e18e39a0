using System;
using System.Globalization;
using System.Linq;

namespace FastKernelAttention.LibTorch;

/// <summary>Command line of the libtorch baseline: <c>[--threads 1,2] [--only W1,W4] [--no-save]</c>. Run it through
/// run.sh, which builds, patches libLibTorchSharp.so (setup.sh) and then starts it.</summary>
public static class Program
{
    /// <summary>Parses the options and runs <see cref="LibTorchTable.Run"/>; returns its exit code, or 1 for bad options.</summary>
    /// <param name="args"><c>--threads</c>: comma-separated thread counts (default 1,2); <c>--only</c>: workload id prefixes;
    /// <c>--no-save</c>: print only, write no result files.</param>
    public static int Main(string[] args)
    {
        int[] threads = [1, 2];
        string? only = null;
        bool save = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads" when i + 1 < args.Length:
                    string[] counts = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries);
                    if (counts.Length == 0 || !counts.All(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1))
                        return Usage($"--threads takes positive integers separated by commas, got '{args[i]}'");
                    threads = counts.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                    break;
                case "--only" when i + 1 < args.Length:
                    only = args[++i];
                    break;
                case "--no-save":
                    save = false;
                    break;
                default:
                    return Usage($"unknown or incomplete option '{args[i]}'");
            }
        }
        return LibTorchTable.Run(threads, only, save);
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"error: {problem}");
        Console.Error.WriteLine("usage: FastKernelAttention.LibTorch [--threads 1,2] [--only W1,W4] [--no-save]");
        return 1;
    }
}
