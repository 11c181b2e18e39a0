using System;
using System.Reflection;
using System.Runtime.InteropServices;

namespace FastKernelAttention.Native;

/// <summary>The query exports of fka.h: version, ISA path, last error and status names. None of them can fail.</summary>
internal static unsafe class ExportsInfo
{
    private static readonly Version AssemblyVersion = typeof(Attention).Assembly.GetName().Version ?? new Version(0, 0, 0);

    /// <summary>"major.minor.patch" of the managed library compiled into this shared library.</summary>
    public static string VersionText => $"{AssemblyVersion.Major}.{AssemblyVersion.Minor}.{AssemblyVersion.Build}";

    private static readonly nint VersionString = AllocateUtf8(
        typeof(Attention).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? VersionText);

    /// <summary>(major &lt;&lt; 16) | (minor &lt;&lt; 8) | patch, as FKA_VERSION in fka.h.</summary>
    [UnmanagedCallersOnly(EntryPoint = "fka_version")]
    public static uint Version()
        => (uint)(Math.Clamp(AssemblyVersion.Major, 0, 0xFFFF) << 16 | Math.Clamp(AssemblyVersion.Minor, 0, 0xFF) << 8 | Math.Clamp(AssemblyVersion.Build, 0, 0xFF));

    /// <summary>The informational version, e.g. "0.1.0+commit"; a static NUL-terminated string.</summary>
    [UnmanagedCallersOnly(EntryPoint = "fka_version_string")]
    public static byte* VersionStringPointer() => (byte*)VersionString;

    /// <summary>The ISA path every call uses (FKA_ISA_SCALAR = 0 … FKA_ISA_AVX512 = 3), as <see cref="Attention.ActiveIsa"/>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "fka_active_isa")]
    public static int ActiveIsa()
    {
        try
        {
            return (int)Attention.ActiveIsa;
        }
        catch (Exception)
        {
            return (int)IsaPath.Scalar; // cannot happen (the choice is made once from the hardware); never let it escape
        }
    }

    /// <summary>This thread's message of its latest call: "" after a success.</summary>
    [UnmanagedCallersOnly(EntryPoint = "fka_last_error_message")]
    public static byte* LastErrorMessage() => LastError.Pointer();

    /// <summary>The name of a status code ("FKA_OK", "FKA_ERR_SHAPE", …; "FKA_ERR_UNKNOWN" for any other value).</summary>
    [UnmanagedCallersOnly(EntryPoint = "fka_status_string")]
    public static byte* StatusString(int status)
    {
        ReadOnlySpan<byte> name = status switch
        {
            FkaStatus.Ok => "FKA_OK"u8,
            FkaStatus.NullPointer => "FKA_ERR_NULL_POINTER"u8,
            FkaStatus.Shape => "FKA_ERR_SHAPE"u8,
            FkaStatus.Argument => "FKA_ERR_ARGUMENT"u8,
            FkaStatus.Workspace => "FKA_ERR_WORKSPACE"u8,
            FkaStatus.Overflow => "FKA_ERR_OVERFLOW"u8,
            FkaStatus.OutOfMemory => "FKA_ERR_OUT_OF_MEMORY"u8,
            FkaStatus.Internal => "FKA_ERR_INTERNAL"u8,
            _ => "FKA_ERR_UNKNOWN"u8,
        };
        fixed (byte* pointer = name) return pointer; // u8 literals are NUL-terminated RVA data: the pointer never moves
    }

    private static nint AllocateUtf8(string text) => Marshal.StringToCoTaskMemUTF8(text);
}
