using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using CommunityToolkit.HighPerformance;
using FastKernelAttention;
using FastKernelAttention.Estimators;

// Reads a CSV written by bench/statsmodels/compare_nw.py (header x1..xd,y; one sample per line), selects per-dimension
// Nadaraya–Watson bandwidths by leave-one-out CV and prints "key: value" lines the script parses. Timing: warm up for at
// least 1 s (tiered compilation, STYLE §3), then the median of the timed runs.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: FastKernelAttention.NwCompare <data.csv> [timedRuns]");
    return 2;
}
int timedRuns = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 21;
string[] lines = File.ReadAllLines(args[0]).Where(l => l.Length > 0).ToArray();
int d = lines[0].Split(',').Length - 1;
int n = lines.Length - 1;
var x = new double[n, d];
var y = new double[n, 1];
for (int i = 0; i < n; i++)
{
    string[] fields = lines[i + 1].Split(',');
    for (int k = 0; k < d; k++) x[i, k] = double.Parse(fields[k], CultureInfo.InvariantCulture);
    y[i, 0] = double.Parse(fields[d], CultureInfo.InvariantCulture);
}

var bandwidths = new double[d];
double cv = 0;
var clock = Stopwatch.StartNew();
int warmups = 0;
while (clock.Elapsed.TotalSeconds < 1.0 || warmups < 3)
{
    cv = NadarayaWatson.SelectBandwidth<double>(x, y, bandwidths);
    warmups++;
}
var times = new List<double>();
for (int run = 0; run < timedRuns; run++)
{
    long start = Stopwatch.GetTimestamp();
    cv = NadarayaWatson.SelectBandwidth<double>(x, y, bandwidths);
    times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
}
times.Sort();
double median = times[times.Count / 2];
double check = NadarayaWatson.CrossValidationScore<double>(x, y, bandwidths);
Console.WriteLine(FormattableString.Invariant($"n: {n}"));
Console.WriteLine(FormattableString.Invariant($"d: {d}"));
Console.WriteLine(FormattableString.Invariant($"isa: {Attention.ActiveIsa}"));
Console.WriteLine("bandwidths: " + string.Join(" ", bandwidths.Select(b => b.ToString("R", CultureInfo.InvariantCulture))));
Console.WriteLine(FormattableString.Invariant($"cv: {cv:R}"));
Console.WriteLine(FormattableString.Invariant($"cv_check: {check:R}"));
Console.WriteLine(FormattableString.Invariant($"ms: {median:F4}"));
Console.WriteLine(FormattableString.Invariant($"ms_min: {times[0]:F4}"));
Console.WriteLine(FormattableString.Invariant($"runs: {timedRuns} after {warmups} warm-up runs"));
return 0;
