using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CommunityToolkit.HighPerformance;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Internals;

namespace FastKernelAttention.Estimators;

/// <summary>
/// Empirical-Bayes posterior under Gaussian noise with an empirical (discrete) prior (MATH §7): y = x + σε, ε ~ N(0, I_d),
/// prior mass π_j on atoms x_j. The posterior weights w_j ∝ π_j·exp(−‖y − x_j‖²/(2σ²)) are one Gaussian attention pass with
/// bandwidth σ, the atoms as keys and, as values, the centred atoms, their squares and (d = 1) the sign indicators — so the
/// posterior mean, the per-coordinate variance, the log evidence and the local false sign rate come from that one pass.
/// </summary>
/// <remarks>Element type T is <see cref="float"/> or <see cref="double"/>. No managed memory is allocated: scratch comes
/// from the caller's workspace (<see cref="GetWorkspaceSize{T}"/>) or, without one, from native memory freed before the
/// call returns. With no atoms every row has μ = 0, variance 0, log p(y) = −∞ and lfsr = 0.</remarks>
public static class EmpiricalBayes
{
    /// <summary>
    /// Posterior mean μ_i = Σ_j w_ij x_j, per-coordinate variance Σ_j w_ij x_jk² − μ_ik², log evidence
    /// log p(y_i) = LSE_i − (d/2)·log(2πσ²) − log Σ_j π_j and, for d = 1, the local false sign rate
    /// lfsr_i = min(Σ_{x_j ≤ 0} w_ij, Σ_{x_j ≥ 0} w_ij) (an atom at 0 counts on both sides).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="observations">y, m × d.</param>
    /// <param name="atoms">x_j, n × d: the empirical prior's support.</param>
    /// <param name="noiseVariance">σ² &gt; 0, finite.</param>
    /// <param name="posteriorMean">μ, m × d; must not overlap an input.</param>
    /// <param name="posteriorVariance">Empty, or m × d: the diagonal of the posterior covariance (computed about the atom
    /// mean, clamped ≥ 0).</param>
    /// <param name="logEvidence">Empty, or ≥ m elements: log p(y_i) in nats.</param>
    /// <param name="localFalseSignRate">Empty, or ≥ m elements (d = 1 only).</param>
    /// <param name="logPriorWeights">Empty (π_j = 1), or n values log π_j; −∞ drops an atom; NaN and +∞ are rejected.</param>
    /// <remarks>A NaN in an observation makes only that row NaN.</remarks>
    /// <exception cref="ArgumentException">A shape does not match, σ² is not finite and positive, or lfsr is asked for with d ≠ 1.</exception>
    /// <exception cref="NotSupportedException">T is neither float nor double.</exception>
    public static void Posterior<T>(ReadOnlySpan2D<T> observations, ReadOnlySpan2D<T> atoms, double noiseVariance,
        Span2D<T> posteriorMean, Span2D<T> posteriorVariance = default, Span<T> logEvidence = default,
        Span<T> localFalseSignRate = default, ReadOnlySpan<T> logPriorWeights = default)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PosteriorCore(IsaDispatch.Selected, observations, atoms, noiseVariance, posteriorMean, posteriorVariance, logEvidence,
            localFalseSignRate, logPriorWeights, default, workspaceGiven: false);

    /// <summary>The posterior with a caller-owned workspace of at least <see cref="GetWorkspaceSize{T}"/> bytes.</summary>
    /// <inheritdoc cref="Posterior{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, double, Span2D{T}, Span2D{T}, Span{T}, Span{T}, ReadOnlySpan{T})"/>
    /// <param name="workspace">Scratch memory.</param>
    public static void Posterior<T>(ReadOnlySpan2D<T> observations, ReadOnlySpan2D<T> atoms, double noiseVariance,
        Span2D<T> posteriorMean, Span2D<T> posteriorVariance, Span<T> logEvidence, Span<T> localFalseSignRate,
        ReadOnlySpan<T> logPriorWeights, Span<byte> workspace)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        => PosteriorCore(IsaDispatch.Selected, observations, atoms, noiseVariance, posteriorMean, posteriorVariance, logEvidence,
            localFalseSignRate, logPriorWeights, workspace, workspaceGiven: true);

    /// <summary>Bytes of workspace <see cref="Posterior{T}(ReadOnlySpan2D{T}, ReadOnlySpan2D{T}, double, Span2D{T}, Span2D{T}, Span{T}, Span{T}, ReadOnlySpan{T}, Span{byte})"/>
    /// needs for m observations, n atoms in dimension d.</summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="observationCount">m ≥ 0.</param>
    /// <param name="atomCount">n ≥ 0.</param>
    /// <param name="dimension">d ≥ 1.</param>
    public static int GetWorkspaceSize<T>(int observationCount, int atomCount, int dimension)
        where T : unmanaged
    {
        RequireFloatOrDouble<T>();
        ArgumentOutOfRangeException.ThrowIfNegative(observationCount);
        ArgumentOutOfRangeException.ThrowIfNegative(atomCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        long bytes = Layout.Bytes(Unsafe.SizeOf<T>(), observationCount, atomCount, dimension);
        if (bytes > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(atomCount), "The workspace would exceed 2 GiB.");
        return (int)bytes;
    }

    internal static unsafe void PosteriorCore<T>(IsaPath path, ReadOnlySpan2D<T> observations, ReadOnlySpan2D<T> atoms,
        double noiseVariance, Span2D<T> posteriorMean, Span2D<T> posteriorVariance, Span<T> logEvidence,
        Span<T> localFalseSignRate, ReadOnlySpan<T> logPriorWeights, Span<byte> workspace, bool workspaceGiven)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireFloatOrDouble<T>();
        int m = observations.Height, d = observations.Width, n = atoms.Height;
        if (d < 1) ThrowHelper.ThrowShape(nameof(observations), "observationCount × dimension with dimension ≥ 1", m, d);
        if (atoms.Width != d) ThrowHelper.ThrowShape(nameof(atoms), $"atomCount × {d}", n, atoms.Width);
        if (!(double.IsFinite(noiseVariance) && noiseVariance > 0))
            ThrowHelper.ThrowOutOfRange(nameof(noiseVariance), noiseVariance, "The noise variance must be finite and positive.");
        if (posteriorMean.Height != m || posteriorMean.Width != d) ThrowHelper.ThrowShape(nameof(posteriorMean), $"{m} × {d}", posteriorMean.Height, posteriorMean.Width);
        if (!posteriorVariance.IsEmpty && (posteriorVariance.Height != m || posteriorVariance.Width != d))
            ThrowHelper.ThrowShape(nameof(posteriorVariance), $"empty or {m} × {d}", posteriorVariance.Height, posteriorVariance.Width);
        if (!logEvidence.IsEmpty && logEvidence.Length < m) ThrowHelper.ThrowLength(nameof(logEvidence), $"empty or at least {m}", logEvidence.Length);
        if (!localFalseSignRate.IsEmpty && (d != 1 || localFalseSignRate.Length < m))
            ThrowHelper.ThrowArgument(nameof(localFalseSignRate), $"The local false sign rate needs d = 1 and at least {m} elements (d = {d}, length {localFalseSignRate.Length}).");
        if (!logPriorWeights.IsEmpty && logPriorWeights.Length != n) ThrowHelper.ThrowLength(nameof(logPriorWeights), $"empty or {n} (one per atom)", logPriorWeights.Length);
        long required = Layout.Bytes(sizeof(T), m, n, d);
        if (workspaceGiven && workspace.Length < required) ThrowHelper.ThrowWorkspace(nameof(workspace), required, workspace.Length);
        if (m == 0) return;

        if (workspaceGiven)
        {
            fixed (byte* buffer = workspace)
                Run(path, observations, atoms, noiseVariance, posteriorMean, posteriorVariance, logEvidence, localFalseSignRate, logPriorWeights, buffer, required);
            return;
        }
        byte* memory = (byte*)NativeMemory.Alloc((nuint)required);
        try
        {
            Run(path, observations, atoms, noiseVariance, posteriorMean, posteriorVariance, logEvidence, localFalseSignRate, logPriorWeights, memory, required);
        }
        finally
        {
            NativeMemory.Free(memory);
        }
    }

    private static unsafe void Run<T>(IsaPath path, ReadOnlySpan2D<T> observations, ReadOnlySpan2D<T> atoms, double noiseVariance,
        Span2D<T> posteriorMean, Span2D<T> posteriorVariance, Span<T> logEvidence, Span<T> localFalseSignRate,
        ReadOnlySpan<T> logPriorWeights, byte* buffer, long bytes)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int m = observations.Height, d = observations.Width, n = atoms.Height;
        int width = Layout.ValueWidth(d);
        byte* aligned = (byte*)(((nuint)buffer + 63) & ~(nuint)63);
        T* values = (T*)aligned;                                           // n × width: [x̃, x̃², 1{x ≤ 0}, 1{x ≥ 0}]
        T* moments = values + (long)n * width;                              // m × width
        T* lse = moments + (long)m * width;                                 // m
        double* center = (double*)((byte*)(lse + m) + (64 - ((nuint)(lse + m) & 63)) % 64); // d
        byte* attentionWorkspace = (byte*)(center + d);
        int attentionBytes = (int)(buffer + bytes - attentionWorkspace);

        // Centre the value moments at the atom mean so that Σw x̃² − (Σw x̃)² keeps its accuracy when |μ| ≫ sd (MATH §7).
        for (int k = 0; k < d; k++)
        {
            double sum = 0;
            for (int j = 0; j < n; j++) sum += double.CreateTruncating(atoms[j, k]);
            center[k] = n > 0 ? sum / n : 0;
        }
        for (int j = 0; j < n; j++)
        {
            T* row = values + (long)j * width;
            for (int k = 0; k < d; k++)
            {
                double x = double.CreateTruncating(atoms[j, k]);
                double centred = x - center[k];
                row[k] = T.CreateTruncating(centred);
                row[d + k] = T.CreateTruncating(centred * centred);
                if (d == 1)
                {
                    row[2] = x <= 0 ? T.One : T.Zero;
                    row[3] = x >= 0 ? T.One : T.Zero;
                }
            }
        }

        var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = System.Math.Sqrt(noiseVariance) };
        Attention.ForwardCore(path, observations, atoms, new ReadOnlySpan2D<T>(values, n, width, 0), new Span2D<T>(moments, m, width, 0),
            1, 1, options, new Span<T>(lse, m), default, logPriorWeights, excludeDiagonal: false,
            new Span<byte>(attentionWorkspace, attentionBytes), workspaceGiven: true);

        double logMass = LogTotalMass(logPriorWeights, n);
        double normaliser = 0.5 * d * System.Math.Log(2 * System.Math.PI * noiseVariance) + logMass;
        for (int i = 0; i < m; i++)
        {
            T* row = moments + (long)i * width;
            for (int k = 0; k < d; k++)
            {
                double mean = double.CreateTruncating(row[k]);
                posteriorMean[i, k] = T.CreateTruncating(center[k] + mean);
                if (!posteriorVariance.IsEmpty)
                {
                    double variance = double.CreateTruncating(row[d + k]) - mean * mean;
                    posteriorVariance[i, k] = T.CreateTruncating(variance < 0 ? 0 : variance); // NaN stays NaN
                }
            }
            if (!logEvidence.IsEmpty)
            {
                // No atom with mass (n = 0, or every π_j = 0): p(y) = 0, so −∞ rather than −∞ − (−∞).
                double rowLse = double.CreateTruncating(lse[i]);
                logEvidence[i] = T.CreateTruncating(double.IsNegativeInfinity(rowLse) ? rowLse : rowLse - normaliser);
            }
            if (!localFalseSignRate.IsEmpty) localFalseSignRate[i] = T.Min(row[2], row[3]);
        }
    }

    /// <summary>log Σ_j π_j (log n without weights), computed stably.</summary>
    private static double LogTotalMass<T>(ReadOnlySpan<T> logPriorWeights, int n)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (logPriorWeights.IsEmpty) return System.Math.Log(n);
        double max = double.NegativeInfinity;
        foreach (T w in logPriorWeights) max = System.Math.Max(max, double.CreateTruncating(w));
        if (double.IsNegativeInfinity(max)) return double.NegativeInfinity;
        double sum = 0;
        foreach (T w in logPriorWeights) sum += System.Math.Exp(double.CreateTruncating(w) - max);
        return max + System.Math.Log(sum);
    }

    private static void RequireFloatOrDouble<T>()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException("EmpiricalBayes supports float and double.");
    }

    /// <summary>Workspace layout: values n × w, moments m × w, LSE m (T), the atom mean (double), then the attention workspace.</summary>
    private static class Layout
    {
        public static int ValueWidth(int d) => 2 * d + (d == 1 ? 2 : 0);

        public static long Bytes(int elementSize, int m, int n, int d)
        {
            int width = ValueWidth(d);
            long own = ((long)n * width + (long)m * width + m) * elementSize + 64 + (long)d * sizeof(double) + 64;
            var options = new AttentionOptions { Kernel = AttentionKernel.Gaussian, Bandwidth = 1 };
            long attention = Kernels.AttentionDriver.WorkspaceBytes(elementSize, d, width, n, 1, 1, gaussian: true,
                BlockParallel.ResolveDegree(options.MaxDegreeOfParallelism));
            return own + attention;
        }
    }
}
