extern alias Base;
extern alias Current;

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using CommunityToolkit.HighPerformance;

// In-process A/B of two builds of the library (see run.sh): for each shape, calls of the current build and of the base
// build in turns (which one goes first alternates), after a warm-up of at least 40 pairs and 2 s; prints the median time
// of each, the median of the per-pair time ratios, and whether the last outputs are bitwise the same.
internal static partial class Program
{
    private static int Main(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("usage: FastKernelAttention.AB SPEC[,SPEC…] [pairs]   SPEC: W1 W2 W3 W4 W4-bf16 W5-d16 W6-d16 W6-d64 W7 W7-causal, or H<h>x<hkv>L<l>[q<m>]d<d>[c][g][b]");
            return 2;
        }
        int pairs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 15;
        foreach (string name in args[0].Split(','))
        {
            var shape = Shape.Parse(name);
            var run = new Case(shape);
            var current = new List<double>();
            var based = new List<double>();
            var ratios = new List<double>();
            // Warm-up: at least 40 pairs and 2 s, so that both builds' tiered methods have been recompiled before the first
            // measured pair.
            var warmUp = Stopwatch.StartNew();
            for (int pair = 0; pair < 40 || warmUp.Elapsed.TotalSeconds < 2; pair++)
            {
                run.Current();
                run.Base();
            }
            for (int pair = 0; pair < pairs; pair++)
            {
                double a, b;
                if ((pair & 1) == 0) { a = run.Current(); b = run.Base(); }
                else { b = run.Base(); a = run.Current(); }
                current.Add(a);
                based.Add(b);
                ratios.Add(a / b);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: current {Median(current):F3} ms ({shape.Flops / Median(current) / 1e6:F1} GFLOP/s), base {Median(based):F3} ms, current/base (median of {pairs} pairs) {Median(ratios):F3}, outputs bitwise the same: {run.Same()}"));
        }
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(x => x).ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>H query heads over Hkv kv heads, <paramref name="Length"/> keys and <see cref="Queries"/> query rows (the
    /// same as the keys unless set: W4 decodes one row).</summary>
    private sealed record Shape(int Heads, int KeyValueHeads, int Length, int HeadDim, bool Causal, bool Gaussian)
    {
        public int Queries { get; init; } = Length;

        /// <summary>K and V stored as BFloat16 (the float inputs rounded), read by the 16-bit overload.</summary>
        public bool BFloat16KeyValues { get; init; }

        /// <summary>4·d·H per visible pair; causal rows are bottom-right aligned (row i sees keys ≤ i + n − m).</summary>
        public double Flops
        {
            get
            {
                double pairs = 0;
                for (int i = 0; i < Queries; i++) pairs += Causal ? Math.Clamp(i + Length - Queries + 1, 0, Length) : Length;
                return 4.0 * HeadDim * Heads * pairs;
            }
        }

        public static Shape Parse(string name) => name switch
        {
            "W1" => new(8, 8, 1024, 64, false, false),
            "W2" => new(8, 8, 1024, 64, true, false),
            "W3" => new(1, 1, 4096, 64, false, false),
            "W4" => new(32, 32, 8192, 128, false, false) { Queries = 1 },
            "W4-bf16" => new(32, 32, 8192, 128, false, false) { Queries = 1, BFloat16KeyValues = true },
            "W5-d16" => new(1, 1, 4096, 16, false, false),
            "W6-d16" => new(1, 1, 4096, 16, false, true),
            "W6-d64" => new(1, 1, 4096, 64, false, true),
            "W7" => new(32, 8, 1024, 128, false, false),
            "W7-causal" => new(32, 8, 1024, 128, true, false),
            _ => Custom(name),
        };

        private static Shape Custom(string name)
        {
            Match m = CustomPattern().Match(name);
            if (!m.Success) throw new ArgumentException($"unknown shape '{name}'", nameof(name));
            int Group(int i) => int.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
            var shape = new Shape(Group(1), Group(2), Group(3), Group(5), m.Groups[6].Value == "c", m.Groups[7].Value == "g")
            {
                BFloat16KeyValues = m.Groups[8].Value == "b",
            };
            return m.Groups[4].Success ? shape with { Queries = Group(4) } : shape;
        }
    }

    [GeneratedRegex(@"^H(\d+)x(\d+)L(\d+)(?:q(\d+))?d(\d+)(c?)(g?)(b?)$")]
    private static partial Regex CustomPattern();

    /// <summary>One shape's inputs (uniform in ±1.7, fixed seed) and an output buffer per build; one thread.</summary>
    private sealed class Case
    {
        private readonly Shape shape;
        private readonly float[] query, key, value, currentOutput, baseOutput;
        private readonly Current::FastKernelAttention.BFloat16[] currentKey = [], currentValue = [];
        private readonly Base::FastKernelAttention.BFloat16[] baseKey = [], baseValue = [];
        private readonly Current::FastKernelAttention.AttentionOptions currentOptions;
        private readonly Base::FastKernelAttention.AttentionOptions baseOptions;

        public Case(Shape s)
        {
            shape = s;
            var random = new Random(42);
            query = Fill(random, s.Queries * s.Heads * s.HeadDim);
            key = Fill(random, s.Length * s.KeyValueHeads * s.HeadDim);
            value = Fill(random, key.Length);
            if (s.BFloat16KeyValues)
            {
                currentKey = Array.ConvertAll(key, x => (Current::FastKernelAttention.BFloat16)x);
                currentValue = Array.ConvertAll(value, x => (Current::FastKernelAttention.BFloat16)x);
                baseKey = Array.ConvertAll(key, x => (Base::FastKernelAttention.BFloat16)x);
                baseValue = Array.ConvertAll(value, x => (Base::FastKernelAttention.BFloat16)x);
            }
            currentOutput = new float[query.Length];
            baseOutput = new float[query.Length];
            double bandwidth = s.Gaussian ? Math.Sqrt(s.HeadDim) : 0;
            currentOptions = new()
            {
                Kernel = s.Gaussian ? Current::FastKernelAttention.AttentionKernel.Gaussian : Current::FastKernelAttention.AttentionKernel.Dot,
                Bandwidth = bandwidth, Causal = s.Causal, MaxDegreeOfParallelism = 1,
            };
            baseOptions = new()
            {
                Kernel = s.Gaussian ? Base::FastKernelAttention.AttentionKernel.Gaussian : Base::FastKernelAttention.AttentionKernel.Dot,
                Bandwidth = bandwidth, Causal = s.Causal, MaxDegreeOfParallelism = 1,
            };
        }

        private static float[] Fill(Random random, int count)
        {
            var data = new float[count];
            for (int i = 0; i < count; i++) data[i] = (float)(random.NextDouble() * 2 - 1) * 1.7f;
            return data;
        }

        public double Current() => Time(shape.BFloat16KeyValues
            ? () => Current::FastKernelAttention.Attention.ForwardMultiHead(Rows(query, shape.Heads), Rows(currentKey, shape.KeyValueHeads),
                Rows(currentValue, shape.KeyValueHeads), Output(currentOutput), shape.Heads, shape.KeyValueHeads, currentOptions)
            : () => Current::FastKernelAttention.Attention.ForwardMultiHead(Rows(query, shape.Heads), Rows(key, shape.KeyValueHeads),
                Rows(value, shape.KeyValueHeads), Output(currentOutput), shape.Heads, shape.KeyValueHeads, currentOptions));

        public double Base() => Time(shape.BFloat16KeyValues
            ? () => Base::FastKernelAttention.Attention.ForwardMultiHead(Rows(query, shape.Heads), Rows(baseKey, shape.KeyValueHeads),
                Rows(baseValue, shape.KeyValueHeads), Output(baseOutput), shape.Heads, shape.KeyValueHeads, baseOptions)
            : () => Base::FastKernelAttention.Attention.ForwardMultiHead(Rows(query, shape.Heads), Rows(key, shape.KeyValueHeads),
                Rows(value, shape.KeyValueHeads), Output(baseOutput), shape.Heads, shape.KeyValueHeads, baseOptions));

        private static double Time(Action call)
        {
            long start = Stopwatch.GetTimestamp();
            call();
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        private Span2D<float> Output(float[] data) => new(data, shape.Queries, shape.Heads * shape.HeadDim);

        private ReadOnlySpan2D<TElement> Rows<TElement>(TElement[] data, int heads) => new(data, data.Length / (heads * shape.HeadDim), heads * shape.HeadDim);

        public bool Same() => currentOutput.AsSpan().SequenceEqual(baseOutput);
    }
}
