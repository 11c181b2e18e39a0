using System;
using System.IO;
using System.Linq;
using System.Runtime.Intrinsics.X86;
using FastKernelAttention.Dispatch;
using FastKernelAttention.Kernels;
using Xunit;

namespace FastKernelAttention.Tests.Kernels;

/// <summary><see cref="CpuIdentity"/> against what the operating system says of the CPU (Linux: /proc/cpuinfo's vendor_id
/// and cpu family, the same CPUID fields decoded by the kernel), and the tuning choices made from them.</summary>
public class CpuIdentityTests
{
    [Fact]
    public void VendorAndFamilyMatchTheOperatingSystem()
    {
        int[] families = [0x17, 0x19, 0x1A, 6];
        // The tuning choices follow the identity on every machine.
        Assert.Equal(CpuIdentity.IsAmdFamily(0x1A), DecodeConstants.PrefetchToL1);
        Assert.Equal(CpuIdentity.IsAmdFamily(0x1A), DecodeConstants.PrefetchInAddressOrder(sizeof(float)));
        Assert.Equal(CpuIdentity.IsAmdFamily(0x1A) || CpuIdentity.IsAmdFamily(0x19), DecodeConstants.PrefetchInAddressOrder(sizeof(ushort)));
        Assert.Equal(CpuIdentity.IsAmd ? 12 : 4, AttentionDriver.MinPackedReads);
        if (!X86Base.IsSupported)
        {
            Assert.All(families, f => Assert.False(CpuIdentity.IsAmdFamily(f)));
            return;
        }
        if (!File.Exists("/proc/cpuinfo")) return; // nothing independent to compare with (Windows, macOS)
        string[] lines = File.ReadAllLines("/proc/cpuinfo");
        string Field(string key) => lines.First(l => l.Contains(':') && l[..l.IndexOf(':')].Trim() == key).Split(':', 2)[1].Trim();
        bool amd = Field("vendor_id") == "AuthenticAMD";
        int family = int.Parse(Field("cpu family"));
        Assert.Equal(amd, CpuIdentity.IsAmd);
        Assert.Equal(family, CpuIdentity.Family);
        foreach (int f in families)
            Assert.Equal(amd && family == f, CpuIdentity.IsAmdFamily(f));
    }
}
