using System;

namespace FastKernelAttention.Reference.Estimators;

/// <summary>Multi-head attention as an ensemble of NW estimators (MATH §9), literally, in double: projections by plain
/// matrix products, each head by NaiveAttention.Forward (materialised scores and weights), the combination by its formula;
/// the HDI through projectors P = W(WᵀW)⁻¹Wᵀ (trace(P_a P_b) = ‖U_aᵀU_b‖²_F, full column rank only); the BVC terms by
/// their pairwise definitions.</summary>
public static class MultiHeadEnsembleReference
{
    /// <summary>Per-head outputs, per-head LSE and the combined output.</summary>
    /// <param name="queries">x, m × d.</param>
    /// <param name="samples">X, n × d.</param>
    /// <param name="responses">Y, n × p.</param>
    /// <param name="queryProjections">H matrices d × d_k.</param>
    /// <param name="keyProjections">H matrices d × d_k.</param>
    /// <param name="valueProjections">Null, or H matrices p × d_v.</param>
    /// <param name="options">The kernel options of every head.</param>
    /// <param name="logSumExpWeights">False: mean; true: softmax_h(LSE_h) weights.</param>
    /// <returns>O [m×d_v], O^h [H][m×d_v], LSE [H][m].</returns>
    public static (double[,] Output, double[][,] HeadOutputs, double[][] HeadLogSumExp) Predict(double[,] queries, double[,] samples,
        double[,] responses, double[][,] queryProjections, double[][,] keyProjections, double[][,]? valueProjections,
        ReferenceOptions options, bool logSumExpWeights)
    {
        ArgumentNullException.ThrowIfNull(queryProjections);
        ArgumentNullException.ThrowIfNull(keyProjections);
        int heads = queryProjections.Length, m = queries.GetLength(0);
        var headOutputs = new double[heads][,];
        var headLse = new double[heads][];
        for (int h = 0; h < heads; h++)
        {
            double[,] values = valueProjections is null ? responses : Multiply(responses, valueProjections[h]);
            (headOutputs[h], headLse[h]) = NaiveAttention.Forward(Multiply(queries, queryProjections[h]), Multiply(samples, keyProjections[h]), values, options);
        }
        int dv = headOutputs[0].GetLength(1);
        var output = new double[m, dv];
        for (int i = 0; i < m; i++)
        {
            var weights = new double[heads];
            if (logSumExpWeights)
            {
                double max = double.NegativeInfinity;
                for (int h = 0; h < heads; h++) max = Math.Max(max, headLse[h][i]);
                if (double.IsNegativeInfinity(max)) continue;
                double total = 0;
                for (int h = 0; h < heads; h++) total += Math.Exp(headLse[h][i] - max);
                for (int h = 0; h < heads; h++) weights[h] = Math.Exp(headLse[h][i] - max) / total;
            }
            else
            {
                for (int h = 0; h < heads; h++) weights[h] = 1.0 / heads;
            }
            for (int h = 0; h < heads; h++)
                for (int c = 0; c < dv; c++)
                    output[i, c] += weights[h] * headOutputs[h][i, c];
        }
        return (output, headOutputs, headLse);
    }

    /// <summary>HDI = 1 − (2/(H(H−1)))·Σ_{a&lt;b} trace(P_a P_b)/d_k with P = W(WᵀW)⁻¹Wᵀ (full column rank).</summary>
    /// <param name="keyProjections">H matrices d × d_k of full column rank.</param>
    public static double HeadDiversityIndex(double[][,] keyProjections)
    {
        ArgumentNullException.ThrowIfNull(keyProjections);
        int heads = keyProjections.Length;
        if (heads == 1) return double.NaN;
        int dk = keyProjections[0].GetLength(1);
        var projectors = new double[heads][,];
        for (int h = 0; h < heads; h++) projectors[h] = Projector(keyProjections[h]);
        double overlap = 0;
        for (int a = 0; a < heads; a++)
        {
            for (int b = a + 1; b < heads; b++)
            {
                double trace = 0;
                int d = projectors[a].GetLength(0);
                for (int i = 0; i < d; i++)
                    for (int k = 0; k < d; k++)
                        trace += projectors[a][i, k] * projectors[b][k, i];
                overlap += trace / dk;
            }
        }
        return 1 - 2.0 / (heads * (heads - 1.0)) * overlap;
    }

    /// <summary>bias̄², var̄, cov̄ (pairwise, a ≠ b) and the ensemble MSE of predictions f [H][N] against targets y [N].</summary>
    /// <param name="predictions">H rows of N predictions.</param>
    /// <param name="targets">N targets.</param>
    public static (double BiasSquared, double Variance, double Covariance, double MeanSquaredError) Decompose(double[][] predictions, double[] targets)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(targets);
        int heads = predictions.Length, count = targets.Length;
        var errors = new double[heads][];
        var means = new double[heads];
        for (int h = 0; h < heads; h++)
        {
            errors[h] = new double[count];
            for (int k = 0; k < count; k++) errors[h][k] = predictions[h][k] - targets[k];
            for (int k = 0; k < count; k++) means[h] += errors[h][k] / count;
        }
        double bias = 0, variance = 0, covariance = 0, mse = 0;
        for (int h = 0; h < heads; h++) bias += means[h] / heads;
        for (int h = 0; h < heads; h++)
            for (int k = 0; k < count; k++)
                variance += (errors[h][k] - means[h]) * (errors[h][k] - means[h]) / (count * heads);
        for (int a = 0; a < heads; a++)
            for (int b = 0; b < heads; b++)
                if (a != b)
                    for (int k = 0; k < count; k++)
                        covariance += (errors[a][k] - means[a]) * (errors[b][k] - means[b]) / (count * heads * (heads - 1.0));
        for (int k = 0; k < count; k++)
        {
            double ensemble = 0;
            for (int h = 0; h < heads; h++) ensemble += errors[h][k] / heads;
            mse += ensemble * ensemble / count;
        }
        return (bias * bias, variance, covariance, mse);
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        int rows = a.GetLength(0), inner = a.GetLength(1), columns = b.GetLength(1);
        var product = new double[rows, columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                for (int k = 0; k < inner; k++)
                    product[i, j] += a[i, k] * b[k, j];
        return product;
    }

    /// <summary>P = W(WᵀW)⁻¹Wᵀ with the Gram inverse by Gauss–Jordan elimination.</summary>
    private static double[,] Projector(double[,] w)
    {
        int d = w.GetLength(0), dk = w.GetLength(1);
        var gram = new double[dk, 2 * dk];
        for (int i = 0; i < dk; i++)
        {
            for (int j = 0; j < dk; j++)
                for (int k = 0; k < d; k++)
                    gram[i, j] += w[k, i] * w[k, j];
            gram[i, dk + i] = 1;
        }
        for (int col = 0; col < dk; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < dk; r++) if (Math.Abs(gram[r, col]) > Math.Abs(gram[pivot, col])) pivot = r;
            for (int c = 0; c < 2 * dk; c++) (gram[col, c], gram[pivot, c]) = (gram[pivot, c], gram[col, c]);
            double scale = gram[col, col];
            for (int c = 0; c < 2 * dk; c++) gram[col, c] /= scale;
            for (int r = 0; r < dk; r++)
            {
                if (r == col) continue;
                double factor = gram[r, col];
                for (int c = 0; c < 2 * dk; c++) gram[r, c] -= factor * gram[col, c];
            }
        }
        var projector = new double[d, d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
                for (int a = 0; a < dk; a++)
                    for (int b = 0; b < dk; b++)
                        projector[i, j] += w[i, a] * gram[a, dk + b] * w[j, b];
        return projector;
    }
}
