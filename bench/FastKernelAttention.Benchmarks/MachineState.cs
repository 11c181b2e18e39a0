using System;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;

namespace FastKernelAttention.Benchmarks;

/// <summary>What the results file records about the machine and the checkout: load average, CPU time used by other
/// processes, the commit. Shared by the workloads table and the libtorch baseline (which links this file).</summary>
internal static class MachineState
{
    /// <summary>Busy clock ticks of the whole machine (user, nice, system, irq, softirq, steal from /proc/stat) and of this
    /// process (utime + stime from /proc/self/stat); (−1, −1) where these files do not exist.</summary>
    public static (long Busy, long Self) CpuTicks()
    {
        try
        {
            string[] cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            foreach (int field in new[] { 1, 2, 3, 6, 7, 8 }) busy += long.Parse(cpu[field], CultureInfo.InvariantCulture);
            string stat = File.ReadAllText("/proc/self/stat");
            // Fields after the command name (in parentheses, may hold spaces): utime is field 14, stime 15.
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (busy, long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (-1, -1);
        }
    }

    /// <summary>CPU time that other processes used between two <see cref="CpuTicks"/> readings <paramref name="seconds"/>
    /// apart, in % of one core (USER_HZ = 100), or NaN where /proc could not be read.</summary>
    public static double OtherProcesses((long Busy, long Self) before, (long Busy, long Self) after, double seconds) =>
        before.Busy < 0 || seconds <= 0 ? double.NaN
            : Math.Max(0, after.Busy - before.Busy - (after.Self - before.Self)) / 100.0 / seconds * 100; // ≥ 0: the two files are read at slightly different times

    /// <summary>
    /// Waits (up to <paramref name="maxSeconds"/>) until other processes use under 5% of one core over half a second, and
    /// returns the seconds waited. <c>dotnet run</c>'s own host process works for several seconds after it starts the
    /// benchmark, which took 40% off the first workload's two-thread row on this 2-core VM.
    /// </summary>
    public static double WaitForQuiet(double maxSeconds = 30)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < maxSeconds)
        {
            var before = CpuTicks();
            double start = watch.Elapsed.TotalSeconds;
            System.Threading.Thread.Sleep(500);
            double other = OtherProcesses(before, CpuTicks(), watch.Elapsed.TotalSeconds - start);
            if (double.IsNaN(other) || other < 5) break;
        }
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg, or "unknown".</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    /// <summary>The checkout's short commit hash (git rev-parse in the binary's folder), else the COMMIT file beside a
    /// published binary, or "unknown".</summary>
    public static string Commit()
    {
        try
        {
            using Process? git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = AppContext.BaseDirectory,
            });
            if (git is not null)
            {
                string hash = git.StandardOutput.ReadToEnd().Trim();
                git.WaitForExit();
                if (git.ExitCode == 0 && hash.Length > 0) return hash;
            }
        }
        catch (Win32Exception)
        {
        }
        // A published benchmark outside a clone (bench/device/publish.sh writes the commit it was built from).
        string file = Path.Combine(AppContext.BaseDirectory, "COMMIT");
        return File.Exists(file) ? File.ReadAllText(file).Trim() : "unknown";
    }
}
