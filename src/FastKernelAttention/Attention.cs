using CommunityToolkit.HighPerformance;

namespace FastKernelAttention;

/// <summary>
/// Fused, tiled softmax-kernel attention: O_i = Σ_j softmax_j(s_ij) v_j computed in one pass with an online softmax;
/// the m×n score matrix is never stored (MATH §1–§4).
/// </summary>
/// <remarks>
/// <para>Layouts are row-major with an optional row pitch (<see cref="ReadOnlySpan2D{T}"/>). Query Q is m×d, key K is n×d,
/// value V is n×dv, output O is m×dv and the optional log-sum-exp is m (LSE_i = log Σ_j e^{s_ij} over visible keys,
/// including the sink).</para>
/// <para>A row with no visible key gives O_i = 0 and LSE_i = −∞ (LSE_i = s₀ with a sink), never NaN. A NaN in a visible
/// input, or a +∞ logit, makes only the affected rows NaN; masked keys are never read.</para>
/// <para>The best instruction set (AVX-512, AVX2+FMA, Vector128, scalar) is chosen once at start-up; see <see cref="ActiveIsa"/>.
/// A call allocates no managed memory.</para>
/// </remarks>
public static partial class Attention
{
    /// <summary>The instruction-set path every call uses: chosen once from the hardware and the <c>FKA_FORCE_ISA</c>
    /// environment variable (<c>Avx512</c>, <c>Avx2</c>, <c>Vector128</c> or <c>Scalar</c>; a path the CPU lacks falls back to the best it has).</summary>
    public static IsaPath ActiveIsa => Dispatch.IsaDispatch.Selected;
}
