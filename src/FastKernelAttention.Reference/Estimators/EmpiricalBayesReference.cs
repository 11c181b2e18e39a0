using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>The empirical-Bayes posterior of MATH §7 by Bayes' rule for a discrete prior, literally, in double.</summary>
public static class EmpiricalBayesReference
{
    /// <summary>Posterior weights w_ij ∝ π_j·exp(−‖y_i − x_j‖²/(2σ²)), then μ, the per-coordinate variance, log p(y) and
    /// (d = 1) the local false sign rate.</summary>
    /// <param name="observations">y, m × d.</param>
    /// <param name="atoms">x, n × d.</param>
    /// <param name="noiseVariance">σ² &gt; 0.</param>
    /// <param name="logPriorWeights">Null, or n values log π_j.</param>
    /// <returns>μ [m×d], variance [m×d], log p(y) [m], lfsr [m] (NaN unless d = 1).</returns>
    public static (double[,] Mean, double[,] Variance, double[] LogEvidence, double[] LocalFalseSignRate) Posterior(
        double[,] observations, double[,] atoms, double noiseVariance, double[]? logPriorWeights = null)
    {
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(atoms);
        int m = observations.GetLength(0), d = observations.GetLength(1), n = atoms.GetLength(0);
        var mean = new double[m, d];
        var variance = new double[m, d];
        var logEvidence = new double[m];
        var lfsr = new double[m];
        double totalMass = 0;
        for (int j = 0; j < n; j++) totalMass += Math.Exp(logPriorWeights?[j] ?? 0);
        for (int i = 0; i < m; i++)
        {
            var logits = new double[n];
            double max = double.NegativeInfinity;
            for (int j = 0; j < n; j++)
            {
                double squared = 0;
                for (int k = 0; k < d; k++) squared += (observations[i, k] - atoms[j, k]) * (observations[i, k] - atoms[j, k]);
                logits[j] = (logPriorWeights?[j] ?? 0) - squared / (2 * noiseVariance);
                max = Math.Max(max, logits[j]);
            }
            if (n == 0 || double.IsNegativeInfinity(max))
            {
                logEvidence[i] = double.NegativeInfinity;
                lfsr[i] = d == 1 ? 0 : double.NaN;
                continue;
            }
            double sum = 0;
            for (int j = 0; j < n; j++) sum += Math.Exp(logits[j] - max);
            double negative = 0, positive = 0;
            for (int j = 0; j < n; j++)
            {
                double w = Math.Exp(logits[j] - max) / sum;
                for (int k = 0; k < d; k++)
                {
                    mean[i, k] += w * atoms[j, k];
                    variance[i, k] += w * atoms[j, k] * atoms[j, k];
                }
                if (d == 1)
                {
                    if (atoms[j, 0] <= 0) negative += w;
                    if (atoms[j, 0] >= 0) positive += w;
                }
            }
            for (int k = 0; k < d; k++) variance[i, k] = Math.Max(0, variance[i, k] - mean[i, k] * mean[i, k]);
            logEvidence[i] = max + Math.Log(sum) - 0.5 * d * Math.Log(2 * Math.PI * noiseVariance) - Math.Log(totalMass);
            lfsr[i] = d == 1 ? Math.Min(negative, positive) : double.NaN;
        }
        return (mean, variance, logEvidence, lfsr);
    }
}
