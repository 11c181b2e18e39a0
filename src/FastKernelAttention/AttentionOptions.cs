namespace FastKernelAttention;

/// <summary>Options of one attention call: the kernel, its scale or bandwidth, the causal mask, an attention sink and the degree of parallelism.</summary>
/// <remarks>
/// <para><c>default(AttentionOptions)</c> is a valid single-threaded, unmasked dot-product call with scale 1/√d.</para>
/// <para>Every option is validated at the entry point of the call that uses it; an invalid value raises an
/// <see cref="System.ArgumentException"/> (or <see cref="System.ArgumentOutOfRangeException"/>) naming <c>options</c>.</para>
/// </remarks>
public readonly record struct AttentionOptions
{
    /// <summary>The kernel: <see cref="AttentionKernel.Dot"/> (default) or <see cref="AttentionKernel.Gaussian"/>.</summary>
    public AttentionKernel Kernel { get; init; }

    /// <summary>Dot kernel only: the logit scale in s_ij = scale · q_i·k_j. <see langword="null"/> means 1/√d. Must be finite and positive.</summary>
    public double? Scale { get; init; }

    /// <summary>Gaussian kernel only: the bandwidth h &gt; 0 in s_ij = −‖q_i − k_j‖² / (2h²). Must be finite and positive.</summary>
    public double Bandwidth { get; init; }

    /// <summary>Bottom-right aligned causal mask: key j is visible to query i iff j ≤ i + (n − m) (MATH §3).
    /// For m = n this is the usual lower triangle; rows i &lt; m − n see no key when m &gt; n.</summary>
    public bool Causal { get; init; }

    /// <summary>Optional attention-sink logit s₀: an extra logit with value vector 0 that joins the softmax denominator,
    /// O_i = Σ_j e^{s_ij} v_j / (e^{s₀} + Σ_j e^{s_ij}); the log-sum-exp includes it. Must not be NaN; −∞ means no sink.</summary>
    public double? SinkLogit { get; init; }

    /// <summary>The number of threads the call may use: 0 or 1 runs on the calling thread only (default), −1 uses every
    /// processor, k &gt; 1 uses at most k threads. The work is split over (head, query block) with block sizes that never
    /// depend on this value, so the result is bitwise identical for every degree of parallelism.</summary>
    public int MaxDegreeOfParallelism { get; init; }
}
