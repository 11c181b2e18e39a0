using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>The self-attention particle flow of MATH §8 with the looped sub-steps and blend of MATH §11, literally, in
/// double: each sub-step materialises the n × n weight matrix W (NadarayaWatsonReference.Weights) and moves every particle
/// by (Δt/K)·(Σ_j W_ij x_j − x_i).</summary>
public static class ParticleFlowReference
{
    /// <summary>L steps from X⁽⁰⁾; per step the mean squared step and E = mean LSE − log n (at the start of the step).</summary>
    /// <param name="particles">X⁽⁰⁾, n × d (not modified).</param>
    /// <param name="bandwidth">h &gt; 0.</param>
    /// <param name="stepSize">Δt &gt; 0.</param>
    /// <param name="stepCount">L ≥ 0.</param>
    /// <param name="subSteps">K ≥ 1.</param>
    /// <param name="blend">β ∈ [0, 1].</param>
    /// <returns>X⁽ᴸ⁾ [n×d], mean squared steps [L], energies [L].</returns>
    public static (double[,] Particles, double[] MeanSquaredStep, double[] Energy) Run(double[,] particles, double bandwidth,
        double stepSize, int stepCount, int subSteps = 1, double blend = 0)
    {
        ArgumentNullException.ThrowIfNull(particles);
        int n = particles.GetLength(0), d = particles.GetLength(1);
        var x = (double[,])particles.Clone();
        var meanSquaredStep = new double[stepCount];
        var energy = new double[stepCount];
        for (int step = 0; step < stepCount; step++)
        {
            var start = (double[,])x.Clone();
            var full = new double[n, d];
            for (int k = 0; k < subSteps; k++)
            {
                var (weights, logSumExp) = NadarayaWatsonReference.Weights(x, x, new[] { bandwidth });
                var mean = new double[n, d];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++)
                        for (int c = 0; c < d; c++)
                            mean[i, c] += weights[i, j] * x[j, c];
                if (k == 0)
                {
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += logSumExp[i];
                    energy[step] = sum / n - Math.Log(n);
                    for (int i = 0; i < n; i++)
                        for (int c = 0; c < d; c++)
                            full[i, c] = x[i, c] + stepSize * (mean[i, c] - x[i, c]);
                }
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < d; c++)
                        x[i, c] += stepSize / subSteps * (mean[i, c] - x[i, c]);
            }
            double squared = 0;
            for (int i = 0; i < n; i++)
            {
                for (int c = 0; c < d; c++)
                {
                    if (blend > 0) x[i, c] = blend * full[i, c] + (1 - blend) * x[i, c];
                    squared += (x[i, c] - start[i, c]) * (x[i, c] - start[i, c]);
                }
            }
            meanSquaredStep[step] = squared / n;
        }
        return (x, meanSquaredStep, energy);
    }
}
