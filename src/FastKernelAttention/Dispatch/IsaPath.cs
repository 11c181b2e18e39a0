namespace FastKernelAttention;

/// <summary>An instruction-set path of the kernels. Each path is a complete implementation; results are bitwise
/// reproducible within one path (for every thread count) and agree across paths to the accuracy contract.</summary>
public enum IsaPath
{
    /// <summary>Plain scalar code (one lane); runs everywhere.</summary>
    Scalar = 0,

    /// <summary>Portable 128-bit vectors (<see cref="System.Runtime.Intrinsics.Vector128{T}"/>): SSE on x64, AdvSimd on ARM64.</summary>
    Vector128 = 1,

    /// <summary>256-bit AVX2 with FMA3.</summary>
    Avx2 = 2,

    /// <summary>512-bit AVX-512 (F, with hardware-accelerated <see cref="System.Runtime.Intrinsics.Vector512{T}"/>).</summary>
    Avx512 = 3,
}
