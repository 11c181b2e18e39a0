using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>
/// Literal double-precision Nadaraya–Watson regression (MATH §6, §12): the weight matrix W [m×n] is materialised row by row
/// with a two-pass softmax, and every quantity is computed from W by its defining formula, for clarity, not speed.
/// </summary>
/// <remarks>Logits s_ij = −Σ_k (x_ik − X_jk)² / (2h_k²) + log π_j by direct differences. A row with no visible sample gives
/// ĝ = 0, LSE = −∞, ESS = 0, H = 0, σ̂² = 0. A NaN logit makes the row's results NaN.</remarks>
public static class NadarayaWatsonReference
{
    /// <summary>Weights w_ij = exp(s_ij − LSE_i) and LSE_i = log Σ_j exp(s_ij) (two passes: max, then sequential sums).</summary>
    /// <param name="queries">x, m × d.</param>
    /// <param name="samples">X, n × d.</param>
    /// <param name="bandwidths">Length 1 or d, each &gt; 0.</param>
    /// <param name="logWeights">Null, or n log-weights log π_j (−∞ drops sample j).</param>
    /// <param name="excludeDiagonal">Hide sample j = i from query i (leave-one-out; m = n).</param>
    /// <returns>W [m×n] and LSE [m].</returns>
    public static (double[,] Weights, double[] LogSumExp) Weights(double[,] queries, double[,] samples, double[] bandwidths,
        double[]? logWeights = null, bool excludeDiagonal = false)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(bandwidths);
        int m = queries.GetLength(0), n = samples.GetLength(0), d = queries.GetLength(1);
        if (samples.GetLength(1) != d) throw new ArgumentException("samples must have the queries' width.", nameof(samples));
        if (bandwidths.Length != 1 && bandwidths.Length != d) throw new ArgumentException("Length 1 or d.", nameof(bandwidths));
        var weights = new double[m, n];
        var logSumExp = new double[m];
        var logits = new double[n];
        for (int i = 0; i < m; i++)
        {
            double max = double.NegativeInfinity;
            bool nan = false;
            for (int j = 0; j < n; j++)
            {
                double s = double.NegativeInfinity;
                if (!(excludeDiagonal && j == i) && !(logWeights != null && double.IsNegativeInfinity(logWeights[j])))
                {
                    double sum = 0;
                    for (int k = 0; k < d; k++)
                    {
                        double h = bandwidths[bandwidths.Length == 1 ? 0 : k];
                        double delta = (queries[i, k] - samples[j, k]) / h;
                        sum += delta * delta;
                    }
                    s = -0.5 * sum + (logWeights?[j] ?? 0.0);
                }
                logits[j] = s;
                if (double.IsNaN(s)) nan = true;
                else if (s > max) max = s;
            }
            if (nan)
            {
                logSumExp[i] = double.NaN;
                for (int j = 0; j < n; j++) weights[i, j] = double.NaN;
                continue;
            }
            if (double.IsNegativeInfinity(max))
            {
                logSumExp[i] = double.NegativeInfinity;
                continue;
            }
            double l = 0;
            for (int j = 0; j < n; j++) l += Math.Exp(logits[j] - max);
            for (int j = 0; j < n; j++) weights[i, j] = Math.Exp(logits[j] - max) / l;
            logSumExp[i] = max + Math.Log(l);
        }
        return (weights, logSumExp);
    }

    /// <summary>ĝ(x_i) = Σ_j w_ij Y_j with the diagnostics LSE_i, ESS_i = 1/Σ_j w_ij², H_i = −Σ_j w_ij log w_ij and
    /// σ̂²_ic = Σ_j w_ij (Y_jc − ĝ_ic)² (the two-pass form of Σw Y² − ĝ²).</summary>
    /// <param name="queries">x, m × d.</param>
    /// <param name="samples">X, n × d.</param>
    /// <param name="responses">Y, n × p.</param>
    /// <param name="bandwidths">Length 1 or d.</param>
    /// <param name="logWeights">Null or n log-weights.</param>
    /// <returns>ĝ [m×p], LSE [m], ESS [m], H [m], σ̂² [m×p].</returns>
    public static (double[,] Estimate, double[] LogSumExp, double[] EffectiveSampleSize, double[] Entropy, double[,] LocalVariance)
        Predict(double[,] queries, double[,] samples, double[,] responses, double[] bandwidths, double[]? logWeights = null)
    {
        ArgumentNullException.ThrowIfNull(responses);
        var (w, lse) = Weights(queries, samples, bandwidths, logWeights);
        int m = w.GetLength(0), n = w.GetLength(1), p = responses.GetLength(1);
        var estimate = new double[m, p];
        var ess = new double[m];
        var entropy = new double[m];
        var variance = new double[m, p];
        for (int i = 0; i < m; i++)
        {
            if (double.IsNegativeInfinity(lse[i])) continue;
            double squares = 0, h = 0;
            for (int j = 0; j < n; j++)
            {
                double wij = w[i, j];
                squares += wij * wij;
                if (wij > 0 || double.IsNaN(wij)) h -= wij * Math.Log(wij);
                for (int c = 0; c < p; c++) estimate[i, c] += wij * responses[j, c];
            }
            ess[i] = 1.0 / squares;
            entropy[i] = h;
            for (int c = 0; c < p; c++)
            {
                double v = 0;
                for (int j = 0; j < n; j++)
                {
                    double r = responses[j, c] - estimate[i, c];
                    v += w[i, j] * r * r;
                }
                variance[i, c] = v;
            }
        }
        return (estimate, lse, ess, entropy, variance);
    }

    /// <summary>Leave-one-out estimates ĝ₋ᵢ(X_i) = Σ_{j≠i} w_ij Y_j / Σ_{j≠i} w_ij [n×p] (0 for a row with no other sample).</summary>
    /// <param name="samples">X, n × d.</param>
    /// <param name="responses">Y, n × p.</param>
    /// <param name="bandwidths">Length 1 or d.</param>
    public static double[,] LeaveOneOut(double[,] samples, double[,] responses, double[] bandwidths)
    {
        ArgumentNullException.ThrowIfNull(responses);
        var (w, _) = Weights(samples, samples, bandwidths, null, excludeDiagonal: true);
        int n = w.GetLength(0), p = responses.GetLength(1);
        var estimate = new double[n, p];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                for (int c = 0; c < p; c++) estimate[i, c] += w[i, j] * responses[j, c];
            }
        }
        return estimate;
    }

    /// <summary>CV(h) = (1/n)·Σ_i Σ_c (Y_ic − ĝ₋ᵢ,c(X_i))² (MATH §6); NaN for n &lt; 2.</summary>
    /// <param name="samples">X, n × d.</param>
    /// <param name="responses">Y, n × p.</param>
    /// <param name="bandwidths">Length 1 or d.</param>
    public static double CrossValidationScore(double[,] samples, double[,] responses, double[] bandwidths)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(responses);
        int n = samples.GetLength(0), p = responses.GetLength(1);
        if (n < 2) return double.NaN;
        double[,] loo = LeaveOneOut(samples, responses, bandwidths);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < p; c++)
            {
                double r = responses[i, c] - loo[i, c];
                sum += r * r;
            }
        }
        return sum / n;
    }
}
