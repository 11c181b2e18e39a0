using System;
using System.Runtime.InteropServices;

namespace FastKernelAttention.PathProbe;

/// <summary>
/// Elements placed so that the data ends exactly at a page mapped with no access (or, with <c>guardBefore</c>, starts
/// exactly after one): any read or write past the end (or before the start) faults and kills the process. Linux and macOS
/// (mmap/mprotect); on Windows the same layout would use VirtualAlloc/VirtualProtect.
/// </summary>
internal sealed unsafe class GuardedBuffer<T> : IDisposable
    where T : unmanaged
{
    private const int ProtNone = 0, ProtRead = 1, ProtWrite = 2, MapPrivate = 0x02, MapAnonymous = 0x20;
    private readonly byte* mapping;
    private readonly nuint mappedBytes;

    public GuardedBuffer(int length, bool guardBefore)
    {
        Length = length;
        nuint page = (nuint)Environment.SystemPageSize;
        nuint dataBytes = (nuint)(length * sizeof(T));
        nuint dataPages = (dataBytes + page - 1) / page;
        mappedBytes = (dataPages + 2) * page;
        mapping = (byte*)Libc.mmap(null, mappedBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (mapping == (byte*)-1) throw new InvalidOperationException("mmap failed");
        // Layout: [guard page][data pages][guard page]; the data is pushed against the guard it is meant to test.
        if (Libc.mprotect(mapping, page, ProtNone) != 0 || Libc.mprotect(mapping + (dataPages + 1) * page, page, ProtNone) != 0)
            throw new InvalidOperationException("mprotect failed");
        Pointer = guardBefore ? (T*)(mapping + page) : (T*)(mapping + (dataPages + 1) * page - dataBytes);
    }

    public T* Pointer { get; }

    public int Length { get; }

    public Span<T> Span => new(Pointer, Length);

    public void Dispose() => Libc.munmap(mapping, mappedBytes);
}

internal static unsafe class Libc
{
    [DllImport("libc", SetLastError = true)]
    public static extern void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", SetLastError = true)]
    public static extern int mprotect(void* address, nuint length, int protection);

    [DllImport("libc", SetLastError = true)]
    public static extern int munmap(void* address, nuint length);
}
