namespace FastKernelAttention.Reference;

/// <summary>The logit kernel of the reference (MATH §2).</summary>
public enum ReferenceKernel
{
    /// <summary>Scaled dot product: s_ij = scale · q_i·k_j, default scale 1/√d.</summary>
    Dot,

    /// <summary>Gaussian: s_ij = −‖q_i − k_j‖² / (2h²), computed by direct differences (no expansion).</summary>
    Gaussian,
}
