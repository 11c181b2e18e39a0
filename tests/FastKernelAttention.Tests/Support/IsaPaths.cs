using System.Collections.Generic;
using FastKernelAttention.Dispatch;

namespace FastKernelAttention.Tests.Support;

/// <summary>Theory data: every ISA path this machine supports (a missing path is absent, never silently replaced).</summary>
public static class IsaPaths
{
    public static IEnumerable<object[]> Supported()
    {
        foreach (IsaPath path in new[] { IsaPath.Avx512, IsaPath.Avx2, IsaPath.Vector128, IsaPath.Scalar })
        {
            if (IsaDispatch.IsSupported(path)) yield return new object[] { path };
        }
    }

    public static IEnumerable<object[]> SupportedWithTypes()
    {
        foreach (object[] row in Supported())
        {
            yield return new object[] { row[0], false };
            yield return new object[] { row[0], true };
        }
    }
}
