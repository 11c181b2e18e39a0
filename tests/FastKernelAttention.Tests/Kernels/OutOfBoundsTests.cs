using System;
using System.Diagnostics;
using System.IO;
using FastKernelAttention.Dispatch;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>
/// No out-of-bounds access on any ISA path: the PathProbe console runs ~1,300 calls (shapes 1..67, float and double, both
/// kernels, causal, sinks, pitches, multi-head) with every input and output ending exactly at a no-access page, then
/// starting exactly after one; a stray access kills the child process with SIGSEGV. A self-test proves the guard fires.
/// </summary>
public class OutOfBoundsTests
{
    public static TheoryData<string> Paths() => new() { "Avx512", "Avx2", "Vector128", "Scalar" };

    [Theory]
    [MemberData(nameof(Paths))]
    public void NoAccessOutsideTheArrays(string isa)
    {
        if (!OperatingSystem.IsLinux()) return; // the guard pages use mmap/mprotect
        var expected = IsaDispatch.BestUpTo(Enum.Parse<IsaPath>(isa)); // a path this CPU lacks falls back, and says so
        var (exitCode, output) = RunProbe("oob", isa);
        Assert.True(exitCode == 0, $"probe on {isa} exited with {exitCode} (an access violation is a fault):\n{output}");
        Assert.Contains($"ISA path: {expected}", output, StringComparison.Ordinal);
        Assert.Contains("0 faults", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TheGuardPageFaults()
    {
        if (!OperatingSystem.IsLinux()) return;
        var (exitCode, output) = RunProbe("selftest", "Scalar");
        Assert.True(exitCode != 0, $"reading past a guarded buffer must kill the probe:\n{output}");
    }

    private static (int ExitCode, string Output) RunProbe(string mode, string isa)
    {
        string probe = ProbePath();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(probe);
        start.ArgumentList.Add(mode);
        start.Environment["FKA_FORCE_ISA"] = isa;
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The probe built beside this test assembly's configuration: tests/FastKernelAttention.PathProbe/bin/&lt;config&gt;/net10.0.</summary>
    private static string ProbePath()
    {
        string here = AppContext.BaseDirectory;
        string configuration = new DirectoryInfo(here.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name; // bin/<configuration>/net10.0
        string directory = here;
        while (!File.Exists(Path.Combine(directory, "FastKernelAttention.sln")))
            directory = Path.GetDirectoryName(directory) ?? throw new FileNotFoundException("repository root not found from " + here);
        string probe = Path.Combine(directory, "tests", "FastKernelAttention.PathProbe", "bin", configuration, "net10.0", "FastKernelAttention.PathProbe.dll");
        if (!File.Exists(probe)) throw new FileNotFoundException("build the PathProbe project first", probe);
        return probe;
    }
}
