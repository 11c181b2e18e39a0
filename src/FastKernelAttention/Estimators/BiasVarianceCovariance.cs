namespace FastKernelAttention.Estimators;

/// <summary>
/// The bias–variance–covariance decomposition of an H-member ensemble's mean squared error (MATH §9, after Ueda &amp; Nakano
/// 1996): MSE = Bias² + Variance/H + (1 − 1/H)·Covariance, exact for the empirical moments (1/N) over N realisations.
/// </summary>
/// <param name="BiasSquared">bias̄², bias̄ = (1/H)·Σ_h (mean of f_h − y).</param>
/// <param name="Variance">var̄ = (1/H)·Σ_h Var(f_h − y).</param>
/// <param name="Covariance">cov̄ = (1/(H(H−1)))·Σ_{a≠b} Cov(f_a − y, f_b − y); 0 when H = 1.</param>
/// <param name="MeanSquaredError">(1/N)·Σ_k (f̄_k − y_k)², f̄ = (1/H)·Σ_h f_h: the ensemble's mean squared error.</param>
/// <param name="HeadCount">H.</param>
public readonly record struct BiasVarianceCovariance(double BiasSquared, double Variance, double Covariance, double MeanSquaredError, int HeadCount)
{
    /// <summary>Bias² + Variance/H + (1 − 1/H)·Covariance, which equals <see cref="MeanSquaredError"/> up to rounding.</summary>
    public double Sum => BiasSquared + Variance / HeadCount + (1 - 1.0 / HeadCount) * Covariance;
}
