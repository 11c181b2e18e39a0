using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// Nadaraya–Watson kernel regression with the Gaussian product kernel (MATH §6), run on the fused attention kernel:
/// ĝ(x) = Σ_j w_j(x)·Y_j with w_j(x) = π_j·K_h(x − X_j) / Σ_l π_l·K_h(x − X_l) and
/// K_h(u) = Π_k exp(−u_k² / (2h_k²)). It is attention with the query x, keys X_j, values Y_j and Gaussian logits.
/// </summary>
/// <remarks>
/// <para>Element type T is <see cref="float"/> or <see cref="double"/>; any other type throws <see cref="NotSupportedException"/>.</para>
/// <para>Bandwidths: one value h (the same for every dimension) or d values h_k (per dimension, which is the same as scaling
/// feature k by 1/h_k and using h = 1). Every h must be finite and &gt; 0.</para>
/// <para>No managed memory is allocated by any call: scratch comes from the caller's workspace (sizes from
/// <see cref="GetPredictWorkspaceSize{T}"/> and <see cref="GetCrossValidationWorkspaceSize{T}"/>) or, in the overloads without
/// one, from native memory freed before the call returns. Every call runs on the calling thread.</para>
/// </remarks>
public static partial class NadarayaWatson
{
    /// <summary>
    /// Nadaraya–Watson estimate ĝ(x_i) = Σ_j w_ij·Y_j, w_ij = softmax_j(−Σ_k (x_ik − X_jk)² / (2h_k²) + log π_j), with optional
    /// per-row diagnostics from the same fused pass (and, for the effective sample size, one more LSE-only pass).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="queries">x, m × d evaluation points (d ≥ 1).</param>
    /// <param name="samples">X, n × d sample points (n = 0 makes every row empty).</param>
    /// <param name="responses">Y, n × p responses (p ≥ 1).</param>
    /// <param name="bandwidths">h: length 1 (one bandwidth) or d (one per dimension); each finite and &gt; 0.</param>
    /// <param name="output">ĝ, m × p; must not overlap any input.</param>
    /// <param name="sampleLogWeights">Empty (all π_j = 1), or n log-weights log π_j added to every logit; −∞ drops sample j;
    /// NaN and +∞ are rejected.</param>
    /// <param name="logSumExp">Empty, or ≥ m elements: LSE_i = log Σ_j π_j·exp(−Σ_k (x_ik − X_jk)² / (2h_k²)), the true value
    /// (the kernel density at x_i up to the factor Π_k √(2π)·h_k and Σπ).</param>
    /// <param name="effectiveSampleSize">Empty, or ≥ m elements: ESS_i = 1 / Σ_j w_ij² ∈ [1, n], computed as
    /// exp(2·LSE_i − LSE′_i) where LSE′ is a second, LSE-only pass at bandwidths h/√2 with log-weights 2·log π_j.</param>
    /// <param name="entropy">Empty, or ≥ m elements: H_i = −Σ_j w_ij log w_ij = LSE_i − Σ_j w_ij·s_ij (MATH §12), with
    /// Σ_j w_ij s_ij from the fused moments Σw‖X̃‖², Σw X̃ and Σw log π of the centred, scaled samples X̃ (clamped to
    /// [0, ∞)). In float it loses accuracy when ‖x̃_i − X̃_j‖ ≫ 1 for every j (a query far from all samples).</param>
    /// <param name="localVariance">Empty, or m × p: σ̂²_ic = Σ_j w_ij·Y_jc² − ĝ_ic², computed about the column mean of Y and
    /// clamped to ≥ 0.</param>
    /// <remarks>
    /// <para>A row with no visible sample (n = 0, or every π_j = 0) gives ĝ = 0, LSE = −∞, ESS = 0, H = 0, σ̂² = 0.</para>
    /// <para>A NaN in a query makes only that row NaN (output and every diagnostic). A NaN in a visible sample or response
    /// reaches every row that sees it.</para>
    /// <para>Scratch comes from native memory (no managed allocation); the overload with a workspace avoids even that.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">A shape does not match, d = 0, p = 0, the bandwidths have a length other than 1
    /// or d, a bandwidth is not finite and positive, or a log-weight is NaN or +∞; the exception names the argument.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Predict<T>(ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan<T> bandwidths, Span2D<T> output, ReadOnlySpan<T> sampleLogWeights = default,
        Span<T> logSumExp = default, Span<T> effectiveSampleSize = default, Span<T> entropy = default,
        Span2D<T> localVariance = default)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PredictCore(IsaDispatch.Selected, queries, samples, responses, bandwidths, output, sampleLogWeights, logSumExp,
            effectiveSampleSize, entropy, localVariance, default, workspaceGiven: false);

    /// <summary>Nadaraya–Watson estimate with a caller-owned workspace of at least
    /// <see cref="GetPredictWorkspaceSize{T}"/> bytes (any alignment): no allocation of any kind.</summary>
    /// <inheritdoc cref="Predict{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan{T}, Span2D{T}, ReadOnlySpan{T}, Span{T}, Span{T}, Span{T}, Span2D{T})"/>
    /// <param name="workspace">Scratch memory, at least GetPredictWorkspaceSize&lt;T&gt;(m, n, d, p, bandwidths.Length,
    /// sampleLogWeights non-empty, ESS wanted, entropy wanted, local variance wanted) bytes; it must not overlap any argument.</param>
    /// <exception cref="ArgumentException">Also when <paramref name="workspace"/> is too small.</exception>
    public static void Predict<T>(ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses,
        ReadOnlySpan<T> bandwidths, Span2D<T> output, ReadOnlySpan<T> sampleLogWeights,
        Span<T> logSumExp, Span<T> effectiveSampleSize, Span<T> entropy,
        Span2D<T> localVariance, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PredictCore(IsaDispatch.Selected, queries, samples, responses, bandwidths, output, sampleLogWeights, logSumExp,
            effectiveSampleSize, entropy, localVariance, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="Predict{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, ReadOnlySpan{T}, Span2D{T}, ReadOnlySpan{T}, Span{T}, Span{T}, Span{T}, Span2D{T}, Span{byte})"/>
    /// needs: the attention kernel's workspace, plus scaled copies of x and X (m·d + n·d elements) for per-dimension
    /// bandwidths, plus the augmented values [Y, (Y − Ȳ)², ‖X̃‖², X̃, log π] and their m-row output when the entropy or the
    /// local variance is wanted, plus 2m + n elements for the effective sample size.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="queryCount">m ≥ 0.</param>
    /// <param name="sampleCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="responseCount">p ≥ 1.</param>
    /// <param name="bandwidthCount">1 or d.</param>
    /// <param name="weighted">Whether sample log-weights will be passed.</param>
    /// <param name="effectiveSampleSize">Whether the effective sample size is wanted.</param>
    /// <param name="entropy">Whether the weight entropy is wanted.</param>
    /// <param name="localVariance">Whether the local variance is wanted.</param>
    /// <returns>The size in bytes (alignment slack included).</returns>
    /// <exception cref="ArgumentException">A count is out of range; the exception names it.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static int GetPredictWorkspaceSize<T>(int queryCount, int sampleCount, int dimension, int responseCount,
        int bandwidthCount, bool weighted = false, bool effectiveSampleSize = false, bool entropy = false,
        bool localVariance = false)
        where T : unmanaged
    {
        RequireFloatOrDouble<T>();
        ArgumentOutOfRangeException.ThrowIfNegative(queryCount);
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(responseCount, 1);
        if (bandwidthCount != 1 && bandwidthCount != dimension)
            ThrowHelper.ThrowOutOfRange(nameof(bandwidthCount), bandwidthCount, "Must be 1 or the dimension d.");
        var layout = new PredictLayout(Unsafe.SizeOf<T>(), queryCount, sampleCount, dimension, responseCount,
            bandwidthCount > 1, weighted, effectiveSampleSize, entropy, localVariance);
        return Checked(layout.TotalBytes, nameof(sampleCount));
    }

    /// <summary>Predict on a given ISA path (tests pass each supported path; public calls use <see cref="IsaDispatch.Selected"/>).</summary>
    internal static unsafe void PredictCore<T>(IsaPath path, ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples,
        ReadOnlySpan2D<T> responses, ReadOnlySpan<T> bandwidths, Span2D<T> output, ReadOnlySpan<T> sampleLogWeights,
        Span<T> logSumExp, Span<T> effectiveSampleSize, Span<T> entropy, Span2D<T> localVariance,
        Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireFloatOrDouble<T>();
        int m = queries.Height, n = samples.Height, d = queries.Width, p = responses.Width;
        if (d < 1) ThrowHelper.ThrowShape(nameof(queries), "queryCount × d with d ≥ 1", m, d);
        if (samples.Width != d) ThrowHelper.ThrowShape(nameof(samples), $"sampleCount × {d} (the queries' d)", n, samples.Width);
        if (responses.Height != n || p < 1)
            ThrowHelper.ThrowShape(nameof(responses), $"{n} × p with p ≥ 1 (one row per sample)", responses.Height, p);
        if (output.Height != m || output.Width != p) ThrowHelper.ThrowShape(nameof(output), $"{m} × {p}", output.Height, output.Width);
        ValidateBandwidths(bandwidths, d);
        ValidateLogWeights(sampleLogWeights, n);
        if (!logSumExp.IsEmpty && logSumExp.Length < m)
            ThrowHelper.ThrowLength(nameof(logSumExp), $"empty or at least {m}", logSumExp.Length);
        if (!effectiveSampleSize.IsEmpty && effectiveSampleSize.Length < m)
            ThrowHelper.ThrowLength(nameof(effectiveSampleSize), $"empty or at least {m}", effectiveSampleSize.Length);
        if (!entropy.IsEmpty && entropy.Length < m)
            ThrowHelper.ThrowLength(nameof(entropy), $"empty or at least {m}", entropy.Length);
        bool wantVariance = localVariance.Height != 0 || localVariance.Width != 0;
        if (wantVariance && (localVariance.Height != m || localVariance.Width != p))
            ThrowHelper.ThrowShape(nameof(localVariance), $"empty or {m} × {p}", localVariance.Height, localVariance.Width);

        bool perDimension = bandwidths.Length > 1;
        var layout = new PredictLayout(sizeof(T), m, n, d, p, perDimension, !sampleLogWeights.IsEmpty,
            !effectiveSampleSize.IsEmpty, !entropy.IsEmpty, wantVariance);
        if (workspaceGiven && workspace.Length < layout.TotalBytes)
            ThrowHelper.ThrowWorkspace(nameof(workspace), layout.TotalBytes, workspace.Length);
        if (m == 0) return;

        if (workspaceGiven)
        {
            fixed (byte* buffer = workspace)
                PredictRun(path, queries, samples, responses, bandwidths, output, sampleLogWeights, logSumExp,
                    effectiveSampleSize, entropy, localVariance, in layout, buffer);
        }
        else
        {
            byte* buffer = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, layout.TotalBytes));
            try
            {
                PredictRun(path, queries, samples, responses, bandwidths, output, sampleLogWeights, logSumExp,
                    effectiveSampleSize, entropy, localVariance, in layout, buffer);
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    private static unsafe void PredictRun<T>(IsaPath path, ReadOnlySpan2D<T> queries, ReadOnlySpan2D<T> samples,
        ReadOnlySpan2D<T> responses, ReadOnlySpan<T> bandwidths, Span2D<T> output, ReadOnlySpan<T> sampleLogWeights,
        Span<T> logSumExp, Span<T> effectiveSampleSize, Span<T> entropy, Span2D<T> localVariance,
        in PredictLayout layout, byte* buffer)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = queries.Height, n = samples.Height, d = queries.Width, p = responses.Width;
        byte* aligned = (byte*)(((nuint)buffer + 63) & ~(nuint)63);
        bool perDimension = layout.PerDimension;
        bool wantEss = layout.EffectiveSampleSize, wantEntropy = layout.Entropy, wantVariance = layout.LocalVariance;
        bool augment = wantEntropy || wantVariance;
        bool weighted = !sampleLogWeights.IsEmpty;

        // Per-dimension bandwidths: x/h_k and X/h_k, then the kernel runs with h = 1 (MATH §6).
        ReadOnlySpan2D<T> query = queries, key = samples;
        double kernelBandwidth = double.CreateTruncating(bandwidths[0]);
        if (perDimension)
        {
            var scaledQueries = new Span2D<T>(aligned + layout.QueryCopy, m, d, 0);
            var scaledSamples = new Span2D<T>(aligned + layout.SampleCopy, n, d, 0);
            ScaleRows(queries, bandwidths, scaledQueries);
            ScaleRows(samples, bandwidths, scaledSamples);
            query = scaledQueries;
            key = scaledSamples;
            kernelBandwidth = 1.0;
        }

        // Entropy and local variance: augmented values [Y, (Y − Ȳ)², ‖X̃‖², X̃, log π] in one fused pass (MATH §12), with
        // X̃ = (X − c)/h centred at the sample mean c and the squares taken about the response means Ȳ to limit cancellation.
        int valueWidth = layout.ValueWidth;
        ReadOnlySpan2D<T> value = responses;
        Span2D<T> kernelOutput = output;
        Span<double> centre = layout.Entropy ? new Span<double>(aligned + layout.Centre, d) : default;
        Span<double> responseMean = wantVariance ? new Span<double>(aligned + layout.ResponseMean, p) : default;
        if (augment)
        {
            var augmented = new Span2D<T>(aligned + layout.Values, n, valueWidth, 0);
            FillAugmentedValues(samples, responses, bandwidths, sampleLogWeights, augmented, centre, responseMean, wantEntropy, wantVariance);
            value = augmented;
            kernelOutput = new Span2D<T>(aligned + layout.Output, m, valueWidth, 0);
        }

        Span<T> lse = logSumExp.IsEmpty && (wantEss || wantEntropy) ? new Span<T>(aligned + layout.LogSumExp, m) : logSumExp;
        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = kernelBandwidth };
        var kernelWorkspace = new Span<byte>(aligned + layout.Kernel, layout.KernelBytes);
        Attention.ForwardCore(path, query, key, value, kernelOutput, 1, 1, in options, lse, default, sampleLogWeights,
            excludeDiagonal: false, kernelWorkspace, workspaceGiven: true);

        if (augment)
        {
            ReadOnlySpan2D<T> moments = kernelOutput;
            for (int i = 0; i < m; i++)
            {
                ReadOnlySpan<T> row = moments.GetRowSpan(i);
                row[..p].CopyTo(output.GetRowSpan(i));
                if (wantVariance)
                {
                    Span<T> variance = localVariance.GetRowSpan(i);
                    for (int c = 0; c < p; c++)
                    {
                        double shifted = double.CreateTruncating(row[c]) - responseMean[c];
                        double v = double.CreateTruncating(row[p + c]) - shifted * shifted;
                        variance[c] = T.CreateTruncating(v > 0 || double.IsNaN(v) ? v : 0.0);
                    }
                }
                if (wantEntropy)
                    entropy[i] = T.CreateTruncating(RowEntropy(queries.GetRowSpan(i), bandwidths, centre,
                        row[(wantVariance ? 2 * p : p)..], double.CreateTruncating(lse[i]), weighted));
            }
        }

        if (wantEss)
        {
            // Σ_j w_j² = Σ_j π_j² e^{2 s_j} / (Σ_j π_j e^{s_j})² = exp(LSE′ − 2·LSE), where LSE′ is the true log-sum-exp at
            // bandwidth h/√2 (logits 2·s_j) with log-weights 2·log π_j.
            Span<T> lseHalf = new(aligned + layout.LogSumExpHalf, m);
            ReadOnlySpan<T> doubledLogWeights = default;
            if (weighted)
            {
                var doubled = new Span<T>(aligned + layout.LogWeightsDoubled, n);
                for (int j = 0; j < n; j++) doubled[j] = sampleLogWeights[j] + sampleLogWeights[j];
                doubledLogWeights = doubled;
            }
            var halfOptions = options with { Bandwidth = kernelBandwidth / Math.Sqrt(2.0) };
            var noValue = new ReadOnlySpan2D<T>(aligned + layout.Values, n, 0, 0);
            var noOutput = new Span2D<T>(aligned + layout.Output, m, 0, 0);
            Attention.ForwardCore(path, query, key, noValue, noOutput, 1, 1, in halfOptions, lseHalf, default, doubledLogWeights,
                excludeDiagonal: false, kernelWorkspace, workspaceGiven: true);
            for (int i = 0; i < m; i++)
            {
                double full = double.CreateTruncating(lse[i]);
                double ess = double.IsNegativeInfinity(full) ? 0.0 : Math.Exp(2.0 * full - double.CreateTruncating(lseHalf[i]));
                effectiveSampleSize[i] = T.CreateTruncating(ess);
            }
        }
    }

    /// <summary>H = LSE − Σ w s with Σ w s = −½·Σ w‖x̃ − X̃‖² + Σ w log π and Σ w‖x̃ − X̃‖² = ‖x̃ − μ‖² + (Σw‖X̃‖² − ‖μ‖²), μ = Σ w X̃.</summary>
    private static double RowEntropy<T>(ReadOnlySpan<T> query, ReadOnlySpan<T> bandwidths, ReadOnlySpan<double> centre,
        ReadOnlySpan<T> moments, double logSumExp, bool weighted)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (double.IsNaN(logSumExp)) return double.NaN;
        if (double.IsNegativeInfinity(logSumExp)) return 0.0;
        int d = query.Length;
        double meanSquare = double.CreateTruncating(moments[0]);
        double distance = 0, meanNorm = 0;
        for (int k = 0; k < d; k++)
        {
            double h = double.CreateTruncating(bandwidths[bandwidths.Length > 1 ? k : 0]);
            double mu = double.CreateTruncating(moments[1 + k]);
            double delta = (double.CreateTruncating(query[k]) - centre[k]) / h - mu;
            distance += delta * delta;
            meanNorm += mu * mu;
        }
        double spread = meanSquare - meanNorm;
        double weightedDistance = distance + (spread > 0 ? spread : 0.0);
        double meanLogWeight = weighted ? double.CreateTruncating(moments[1 + d]) : 0.0;
        double h2 = logSumExp + 0.5 * weightedDistance - meanLogWeight;
        return h2 > 0 || double.IsNaN(h2) ? h2 : 0.0;
    }

    private static void FillAugmentedValues<T>(ReadOnlySpan2D<T> samples, ReadOnlySpan2D<T> responses, ReadOnlySpan<T> bandwidths,
        ReadOnlySpan<T> sampleLogWeights, Span2D<T> augmented, Span<double> centre, Span<double> responseMean,
        bool wantEntropy, bool wantVariance)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int n = samples.Height, d = samples.Width, p = responses.Width;
        if (wantVariance)
        {
            responseMean.Clear();
            for (int j = 0; j < n; j++)
            {
                ReadOnlySpan<T> y = responses.GetRowSpan(j);
                for (int c = 0; c < p; c++) responseMean[c] += double.CreateTruncating(y[c]);
            }
            for (int c = 0; c < p; c++) responseMean[c] = n > 0 ? responseMean[c] / n : 0.0;
        }
        if (wantEntropy)
        {
            centre.Clear();
            for (int j = 0; j < n; j++)
            {
                ReadOnlySpan<T> x = samples.GetRowSpan(j);
                for (int k = 0; k < d; k++) centre[k] += double.CreateTruncating(x[k]);
            }
            for (int k = 0; k < d; k++) centre[k] = n > 0 ? centre[k] / n : 0.0;
        }
        for (int j = 0; j < n; j++)
        {
            Span<T> row = augmented.GetRowSpan(j);
            ReadOnlySpan<T> y = responses.GetRowSpan(j);
            y.CopyTo(row);
            int column = p;
            if (wantVariance)
            {
                for (int c = 0; c < p; c++)
                {
                    double shifted = double.CreateTruncating(y[c]) - responseMean[c];
                    row[column++] = T.CreateTruncating(shifted * shifted);
                }
            }
            if (wantEntropy)
            {
                ReadOnlySpan<T> x = samples.GetRowSpan(j);
                double norm = 0;
                int first = column++;
                for (int k = 0; k < d; k++)
                {
                    double scaled = (double.CreateTruncating(x[k]) - centre[k]) / double.CreateTruncating(bandwidths[bandwidths.Length > 1 ? k : 0]);
                    norm += scaled * scaled;
                    row[column++] = T.CreateTruncating(scaled);
                }
                row[first] = T.CreateTruncating(norm);
                if (!sampleLogWeights.IsEmpty)
                {
                    // A dropped sample (log π = −∞) has weight 0; store 0 so that 0·(−∞) cannot appear.
                    T logWeight = sampleLogWeights[j];
                    row[column] = T.IsNegativeInfinity(logWeight) ? T.Zero : logWeight;
                }
            }
        }
    }

    private static void ScaleRows<T>(ReadOnlySpan2D<T> source, ReadOnlySpan<T> bandwidths, Span2D<T> destination)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int i = 0; i < source.Height; i++)
        {
            ReadOnlySpan<T> from = source.GetRowSpan(i);
            Span<T> to = destination.GetRowSpan(i);
            for (int k = 0; k < from.Length; k++) to[k] = from[k] / bandwidths[k];
        }
    }

    private static void ValidateBandwidths<T>(ReadOnlySpan<T> bandwidths, int dimension)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (bandwidths.Length != 1 && bandwidths.Length != dimension)
            ThrowHelper.ThrowLength(nameof(bandwidths), $"1 or d = {dimension}", bandwidths.Length);
        foreach (T h in bandwidths)
        {
            if (!(h > T.Zero) || !T.IsFinite(h))
                ThrowHelper.ThrowArgument(nameof(bandwidths), "Every bandwidth must be finite and positive.");
        }
    }

    private static void ValidateLogWeights<T>(ReadOnlySpan<T> sampleLogWeights, int sampleCount)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (sampleLogWeights.IsEmpty) return;
        if (sampleLogWeights.Length != sampleCount)
            ThrowHelper.ThrowLength(nameof(sampleLogWeights), $"empty, or one log-weight per sample ({sampleCount})", sampleLogWeights.Length);
        foreach (T weight in sampleLogWeights)
        {
            if (T.IsNaN(weight) || T.IsPositiveInfinity(weight))
                ThrowHelper.ThrowArgument(nameof(sampleLogWeights), "Sample log-weights must not be NaN or +∞ (−∞ drops a sample).");
        }
    }

    private static void RequireFloatOrDouble<T>()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException("NadarayaWatson supports float and double.");
    }

    private static int Checked(long bytes, string parameter)
    {
        if (bytes > int.MaxValue) ThrowHelper.ThrowOutOfRange(parameter, bytes, "The workspace would exceed 2 GiB.");
        return (int)bytes;
    }

    private static long Align(long bytes) => (bytes + 63) & ~63L;

    /// <summary>Byte offsets (from the 64-byte aligned start) of Predict's scratch regions.</summary>
    private readonly struct PredictLayout
    {
        public readonly bool PerDimension, EffectiveSampleSize, Entropy, LocalVariance;
        public readonly int ValueWidth;
        public readonly long QueryCopy, SampleCopy, Centre, ResponseMean, Values, Output, LogSumExp, LogSumExpHalf, LogWeightsDoubled, Kernel;
        public readonly int KernelBytes;
        public readonly long TotalBytes;

        public PredictLayout(int elementSize, int m, int n, int d, int p, bool perDimension, bool weighted,
            bool effectiveSampleSize, bool entropy, bool localVariance)
        {
            PerDimension = perDimension;
            EffectiveSampleSize = effectiveSampleSize;
            Entropy = entropy;
            LocalVariance = localVariance;
            bool augment = entropy || localVariance;
            ValueWidth = p + (localVariance ? p : 0) + (entropy ? 1 + d + (weighted ? 1 : 0) : 0);
            long cursor = 0;
            QueryCopy = cursor; cursor += perDimension ? Align((long)m * d * elementSize) : 0;
            SampleCopy = cursor; cursor += perDimension ? Align((long)n * d * elementSize) : 0;
            Centre = cursor; cursor += entropy ? Align((long)d * sizeof(double)) : 0;
            ResponseMean = cursor; cursor += localVariance ? Align((long)p * sizeof(double)) : 0;
            Values = cursor; cursor += augment ? Align((long)n * ValueWidth * elementSize) : 0;
            Output = cursor; cursor += augment ? Align((long)m * ValueWidth * elementSize) : 0;
            LogSumExp = cursor; cursor += effectiveSampleSize || entropy ? Align((long)m * elementSize) : 0;
            LogSumExpHalf = cursor; cursor += effectiveSampleSize ? Align((long)m * elementSize) : 0;
            LogWeightsDoubled = cursor; cursor += effectiveSampleSize && weighted ? Align((long)n * elementSize) : 0;
            Kernel = cursor;
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1.0 };
            long kernelBytes = Kernels.AttentionDriver.WorkspaceBytes(elementSize, d, augment ? ValueWidth : p, n, 1, 1, gaussian: true,
                BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism));
            KernelBytes = (int)Math.Min(kernelBytes, int.MaxValue);
            cursor += kernelBytes;
            TotalBytes = cursor + 63;
        }
    }
}
