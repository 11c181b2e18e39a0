using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// Multi-head attention as an ensemble of Nadaraya–Watson estimators (MATH §9, after MHNW): head h projects the queries and
/// the shared samples with its own W_q^h, W_k^h ∈ R^{d×d_k} (and optionally the responses with W_v^h ∈ R^{p×d_v}) and gives
/// O^h_i = Σ_j softmax_j(s(x_i W_q^h, X_j W_k^h))·(Y_j W_v^h); the heads are combined by the mean or by log-sum-exp weights
/// (<see cref="EnsembleCombination"/>). Also: the Head Diversity Index of the key projections and the bias–variance–covariance
/// decomposition of an ensemble's error.
/// </summary>
/// <remarks>
/// <para>Element type T is <see cref="float"/> or <see cref="double"/>; any other type throws <see cref="NotSupportedException"/>.</para>
/// <para>Projections are stacked head by head: a (H·d) × d_k matrix whose rows h·d .. h·d + d − 1 are W^h (row-major,
/// x·W^h). Projected rows are computed in double and rounded to T once.</para>
/// <para>No managed memory is allocated: scratch comes from the caller's workspace (<see cref="GetWorkspaceSize{T}"/>,
/// <see cref="GetHeadDiversityWorkspaceSize"/>) or, in the overloads without one, from native memory freed before the call
/// returns.</para>
/// </remarks>
public static class MultiHeadEnsemble
{
    /// <summary>
    /// The ensemble estimate: per head O^h = attention(x W_q^h, X W_k^h, Y W_v^h) under <paramref name="options"/> (kernel,
    /// scale or bandwidth, mask, sink, threads), then O = (1/H)·Σ_h O^h or O_i = Σ_h softmax_h(LSE_hi)·O^h_i.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="queries">x, m × d (d ≥ 1).</param>
    /// <param name="samples">X, n × d: shared by every head (n = 0 makes every row empty: O = 0, LSE = −∞).</param>
    /// <param name="responses">Y, n × p (p ≥ 1).</param>
    /// <param name="queryProjections">W_q stacked, (H·d) × d_k (d_k ≥ 1).</param>
    /// <param name="keyProjections">W_k stacked, (H·d) × d_k.</param>
    /// <param name="valueProjections">Empty (W_v = I, d_v = p), or W_v stacked, (H·p) × d_v (d_v ≥ 1).</param>
    /// <param name="headCount">H ≥ 1.</param>
    /// <param name="options">The attention options of every head (validated as in <see cref="Attention"/>; names <c>options</c>).</param>
    /// <param name="combination">Mean or log-sum-exp weights.</param>
    /// <param name="output">O, m × d_v; must not overlap an input.</param>
    /// <param name="headOutputs">Empty, or m × (H·d_v): the per-head estimates, head h in columns h·d_v .. h·d_v + d_v − 1.</param>
    /// <param name="headLogSumExp">Empty, or ≥ H·m elements: LSE of head h, row i at h·m + i (for the Gaussian kernel the
    /// true value, MATH §2).</param>
    /// <remarks>A NaN in a query makes only that row NaN (every head). With <see cref="EnsembleCombination.LogSumExpWeighted"/>,
    /// a row whose heads all have LSE = −∞ gives 0.</remarks>
    /// <exception cref="ArgumentException">A shape does not match, H &lt; 1, an output overlaps an input, or an option is
    /// invalid; the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Predict<T>(ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan2D<T> queryProjections, ReadOnlySpan2D<T> keyProjections, ReadOnlySpan2D<T> valueProjections, int headCount,
        in AttentionOptions options, EnsembleCombination combination, Span2D<T> output, Span2D<T> headOutputs = default,
        Span<T> headLogSumExp = default)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PredictCore(IsaDispatch.Selected, queries, samples, responses, queryProjections, keyProjections, valueProjections,
            headCount, in options, combination, output, headOutputs, headLogSumExp, default, workspaceGiven: false);

    /// <summary>The ensemble estimate with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes (any
    /// alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Predict{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, int, in AttentionOptions, EnsembleCombination, Span2D{T}, Span2D{T}, Span{T})"/>
    /// <param name="workspace">Scratch memory, at least GetWorkspaceSize&lt;T&gt;(m, n, d, p, H, d_k, d_v, options) bytes; it must
    /// not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Predict<T>(ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan2D<T> queryProjections, ReadOnlySpan2D<T> keyProjections, ReadOnlySpan2D<T> valueProjections, int headCount,
        in AttentionOptions options, EnsembleCombination combination, Span2D<T> output, Span2D<T> headOutputs,
        Span<T> headLogSumExp, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PredictCore(IsaDispatch.Selected, queries, samples, responses, queryProjections, keyProjections, valueProjections,
            headCount, in options, combination, output, headOutputs, headLogSumExp, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace the ensemble estimate needs: one head's projected queries (m·d_k), keys (n·d_k) and values
    /// (n·d_v when value projections are given), the per-head outputs (m·H·d_v) and LSE (H·m), and one head's attention
    /// workspace.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="queryCount">m ≥ 0.</param>
    /// <param name="sampleCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="responseCount">p ≥ 1.</param>
    /// <param name="headCount">H ≥ 1.</param>
    /// <param name="keyDimension">d_k ≥ 1.</param>
    /// <param name="valueDimension">d_v ≥ 1 with value projections; 0 without (then d_v = p).</param>
    /// <param name="options">The options of the call (the kernel and the degree of parallelism matter).</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="ArgumentException">A count or option is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetWorkspaceSize<T>(int queryCount, int sampleCount, int dimension, int responseCount, int headCount,
        int keyDimension, int valueDimension, in AttentionOptions options)
        where T : unmanaged
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(MultiHeadEnsemble));
        ArgumentOutOfRangeException.ThrowIfNegative(queryCount);
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(responseCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(headCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(keyDimension, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(valueDimension);
        Kernels.AttentionDriver.ValidateOptions(in options, ReadOnlySpan<T>.Empty);
        var layout = new PredictLayout(Unsafe.SizeOf<T>(), queryCount, sampleCount, headCount, keyDimension,
            valueDimension == 0 ? responseCount : valueDimension, valueDimension != 0, in options);
        return EstimatorScratch.Checked(layout.TotalBytes, nameof(sampleCount));
    }

    /// <summary>The ensemble estimate on a given ISA path (tests pass each supported path).</summary>
    internal static unsafe void PredictCore<T>(IsaPath path, ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples,
        ReadOnlySpan2D<T> responses, ReadOnlySpan2D<T> queryProjections, ReadOnlySpan2D<T> keyProjections,
        ReadOnlySpan2D<T> valueProjections, int headCount, in AttentionOptions options, EnsembleCombination combination,
        Span2D<T> output, Span2D<T> headOutputs, Span<T> headLogSumExp, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(MultiHeadEnsemble));
        int m = queries.Height, d = queries.Width, n = samples.Height, p = responses.Width;
        if (headCount < 1) ThrowHelper.ThrowOutOfRange(nameof(headCount), headCount, "At least one head.");
        if (d < 1) ThrowHelper.ThrowShape(nameof(queries), "queryCount × d with d ≥ 1", m, d);
        if (samples.Width != d) ThrowHelper.ThrowShape(nameof(samples), $"sampleCount × {d}", n, samples.Width);
        if (responses.Height != n || p < 1) ThrowHelper.ThrowShape(nameof(responses), $"{n} × p with p ≥ 1", responses.Height, p);
        int dk = queryProjections.Width;
        if ((long)queryProjections.Height != (long)headCount * d || dk < 1)
            ThrowHelper.ThrowShape(nameof(queryProjections), $"{(long)headCount * d} × d_k with d_k ≥ 1 (H·d rows)", queryProjections.Height, dk);
        if (keyProjections.Height != queryProjections.Height || keyProjections.Width != dk)
            ThrowHelper.ThrowShape(nameof(keyProjections), $"{queryProjections.Height} × {dk} (as queryProjections)", keyProjections.Height, keyProjections.Width);
        bool projectValues = valueProjections.Height != 0 || valueProjections.Width != 0;
        int dv = projectValues ? valueProjections.Width : p;
        if (projectValues && ((long)valueProjections.Height != (long)headCount * p || dv < 1))
            ThrowHelper.ThrowShape(nameof(valueProjections), $"empty or {(long)headCount * p} × d_v with d_v ≥ 1 (H·p rows)", valueProjections.Height, dv);
        if (output.Height != m || output.Width != dv) ThrowHelper.ThrowShape(nameof(output), $"{m} × {dv}", output.Height, output.Width);
        bool givenHeads = headOutputs.Height != 0 || headOutputs.Width != 0;
        if (givenHeads && (headOutputs.Height != m || (long)headOutputs.Width != (long)headCount * dv))
            ThrowHelper.ThrowShape(nameof(headOutputs), $"empty or {m} × {(long)headCount * dv}", headOutputs.Height, headOutputs.Width);
        if (!headLogSumExp.IsEmpty && headLogSumExp.Length < (long)headCount * m)
            ThrowHelper.ThrowLength(nameof(headLogSumExp), $"empty or at least {(long)headCount * m}", headLogSumExp.Length);
        if (combination != EnsembleCombination.Mean && combination != EnsembleCombination.LogSumExpWeighted)
            ThrowHelper.ThrowOutOfRange(nameof(combination), combination, "Mean or LogSumExpWeighted.");
        Kernels.AttentionDriver.ValidateOptions(in options, ReadOnlySpan<T>.Empty);
        var layout = new PredictLayout(sizeof(T), m, n, headCount, dk, dv, projectValues, in options);
        if (workspaceGiven && workspace.Length < layout.TotalBytes) ThrowHelper.ThrowWorkspace(nameof(workspace), layout.TotalBytes, workspace.Length);
        if (m == 0) return;

        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(layout.TotalBytes);
                byte* aligned = EstimatorScratch.Align(buffer);
                var projectedQueries = new Span2D<T>(aligned + layout.Queries, m, dk, 0);
                var projectedKeys = new Span2D<T>(aligned + layout.Keys, n, dk, 0);
                var projectedValues = projectValues ? new Span2D<T>(aligned + layout.Values, n, dv, 0) : default;
                Span2D<T> heads = givenHeads ? headOutputs : new Span2D<T>(aligned + layout.HeadOutputs, m, headCount * dv, 0);
                Span<T> lse = new Span<T>(aligned + layout.LogSumExp, headCount * m);
                var attentionWorkspace = new Span<byte>(aligned + layout.Attention, (int)(buffer + layout.TotalBytes - (aligned + layout.Attention)));

                for (int h = 0; h < headCount; h++)
                {
                    Project(queries, queryProjections.Slice(h * d, 0, d, dk), projectedQueries);
                    Project(samples, keyProjections.Slice(h * d, 0, d, dk), projectedKeys);
                    ReadOnlySpan2D<T> values = responses;
                    if (projectValues)
                    {
                        Project(responses, valueProjections.Slice(h * p, 0, p, dv), projectedValues);
                        values = projectedValues;
                    }
                    Attention.ForwardCore(path, projectedQueries, projectedKeys, values, heads.Slice(0, h * dv, m, dv), 1, 1,
                        in options, lse.Slice(h * m, m), default, default, excludeDiagonal: false, attentionWorkspace, workspaceGiven: true);
                }
                Combine(heads, lse, headCount, dv, combination, output);
                if (!headLogSumExp.IsEmpty) lse.CopyTo(headLogSumExp);
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    /// <summary>target = source·projection, accumulated in double, rounded once.</summary>
    private static void Project<T>(ReadOnlySpan2D<T> source, ReadOnlySpan2D<T> projection, Span2D<T> target)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int rows = source.Height, inner = source.Width, columns = projection.Width;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<T> x = source.GetRowSpan(r);
            Span<T> y = target.GetRowSpan(r);
            for (int c = 0; c < columns; c++)
            {
                double sum = 0;
                for (int k = 0; k < inner; k++) sum += double.CreateTruncating(x[k]) * double.CreateTruncating(projection[k, c]);
                y[c] = T.CreateTruncating(sum);
            }
        }
    }

    private static void Combine<T>(Span2D<T> heads, Span<T> lse, int headCount, int dv, EnsembleCombination combination, Span2D<T> output)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = output.Height;
        for (int i = 0; i < m; i++)
        {
            Span<T> row = heads.GetRowSpan(i), result = output.GetRowSpan(i);
            if (combination == EnsembleCombination.Mean)
            {
                for (int c = 0; c < dv; c++)
                {
                    double sum = 0;
                    for (int h = 0; h < headCount; h++) sum += double.CreateTruncating(row[h * dv + c]);
                    result[c] = T.CreateTruncating(sum / headCount);
                }
                continue;
            }
            // c_h = softmax_h(LSE_h): max first (NaN propagates through the sums), all −∞ → 0.
            double max = double.NegativeInfinity;
            bool nan = false;
            for (int h = 0; h < headCount; h++)
            {
                double value = double.CreateTruncating(lse[h * m + i]);
                nan |= double.IsNaN(value);
                max = Math.Max(max, value);
            }
            if (nan || double.IsNegativeInfinity(max))
            {
                result.Fill(nan ? T.NaN : T.Zero);
                continue;
            }
            double total = 0;
            for (int h = 0; h < headCount; h++) total += Math.Exp(double.CreateTruncating(lse[h * m + i]) - max);
            for (int c = 0; c < dv; c++)
            {
                double sum = 0;
                for (int h = 0; h < headCount; h++)
                {
                    double weight = Math.Exp(double.CreateTruncating(lse[h * m + i]) - max);
                    if (weight != 0) sum += weight * double.CreateTruncating(row[h * dv + c]);
                }
                result[c] = T.CreateTruncating(sum / total);
            }
        }
    }

    /// <summary>Workspace offsets from the aligned start (64-byte regions) and the total with slack.</summary>
    private readonly struct PredictLayout
    {
        public readonly long Queries, Keys, Values, HeadOutputs, LogSumExp, Attention, TotalBytes;

        public PredictLayout(int elementSize, int m, int n, int headCount, int dk, int dv, bool projectValues, in AttentionOptions options)
        {
            Queries = 0;
            Keys = Queries + EstimatorScratch.Region((long)m * dk, elementSize);
            Values = Keys + EstimatorScratch.Region((long)n * dk, elementSize);
            HeadOutputs = Values + (projectValues ? EstimatorScratch.Region((long)n * dv, elementSize) : 0);
            LogSumExp = HeadOutputs + EstimatorScratch.Region((long)m * headCount * dv, elementSize);
            Attention = LogSumExp + EstimatorScratch.Region((long)headCount * m, elementSize);
            TotalBytes = 63 + Attention + Kernels.AttentionDriver.WorkspaceBytes(elementSize, dk, dv, n, 1, 1,
                options.Kernel == AttentionKernel.Gaussian, BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism));
        }
    }

    /// <summary>
    /// Head Diversity Index of the key projections (MATH §9, reconstruction): with U_a an orthonormal basis of col(W_k^a)
    /// (modified Gram–Schmidt with re-orthogonalisation; a column whose residual is ≤ 1e-10 times the largest column norm of
    /// W_k^a is dropped, so r_a = rank),
    /// HDI = 1 − (2/(H(H−1)))·Σ_{a&lt;b} ‖U_aᵀU_b‖_F² / min(r_a, r_b), where ‖U_aᵀU_b‖_F² = Σ cos²θ_i over the principal angles.
    /// 1 for mutually orthogonal subspaces (needs H·d_k ≤ d), 0 for identical ones.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="keyProjections">W_k stacked, (H·d) × d_k (d, d_k ≥ 1).</param>
    /// <param name="headCount">H ≥ 1; H = 1 gives NaN.</param>
    /// <returns>HDI ∈ [0, 1]; NaN when H = 1, when a head's projection is zero (rank 0) or contains NaN or ±∞.</returns>
    /// <exception cref="ArgumentException">The height is not a positive multiple of H, or H &lt; 1; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static double HeadDiversityIndex<T>(ReadOnlySpan2D<T> keyProjections, int headCount)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => HeadDiversityCore(keyProjections, headCount, default, workspaceGiven: false);

    /// <summary>The Head Diversity Index with a caller-owned workspace of at least
    /// <see cref="GetHeadDiversityWorkspaceSize"/> bytes (any alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="HeadDiversityIndex{T}(ReadOnlySpan2D{T}, int)"/>
    /// <param name="workspace">Scratch memory, at least GetHeadDiversityWorkspaceSize(H, d, d_k) bytes.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static double HeadDiversityIndex<T>(ReadOnlySpan2D<T> keyProjections, int headCount, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => HeadDiversityCore(keyProjections, headCount, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="HeadDiversityIndex{T}(ReadOnlySpan2D{T}, int, Span{byte})"/> needs: H bases of
    /// d × d_k doubles and H ranks.</summary>
    /// <param name="headCount">H ≥ 1.</param>
    /// <param name="dimension">d ≥ 1 (rows per head).</param>
    /// <param name="keyDimension">d_k ≥ 1.</param>
    /// <returns>The size in bytes.</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    public static int GetHeadDiversityWorkspaceSize(int headCount, int dimension, int keyDimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(headCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(keyDimension, 1);
        return EstimatorScratch.Checked(HeadDiversityBytes(headCount, dimension, keyDimension), nameof(dimension));
    }

    private static long HeadDiversityBytes(int headCount, int d, int dk) =>
        63 + EstimatorScratch.Region((long)headCount * d * dk, sizeof(double)) + EstimatorScratch.Region(headCount, sizeof(int));

    private static unsafe double HeadDiversityCore<T>(ReadOnlySpan2D<T> keyProjections, int headCount, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(MultiHeadEnsemble));
        if (headCount < 1) ThrowHelper.ThrowOutOfRange(nameof(headCount), headCount, "At least one head.");
        int rows = keyProjections.Height, dk = keyProjections.Width;
        if (rows == 0 || rows % headCount != 0 || dk < 1)
            ThrowHelper.ThrowShape(nameof(keyProjections), $"(H·d) × d_k with H = {headCount}, d ≥ 1, d_k ≥ 1", rows, dk);
        int d = rows / headCount;
        long required = HeadDiversityBytes(headCount, d, dk);
        if (workspaceGiven && workspace.Length < required) ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        if (headCount == 1) return double.NaN;

        byte* memory = null;
        try
        {
            fixed (byte* given = workspace)
            {
                byte* buffer = workspaceGiven ? given : memory = EstimatorScratch.Allocate(required);
                double* bases = (double*)EstimatorScratch.Align(buffer);
                int* ranks = (int*)((byte*)bases + EstimatorScratch.Region((long)headCount * d * dk, sizeof(double)));
                for (int a = 0; a < headCount; a++)
                {
                    ranks[a] = OrthonormalBasis(keyProjections.Slice(a * d, 0, d, dk), bases + (long)a * d * dk);
                    if (ranks[a] < 0) return double.NaN;       // NaN or ±∞ in the projection
                    if (ranks[a] == 0) return double.NaN;      // a zero projection spans no subspace
                }
                double overlap = 0;
                for (int a = 0; a < headCount; a++)
                {
                    for (int b = a + 1; b < headCount; b++)
                    {
                        double squared = 0;
                        for (int i = 0; i < ranks[a]; i++)
                        {
                            double* u = bases + (long)a * d * dk + (long)i * d;
                            for (int j = 0; j < ranks[b]; j++)
                            {
                                double* v = bases + (long)b * d * dk + (long)j * d;
                                double dot = 0;
                                for (int k = 0; k < d; k++) dot += u[k] * v[k];
                                squared += dot * dot;
                            }
                        }
                        overlap += squared / Math.Min(ranks[a], ranks[b]);
                    }
                }
                return 1 - 2.0 / ((double)headCount * (headCount - 1)) * overlap;
            }
        }
        finally
        {
            if (memory != null) EstimatorScratch.Free(memory);
        }
    }

    /// <summary>Orthonormal basis of the column space of <paramref name="matrix"/> (d × d_k) by modified Gram–Schmidt with one
    /// re-orthogonalisation pass; basis vectors stored contiguously (d doubles each). Returns the rank, or −1 for a non-finite entry.</summary>
    private static unsafe int OrthonormalBasis<T>(ReadOnlySpan2D<T> matrix, double* basis)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int d = matrix.Height, dk = matrix.Width, rank = 0;
        double largest = 0;
        for (int c = 0; c < dk; c++)
        {
            double norm = 0;
            for (int k = 0; k < d; k++)
            {
                double x = double.CreateTruncating(matrix[k, c]);
                if (!double.IsFinite(x)) return -1;
                norm += x * x;
            }
            largest = Math.Max(largest, Math.Sqrt(norm));
        }
        if (largest == 0) return 0;
        for (int c = 0; c < dk; c++)
        {
            double* v = basis + (long)rank * d;
            for (int k = 0; k < d; k++) v[k] = double.CreateTruncating(matrix[k, c]) / largest;
            for (int pass = 0; pass < 2; pass++)
            {
                for (int j = 0; j < rank; j++)
                {
                    double* u = basis + (long)j * d;
                    double dot = 0;
                    for (int k = 0; k < d; k++) dot += u[k] * v[k];
                    for (int k = 0; k < d; k++) v[k] -= dot * u[k];
                }
            }
            double norm = 0;
            for (int k = 0; k < d; k++) norm += v[k] * v[k];
            norm = Math.Sqrt(norm);
            if (norm <= 1e-10) continue;                          // relative to the largest column (scaled to 1)
            for (int k = 0; k < d; k++) v[k] /= norm;
            rank++;
        }
        return rank;
    }

    /// <summary>
    /// The bias–variance–covariance decomposition (MATH §9) of the ensemble f̄ = (1/H)·Σ_h f_h over N realisations k, applied to
    /// the errors e_hk = f_hk − y_k: bias̄ = (1/H)·Σ_h ē_h, var̄ = (1/H)·Σ_h (1/N)·Σ_k (e_hk − ē_h)²,
    /// cov̄ = (1/(H(H−1)))·Σ_{a≠b} (1/N)·Σ_k (e_ak − ē_a)(e_bk − ē_b), MSE = (1/N)·Σ_k ((1/H)·Σ_h e_hk)²; then
    /// MSE = bias̄² + var̄/H + (1 − 1/H)·cov̄ exactly (to rounding). With a fixed target (all y_k equal) these are the moments of
    /// f_h; a noisy target adds its variance to var̄ and cov̄ alike. Accumulated in double with centred sums.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="predictions">f, H × N: row h holds head h's prediction in each of the N realisations (N ≥ 1).</param>
    /// <param name="targets">y, N values (or 1 value: a fixed target).</param>
    /// <returns>The four terms and H. NaN anywhere makes every term NaN.</returns>
    /// <exception cref="ArgumentException">H = 0, N = 0, or the targets' length is neither N nor 1; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static unsafe BiasVarianceCovariance Decompose<T>(ReadOnlySpan2D<T> predictions, ReadOnlySpan<T> targets)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        EstimatorScratch.RequireFloatOrDouble<T>(nameof(MultiHeadEnsemble));
        int headCount = predictions.Height, count = predictions.Width;
        if (headCount < 1 || count < 1) ThrowHelper.ThrowShape(nameof(predictions), "H × N with H ≥ 1 and N ≥ 1", headCount, count);
        if (targets.Length != count && targets.Length != 1) ThrowHelper.ThrowLength(nameof(targets), $"{count} or 1", targets.Length);
        bool fixedTarget = targets.Length == 1;

        // Pass 1: the mean error of every head (H doubles: on the stack up to 256 heads, else native memory).
        const int MaxStackHeads = 256;
        double* heap = null;
        try
        {
            double* stack = stackalloc double[MaxStackHeads];
            double* meanError = headCount <= MaxStackHeads ? stack : heap = (double*)EstimatorScratch.Allocate((long)headCount * sizeof(double));
            double bias = 0;
            for (int h = 0; h < headCount; h++)
            {
                ReadOnlySpan<T> row = predictions.GetRowSpan(h);
                double sum = 0;
                for (int k = 0; k < count; k++) sum += double.CreateTruncating(row[k]) - double.CreateTruncating(targets[fixedTarget ? 0 : k]);
                meanError[h] = sum / count;
                bias += meanError[h];
            }
            bias /= headCount;

            // Pass 2: per realisation, S = Σ_h c_h and Q = Σ_h c_h² of the centred errors c_h; Σ_{a≠b} c_a c_b = S² − Q.
            double variance = 0, covariance = 0, squaredError = 0;
            for (int k = 0; k < count; k++)
            {
                double target = double.CreateTruncating(targets[fixedTarget ? 0 : k]);
                double sum = 0, squares = 0, ensemble = 0;
                for (int h = 0; h < headCount; h++)
                {
                    double error = double.CreateTruncating(predictions[h, k]) - target;
                    double centred = error - meanError[h];
                    sum += centred;
                    squares += centred * centred;
                    ensemble += error;
                }
                ensemble /= headCount;
                variance += squares;
                covariance += sum * sum - squares;
                squaredError += ensemble * ensemble;
            }
            variance /= (double)headCount * count;
            covariance = headCount > 1 ? covariance / ((double)headCount * (headCount - 1) * count) : 0;
            return new BiasVarianceCovariance(bias * bias, variance, covariance, squaredError / count, headCount);
        }
        finally
        {
            if (heap != null) EstimatorScratch.Free((byte*)heap);
        }
    }
}
