using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Dispatch;

/// <summary>Chooses the instruction-set path once, at start-up.</summary>
/// <remarks>
/// AVX-512 is used when <see cref="Avx512F.IsSupported"/> and <see cref="Vector512.IsHardwareAccelerated"/> are both true:
/// the runtime reports Vector512 as not accelerated on CPUs where 512-bit code down-clocks, and it honours
/// <c>DOTNET_EnableAVX512F=0</c> through both. <c>FKA_FORCE_ISA</c> (Avx512, Avx2, Vector128, Scalar) forces a lower path;
/// a path the CPU lacks falls back to the best available.
/// </remarks>
internal static class IsaDispatch
{
    /// <summary>The path every public call uses.</summary>
    public static readonly IsaPath Selected = Choose(Environment.GetEnvironmentVariable("FKA_FORCE_ISA"));

    /// <summary>True when the machine can run <paramref name="path"/>.</summary>
    public static bool IsSupported(IsaPath path) => path switch
    {
        IsaPath.Avx512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated,
        IsaPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        IsaPath.Vector128 => Vector128.IsHardwareAccelerated,
        IsaPath.Scalar => true,
        _ => false,
    };

    /// <summary>The best supported path not above <paramref name="ceiling"/>.</summary>
    public static IsaPath BestUpTo(IsaPath ceiling)
    {
        for (var path = ceiling; path > IsaPath.Scalar; path--)
        {
            if (IsSupported(path)) return path;
        }
        return IsaPath.Scalar;
    }

    private static IsaPath Choose(string? forced)
    {
        IsaPath ceiling = IsaPath.Avx512;
        if (!string.IsNullOrEmpty(forced) && Enum.TryParse(forced.Trim(), ignoreCase: true, out IsaPath parsed)
            && Enum.IsDefined(parsed))
        {
            ceiling = parsed;
        }
        return BestUpTo(ceiling);
    }
}
