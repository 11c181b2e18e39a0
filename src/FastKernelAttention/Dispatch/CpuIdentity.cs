using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Dispatch;

/// <summary>The x86 vendor and family from CPUID, for the few tuning choices that differ between microarchitectures
/// (never for what a kernel computes).</summary>
internal static class CpuIdentity
{
    /// <summary>True on an AMD CPU ("AuthenticAMD") whose display family (base family, plus the extended family when the
    /// base is Fh) is <paramref name="family"/>: 19h is Zen 3 and Zen 4, 1Ah Zen 5.</summary>
    public static bool IsAmdFamily(int family)
    {
        if (!X86Base.IsSupported) return false;
        (_, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        // The vendor string in EBX, EDX, ECX: "Auth" "enti" "cAMD", little-endian.
        if (ebx != 0x68747541 || edx != 0x69746E65 || ecx != 0x444D4163) return false;
        int signature = X86Base.CpuId(1, 0).Eax;
        int baseFamily = (signature >> 8) & 0xF;
        int displayFamily = baseFamily == 0xF ? baseFamily + ((signature >> 20) & 0xFF) : baseFamily;
        return displayFamily == family;
    }
}
