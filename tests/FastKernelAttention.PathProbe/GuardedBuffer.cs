using System;
using System.Runtime.InteropServices;

namespace FastKernelAttention.PathProbe;

/// <summary>Which end of a <see cref="GuardedBuffer{T}"/> touches the no-access page.</summary>
internal enum GuardAt
{
    /// <summary>The last element ends exactly where the no-access page begins: catches over-reads and over-writes.</summary>
    End,

    /// <summary>The first element starts exactly where the no-access page ends: catches under-reads and under-writes.</summary>
    Start,
}

/// <summary>
/// <see cref="Length"/> elements in freshly mapped pages, laid out as [no-access page][data pages][no-access page] with the
/// data pushed against the guard chosen by <see cref="GuardAt"/>: any access one element past the end (or before the start)
/// faults and kills the process. Linux and macOS use mmap/mprotect/munmap; Windows uses VirtualAlloc/VirtualProtect/VirtualFree.
/// </summary>
internal sealed unsafe class GuardedBuffer<T> : IDisposable
    where T : unmanaged
{
    private readonly byte* mapping;
    private readonly nuint mappedBytes;
    private readonly byte* dataPages;
    private readonly nuint dataPagesBytes;
    private bool disposed;

    public GuardedBuffer(int length, GuardAt guard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint page = (nuint)Environment.SystemPageSize;
        nuint dataBytes = (nuint)length * (nuint)sizeof(T);
        nuint pages = Math.Max(1, (dataBytes + page - 1) / page);
        dataPagesBytes = pages * page;
        mappedBytes = dataPagesBytes + 2 * page;
        mapping = PageMemory.Map(mappedBytes);
        dataPages = mapping + page;
        PageMemory.Protect(mapping, page, PageAccess.None);
        PageMemory.Protect(dataPages + dataPagesBytes, page, PageAccess.None);
        Pointer = guard == GuardAt.Start ? (T*)dataPages : (T*)(dataPages + dataPagesBytes - dataBytes);
        Guard = guard;
    }

    /// <summary>The first element.</summary>
    public T* Pointer { get; }

    /// <summary>The number of elements.</summary>
    public int Length { get; }

    /// <summary>The end the no-access page touches.</summary>
    public GuardAt Guard { get; }

    /// <summary>The elements (the pages are zero-filled when mapped).</summary>
    public Span<T> Span => new(Pointer, Length);

    /// <summary>Makes the data pages read-only, so that a write to an input faults too.</summary>
    public void MakeReadOnly() => PageMemory.Protect(dataPages, dataPagesBytes, PageAccess.Read);

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        PageMemory.Unmap(mapping, mappedBytes);
    }
}

internal enum PageAccess
{
    None,
    Read,
    ReadWrite,
}

/// <summary>Whole-page mappings with settable protection.</summary>
internal static unsafe partial class PageMemory
{
    public static byte* Map(nuint bytes)
    {
        if (OperatingSystem.IsWindows())
        {
            const uint MemCommit = 0x1000, MemReserve = 0x2000, PageReadWrite = 0x04;
            void* p = Windows.VirtualAlloc(null, bytes, MemCommit | MemReserve, PageReadWrite);
            if (p == null) throw new InvalidOperationException($"VirtualAlloc failed: error {Marshal.GetLastPInvokeError()}");
            return (byte*)p;
        }
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
            throw new PlatformNotSupportedException("Guard pages need Linux, macOS, FreeBSD or Windows.");
        const int ProtRead = 1, ProtWrite = 2, MapPrivate = 0x02;
        int mapAnonymous = OperatingSystem.IsLinux() ? 0x20 : 0x1000;
        void* mapped = Libc.mmap(null, bytes, ProtRead | ProtWrite, MapPrivate | mapAnonymous, -1, 0);
        if (mapped == (void*)-1) throw new InvalidOperationException($"mmap failed: errno {Marshal.GetLastPInvokeError()}");
        return (byte*)mapped;
    }

    public static void Protect(byte* address, nuint bytes, PageAccess access)
    {
        if (OperatingSystem.IsWindows())
        {
            uint protection = access switch { PageAccess.None => 0x01u, PageAccess.Read => 0x02u, _ => 0x04u }; // PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE
            if (!Windows.VirtualProtect(address, bytes, protection, out _))
                throw new InvalidOperationException($"VirtualProtect failed: error {Marshal.GetLastPInvokeError()}");
            return;
        }
        int prot = access switch { PageAccess.None => 0, PageAccess.Read => 1, _ => 3 }; // PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE
        if (Libc.mprotect(address, bytes, prot) != 0)
            throw new InvalidOperationException($"mprotect failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public static void Unmap(byte* address, nuint bytes)
    {
        if (OperatingSystem.IsWindows())
        {
            const uint MemRelease = 0x8000;
            if (!Windows.VirtualFree(address, 0, MemRelease))
                throw new InvalidOperationException($"VirtualFree failed: error {Marshal.GetLastPInvokeError()}");
            return;
        }
        if (Libc.munmap(address, bytes) != 0)
            throw new InvalidOperationException($"munmap failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true)]
        public static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int mprotect(void* address, nuint length, int protection);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int munmap(void* address, nuint length);
    }

    private static partial class Windows
    {
        [LibraryImport("kernel32.dll", SetLastError = true)]
        public static partial void* VirtualAlloc(void* address, nuint size, uint allocationType, uint protection);

        [LibraryImport("kernel32.dll", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        public static partial bool VirtualProtect(void* address, nuint size, uint newProtection, out uint oldProtection);

        [LibraryImport("kernel32.dll", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        public static partial bool VirtualFree(void* address, nuint size, uint freeType);
    }
}
