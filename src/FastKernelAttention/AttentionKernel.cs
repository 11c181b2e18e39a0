namespace FastKernelAttention;

/// <summary>The similarity kernel whose logarithm gives the attention logits s_ij (MATH §2).</summary>
public enum AttentionKernel
{
    /// <summary>Dot-product kernel: s_ij = scale · q_i·k_j, default scale 1/√d.</summary>
    Dot = 0,

    /// <summary>Gaussian (RBF) kernel: s_ij = −‖q_i − k_j‖² / (2h²) with bandwidth h = <see cref="AttentionOptions.Bandwidth"/>.</summary>
    Gaussian = 1,
}
