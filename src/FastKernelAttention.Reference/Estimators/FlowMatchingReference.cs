using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>Support-conditioned flow matching (MATH §10), literally, in double: the posterior over support points
/// w_j ∝ π_j·N(x; t·s_j, σ_t²I) is materialised and the conditional velocities u_t(x|s_j) = (s_j − (1−σ_min)·x)/σ_t are
/// averaged under it (not the m_t form the library uses).</summary>
public static class FlowMatchingReference
{
    /// <summary>v(x_i, t) = Σ_j w_ij·(s_j − (1−σ_min)·x_i)/σ_t.</summary>
    /// <param name="points">x, m × d.</param>
    /// <param name="support">s, n × d.</param>
    /// <param name="time">t.</param>
    /// <param name="minimumNoise">σ_min.</param>
    /// <param name="logWeights">Null or n values log π_j.</param>
    public static double[,] Velocity(double[,] points, double[,] support, double time, double minimumNoise, double[]? logWeights = null)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(support);
        int m = points.GetLength(0), d = points.GetLength(1), n = support.GetLength(0);
        double sigma = 1 - (1 - minimumNoise) * time;
        var velocity = new double[m, d];
        for (int i = 0; i < m; i++)
        {
            var logits = new double[n];
            double max = double.NegativeInfinity;
            for (int j = 0; j < n; j++)
            {
                double squared = 0;
                for (int c = 0; c < d; c++) squared += (points[i, c] - time * support[j, c]) * (points[i, c] - time * support[j, c]);
                logits[j] = (logWeights?[j] ?? 0) - squared / (2 * sigma * sigma);
                max = Math.Max(max, logits[j]);
            }
            double total = 0;
            for (int j = 0; j < n; j++) total += Math.Exp(logits[j] - max);
            for (int j = 0; j < n; j++)
            {
                double w = Math.Exp(logits[j] - max) / total;
                for (int c = 0; c < d; c++) velocity[i, c] += w * (support[j, c] - (1 - minimumNoise) * points[i, c]) / sigma;
            }
        }
        return velocity;
    }

    /// <summary>Euler: Δ = (1 − t0)/N, t_k = t0 + kΔ, x ← x + Δ·v(x, t_k), k = 0..N−1.</summary>
    /// <param name="start">x0, m × d (not modified).</param>
    /// <param name="support">s, n × d.</param>
    /// <param name="minimumNoise">σ_min.</param>
    /// <param name="stepCount">N.</param>
    /// <param name="startTime">t0.</param>
    /// <param name="logWeights">Null or n values log π_j.</param>
    public static double[,] Sample(double[,] start, double[,] support, double minimumNoise, int stepCount = 100,
        double startTime = 1e-5, double[]? logWeights = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        var x = (double[,])start.Clone();
        double delta = (1 - startTime) / stepCount;
        for (int k = 0; k < stepCount; k++)
        {
            var v = Velocity(x, support, startTime + k * delta, minimumNoise, logWeights);
            for (int i = 0; i < x.GetLength(0); i++)
                for (int c = 0; c < x.GetLength(1); c++)
                    x[i, c] += delta * v[i, c];
        }
        return x;
    }
}
