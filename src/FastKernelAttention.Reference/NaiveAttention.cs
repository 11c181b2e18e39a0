using System;
using System.Diagnostics.CodeAnalysis;

namespace FastKernelAttention.Reference;

/// <summary>
/// Naive double-precision attention: the literal formulas of MATH §1–3, written for clarity, not speed.
/// </summary>
/// <remarks>
/// <para>The score matrix S [m×n] is materialised. Each row is a two-pass softmax: first the maximum M over the visible
/// logits (and the sink logit), then l = Σ_j e^{s_ij − M} and a = Σ_j e^{s_ij − M} v_j as sequential sums in ascending key
/// order; O_i = a / l and LSE_i = M + log l (MATH §1, §4).</para>
/// <para>Visibility (MATH §3): key j is visible to query i unless the bottom-right causal mask (j &gt; i + (n − m)) or the
/// sliding window (j &lt; i + (n − m) − w + 1) excludes it. Masked keys are never read, so a NaN in a masked key or value
/// does not spread.</para>
/// <para>A row with no visible key gives O_i = 0 and LSE_i = −∞; with a sink s₀ it gives O_i = 0 and LSE_i = s₀. A NaN
/// logit or a +∞ logit (or a +∞ sink) among the visible ones makes O_i and LSE_i NaN. A NaN in a visible value v_j enters
/// O_i through the literal sum Σ_j w_ij v_j, i.e. only the output columns where v_j is NaN become NaN.</para>
/// </remarks>
public static class NaiveAttention
{
    /// <summary>The materialised logits S [m×n]: s_ij = scale · q_i·k_j (Dot) or −‖q_i − k_j‖² / (2h²) (Gaussian), and −∞
    /// where key j is not visible to query i (MATH §2–3).</summary>
    /// <param name="query">Q, m × d with d ≥ 1.</param>
    /// <param name="key">K, n × d.</param>
    /// <param name="options">Kernel, scale or bandwidth, masks. The sink is not part of S.</param>
    /// <returns>A new m × n array. Masked entries are −∞ and their keys are not read; visible entries are computed in
    /// double with sequential sums over the d coordinates (Gaussian by direct differences, no expansion).</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The shapes disagree, d = 0, or an option is invalid.</exception>
    public static double[,] Scores(double[,] query, double[,] key, ReferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(options);
        int queryCount = query.GetLength(0);
        int headDim = query.GetLength(1);
        int keyCount = key.GetLength(0);
        if (headDim < 1) ThrowShape(nameof(query), "queryCount × headDim with headDim ≥ 1", queryCount, headDim);
        if (key.GetLength(1) != headDim) ThrowShape(nameof(key), $"keyCount × {headDim} (the query's headDim)", keyCount, key.GetLength(1));
        ValidateOptions(options);

        double scale = options.Scale ?? 1.0 / Math.Sqrt(headDim);
        var scores = new double[queryCount, keyCount];
        for (int i = 0; i < queryCount; i++)
        {
            for (int j = 0; j < keyCount; j++)
            {
                scores[i, j] = IsVisible(i, j, queryCount, keyCount, options)
                    ? Logit(query, i, key, j, headDim, options.Kernel, scale, options.Bandwidth)
                    : double.NegativeInfinity;
            }
        }

        return scores;
    }

    /// <summary>Whether key j is visible to query i in an m × n problem (MATH §3): with <see cref="ReferenceOptions.Causal"/>,
    /// j ≤ i + (n − m) (bottom-right aligned); with a <see cref="ReferenceOptions.Window"/> w, also j ≥ i + (n − m) − w + 1.</summary>
    /// <param name="i">Query index, 0 ≤ i &lt; m.</param>
    /// <param name="j">Key index, 0 ≤ j &lt; n.</param>
    /// <param name="m">Query count.</param>
    /// <param name="n">Key count.</param>
    /// <param name="options">The masks to apply; the kernel, scale and sink are ignored.</param>
    /// <returns><see langword="true"/> if key j enters row i's softmax. Example, m = 2, n = 4, causal: q0 → {0,1,2},
    /// q1 → {0..3}; with w = 2: q0 → {1,2}, q1 → {2,3}.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is out of range or the window is less than 1.</exception>
    public static bool IsVisible(int i, int j, int m, int n, ReferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfNegative(j);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, m);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(j, n);
        if (options.Window is int w && w < 1)
            throw new ArgumentOutOfRangeException(nameof(options), w, "Window must be at least 1.");

        long diagonal = (long)i + n - m; // the last key row i may see under the causal mask
        if (options.Causal && j > diagonal) return false;
        if (options.Window is int width && j < diagonal - width + 1) return false;
        return true;
    }

    /// <summary>Single-head attention O_i = Σ_j w_ij v_j, w_ij = e^{s_ij − LSE_i}, LSE_i = log(e^{s₀} + Σ_{j∈𝒱_i} e^{s_ij})
    /// (the sink term only with <see cref="ReferenceOptions.SinkLogit"/>), MATH §1–3.</summary>
    /// <param name="query">Q, m × d with d ≥ 1.</param>
    /// <param name="key">K, n × d.</param>
    /// <param name="value">V, n × dv (dv = 0 gives an LSE-only result).</param>
    /// <param name="options">Kernel, scale or bandwidth, masks and sink.</param>
    /// <returns>Output O [m×dv] and LSE [m] in nats. For the Gaussian kernel LSE is the true one, including the
    /// −‖q_i‖²/(2h²) part. A row with no visible key gives O_i = 0 and LSE_i = −∞ (LSE_i = s₀ with a sink); a NaN or +∞
    /// visible logit makes the row NaN; masked keys and values are never read.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The shapes disagree, d = 0, or an option is invalid.</exception>
    public static (double[,] Output, double[] LogSumExp) Forward(double[,] query, double[,] key, double[,] value, ReferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        double[,] scores = Scores(query, key, options); // validates query, key and options
        int queryCount = query.GetLength(0);
        int keyCount = key.GetLength(0);
        int valueDim = value.GetLength(1);
        if (value.GetLength(0) != keyCount) ThrowShape(nameof(value), $"{keyCount} (keyCount) × valueDim", value.GetLength(0), valueDim);

        var output = new double[queryCount, valueDim];
        var logSumExp = new double[queryCount];
        var accumulator = new double[valueDim];
        for (int i = 0; i < queryCount; i++)
            logSumExp[i] = SoftmaxRow(scores, i, value, options, accumulator, output);
        return (output, logSumExp);
    }

    /// <summary>Multi-head (GQA) attention in the token-major layout of MATH §1: query head h reads kv head h / (H / Hkv),
    /// and each head is exactly <see cref="Forward(double[,], double[,], double[,], ReferenceOptions)"/> on its column slices.</summary>
    /// <param name="query">Q, m × (H·d); head h of token i is columns [h·d, (h + 1)·d).</param>
    /// <param name="key">K, n × (Hkv·d).</param>
    /// <param name="value">V, n × (Hkv·dv).</param>
    /// <param name="headCount">H ≥ 1, a multiple of <paramref name="keyValueHeadCount"/>.</param>
    /// <param name="keyValueHeadCount">Hkv ≥ 1.</param>
    /// <param name="options">Kernel, scale (default 1/√d per head), masks and sink, shared by all heads.</param>
    /// <param name="sinkLogits">Optional per-head sink logits (length H), overriding <see cref="ReferenceOptions.SinkLogit"/>.</param>
    /// <returns>Output O [m × (H·dv)] and LSE [H × m]. Empty rows, NaN and masking behave per head as in the single-head call.</returns>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The shapes or head counts disagree, or an option is invalid.</exception>
    public static (double[,] Output, double[,] LogSumExp) ForwardMultiHead(double[,] query, double[,] key, double[,] value,
        int headCount, int keyValueHeadCount, ReferenceOptions options, double[]? sinkLogits = null)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(headCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(keyValueHeadCount, 1);
        if (headCount % keyValueHeadCount != 0)
            throw new ArgumentException($"headCount ({headCount}) must be a multiple of keyValueHeadCount ({keyValueHeadCount}).", nameof(keyValueHeadCount));
        int queryCount = query.GetLength(0);
        int keyCount = key.GetLength(0);
        if (query.GetLength(1) % headCount != 0 || query.GetLength(1) == 0)
            ThrowShape(nameof(query), $"queryCount × ({headCount}·headDim) with headDim ≥ 1", queryCount, query.GetLength(1));
        int headDim = query.GetLength(1) / headCount;
        if (key.GetLength(1) != keyValueHeadCount * headDim)
            ThrowShape(nameof(key), $"keyCount × {keyValueHeadCount * headDim} ({keyValueHeadCount}·{headDim})", keyCount, key.GetLength(1));
        if (value.GetLength(0) != keyCount || value.GetLength(1) % keyValueHeadCount != 0)
            ThrowShape(nameof(value), $"{keyCount} (keyCount) × ({keyValueHeadCount}·valueDim)", value.GetLength(0), value.GetLength(1));
        if (sinkLogits is not null && sinkLogits.Length != headCount)
            throw new ArgumentException($"Expected {headCount} sink logits (one per head), got {sinkLogits.Length}.", nameof(sinkLogits));
        if (sinkLogits is not null && Array.Exists(sinkLogits, double.IsNaN))
            throw new ArgumentException("A sink logit must not be NaN (−∞ means no sink).", nameof(sinkLogits));
        ValidateOptions(options);

        int valueDim = value.GetLength(1) / keyValueHeadCount;
        int groupSize = headCount / keyValueHeadCount; // G: query heads per kv head
        var output = new double[queryCount, headCount * valueDim];
        var logSumExp = new double[headCount, queryCount];
        for (int head = 0; head < headCount; head++)
        {
            int kvHead = head / groupSize;
            ReferenceOptions headOptions = sinkLogits is null ? options : options with { SinkLogit = sinkLogits[head] };
            (double[,] headOutput, double[] headLse) = Forward(
                ColumnSlice(query, head * headDim, headDim),
                ColumnSlice(key, kvHead * headDim, headDim),
                ColumnSlice(value, kvHead * valueDim, valueDim),
                headOptions);
            for (int i = 0; i < queryCount; i++)
            {
                for (int c = 0; c < valueDim; c++)
                    output[i, head * valueDim + c] = headOutput[i, c];
                logSumExp[head, i] = headLse[i];
            }
        }

        return (output, logSumExp);
    }

    /// <summary>Single-head attention on float inputs: each element is converted exactly to double and
    /// <see cref="Forward(double[,], double[,], double[,], ReferenceOptions)"/> is applied.</summary>
    /// <param name="query">Q, m × d with d ≥ 1.</param>
    /// <param name="key">K, n × d.</param>
    /// <param name="value">V, n × dv.</param>
    /// <param name="options">Kernel, scale or bandwidth, masks and sink.</param>
    /// <returns>Output O [m×dv] and LSE [m] in double; empty rows, NaN and masking as in the double overload.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The shapes disagree, d = 0, or an option is invalid.</exception>
    public static (double[,] Output, double[] LogSumExp) Forward(float[,] query, float[,] key, float[,] value, ReferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return Forward(ToDouble(query), ToDouble(key), ToDouble(value), options);
    }

    /// <summary>One visible logit, literally: scale · Σ_k q_ik k_jk or −Σ_k (q_ik − k_jk)² / (2h²), summed in order k = 0..d−1.</summary>
    private static double Logit(double[,] query, int i, double[,] key, int j, int headDim, ReferenceKernel kernel, double scale, double bandwidth)
    {
        if (kernel == ReferenceKernel.Dot)
        {
            double dot = 0;
            for (int k = 0; k < headDim; k++)
                dot += query[i, k] * key[j, k];
            return scale * dot;
        }

        double squaredDistance = 0; // D = ‖q_i − k_j‖², direct differences (MATH §2)
        for (int k = 0; k < headDim; k++)
        {
            double difference = query[i, k] - key[j, k];
            squaredDistance += difference * difference;
        }

        return -squaredDistance / (2 * bandwidth * bandwidth);
    }

    /// <summary>Two-pass softmax of row i (MATH §1, §3): writes O_i into <paramref name="output"/> and returns LSE_i.</summary>
    private static double SoftmaxRow(double[,] scores, int i, double[,] value, ReferenceOptions options, double[] accumulator, double[,] output)
    {
        int queryCount = scores.GetLength(0);
        int keyCount = scores.GetLength(1);
        int valueDim = value.GetLength(1);
        double? sink = options.SinkLogit;

        // Pass 1: the maximum over the visible logits and the sink; NaN or +∞ anywhere invalidates the row.
        double rowMax = sink ?? double.NegativeInfinity;
        bool invalid = double.IsPositiveInfinity(rowMax);
        for (int j = 0; j < keyCount; j++)
        {
            if (!IsVisible(i, j, queryCount, keyCount, options)) continue;
            double s = scores[i, j];
            if (double.IsNaN(s) || double.IsPositiveInfinity(s)) invalid = true;
            else if (s > rowMax) rowMax = s;
        }

        if (invalid)
        {
            for (int c = 0; c < valueDim; c++) output[i, c] = double.NaN;
            return double.NaN;
        }

        // Empty row (no visible key, no sink) or every term e^{−∞} = 0: l = 0, so O = 0 and LSE = −∞ (MATH §4 finalise).
        if (double.IsNegativeInfinity(rowMax))
        {
            for (int c = 0; c < valueDim; c++) output[i, c] = 0;
            return double.NegativeInfinity;
        }

        // Pass 2: l = e^{s₀ − M} + Σ_j e^{s_ij − M} and a = Σ_j e^{s_ij − M} v_j, sequential in ascending j. The sink's value is 0.
        double expSum = sink is double s0 ? Math.Exp(s0 - rowMax) : 0;
        Array.Clear(accumulator);
        for (int j = 0; j < keyCount; j++)
        {
            if (!IsVisible(i, j, queryCount, keyCount, options)) continue; // masked V is never read
            double weight = Math.Exp(scores[i, j] - rowMax);
            expSum += weight;
            for (int c = 0; c < valueDim; c++)
                accumulator[c] += weight * value[j, c];
        }

        for (int c = 0; c < valueDim; c++)
            output[i, c] = accumulator[c] / expSum;
        return rowMax + Math.Log(expSum);
    }

    private static void ValidateOptions(ReferenceOptions options)
    {
        if (options.Kernel is not (ReferenceKernel.Dot or ReferenceKernel.Gaussian))
            throw new ArgumentOutOfRangeException(nameof(options), options.Kernel, "Unknown kernel.");
        if (options.Kernel == ReferenceKernel.Dot && options.Scale is double scale && !double.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(options), scale, "Scale must be finite.");
        if (options.Kernel == ReferenceKernel.Gaussian && !(double.IsFinite(options.Bandwidth) && options.Bandwidth > 0))
            throw new ArgumentOutOfRangeException(nameof(options), options.Bandwidth, "Bandwidth must be finite and positive.");
        if (options.Window is int window && window < 1)
            throw new ArgumentOutOfRangeException(nameof(options), window, "Window must be at least 1.");
        if (options.SinkLogit is double sink && double.IsNaN(sink))
            throw new ArgumentOutOfRangeException(nameof(options), sink, "SinkLogit must not be NaN (−∞ means no sink).");
    }

    private static double[,] ColumnSlice(double[,] source, int firstColumn, int columnCount)
    {
        int rows = source.GetLength(0);
        var slice = new double[rows, columnCount];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columnCount; c++)
                slice[r, c] = source[r, firstColumn + c];
        return slice;
    }

    private static double[,] ToDouble(float[,] source)
    {
        int rows = source.GetLength(0);
        int columns = source.GetLength(1);
        var result = new double[rows, columns];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                result[r, c] = source[r, c];
        return result;
    }

    [DoesNotReturn]
    private static void ThrowShape(string parameterName, string expected, int rows, int columns) =>
        throw new ArgumentException($"Expected {expected}, got {rows}×{columns}.", parameterName);
}
