using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Unicode;

namespace FastKernelAttention.Native;

/// <summary>The per-thread message behind <c>fka_last_error_message()</c>: UTF-8, NUL-terminated, in a pinned per-thread buffer.</summary>
internal static unsafe class LastError
{
    private const int Capacity = 1024;

    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>Clears the message (every call starts with this, so the message always describes this thread's latest call).</summary>
    public static void Clear()
    {
        byte[]? buffer = t_buffer;
        if (buffer is not null) buffer[0] = 0;
    }

    /// <summary>Records <paramref name="message"/> (truncated to 1023 bytes) and returns <paramref name="status"/>.</summary>
    public static int Set(int status, string message)
    {
        try
        {
            byte[] buffer = t_buffer ??= GC.AllocateArray<byte>(Capacity, pinned: true);
            Utf8.FromUtf16(message.AsSpan(), buffer.AsSpan(0, Capacity - 1), out _, out int written, replaceInvalidSequences: true, isFinalBlock: true);
            buffer[written] = 0;
        }
        catch (Exception)
        {
            // Out of memory while recording the message: the status code still tells the caller what happened.
        }
        return status;
    }

    /// <summary>A pointer to this thread's message; "" when the latest call succeeded or no call was made.</summary>
    public static byte* Pointer()
    {
        byte[]? buffer = t_buffer;
        if (buffer is null)
        {
            // "\0"u8 (not ""u8: fixing an empty span gives NULL) is RVA data of the image and never moves.
            fixed (byte* empty = "\0"u8) return empty;
        }
        // The buffer lives on the pinned object heap, so the pointer stays valid while the thread keeps the array.
        return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
    }
}
