using System;
using BenchmarkDotNet.Attributes;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Reference;

namespace FastKernelAttention.Benchmarks.Suites;

/// <summary>BenchmarkDotNet suite: the fused kernel and the plain TensorPrimitives version against the naive double
/// reference (baseline), with allocations (MemoryDiagnoser). Compare ratios within one run only.</summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class AttentionBenchmarks
{
    private float[] query = [], key = [], value = [], output = [], scores = [], difference = [];
    private double[,] queryD = new double[0, 0], keyD = new double[0, 0], valueD = new double[0, 0];

    [Params(256, 1024)]
    public int Length { get; set; }

    [Params(AttentionKernel.Dot, AttentionKernel.Gaussian)]
    public AttentionKernel Kernel { get; set; }

    [Params(false, true)]
    public bool Causal { get; set; }

    public int HeadDim => 64;

    private double Bandwidth => Math.Sqrt(HeadDim);

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        int n = Length, d = HeadDim;
        query = QuickTable.Normal(random, n * d);
        key = QuickTable.Normal(random, n * d);
        value = QuickTable.Normal(random, n * d);
        output = new float[n * d];
        scores = new float[n];
        difference = new float[d];
        queryD = QuickTable.ToMatrix(query, n, d);
        keyD = QuickTable.ToMatrix(key, n, d);
        valueD = QuickTable.ToMatrix(value, n, d);
    }

    [Benchmark(Baseline = true)]
    public double[,] Reference() => NaiveAttention.Forward(queryD, keyD, valueD, new ReferenceOptions
    {
        Kernel = Kernel == AttentionKernel.Gaussian ? ReferenceKernel.Gaussian : ReferenceKernel.Dot,
        Bandwidth = Bandwidth,
        Causal = Causal,
    }).Output;

    [Benchmark]
    public void TensorPrimitives()
    {
        bool gaussian = Kernel == AttentionKernel.Gaussian;
        float factor = gaussian ? (float)(0.5 / (Bandwidth * Bandwidth)) : (float)(1 / Math.Sqrt(HeadDim));
        TensorPrimitivesAttention.Forward(query, key, value, output, Length, Length, HeadDim, HeadDim, gaussian, factor, Causal, scores, difference);
    }

    [Benchmark]
    public void Fused() => Attention.Forward(new ReadOnlySpan2D<float>(query, Length, HeadDim), new ReadOnlySpan2D<float>(key, Length, HeadDim),
        new ReadOnlySpan2D<float>(value, Length, HeadDim), new Span2D<float>(output, Length, HeadDim),
        new AttentionOptions { Kernel = Kernel, Bandwidth = Kernel == AttentionKernel.Gaussian ? Bandwidth : 0, Causal = Causal });

    [Benchmark]
    public void FusedTwoThreads() => Attention.Forward(new ReadOnlySpan2D<float>(query, Length, HeadDim), new ReadOnlySpan2D<float>(key, Length, HeadDim),
        new ReadOnlySpan2D<float>(value, Length, HeadDim), new Span2D<float>(output, Length, HeadDim),
        new AttentionOptions { Kernel = Kernel, Bandwidth = Kernel == AttentionKernel.Gaussian ? Bandwidth : 0, Causal = Causal, MaxDegreeOfParallelism = 2 });
}
