namespace FastKernelAttention.Estimators;

/// <summary>How <see cref="MultiHeadEnsemble"/> combines the per-head estimates O^h (MATH §9).</summary>
public enum EnsembleCombination
{
    /// <summary>The plain average O = (1/H)·Σ_h O^h.</summary>
    Mean = 0,

    /// <summary>Log-sum-exp weights O_i = Σ_h c_hi·O^h_i with c_hi = softmax_h(LSE_hi): the MATH §4 merge of the head states,
    /// i.e. one softmax over all (head, key) pairs. A row whose heads all have LSE = −∞ gives 0.</summary>
    LogSumExpWeighted = 1,
}
