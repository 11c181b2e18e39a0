using System.Runtime.Intrinsics.X86;

namespace FastKernelAttention.Dispatch;

/// <summary>The x86 vendor and family from CPUID, read once, for the few tuning choices that differ between
/// microarchitectures (never for what a kernel computes).</summary>
internal static class CpuIdentity
{
    /// <summary>An AMD CPU (vendor string "AuthenticAMD").</summary>
    public static readonly bool IsAmd = ReadIsAmd();

    /// <summary>The display family: the base family, plus the extended family when the base is Fh (AMD 19h: Zen 3 and
    /// Zen 4, 1Ah: Zen 5; Intel 6); 0 without CPUID.</summary>
    public static readonly int Family = ReadFamily();

    /// <summary>True on an AMD CPU of display family <paramref name="family"/>.</summary>
    public static bool IsAmdFamily(int family) => IsAmd && Family == family;

    private static bool ReadIsAmd()
    {
        if (!X86Base.IsSupported) return false;
        (_, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        // The vendor string in EBX, EDX, ECX: "Auth" "enti" "cAMD", little-endian.
        return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163;
    }

    private static int ReadFamily()
    {
        if (!X86Base.IsSupported) return 0;
        int signature = X86Base.CpuId(1, 0).Eax;
        int baseFamily = (signature >> 8) & 0xF;
        return baseFamily == 0xF ? baseFamily + ((signature >> 20) & 0xFF) : baseFamily;
    }
}
