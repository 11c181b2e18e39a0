using System;

namespace FastKernelAttention.Reference;

/// <summary>Flop counts of MATH §15: 2 flops per multiply-add; exp, max and compares are not counted.</summary>
public static class FlopCount
{
    /// <summary>The number of visible (query, key) pairs P = Σ_i |𝒱_i| for an m × n problem (MATH §3), counted exactly.</summary>
    /// <param name="m">Query count, m ≥ 0.</param>
    /// <param name="n">Key count, n ≥ 0.</param>
    /// <param name="causal">Bottom-right aligned causal mask (j ≤ i + (n − m)).</param>
    /// <param name="window">Optional sliding window w ≥ 1 (j ≥ i + (n − m) − w + 1).</param>
    /// <returns>m·n without masks; for causal with m ≤ n, P = m(n − m) + m(m + 1)/2.</returns>
    /// <exception cref="ArgumentOutOfRangeException">m or n is negative, or window &lt; 1.</exception>
    public static long VisiblePairs(int m, int n, bool causal, int? window = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (window is int w) ArgumentOutOfRangeException.ThrowIfLessThan(w, 1, nameof(window));

        long pairs = 0;
        for (int i = 0; i < m; i++)
        {
            // Visible keys of row i form the interval [first, last] ∩ [0, n − 1] (MATH §3).
            long diagonal = (long)i + n - m;
            long last = causal ? Math.Min(diagonal, n - 1L) : n - 1L;
            long first = window is int width ? Math.Max(0L, diagonal - width + 1) : 0L;
            if (last >= first) pairs += last - first + 1;
        }

        return pairs;
    }

    /// <summary>Forward flops 2·P·(d + dv)·heads, with P = m·n (dense: 2mn(d + dv)) or the causal pair count (MATH §15).</summary>
    /// <param name="m">Query count, m ≥ 0.</param>
    /// <param name="n">Key count, n ≥ 0.</param>
    /// <param name="d">Head dimension of queries and keys, d ≥ 0.</param>
    /// <param name="dv">Head dimension of values, dv ≥ 0.</param>
    /// <param name="causal">Bottom-right aligned causal mask.</param>
    /// <param name="heads">Number of query heads, ≥ 0 (the count is multiplied by it).</param>
    /// <returns>The flop count; m = n = 1024, d = dv = 64 gives 268,435,456 dense and 134,348,800 causal.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument is negative.</exception>
    public static long Forward(int m, int n, int d, int dv, bool causal, int heads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(d);
        ArgumentOutOfRangeException.ThrowIfNegative(dv);
        ArgumentOutOfRangeException.ThrowIfNegative(heads);
        long pairs = VisiblePairs(m, n, causal);
        return checked(2L * pairs * ((long)d + dv) * heads);
    }
}
