namespace FastKernelAttention.Native;

/// <summary>The status codes of the C ABI (<c>FKA_OK</c>, <c>FKA_ERR_*</c> in fka.h). Values are part of the ABI: never renumber.</summary>
internal static class FkaStatus
{
    /// <summary>FKA_OK: the call succeeded.</summary>
    public const int Ok = 0;

    /// <summary>FKA_ERR_NULL_POINTER: a required pointer is NULL.</summary>
    public const int NullPointer = 1;

    /// <summary>FKA_ERR_SHAPE: a size is negative or zero where it must be positive, a pitch is smaller than its width, or the
    /// shapes of the arguments do not agree.</summary>
    public const int Shape = 2;

    /// <summary>FKA_ERR_ARGUMENT: an option or value is invalid (unknown kernel, NaN bandwidth, bad scale, NaN or +∞ sink,
    /// bad thread count, overlapping outputs, unknown options struct size or non-zero reserved field).</summary>
    public const int Argument = 3;

    /// <summary>FKA_ERR_WORKSPACE: the caller's workspace is smaller than the workspace size query returns.</summary>
    public const int Workspace = 4;

    /// <summary>FKA_ERR_OVERFLOW: a size, or a product of sizes, exceeds what the library supports (2³¹ − 1 elements per
    /// dimension, or a byte extent that does not fit the address space).</summary>
    public const int Overflow = 5;

    /// <summary>FKA_ERR_OUT_OF_MEMORY: scratch memory could not be allocated (pass a workspace to avoid the allocation).</summary>
    public const int OutOfMemory = 6;

    /// <summary>FKA_ERR_INTERNAL: an unexpected failure inside the library (a bug: please report the message).</summary>
    public const int Internal = 99;
}
