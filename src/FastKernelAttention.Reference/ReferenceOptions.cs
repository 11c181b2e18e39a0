namespace FastKernelAttention.Reference;

/// <summary>Options of one reference attention call: kernel, scale or bandwidth, masks and an optional sink (MATH §2–3).</summary>
/// <remarks>Options are validated by the <see cref="NaiveAttention"/> entry points; an invalid value raises an
/// <see cref="System.ArgumentException"/> naming <c>options</c>.</remarks>
public sealed record ReferenceOptions
{
    /// <summary>The kernel: <see cref="ReferenceKernel.Dot"/> (default) or <see cref="ReferenceKernel.Gaussian"/>.</summary>
    public ReferenceKernel Kernel { get; init; } = ReferenceKernel.Dot;

    /// <summary>Dot kernel only: the scale in s_ij = scale · q_i·k_j. <see langword="null"/> means 1/√d. Must be finite.
    /// Ignored by the Gaussian kernel.</summary>
    public double? Scale { get; init; }

    /// <summary>Gaussian kernel only: the bandwidth h in s_ij = −‖q_i − k_j‖² / (2h²). Must be finite and positive
    /// when the Gaussian kernel is used.</summary>
    public double Bandwidth { get; init; } = 1;

    /// <summary>Bottom-right aligned causal mask: key j is visible to query i iff j ≤ i + (n − m) (MATH §3).
    /// For m = n this is the lower triangle; for m &gt; n, rows i &lt; m − n see no key.</summary>
    public bool Causal { get; init; }

    /// <summary>Optional sliding window w ≥ 1 (MATH §3): key j must also satisfy j ≥ i + (n − m) − w + 1.
    /// The bound applies whether or not <see cref="Causal"/> is set; with it, each row sees at most w keys.</summary>
    public int? Window { get; init; }

    /// <summary>Optional sink logit s₀: an extra logit with value vector 0 in the softmax denominator,
    /// O_i = Σ_j e^{s_ij} v_j / (e^{s₀} + Σ_j e^{s_ij}); the LSE includes e^{s₀}. Must not be NaN; −∞ is the same as no sink.</summary>
    public double? SinkLogit { get; init; }
}
