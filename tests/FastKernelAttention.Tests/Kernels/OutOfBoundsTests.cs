using System;
using System.Diagnostics;
using System.IO;
using FastKernelAttention.Dispatch;
using Xunit;
using Xunit.Abstractions;

namespace FastKernelAttention.Tests.Kernels;

/// <summary>
/// No out-of-bounds access on any ISA path. The PathProbe console (tests/FastKernelAttention.PathProbe) runs about 20,000
/// calls (m, n, d, dv in 1..67, float and double, both kernels, causal, sinks, log-sum-exp, caller workspace, threads, row
/// pitches, single- and multi-head) with every input, output and workspace ending exactly at a no-access page, then starting
/// exactly after one. A stray access kills the child process (SIGSEGV), which the test sees as a non-zero exit; the probe
/// also checks that output row padding is untouched and that NaN in input row padding never reaches the output.
/// The self-tests prove the guard fires.
/// </summary>
public class OutOfBoundsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public static TheoryData<string> Paths() => new() { "Avx512", "Avx2", "Vector128", "Scalar" };

    public static TheoryData<string> GuardKinds() => new() { "end", "start", "readonly" };

    [Theory]
    [MemberData(nameof(Paths))]
    public void NoAccessOutsideTheArrays(string isa)
    {
        IsaPath requested = Enum.Parse<IsaPath>(isa);
        IsaPath expected = IsaDispatch.BestUpTo(requested); // a path this CPU lacks falls back to the best below it
        if (expected != requested)
        {
            // xunit 2 cannot skip at run time: the fallback path is checked instead, and said so.
            output.WriteLine($"NOTE: {requested} is not supported on this machine; the probe runs the fallback path {expected}.");
        }

        var (exitCode, text) = RunProbe(isa, "oob");
        output.WriteLine(text);
        Assert.True(exitCode == 0, $"probe with FKA_FORCE_ISA={isa} exited with {exitCode} (an access violation kills it):\n{text}");
        Assert.Contains($"ISA path: {expected}", text, StringComparison.Ordinal);
        Assert.Matches(@"OOB probe: [1-9][0-9]* calls, 0 faults", text);
    }

    [Theory]
    [MemberData(nameof(GuardKinds))]
    public void TheGuardFaults(string kind)
    {
        var (exitCode, text) = RunProbe("Scalar", "selftest", kind);
        output.WriteLine($"exit code {exitCode}\n{text}");
        Assert.Contains("selftest: ", text, StringComparison.Ordinal); // it reached the stray access
        Assert.DoesNotContain("did not fault", text, StringComparison.Ordinal);
        Assert.True(exitCode != 0, $"a stray access ({kind}) must kill the probe:\n{text}");
    }

    private static (int ExitCode, string Output) RunProbe(string isa, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(), // a crash dump, if the system writes one, lands outside the repository
        };
        start.ArgumentList.Add(ProbePath());
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["FKA_FORCE_ISA"] = isa;
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        start.Environment["DOTNET_EnableCrashReport"] = "0";

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the probe");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"the probe ({string.Join(' ', arguments)}, FKA_FORCE_ISA={isa}) did not finish within {Timeout}");
        }
        process.WaitForExit(); // drains the redirected streams
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The dotnet host running this test (DOTNET_HOST_PATH is set by the SDK), else the one on PATH.</summary>
    private static string DotnetHost()
    {
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host)) return host;
        string? self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase)) return self;
        return "dotnet";
    }

    /// <summary>
    /// The probe built in the same configuration as this assembly (bin/&lt;configuration&gt;/net10.0/):
    /// &lt;repository root&gt;/tests/FastKernelAttention.PathProbe/bin/&lt;configuration&gt;/net10.0/FastKernelAttention.PathProbe.dll.
    /// The test project references the probe project (ReferenceOutputAssembly="false"), so building the tests builds it.
    /// </summary>
    private static string ProbePath()
    {
        const string Name = "FastKernelAttention.PathProbe";
        string here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        string framework = Path.GetFileName(here);
        string configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        string? directory = here;
        while (directory is not null && !File.Exists(Path.Combine(directory, "FastKernelAttention.sln")))
            directory = Path.GetDirectoryName(directory);
        if (directory is null) throw new DirectoryNotFoundException($"repository root (FastKernelAttention.sln) not found above {here}");
        string probe = Path.Combine(directory, "tests", Name, "bin", configuration, framework, Name + ".dll");
        if (!File.Exists(probe)) throw new FileNotFoundException($"build {Name} ({configuration}) first", probe);
        return probe;
    }
}
